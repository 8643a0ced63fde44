//! Black-box tests of `kubelet-keyring validate-config`: exit codes (0 valid, 1 invalid,
//! 2 usage or unreadable path), messages naming entry and field, warnings, `--json`,
//! directory mode, release and feature-gate selection, and that no env value is printed.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{write, Sandbox};

fn validate(sb: &Sandbox, args: &[&str]) -> Output {
    let mut all = vec!["validate-config"];
    all.extend_from_slice(args);
    sb.run(&all, "")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn file(sb: &Sandbox, name: &str, body: &str) -> PathBuf {
    let p = sb.tmp.path().join(name);
    write(&p, body);
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

const HEADER: &str = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n";

fn provider(name: &str, images: &str) -> String {
    format!(
        "- name: {name}\n  matchImages: {images}\n  defaultCacheDuration: 5m\n  \
         apiVersion: credentialprovider.kubelet.k8s.io/v1\n  args: [get-credentials]\n"
    )
}

#[test]
fn valid_config_exits_0_with_a_summary() {
    let sb = Sandbox::new();
    let f = file(
        &sb,
        "c.yaml",
        &format!(
            "{HEADER}providers:\n{}",
            provider("kubelet-keyring", "[\"*.gcr.io\", gcr.io]")
        ),
    );
    let out = validate(&sb, &[s(&f)]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}{}",
        stdout(&out),
        crate::common::stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        format!(
            "{}: valid for kubelet 1.35 (1 provider from 1 file), 0 warnings\n",
            f.display()
        )
    );
    assert_eq!(crate::common::stderr(&out), "");
}

#[test]
fn invalid_config_exits_1_naming_entry_and_field() {
    let sb = Sandbox::new();
    let f = file(
        &sb,
        "c.yaml",
        &format!(
            "{HEADER}providers:\n{}{}",
            provider("kubelet-keyring", "[gcr.io]"),
            provider("ecr", "[\"%invalid%\"]")
        ),
    );
    let out = validate(&sb, &[s(&f)]);
    assert_eq!(code(&out), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(r#"error: providers[1] (name "ecr"): providers.matchImages: Invalid value: "%invalid%": match image is invalid: parse "https://%invalid%": invalid URL escape "%in""#),
        "{text}"
    );
    assert!(
        text.ends_with(
            ": INVALID for kubelet 1.35 (2 providers from 1 file): 1 error, 0 warnings\n"
        ),
        "{text}"
    );
    let err = crate::common::stderr(&out);
    assert!(
        err.starts_with("kubelet-keyring: error: ") && err.contains("(1 error)"),
        "{err}"
    );
}

#[test]
fn every_error_is_reported() {
    let sb = Sandbox::new();
    let f = file(
        &sb,
        "c.yaml",
        &format!(
            "{HEADER}providers:\n- name: a/b\n  matchImages: []\n  apiVersion: v9\n  unknownField: 1\n- name: \"..\"\n  matchImages: [x.io]\n  defaultCacheDuration: \"-5s\"\n  apiVersion: \"\"\n"
        ),
    );
    let out = validate(&sb, &[s(&f)]);
    assert_eq!(code(&out), Some(1));
    let text = stdout(&out);
    for want in [
        r#"error: providers[0] (name "a/b"): strict decoding error: unknown field "providers[0].unknownField""#,
        r#"error: providers[0] (name "a/b"): providers.name: Invalid value: "a/b": provider name cannot contain '/'"#,
        r#"error: providers[0] (name "a/b"): providers.apiVersion: Unsupported value: "v9": supported values: "credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1alpha1", "credentialprovider.kubelet.k8s.io/v1beta1""#,
        r#"error: providers[0] (name "a/b"): providers.matchImages: Required value: at least 1 item in matchImages is required"#,
        r#"error: providers[0] (name "a/b"): providers.defaultCacheDuration: Required value"#,
        r#"error: providers[1] (name ".."): providers.name: Invalid value: "..": provider name cannot be '..'"#,
        r#"error: providers[1] (name ".."): providers.apiVersion: Required value"#,
        r#"error: providers[1] (name ".."): providers.defaultCacheDuration: Invalid value: "-5s": defaultCacheDuration must be greater than or equal to 0"#,
    ] {
        assert!(text.contains(want), "missing {want}\nin:\n{text}");
    }
    assert!(text.contains("8 errors"), "{text}");
}

#[test]
fn decoding_errors_of_the_kubelet() {
    let sb = Sandbox::new();
    for (body, want) in [
        ("apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: WrongKind\nproviders: []\n", r#"error: no kind "WrongKind" is registered for version "kubelet.config.k8s.io/v1alpha1""#),
        ("apiVersion: foobar/v1alpha1\nkind: CredentialProviderConfig\nproviders: []\n", r#"error: no kind "CredentialProviderConfig" is registered for version "foobar/v1alpha1""#),
        ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\nproviders:\n- name: x\n  tokenAttributes: {}\n", r#"error: providers[0] (name "x"): strict decoding error: unknown field "providers[0].tokenAttributes""#),
        ("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- name: x\n  defaultCacheDuration: 0\n", r#"error: providers[0] (name "x"): providers[0].defaultCacheDuration: json: cannot unmarshal number into Go value of type string; quote it: "0""#),
        ("providers: [\n", "error: yaml: "),
    ] {
        let f = file(&sb, "c.yaml", body);
        let out = validate(&sb, &[s(&f)]);
        assert_eq!(code(&out), Some(1), "{body}");
        assert!(stdout(&out).contains(want), "{body}\nwant {want}\ngot {}", stdout(&out));
    }
}

#[test]
fn warnings_alone_exit_0() {
    let sb = Sandbox::new();
    let f = file(
        &sb,
        "c.yaml",
        &format!(
            "{HEADER}providers:\n{}- name: other\n  matchImages: [\"https://gcr.io\", \"*\", localhost]\n  defaultCacheDuration: \"0\"\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n",
            provider("kubelet-keyring", "[\"*.docker.io\", index.docker.io]").replace("[get-credentials]", "[get-credential]")
        ),
    );
    let out = validate(&sb, &[s(&f)]);
    assert_eq!(code(&out), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    for want in [
        r#"warning: providers[0] (name "kubelet-keyring"): matchImages[0]: "*.docker.io" never matches Docker Hub images"#,
        r#"warning: providers[0] (name "kubelet-keyring"): matchImages[1]: "index.docker.io" never matches Docker Hub images"#,
        r#"warning: providers[0] (name "kubelet-keyring"): args: args name an unknown subcommand "get-credential" (did you mean "get-credentials"?)"#,
        r#"warning: providers[1] (name "other"): matchImages[0]: "https://gcr.io" never matches: the scheme is not stripped"#,
        r#"warning: providers[1] (name "other"): matchImages[1]: "*" matches only hosts of one label"#,
        r#"warning: providers[1] (name "other"): matchImages[2]: "localhost" has no port"#,
        r#"warning: providers[1] (name "other"): defaultCacheDuration: "0" means responses without cacheDuration are not cached"#,
    ] {
        assert!(text.contains(want), "missing {want}\nin:\n{text}");
    }
    assert!(
        text.ends_with("valid for kubelet 1.35 (2 providers from 1 file), 7 warnings\n"),
        "{text}"
    );
}

#[test]
fn json_report_names_entry_field_and_message_of_each_finding() {
    let sb = Sandbox::new();
    let f = file(
        &sb,
        "c.json",
        r#"{"apiVersion":"kubelet.config.k8s.io/v1","kind":"CredentialProviderConfig","providers":[
            {"name":"ecr","matchImages":["%invalid%","*.docker.io"],"defaultCacheDuration":"1m",
             "apiVersion":"credentialprovider.kubelet.k8s.io/v1"}]}"#,
    );
    let out = validate(&sb, &["--json", s(&f)]);
    assert_eq!(code(&out), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(json["valid"], false);
    assert_eq!(json["kubeletVersion"], "1.35");
    assert_eq!(json["files"][0], s(&f));
    assert_eq!(json["providers"][0]["name"], "ecr");
    let e = &json["errors"][0];
    assert_eq!(
        (
            e["provider"].as_u64(),
            e["name"].as_str(),
            e["field"].as_str()
        ),
        (Some(0), Some("ecr"), Some("providers.matchImages"))
    );
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with(r#"Invalid value: "%invalid%""#));
    assert!(e["text"]
        .as_str()
        .unwrap()
        .starts_with(r#"providers[0] (name "ecr"): providers.matchImages: Invalid value"#));
    assert_eq!(json["warnings"][0]["field"], "matchImages[1]");
    assert!(json["summary"].as_str().unwrap().contains("INVALID"));

    let ok = file(
        &sb,
        "ok.yaml",
        &format!("{HEADER}providers:\n{}", provider("x", "[a.io]")),
    );
    let out = validate(&sb, &["--json", s(&ok)]);
    assert_eq!(code(&out), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["valid"], true);
    assert_eq!(json["errors"].as_array().map(Vec::len), Some(0));
}

#[test]
fn usage_errors_and_unreadable_paths_exit_2() {
    let sb = Sandbox::new();
    let ok = file(
        &sb,
        "ok.yaml",
        &format!("{HEADER}providers:\n{}", provider("x", "[a.io]")),
    );
    let missing = sb.tmp.path().join("missing.yaml");
    for args in [
        vec![s(&missing)],
        vec![],
        vec!["--kubelet-version", "1.19", s(&ok)],
        vec!["--kubelet-version", "banana", s(&ok)],
        vec!["--feature-gates", "Foo", s(&ok)],
        vec!["--feature-gates", "Foo=maybe", s(&ok)],
    ] {
        let out = validate(&sb, &args);
        assert_eq!(
            code(&out),
            Some(2),
            "{args:?}: {}{}",
            stdout(&out),
            crate::common::stderr(&out)
        );
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    let out = validate(&sb, &[s(&missing)]);
    assert!(
        crate::common::stderr(&out).contains("unable to access path"),
        "{}",
        crate::common::stderr(&out)
    );
}

#[test]
fn a_directory_is_merged_in_name_order_and_its_errors_name_the_file() {
    let sb = Sandbox::new();
    let d = sb.tmp.path().join("conf.d");
    write(
        &d.join("20-b.yaml"),
        &format!("{HEADER}providers:\n{}", provider("b", "[b.io]")),
    );
    write(
        &d.join("10-a.json"),
        r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"CredentialProviderConfig","providers":[{"name":"a","matchImages":["a.io"],"defaultCacheDuration":"1m","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1"}]}"#,
    );
    write(&d.join("README.txt"), "ignored: [");
    let out = validate(&sb, &["--json", s(&d)]);
    assert_eq!(code(&out), Some(0), "{}", stdout(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(json["files"].as_array().map(Vec::len), Some(2));

    // A name used in two files.
    write(
        &d.join("30-c.yml"),
        &format!("{HEADER}providers:\n{}", provider("a", "[c.io]")),
    );
    let out = validate(&sb, &[s(&d)]);
    assert_eq!(code(&out), Some(1));
    let want = format!(
        r#"error: {}: providers[0] (name "a"): duplicate provider name "a" found in configuration file(s) (first used by providers[0] in {})"#,
        d.join("30-c.yml").display(),
        d.join("10-a.json").display()
    );
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));

    // Directories need kubelet 1.34+.
    let out = validate(&sb, &["--kubelet-version", "1.33", s(&d)]);
    assert_eq!(code(&out), Some(1));
    assert!(
        stdout(&out).contains("kubelet 1.33 reads a single file"),
        "{}",
        stdout(&out)
    );

    // No qualifying file.
    let empty = sb.tmp.path().join("empty.d");
    write(&empty.join("notes.md"), "");
    write(&empty.join("x.YAML"), "");
    let out = validate(&sb, &[s(&empty)]);
    assert_eq!(code(&out), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "error: no configuration files found in directory \"{}\"",
            empty.display()
        )),
        "{text}"
    );
    assert!(text.contains("x.YAML is not read"), "{text}");
}

#[test]
fn release_and_feature_gates_pick_the_behaviour() {
    let sb = Sandbox::new();
    let token = "  tokenAttributes:\n    serviceAccountTokenAudience: api://AzureADTokenExchange\n    requireServiceAccount: false\n";
    let with_cache_type = file(
        &sb,
        "a.yaml",
        &format!(
            "{HEADER}providers:\n{}{token}    cacheType: ServiceAccount\n",
            provider("x", "[a.io]")
        ),
    );
    let without = file(
        &sb,
        "b.yaml",
        &format!("{HEADER}providers:\n{}{token}", provider("x", "[a.io]")),
    );
    let gate = "KubeletServiceAccountTokenForCredentialProviders";
    let run = |args: &[&str]| {
        let out = validate(&sb, args);
        (code(&out), stdout(&out))
    };
    // Newest: gate on, cacheType required.
    assert_eq!(run(&[s(&with_cache_type)]).0, Some(0));
    let (c, text) = run(&[s(&without)]);
    assert_eq!(c, Some(1));
    assert!(
        text.contains("providers.tokenAttributes.cacheType: Required value"),
        "{text}"
    );
    // Gate switched off.
    let (c, text) = run(&[
        "--feature-gates",
        &format!("{gate}=false"),
        s(&with_cache_type),
    ]);
    assert_eq!(c, Some(1));
    assert!(text.contains("Forbidden: tokenAttributes is not supported when KubeletServiceAccountTokenForCredentialProviders feature gate is disabled"), "{text}");
    // 1.33: gate off by default, no cacheType field.
    let (c, text) = run(&["--kubelet-version", "1.33", s(&without)]);
    assert_eq!(c, Some(1));
    assert!(text.contains("feature gate is disabled"), "{text}");
    assert_eq!(
        run(&[
            "--kubelet-version",
            "v1.33.4",
            "--feature-gates",
            &format!("{gate}=true"),
            s(&without)
        ])
        .0,
        Some(0)
    );
    let (c, text) = run(&[
        "--kubelet-version",
        "1.33",
        "--feature-gates",
        &format!("{gate}=true"),
        s(&with_cache_type),
    ]);
    assert_eq!(c, Some(1));
    assert!(
        text.contains(r#"unknown field "providers[0].tokenAttributes.cacheType""#),
        "{text}"
    );
    // 1.25: no v1 config at all.
    let (c, text) = run(&["--kubelet-version", "1.25", s(&with_cache_type)]);
    assert_eq!(c, Some(1));
    assert!(text.contains("v1 needs kubelet 1.26+"), "{text}");
    // 1.22: plugins are behind a gate that is off.
    let alpha = file(
        &sb,
        "c.yaml",
        "apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: CredentialProviderConfig\nproviders:\n- name: x\n  matchImages: [a.io]\n  defaultCacheDuration: 1m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1alpha1\n",
    );
    let (c, text) = run(&["--kubelet-version", "1.22", s(&alpha)]);
    assert_eq!(c, Some(0));
    assert!(
        text.contains("warning: kubelet 1.22 ignores this config"),
        "{text}"
    );
    assert_eq!(
        run(&[
            "--kubelet-version",
            "1.22",
            "--feature-gates",
            "KubeletCredentialProviders=true",
            s(&alpha)
        ]),
        (
            Some(0),
            format!(
                "{}: valid for kubelet 1.22 (1 provider from 1 file), 0 warnings\n",
                alpha.display()
            )
        )
    );
}

#[cfg(unix)]
#[test]
fn a_provider_missing_from_the_bin_dir_is_a_warning_naming_its_path() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let bin = sb.tmp.path().join("bin");
    write(&bin.join("present"), "#!/bin/sh\n");
    std::fs::set_permissions(bin.join("present"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let f = file(
        &sb,
        "c.yaml",
        &format!(
            "{HEADER}providers:\n{}{}",
            provider("present", "[a.io]"),
            provider("absent", "[b.io]")
        ),
    );
    let out = validate(&sb, &["--bin-dir", s(&bin), s(&f)]);
    assert_eq!(code(&out), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            r#"warning: providers[1] (name "absent"): name: {} cannot be used"#,
            bin.join("absent").display()
        )),
        "{text}"
    );
    assert!(!text.contains("present"), "{text}");
}

#[test]
fn env_values_are_never_printed() {
    let sb = Sandbox::new();
    let f = file(
        &sb,
        "c.yaml",
        &format!(
            "{HEADER}providers:\n{}  env:\n  - name: AWS_SECRET_ACCESS_KEY\n    value: 8675309123\n  - name: TOKEN\n    value: [s3cr3t-token]\n  - name: FLAG\n    value: off\n",
            provider("x", "[a.io]")
        ),
    );
    for args in [vec![s(&f)], vec!["--json", s(&f)]] {
        let out = validate(&sb, &args);
        assert_eq!(code(&out), Some(1));
        let all = format!("{}{}", stdout(&out), crate::common::stderr(&out));
        assert!(
            all.contains("providers[0].env[0].value") && all.contains("providers[0].env[1].value"),
            "{all}"
        );
        for secret in ["8675309123", "s3cr3t-token", "\"off\""] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
    }
}

/// Every shipped kubelet config that names an upstream plugin: validate-config says, per
/// provider, what kubelet-keyring does under that name (notes for honoured and warned args
/// and env, the differences), and refuses nothing a public node image passes.
#[test]
fn validate_config_knows_the_swap_for_every_shipped_config() {
    let sb = Sandbox::new();
    let files = crate::common::upstream::config_files();
    let upstream = [
        "ecr-credential-provider",
        "auth-provider-gcp",
        "auth-provider-gcp.exe",
        "gcr-credential-provider",
        "gcp-credential-provider",
        "acr-credential-provider",
        "acr-credential-provider.exe",
    ];
    let mut seen = 0;
    for f in files {
        let out = validate(&sb, &["--json", s(&f)]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", f.display(), stdout(&out)));
        if report["valid"] != true {
            continue; // the negative cases: the kubelet never runs a plugin from them
        }
        for w in report["warnings"].as_array().unwrap() {
            let text = w["text"].as_str().unwrap();
            assert!(!text.contains("refuses"), "{}: {text}", f.display());
        }
        let notes = report["notes"].as_array().unwrap();
        for p in report["providers"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            if !upstream.contains(&name) {
                continue;
            }
            seen += 1;
            let differs = notes.iter().any(|n| {
                n["name"] == name && n["message"].as_str().unwrap().contains(" differs: ")
            });
            let runs = notes.iter().any(|n| {
                n["name"] == name
                    && n["message"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("kubelet-keyring as {name} "))
            });
            assert!(differs && runs, "{}: {name}: {notes:?}", f.display());
        }
    }
    assert!(seen >= 30, "{seen} upstream entries");
}

/// The swap report names what it refuses: a flag upstream does not have, and a variable
/// whose fate is refused.
#[test]
fn validate_config_warns_about_args_the_swap_refuses() {
    let sb = Sandbox::new();
    let p = file(
        &sb,
        "c.yaml",
        &format!(
            "{HEADER}providers:\n- name: auth-provider-gcp\n  matchImages: [\"gcr.io\"]\n  \
             defaultCacheDuration: 1m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  \
             args: [get-credentials, --bogus=x, --v=3]\n"
        ),
    );
    let out = validate(&sb, &[s(&p)]);
    let text = stdout(&out);
    assert_eq!(code(&out), Some(0), "{text}");
    assert!(
        text.contains("warning: providers[0] (name \"auth-provider-gcp\"): args: kubelet-keyring as auth-provider-gcp (backend gcp) refuses these args, so every pull through this entry would fail: unknown flag --bogus"),
        "{text}"
    );
}
