//! Warnings: configs the kubelet accepts that do not do what they seem to (spec 4.1, 6).
//!
//! None of these stop the kubelet; each names the entry and field and says what happens
//! instead. Matching facts they rely on: images arrive normalized (`nginx` is
//! `docker.io/library/nginx`), a pattern's port must equal the image's, each `*` stands for
//! exactly one DNS label, paths are plain prefixes, nothing is case-folded, and a scheme is
//! not stripped.

use std::collections::BTreeSet;
use std::path::Path;

use keyring_api::pattern::{parse_schemeless, validate_match_image, Target};

use crate::decode::Provider;
use crate::{go_quote, Severity};

/// One warning (or, from the [`EntryCheck`], a note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// [`Severity::Warning`], or [`Severity::Note`] for what the entry check reports.
    pub severity: Severity,
    /// Index of the provider in the list checked.
    pub provider: Option<usize>,
    /// The field (`matchImages[2]`), relative to the provider.
    pub field: Option<String>,
    /// What happens.
    pub message: String,
}

/// The credential provider's own name: providers with this name (or starting with it, or whose
/// executable in the bin dir resolves to it) run kubelet-keyring ([`Entry::runs_self`]).
pub const SELF_NAME: &str = "kubelet-keyring";

/// A provider entry as the [`EntryCheck`] sees it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// `name`, as in the config.
    pub name: &'a str,
    /// Whether it runs kubelet-keyring under its own name (the name starts with
    /// [`SELF_NAME`], or the executable in the bin dir resolves to it).
    pub runs_self: bool,
    /// `args`, without the program name.
    pub args: &'a [String],
    /// The names of `env` (values may be secrets and are not handed out).
    pub env: Vec<&'a str>,
    /// `env` with its values, each a [`Secret`](keyring_api::Secret): a check that reads one
    /// (a config file's path) says so by exposing it.
    pub env_values: &'a [crate::decode::EnvVar],
    /// `matchImages` (empty when it did not decode).
    pub match_images: &'a [String],
    /// `tokenAttributes`, when present and decoded.
    pub token_attributes: Option<&'a crate::decode::TokenAttributes>,
}

/// What kubelet-keyring would do with an entry that runs it, under its own name or under the
/// name of an upstream plugin it answers for: which `args` and `env` it honours, warns about
/// or refuses, as warnings and notes ([`Severity::Warning`] / [`Severity::Note`], their
/// `provider` left `None`: [`check`] fills it in); nothing for an entry it has no part in. The program's CLI and the upstream plugins' tables live in
/// the binary and the backends, which this crate must not depend on, so the caller supplies
/// the check.
pub type EntryCheck<'a> = dyn Fn(&Entry<'_>) -> Vec<Warning> + 'a;

/// What the trap checks need from outside the config.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// The kubelet's `--image-credential-provider-bin-dir`: each provider's executable is
    /// looked up there (the one filesystem access of this crate, and only when given).
    pub bin_dir: Option<&'a Path>,
    /// Checks the `args` and `env` of entries that run kubelet-keyring; `None` skips it.
    pub entry_check: Option<&'a EntryCheck<'a>>,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("bin_dir", &self.bin_dir)
            .field("entry_check", &self.entry_check.map(|_| "<fn>"))
            .finish()
    }
}

