use super::*;

fn provider(name: &str, images: &[&str]) -> Provider {
    Provider {
        name: name.into(),
        match_images: images.iter().map(|s| s.to_string()).collect(),
        default_cache_duration: Some(300_000_000_000),
        api_version: "credentialprovider.kubelet.k8s.io/v1".into(),
        args: vec!["get-credentials".into()],
        ..Provider::default()
    }
}

/// Stands in for the binary's CLI: accepts `[get-credentials]` only.
fn entry_check(e: &Entry<'_>) -> Vec<Warning> {
    match e.args {
        _ if !e.runs_self => vec![],
        [one] if one == "get-credentials" => vec![],
        args => vec![Warning {
            severity: Severity::Warning,
            provider: None,
            field: Some("args".into()),
            message: format!("args rejected: {args:?}"),
        }],
    }
}

fn warnings(p: &Provider, bin_dir: Option<&Path>) -> Vec<(Option<String>, String)> {
    let options = Options {
        bin_dir,
        entry_check: Some(&entry_check),
    };
    check(&[p], &options)
        .into_iter()
        .map(|w| (w.field, w.message))
        .collect()
}

/// The one warning for a single `matchImages` entry (next to a `*.*` so that no
/// coverage warning joins in).
fn entry_warning(entry: &str) -> Option<String> {
    let p = provider("x", &[entry]);
    let w = warnings(&p, None);
    assert!(w.len() <= 1, "{entry}: {w:?}");
    w.into_iter().next().map(|(field, msg)| {
        assert_eq!(field.as_deref(), Some("matchImages[0]"), "{entry}");
        msg
    })
}

#[test]
fn usual_patterns_raise_nothing() {
    for entry in [
        "*.dkr.ecr.*.amazonaws.com",
        "public.ecr.aws",
        "gcr.io",
        "*.gcr.io",
        "*.pkg.dev",
        "*.azurecr.io",
        "*.*.geo.azurecr.io",
        "docker.io",
        "docker.io/library",
        "localhost:5000",
        "[::1]:5000",
        "registry.example.com:8443/team",
        "*.*",
        "quay.io/org",
        "registry.k8s.io",
        "reg:5000",
    ] {
        assert_eq!(entry_warning(entry), None, "{entry}");
    }
}

#[test]
fn docker_hub_aliases_never_match() {
    for entry in [
        "*.docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "index.docker.io/library",
    ] {
        let w = entry_warning(entry).unwrap();
        assert!(
            w.contains("never matches Docker Hub images") && w.contains("\"docker.io\""),
            "{w}"
        );
    }
}

#[test]
fn schemes_never_match() {
    let w = entry_warning("https://gcr.io").unwrap();
    assert_eq!(
        w,
        r#""https://gcr.io" never matches: the scheme is not stripped, so the host is "https:"; write "gcr.io""#
    );
    assert!(entry_warning("oci://x.io/a")
        .unwrap()
        .contains("write \"x.io/a\""));
}

#[test]
fn an_entry_without_a_port_or_a_dot_gets_the_port_and_docker_hub_warnings() {
    for (entry, add) in [
        ("localhost", "localhost:5000"),
        ("10.0.0.1", "10.0.0.1:5000"),
        ("[::1]", "[::1]:5000"),
    ] {
        let w = entry_warning(entry).unwrap();
        assert!(
            w.contains("has no port, so it never matches images that have one"),
            "{w}"
        );
        assert!(w.contains(&format!("add \"{add}\"")), "{w}");
    }
    // Both forms listed: nothing to say.
    let p = provider("x", &["localhost", "localhost:5000"]);
    assert!(warnings(&p, None).is_empty());
    let w = entry_warning("myregistry").unwrap();
    assert!(
        w.contains("is a Docker Hub image (myregistry/app is docker.io/myregistry/app)"),
        "{w}"
    );
    // An upper-case single label is a domain for newer parsers: not flagged as Hub.
    assert!(!entry_warning("MyReg").unwrap().contains("Docker Hub"));
}

#[test]
fn path_and_case_traps() {
    assert!(entry_warning("gcr.io/*")
        .unwrap()
        .contains("is a plain prefix, not a glob"));
    assert!(entry_warning("gcr.io/proj/[a-z]*")
        .unwrap()
        .contains("not a glob"));
    assert!(entry_warning("gcr.io/proj:latest")
        .unwrap()
        .contains("without their tag or digest"));
    assert!(entry_warning("gcr.io/p@sha256")
        .unwrap()
        .contains("without their tag or digest"));
    assert!(entry_warning("gcr.io/MyProj")
        .unwrap()
        .contains("upper-case"));
    assert!(entry_warning("GCR.io").unwrap().contains("case-sensitive"));
    assert!(entry_warning("gcr.io?x").unwrap().contains("'?' or '#'"));
    assert_eq!(
        entry_warning("").unwrap(),
        "an empty entry never matches an image"
    );
    assert!(entry_warning("/path").unwrap().contains("has no host"));
    // Invalid entries are validation errors, not warnings.
    assert_eq!(entry_warning("%invalid%"), None);
}

