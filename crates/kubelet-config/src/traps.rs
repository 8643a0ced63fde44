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
mod tests;
