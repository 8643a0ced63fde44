//! The kubelet's one matching algorithm (spec sections 4.1 to 4.3), used for `matchImages`
//! entries, response `auth` keys and docker-config keys alike.
//!
//! * [`urls_match`] is `URLsMatchStr(pattern, target)`: both sides parsed as
//!   `"https://" + s` with Go's URL rules; equal ports (empty equals empty only); the same
//!   number of DNS labels; each pattern label a case-sensitive `filepath.Match` glob of the
//!   target label; the pattern path a plain byte prefix of the target path. A parse error or
//!   a malformed glob is "no match".
//! * [`keyring_key`] is what `BasicDockerKeyring.Add` makes of an `auth` key: scheme,
//!   user-info, query and fragment dropped, a leading `/v1/` or `/v2/` path reduced to `/`.
//! * [`Keyring::lookup`] returns every credential whose key matches, most specific key first
//!   (keys sorted in descending byte order), and falls back to the `index.docker.io` key for
//!   Docker Hub images when nothing else matched.

use crate::goglob;
use crate::gourl::{self, Parsed, UrlError};

/// Parses `s` as the kubelet's `ParseSchemelessURL` does (`url.Parse("https://" + s)`).
pub fn parse_schemeless(s: &[u8]) -> Result<Parsed, UrlError> {
    let mut full = Vec::with_capacity(s.len() + 2);
    full.extend_from_slice(b"//");
    full.extend_from_slice(s);
    gourl::parse_after_scheme(&full)
}

/// Why a `matchImages` entry is refused: Go's `*url.Error` for `url.Parse("https://" + entry)`,
/// displayed as Go prints it (`parse "https://…": …`), which the kubelet's config validation
/// quotes. Not an [`InvalidSetting`](crate::InvalidSetting): the same check serves the
/// kubelet's `matchImages` and backends' mirror lists, and each caller names its own setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse {}: {reason}", gourl::go_quote(url.as_bytes()))]
pub struct MatchImageError {
    /// The URL Go names: `"https://" + entry`, without the `#fragment` unless the fragment is
    /// what failed.
    pub url: String,
    /// What Go's parser refused.
    pub reason: UrlError,
}

/// Checks a `matchImages` entry the way kubelet config validation does: it must parse as
/// `"https://" + entry`.
pub fn validate_match_image(entry: &str) -> Result<(), MatchImageError> {
    let Err(reason) = parse_schemeless(entry.as_bytes()) else {
        return Ok(());
    };
    // Go's url.Error names the URL without its #fragment, unless the fragment is what failed.
    let url = format!("https://{entry}");
    let before_fragment = url.split('#').next().unwrap_or(&url);
    let named = if before_fragment.len() < url.len()
        && parse_schemeless(&entry.as_bytes()[..before_fragment.len() - "https://".len()]).is_ok()
    {
        &url
    } else {
        before_fragment
    };
    Err(MatchImageError {
        url: named.to_string(),
        reason,
    })
}

/// Go's `net.SplitHostPort`, falling back to (whole host, "") on error as the kubelet does.
fn split_host_port(hostport: &[u8]) -> (&[u8], &[u8]) {
    split_host_port_strict(hostport).unwrap_or((hostport, b""))
}