/// Checks every provider.
pub fn check(providers: &[&Provider], options: &Options<'_>) -> Vec<Warning> {
    let mut out = Vec::new();
    let bin_dir = match options.bin_dir {
        Some(dir) if !dir.is_dir() => {
            out.push(Warning {
                severity: Severity::Warning,
                provider: None,
                field: None,
                message: format!(
                    "--bin-dir {} is not a directory: the kubelet refuses to start \
                     (plugin binary directory ... did not exist)",
                    dir.display()
                ),
            });
            None
        }
        other => other,
    };
    for (i, p) in providers.iter().enumerate() {
        let mut warn = |field: &str, message: String| {
            out.push(Warning {
                severity: Severity::Warning,
                provider: Some(i),
                field: (!field.is_empty()).then(|| field.to_string()),
                message,
            })
        };
        name_and_binary(p, bin_dir, &mut warn);
        if p.decoded("defaultCacheDuration") && p.default_cache_duration == Some(0) {
            let who = if is_self(p, bin_dir) {
                "kubelet-keyring always sends cacheDuration, so this only matters if that \
                 changes"
            } else {
                "a plugin that sends no cacheDuration is exec'd on every pull"
            };
            warn(
                "defaultCacheDuration",
                format!("\"0\" means responses without cacheDuration are not cached: {who}"),
            );
        }
        if p.decoded("matchImages") {
            for (j, entry) in p.match_images.iter().enumerate() {
                if let Some(message) = match_image_trap(entry, &p.match_images) {
                    warn(&format!("matchImages[{j}]"), message);
                }
            }
            glob_coverage(&p.match_images, &mut warn);
        }
        if let Some(entry_check) = options.entry_check {
            if p.decoded("args") && p.decoded("env") && p.decoded("name") {
                let entry = Entry {
                    name: &p.name,
                    runs_self: is_self(p, bin_dir),
                    args: &p.args,
                    env: p.env.iter().map(|e| e.name.as_str()).collect(),
                    env_values: &p.env,
                    match_images: if p.decoded("matchImages") {
                        &p.match_images
                    } else {
                        &[]
                    },
                    token_attributes: p
                        .token_attributes
                        .as_ref()
                        .filter(|_| p.decoded("tokenAttributes")),
                };
                for w in entry_check(&entry) {
                    out.push(Warning {
                        provider: Some(i),
                        ..w
                    });
                }
            }
        }
    }
    out
}

fn name_and_binary(p: &Provider, bin_dir: Option<&Path>, warn: &mut impl FnMut(&str, String)) {
    if !p.decoded("name") {
        return;
    }
    if p.name.is_empty() {
        warn(
            "name",
            "the name is empty: validation lets it through, but the kubelet then looks for the \
             executable <bin-dir>/\"\", which is the directory itself, and refuses to start"
                .into(),
        );
        return;
    }
    let Some(dir) = bin_dir else { return };
    if p.name.contains('/') || p.name == "." || p.name == ".." {
        return; // already a validation error
    }
    let path = dir.join(&p.name);
    let problem = match std::fs::metadata(&path) {
        Err(e) => Some(format!("cannot be used: {e}")),
        Ok(m) if m.is_dir() => Some("is a directory".to_string()),
        Ok(m) if !is_executable(&m) => Some("is not executable (no x bit)".to_string()),
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        warn(
            "name",
            format!(
                "{} {problem}: the kubelet refuses to start (plugin binary executable ... did not exist)",
                path.display()
            ),
        );
    }
}

#[cfg(unix)]
fn is_executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    true
}

/// Whether the provider runs this program.
fn is_self(p: &Provider, bin_dir: Option<&Path>) -> bool {
    p.name.starts_with(SELF_NAME)
        || bin_dir
            .filter(|_| !p.name.is_empty())
            .and_then(|d| std::fs::canonicalize(d.join(&p.name)).ok())
            .is_some_and(|target| target.file_name().is_some_and(|n| n == SELF_NAME))
}

/// Host and port of a parsed pattern host (`[::1]:5000` gives `::1` and `5000`).
fn host_port(host: &str) -> (&str, &str) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            return (h, after.strip_prefix(':').unwrap_or(""));
        }
        return (host, "");
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p),
        _ => (host, ""),
    }
}

fn is_ip(host: &str) -> bool {
    host.contains(':')
        || (host.split('.').count() == 4
            && host
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '[', '\\'])
}