#[test]
fn wildcard_entries_that_skip_a_label_count_are_warned_about() {
    let p = provider("x", &["*"]);
    let w = warnings(&p, None);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0.as_deref(), Some("matchImages[0]"));
    assert!(
        w[0].1.starts_with("\"*\" matches only hosts of one label"),
        "{}",
        w[0].1
    );
    let p = provider("x", &["gcr.io", "*", "*.*", "*.*.*.*"]);
    let w = warnings(&p, None);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0.as_deref(), Some("matchImages"));
    assert!(
        w[0].1.starts_with("the wildcard entries skip \"*.*.*\""),
        "{}",
        w[0].1
    );
    for ok in [
        &["*", "*.*"][..],
        &["*.*", "*.*.*"],
        &["*", "*.*", "*.*.*", "*.*.*.*"],
        &["*.*.*.*.*.*"],
    ] {
        assert!(warnings(&provider("x", ok), None).is_empty(), "{ok:?}");
    }
}

#[test]
fn zero_cache_duration_and_empty_name() {
    let mut p = provider("some-plugin", &["a.io"]);
    p.default_cache_duration = Some(0);
    let w = warnings(&p, None);
    assert_eq!(w[0].0.as_deref(), Some("defaultCacheDuration"));
    assert!(w[0].1.contains("exec'd on every pull"), "{}", w[0].1);
    p.name = "kubelet-keyring".into();
    assert!(warnings(&p, None)[0]
        .1
        .contains("kubelet-keyring always sends cacheDuration"));
    let mut p = provider("", &["a.io"]);
    p.args.clear();
    let w = warnings(&p, None);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0.as_deref(), Some("name"));
    assert!(w[0].1.starts_with("the name is empty"));
}

#[cfg(unix)]
#[test]
fn bin_dir_checks() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let exe = |name: &str, mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    exe("good", 0o755);
    exe("noexec", 0o644);
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    let bin = Some(dir.path());
    assert!(warnings(&provider("good", &["a.io"]), bin).is_empty());
    for (name, want) in [
        ("noexec", "is not executable"),
        ("adir", "is a directory"),
        ("missing", "cannot be used"),
    ] {
        let w = warnings(&provider(name, &["a.io"]), bin);
        assert_eq!(w.len(), 1, "{name}: {w:?}");
        assert_eq!(w[0].0.as_deref(), Some("name"));
        assert!(
            w[0].1.contains(want) && w[0].1.contains("the kubelet refuses to start"),
            "{}",
            w[0].1
        );
    }
    let w = warnings(&provider("x", &["a.io"]), Some(&dir.path().join("nope")));
    assert!(
        w[0].0.is_none() && w[0].1.contains("is not a directory"),
        "{w:?}"
    );
    // A provider under another name that is this program: its args are checked.
    std::os::unix::fs::symlink(dir.path().join("good"), dir.path().join("kubelet-keyring"))
        .unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("kubelet-keyring"),
        dir.path().join("ecr-credential-provider"),
    )
    .unwrap();
    let mut p = provider("ecr-credential-provider", &["a.io"]);
    p.args = vec!["get-creds".into()];
    // The link chain ends at "good", not at kubelet-keyring: not this program.
    assert!(warnings(&p, bin).is_empty());
    std::fs::remove_file(dir.path().join("kubelet-keyring")).unwrap();
    exe("kubelet-keyring", 0o755);
    let w = warnings(&p, bin);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0.as_deref(), Some("args"));
}

#[test]
fn args_go_to_the_callers_check_only_for_this_program() {
    let args = |name: &str, a: &[&str]| {
        let mut p = provider(name, &["a.io"]);
        p.args = a.iter().map(|s| s.to_string()).collect();
        warnings(&p, None)
    };
    assert!(args("kubelet-keyring", &["get-credentials"]).is_empty());
    let w = args("kubelet-keyring-ecr", &["nope"]);
    assert_eq!(
        w,
        [(
            Some("args".to_string()),
            "args rejected: [\"nope\"]".to_string()
        )]
    );
    // Other plugins' args are theirs.
    assert!(args("ecr-credential-provider", &["whatever"]).is_empty());
    // Without a check, nothing is said about args.
    let mut p = provider("kubelet-keyring", &["a.io"]);
    p.args = vec!["nope".into()];
    let options = Options::default();
    assert!(check(&[&p], &options).is_empty());
}