fn split_host_port_strict(hp: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = hp.iter().rposition(|&b| b == b':')?;
    let (host, j, k);
    if hp.first() == Some(&b'[') {
        let end = hp.iter().position(|&b| b == b']')?;
        if end + 1 != i {
            return None; // missing port, or too many colons
        }
        host = &hp[1..end];
        (j, k) = (1, end + 1);
    } else {
        host = &hp[..i];
        if host.contains(&b':') {
            return None; // too many colons
        }
        (j, k) = (0, 0);
    }
    if hp[j..].contains(&b'[') || hp[k..].contains(&b']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

/// `URLsMatch` on already parsed URLs.
fn parsed_match(glob: &Parsed, target: &Parsed) -> bool {
    let (glob_host, glob_port) = split_host_port(&glob.host);
    let (target_host, target_port) = split_host_port(&target.host);
    if glob_port != target_port {
        return false;
    }
    if glob_host.split(|&b| b == b'.').count() != target_host.split(|&b| b == b'.').count() {
        return false;
    }
    if !target.path.starts_with(&glob.path) {
        return false;
    }
    glob_host
        .split(|&b| b == b'.')
        .zip(target_host.split(|&b| b == b'.'))
        .all(|(g, t)| goglob::matches(g, t) == Ok(true))
}

/// The kubelet's `URLsMatchStr(pattern, target)`; errors count as no match.
pub fn urls_match(pattern: &str, target: &str) -> bool {
    urls_match_bytes(pattern.as_bytes(), target.as_bytes())
}

fn urls_match_bytes(pattern: &[u8], target: &[u8]) -> bool {
    match (parse_schemeless(pattern), parse_schemeless(target)) {
        (Ok(g), Ok(t)) => parsed_match(&g, &t),
        _ => false,
    }
}

/// A target (normalized image) parsed once, for matching against many patterns.
#[derive(Debug, Clone)]
pub struct Target {
    text: String,
    parsed: Option<Parsed>,
}

impl Target {
    /// Parses a normalized image name (or any match target).
    pub fn new(target: &str) -> Self {
        Target {
            text: target.to_string(),
            parsed: parse_schemeless(target.as_bytes()).ok(),
        }
    }

    /// The target text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `URLsMatchStr(pattern, self)`.
    pub fn matched_by(&self, pattern: &str) -> bool {
        self.matched_by_bytes(pattern.as_bytes())
    }

    fn matched_by_bytes(&self, pattern: &[u8]) -> bool {
        match (&self.parsed, parse_schemeless(pattern)) {
            (Some(t), Ok(g)) => parsed_match(&g, t),
            _ => false,
        }
    }

    /// True when `pattern`'s host and port match this target's, whatever the paths: the
    /// pattern could answer for some image of this target's registry.
    pub fn host_matched_by(&self, pattern: &[u8]) -> bool {
        match (&self.parsed, parse_schemeless(pattern)) {
            (Some(t), Ok(mut g)) => {
                g.path.clear();
                parsed_match(&g, t)
            }
            _ => false,
        }
    }
}

/// The kubelet's `isDefaultRegistryMatch(image)`: does `image` live on Docker Hub?
pub fn is_default_registry_match(image: &str) -> bool {
    let (first, rest) = match image.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (image, None),
    };
    if first.is_empty() {
        return false;
    }
    if rest.is_none() || first == "docker.io" || first == "index.docker.io" {
        return true;
    }
    !first.contains(['.', ':'])
}

/// What `BasicDockerKeyring.Add` makes of an `auth` key, or the URL error that makes the
/// kubelet skip the entry. The key is bytes: unescaping may produce non-UTF-8.
pub fn keyring_key(loc: &str) -> Result<Vec<u8>, UrlError> {
    // Only a literal, lower-case "https://" or "http://" prefix is kept as a scheme; anything
    // else gets "https://" in front, so `oci://x` becomes host `oci:` with path `//x`.
    let parsed = match loc
        .strip_prefix("https:")
        .or_else(|| loc.strip_prefix("http:"))
    {
        Some(rest) if rest.starts_with("//") => gourl::parse_after_scheme(rest.as_bytes())?,
        _ => parse_schemeless(loc.as_bytes())?,
    };
    let mut path: &[u8] = &parsed.path;
    if path.starts_with(b"/v1/") || path.starts_with(b"/v2/") {
        path = &path[3..];
    }
    let mut key = parsed.host;
    if !path.is_empty() && path != b"/" {
        key.extend_from_slice(path);
    }
    Ok(key)
}

/// The host of the kubelet's default-registry fallback key.
pub const DEFAULT_REGISTRY_KEY: &[u8] = b"index.docker.io";

/// One entry of a keyring: its normalized key, and the caller's value (for example the raw
/// `auth` key and credential).
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// The keyring key ([`keyring_key`]).
    pub key: Vec<u8>,
    /// The caller's value.
    pub value: T,
    /// The key parsed as a pattern, once: a lookup matches every key, and a docker config
    /// can hold thousands. `None` when the key does not parse (it then never matches).
    parsed: Option<Parsed>,
}