/// The first trap one `matchImages` entry falls into, if any. `all` is the provider's list,
/// to see whether a port-less host also appears with a port.
fn match_image_trap(entry: &str, all: &[String]) -> Option<String> {
    if validate_match_image(entry).is_err() {
        return None; // a validation error already
    }
    let q = go_quote(entry);
    if entry.is_empty() {
        return Some("an empty entry never matches an image".into());
    }
    if let Some((scheme, rest)) = entry.split_once("://") {
        return Some(format!(
            "{q} never matches: the scheme is not stripped, so the host is {}; write {}",
            go_quote(&format!("{scheme}:")),
            go_quote(rest)
        ));
    }
    let parsed = parse_schemeless(entry.as_bytes()).ok()?;
    let host_text = String::from_utf8_lossy(&parsed.host).into_owned();
    let path = String::from_utf8_lossy(&parsed.path).into_owned();
    let (host, port) = host_port(&host_text);
    let hub = ["index.docker.io/x", "registry-1.docker.io/x"]
        .iter()
        .any(|t| Target::new(t).host_matched_by(entry.as_bytes()));
    if hub
        && host.to_ascii_lowercase().contains("docker")
        && !Target::new("docker.io/x").host_matched_by(entry.as_bytes())
    {
        return Some(format!(
            "{q} never matches Docker Hub images: the kubelet matches them as docker.io/... \
             (nginx is docker.io/library/nginx); use \"docker.io\""
        ));
    }
    if host.is_empty() {
        return Some(format!("{q} has no host, so it never matches an image"));
    }
    if entry.contains(['?', '#']) {
        return Some(format!(
            "{q}: everything from the first '?' or '#' on is ignored (it parses as a URL query \
             or fragment)"
        ));
    }
    if has_glob(&path) {
        return Some(format!(
            "{q} never matches: the path {} is a plain prefix, not a glob, and no image path \
             starts with it; drop the path or write a literal prefix (registry.io/team)",
            go_quote(&path)
        ));
    }
    if path.contains([':', '@']) {
        return Some(format!(
            "{q} never matches: images are matched without their tag or digest"
        ));
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(format!(
            "{q} never matches: its path has upper-case letters and image paths are always \
             lower-case"
        ));
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(format!(
            "{q}: matching is case-sensitive, so this matches only images that spell the host \
             with the same capitals (write it in lower case, as images normally do)"
        ));
    }
    if port.is_empty() && (host == "localhost" || is_ip(host)) {
        let with_port = all.iter().any(|other| {
            parse_schemeless(other.as_bytes()).is_ok_and(|o| {
                let o = String::from_utf8_lossy(&o.host).into_owned();
                let (h, p) = host_port(&o);
                h == host && !p.is_empty()
            })
        });
        if !with_port {
            let example = if host.contains(':') {
                format!("[{host}]:5000")
            } else {
                format!("{host}:5000")
            };
            return Some(format!(
                "{q} has no port, so it never matches images that have one ({example}/app): \
                 ports must be equal; add {} as well",
                go_quote(&example)
            ));
        }
    }
    if port.is_empty() && !host.contains('.') && host != "localhost" && !has_glob(host) {
        return Some(format!(
            "{q} never matches: an image whose first part has no dot and no port (and is not \
             localhost) is a Docker Hub image ({host}/app is docker.io/{host}/app); write the \
             registry as images name it, with its port ({host}:5000) or a dotted name"
        ));
    }
    None
}

/// `*` stands for exactly one label: `*` alone matches only single-label hosts, and a list
/// `*`, `*.*`, `*.*.*.*` misses three-label hosts.
fn glob_coverage(entries: &[String], warn: &mut impl FnMut(&str, String)) {
    let mut counts = BTreeSet::new();
    let mut star_at = None;
    for (j, e) in entries.iter().enumerate() {
        let Ok(parsed) = parse_schemeless(e.as_bytes()) else {
            continue;
        };
        let host = String::from_utf8_lossy(&parsed.host).into_owned();
        if !parsed.path.is_empty() || host.contains(':') || host.is_empty() {
            continue;
        }
        if host.split('.').all(|l| l == "*") {
            let n = host.split('.').count();
            counts.insert(n);
            if n == 1 {
                star_at.get_or_insert(j);
            }
        }
    }
    if let (Some(j), false) = (star_at, counts.contains(&2)) {
        warn(
            &format!("matchImages[{j}]"),
            "\"*\" matches only hosts of one label, without a dot (localhost/app); each * \
             stands for exactly one label, so matching every registry takes \"*\", \"*.*\", \
             \"*.*.*\", ... one entry per label count"
                .into(),
        );
        return;
    }
    let (Some(&min), Some(&max)) = (counts.first(), counts.last()) else {
        return;
    };
    let missing: Vec<String> = (min..=max)
        .filter(|n| !counts.contains(n))
        .map(|n| go_quote(&vec!["*"; n].join(".")))
        .collect();
    if !missing.is_empty() {
        warn(
            "matchImages",
            format!(
                "the wildcard entries skip {}: each * stands for exactly one label, so hosts \
                 with that many labels never match",
                missing.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
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
}
