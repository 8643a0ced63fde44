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

mod explain;

pub use explain::{explain_match, Mismatch};

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
mod tests;