/// The kubelet's `BasicDockerKeyring`: entries indexed by normalized key.
#[derive(Debug, Clone)]
pub struct Keyring<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for Keyring<T> {
    fn default() -> Self {
        Keyring {
            entries: Vec::new(),
        }
    }
}

/// Why a lookup returned what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The key matched the image directly.
    Direct,
    /// Nothing matched directly; the `index.docker.io` key serves a Docker Hub image.
    DockerHubFallback,
}

impl<T> Keyring<T> {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an entry under the `auth` key `loc`. Returns the URL error (and adds nothing) when
    /// the kubelet would skip the entry.
    pub fn add(&mut self, loc: &str, value: T) -> Result<(), UrlError> {
        let key = keyring_key(loc)?;
        let parsed = parse_schemeless(&key).ok();
        self.entries.push(Entry { key, value, parsed });
        Ok(())
    }

    /// All entries, in insertion order.
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// The kubelet's `Lookup(image)`: every entry whose key matches, most specific key first
    /// (descending byte order of keys; entries under one key in insertion order), or the
    /// `index.docker.io` entries for a Docker Hub image when nothing matched.
    pub fn lookup(&self, image: &Target) -> (Vec<&Entry<T>>, MatchKind) {
        let mut order: Vec<&Entry<T>> = self.entries.iter().collect();
        // A stable sort keeps insertion order within one key.
        order.sort_by(|a, b| b.key.cmp(&a.key));
        let mut found = Vec::new();
        let mut last_key: Option<(&[u8], bool)> = None;
        for e in order {
            let hit = match last_key {
                Some((k, hit)) if k == e.key.as_slice() => hit,
                _ => match (&image.parsed, &e.parsed) {
                    (Some(t), Some(g)) => parsed_match(g, t),
                    _ => false,
                },
            };
            last_key = Some((&e.key, hit));
            if hit {
                found.push(e);
            }
        }
        if !found.is_empty() {
            return (found, MatchKind::Direct);
        }
        if is_default_registry_match(image.as_str()) {
            let fallback: Vec<_> = self
                .entries
                .iter()
                .filter(|e| e.key == DEFAULT_REGISTRY_KEY)
                .collect();
            return (fallback, MatchKind::DockerHubFallback);
        }
        (Vec::new(), MatchKind::Direct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_globs_ports_and_paths() {
        let cases: &[(&str, &str, bool)] = &[
            // Same label count, one label per *.
            ("*.registry.io", "a.registry.io/app", true),
            ("*.registry.io", "registry.io/app", false),
            ("*.registry.io", "a.b.registry.io/app", false),
            ("*", "registry/app", true),
            ("*", "registry.io/app", false),
            ("*.*", "registry.io/app", true),
            ("*.*.*", "123.dkr.ecr.us-east-1.amazonaws.com/x", false),
            (
                "*.dkr.ecr.*.amazonaws.com",
                "123.dkr.ecr.us-east-1.amazonaws.com/x",
                true,
            ),
            (
                "*.dkr.ecr.*.amazonaws.com",
                "123.dkr.ecr.us-east-1.amazonaws.com.cn/x",
                false,
            ),
            // Partial-label globs and classes.
            ("*kubernetes.io", "k8s.io", false),
            ("*kubernetes.io", "kubernetes.io", true),
            ("*kubernetes.io", "prefix-kubernetes.io", true),
            ("*.*.*.kubernetes.io", "a.b.c.kubernetes.io", true),
            ("reg[0-9].io", "reg7.io/x", true),
            ("reg[^0-9].io", "reg7.io/x", false),
            ("reg[.io", "reg[.io/x", false), // malformed glob: no match
            // Ports must be equal, empty only equals empty.
            ("registry.io", "registry.io:5000/app", false),
            ("registry.io:5000", "registry.io/app", false),
            ("registry.io:5000", "registry.io:5000/app", true),
            ("registry.io:5000", "registry.io:5001/app", false),
            ("*.io:5000", "registry.io:5000/app", true),
            ("registry.io:", "registry.io/app", true),
            // Paths are raw byte prefixes, no segment boundary.
            ("registry.io/team", "registry.io/team/app", true),
            ("registry.io/team", "registry.io/teamz/app", true),
            ("registry.io/team/", "registry.io/team", false),
            ("registry.io/*", "registry.io/app", false),
            // Case-sensitive everywhere.
            ("Registry.io", "registry.io/app", false),
            ("registry.io/App", "registry.io/app", false),
            // Schemes are not stripped in patterns.
            ("https://registry.io", "registry.io/app", false),
            // Docker Hub: only docker.io matches normalized names.
            ("docker.io", "docker.io/library/nginx", true),
            ("*.docker.io", "docker.io/library/nginx", false),
            ("index.docker.io", "docker.io/library/nginx", false),
            // IPv6 literals.
            ("[::1]:5000", "[::1]:5000/foo", true),
            ("[::1]", "[::1]:5000/foo", false),
            // Unparsable patterns never match.
            ("%invalid%", "registry.io/app", false),
            ("registry.io:abc", "registry.io/app", false),
            ("", "registry.io/app", false),
        ];
        for &(pattern, target, want) in cases {
            assert_eq!(
                urls_match(pattern, target),
                want,
                "{pattern:?} vs {target:?}"
            );
            assert_eq!(
                Target::new(target).matched_by(pattern),
                want,
                "{pattern:?} vs {target:?}"
            );
        }
    }

    // Error texts, found by the differential test against Go (fuzz/differential); the
    // expected strings are what Go 1.19's url.Parse printed for the same entries.
    fn err_text(entry: &str) -> Option<String> {
        validate_match_image(entry).err().map(|e| e.to_string())
    }

    #[test]
    fn regression_userinfo_and_host_both_bad_reports_the_host() {
        assert_eq!(
            err_text("us er@*a.K. /v1"),
            Some(r#"parse "https://us er@*a.K. /v1": invalid character " " in host name"#.into())
        );
        assert_eq!(
            err_text("%zz@[%25]:abc/?"),
            Some(r#"parse "https://%zz@[%25]:abc/?": invalid port ":abc" after host"#.into())
        );
    }

    #[test]
    fn regression_userinfo_escape_error_stops_at_the_first_colon() {
        assert_eq!(
            err_text("%!::@"),
            Some(r#"parse "https://%!::@": invalid URL escape "%!""#.into())
        );
        assert_eq!(
            err_text("%::@s'"),
            Some(r#"parse "https://%::@s'": invalid URL escape "%""#.into())
        );
        assert_eq!(
            err_text("u:%zz@reg.io"),
            Some(r#"parse "https://u:%zz@reg.io": invalid URL escape "%zz""#.into())
        );
    }

    #[test]
    fn regression_error_url_drops_the_fragment_unless_the_fragment_failed() {
        assert_eq!(
            err_text("%e2%98%ba:٣#%zz"),
            Some(r#"parse "https://%e2%98%ba:٣": invalid port ":٣" after host"#.into())
        );
        assert_eq!(
            err_text("reg.io#%zz"),
            Some(r#"parse "https://reg.io#%zz": invalid URL escape "%zz""#.into())
        );
    }

    #[test]
    fn regression_error_texts_quote_like_go_strconv_quote() {
        let cases = [
            (
                "a\tb",
                r#"parse "https://a\tb": net/url: invalid control character in URL"#,
            ),
            ("%2é", r#"parse "https://%2é": invalid URL escape "%2\xc3""#),
            (
                "\": 5/v1//\t%C3%A9",
                r#"parse "https://\": 5/v1//\t%C3%A9": net/url: invalid control character in URL"#,
            ),
            (
                "<9#(.%2\u{7f}&{[",
                r#"parse "https://<9#(.%2\x7f&{[": invalid URL escape "%2\x7f""#,
            ),
            (
                "a\u{a0}\u{85}\u{7f}",
                r#"parse "https://a\u00a0\u0085\x7f": net/url: invalid control character in URL"#,
            ),
        ];
        for (entry, want) in cases {
            assert_eq!(err_text(entry), Some(want.into()), "{entry:?}");
        }
    }

    #[test]
    fn default_registry_match() {
        let cases = [
            ("foo/bar", true),
            ("docker.io/foo/bar", true),
            ("index.docker.io/foo/bar", true),
            ("foo", true),
            ("", false),
            ("registry.tld/foo/bar", false),
            ("registry:5000/foo/bar", false),
            ("myhostdocker.io/foo/bar", false),
            ("docker.io", true),
            ("a:1/c", false),
            ("registry-1.docker.io/x", false),
        ];
        for (image, want) in cases {
            assert_eq!(is_default_registry_match(image), want, "{image:?}");
        }
    }

    #[test]
    fn keyring_keys_lose_the_http_scheme_credentials_query_and_api_version() {
        let cases: &[(&str, &str)] = &[
            ("reg.io", "reg.io"),
            ("https://reg.io", "reg.io"),
            ("http://reg.io/", "reg.io"),
            ("https://index.docker.io/v1/", "index.docker.io"),
            ("index.docker.io/v2/", "index.docker.io"),
            ("reg.io/v2/team", "reg.io/team"),
            ("reg.io/v1", "reg.io/v1"),
            ("https://user:pw@reg.io:5000/x?q#f", "reg.io:5000/x"),
            ("oci://reg.io", "oci://reg.io"),
            ("HTTPS://reg.io", "HTTPS://reg.io"),
        ];
        for &(loc, want) in cases {
            assert_eq!(
                keyring_key(loc).map(|k| String::from_utf8(k).unwrap()),
                Ok(want.into()),
                "{loc:?}"
            );
        }
        assert!(keyring_key("reg.io:abc").is_err());
        assert!(keyring_key("%zz").is_err());
    }

    fn lookup(keys: &[&str], image: &str) -> (Vec<String>, MatchKind) {
        let mut k = Keyring::new();
        for &key in keys {
            let _ = k.add(key, key.to_string());
        }
        let (found, kind) = k.lookup(&Target::new(image));
        (found.iter().map(|e| e.value.clone()).collect(), kind)
    }

    #[test]
    fn lookup_orders_most_specific_first_and_falls_back_to_hub() {
        let (found, kind) = lookup(
            &[
                "*.registry.io",
                "a.registry.io",
                "a.registry.io/team",
                "b.registry.io",
            ],
            "a.registry.io/team/app",
        );
        assert_eq!(
            found,
            ["a.registry.io/team", "a.registry.io", "*.registry.io"]
        );
        assert_eq!(kind, MatchKind::Direct);

        // /v1/ and scheme are normalized away; several raw keys may share a key.
        let (found, _) = lookup(&["https://quay.io/v1/", "http://quay.io"], "quay.io/x");
        assert_eq!(found.len(), 2);

        // Docker Hub fallback only when nothing matched directly.
        let (found, kind) = lookup(
            &["https://index.docker.io/v1/", "other.io"],
            "docker.io/library/nginx",
        );
        assert_eq!(found, ["https://index.docker.io/v1/"]);
        assert_eq!(kind, MatchKind::DockerHubFallback);
        let (found, kind) = lookup(
            &["https://index.docker.io/v1/", "docker.io/library"],
            "docker.io/library/nginx",
        );
        assert_eq!(found, ["docker.io/library"]);
        assert_eq!(kind, MatchKind::Direct);
        // Not for other registries.
        let (found, _) = lookup(&["https://index.docker.io/v1/"], "quay.io/x");
        assert!(found.is_empty());
        // Unparsable keys are skipped, the rest kept.
        let (found, _) = lookup(&["reg.io:abc", "reg.io"], "reg.io/x");
        assert_eq!(found, ["reg.io"]);
    }

    #[test]
    fn host_match_ignores_paths() {
        let t = Target::new("reg.io/other/app");
        assert!(t.host_matched_by(b"reg.io/team"));
        assert!(!t.matched_by("reg.io/team"));
        assert!(!t.host_matched_by(b"reg.io:5000/team"));
    }
}

/// Why a pattern does not match a target, in the order the kubelet checks (for `explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The pattern is not a URL Go would parse: the kubelet skips it.
    Unparsable(String),
    /// The target is not a URL Go would parse.
    TargetUnparsable(String),
    /// Ports differ (an absent port only equals an absent port).
    Port {
        /// The pattern's port, `""` when absent.
        pattern: String,
        /// The target's port, `""` when absent.
        target: String,
    },
    /// The hosts have different numbers of DNS labels (a `*` covers exactly one).
    LabelCount {
        /// Labels in the pattern's host.
        pattern: usize,
        /// Labels in the target's host.
        target: usize,
    },
    /// The pattern's path is not a prefix of the target's.
    Path,
    /// A label's glob does not match (or is malformed).
    Label {
        /// The pattern label.
        pattern: String,
        /// The target label.
        target: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Unparsable(e) => write!(f, "the pattern does not parse ({e}); the kubelet ignores it"),
            Mismatch::TargetUnparsable(e) => write!(f, "the image does not parse ({e})"),
            Mismatch::Port { pattern, target } => {
                let show = |p: &str| if p.is_empty() { "no port".to_string() } else { format!("port {p}") };
                write!(f, "ports differ: pattern has {}, image has {}", show(pattern), show(target))
            }
            Mismatch::LabelCount { pattern, target } => write!(
                f,
                "the pattern's host has {pattern} labels, the image's {target}; each * covers exactly one label"
            ),
            Mismatch::Path => f.write_str("the pattern's path is not a prefix of the image's path"),
            Mismatch::Label { pattern, target } => {
                write!(f, "label {pattern:?} does not match {target:?}")
            }
        }
    }
}

/// Like [`urls_match`], but says why not.
pub fn explain_match(pattern: &str, target: &str) -> Result<(), Mismatch> {
    let glob =
        parse_schemeless(pattern.as_bytes()).map_err(|e| Mismatch::Unparsable(e.to_string()))?;
    let t = parse_schemeless(target.as_bytes())
        .map_err(|e| Mismatch::TargetUnparsable(e.to_string()))?;
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (gh, gp) = split_host_port(&glob.host);
    let (th, tp) = split_host_port(&t.host);
    if gp != tp {
        return Err(Mismatch::Port {
            pattern: lossy(gp),
            target: lossy(tp),
        });
    }
    let (gl, tl): (Vec<&[u8]>, Vec<&[u8]>) = (
        gh.split(|&b| b == b'.').collect(),
        th.split(|&b| b == b'.').collect(),
    );
    if gl.len() != tl.len() {
        return Err(Mismatch::LabelCount {
            pattern: gl.len(),
            target: tl.len(),
        });
    }
    if !t.path.starts_with(&glob.path) {
        return Err(Mismatch::Path);
    }
    for (g, l) in gl.iter().zip(&tl) {
        if goglob::matches(g, l) != Ok(true) {
            return Err(Mismatch::Label {
                pattern: lossy(g),
                target: lossy(l),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod explain_tests {
    use super::*;

    #[test]
    fn explain_agrees_with_urls_match_and_names_the_reason() {
        let cases = [
            ("reg.io", "reg.io/a"),
            ("reg.io", "reg.io:5000/a"),
            ("*.io", "a.b.io/x"),
            ("reg.io/team", "reg.io/other"),
            ("*.reg.io", "a.other.io/x"),
            ("%zz", "reg.io/a"),
            ("reg[.io", "reg[.io/a"),
        ];
        for (p, t) in cases {
            assert_eq!(explain_match(p, t).is_ok(), urls_match(p, t), "{p} {t}");
        }
        assert!(matches!(
            explain_match("reg.io", "reg.io:5000/a"),
            Err(Mismatch::Port { .. })
        ));
        assert!(matches!(
            explain_match("*.io", "a.b.io/x"),
            Err(Mismatch::LabelCount {
                pattern: 2,
                target: 3
            })
        ));
        assert_eq!(
            explain_match("reg.io/team", "reg.io/other"),
            Err(Mismatch::Path)
        );
        assert!(explain_match("*.reg.io", "a.other.io/x")
            .unwrap_err()
            .to_string()
            .contains("\"reg\""));
    }
}
