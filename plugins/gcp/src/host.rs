//! Which images are this backend's, decided from the image name alone: no I/O.
//!
//! * Google's registries ([`is_google_registry`]): `gcr.io` and its subdomains (`us.gcr.io`,
//!   `mirror.gcr.io`, ...), every subdomain of `pkg.dev` (`us-docker.pkg.dev`, ...), and
//!   `container.cloud.google.com`. Google owns these domains, so any port or depth is safe.
//! * The config's `mirrors` ([`Mirror`]), matched with the kubelet's own rules.
//! * With `gcp.otherHosts: accessToken` ([`OtherHosts`]), every other host too.
//! * Nothing else. Upstream's auth-provider-gcp also answers for whatever host the kubelet's
//!   `matchImages` let through (PR #793), which sends a Google token to any registry a
//!   too-wide pattern admits; here a host that is neither Google's nor a listed mirror is
//!   not this backend's and never sees a token.
//!
//! # Not mine
//!
//! An image no rule owns is refused ([`refusal_scope`]) for its whole registry
//! ([`Outcome::NOT_MINE`](keyring_api::Outcome::NOT_MINE)), unless a mirror with a path covers its host at another path
//! (`*.mirror.example.com/gcr` and `eu.mirror.example.com/other/x`): then for this image only
//! ([`Outcome::NOT_MINE_AT_THIS_PATH`](keyring_api::Outcome::NOT_MINE_AT_THIS_PATH)). The empty answer the binary gives when no backend
//! answers takes the narrowest refusal's scope, and cached for the registry it would be served,
//! by our cache and the kubelet's, to the next pull through `/gcr` too.
//!
//! # Mirror entries
//!
//! A mirror entry is a kubelet match pattern ([`keyring_api::pattern`]) restricted so that it
//! cannot hand the token to hosts nobody meant: `host[:port][/path]`, no scheme, each host
//! label either a literal (`[A-Za-z0-9_-]`) or a whole-label `*`, and a pattern with a `*`
//! needs at least two literal labels (`*.example.com` is fine, `*.com` and `*` are not).
//! A bad entry fails the whole config with an error that quotes it.

use keyring_api::backend::Query;
use keyring_api::pattern::{validate_match_image, Target};
use keyring_api::{CacheKeyType, InvalidSetting};
use serde::Deserialize;

/// Whether `host` (no port) is one of Google's registries.
pub fn is_google_registry(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let under = |domain: &str| {
        host.strip_suffix(domain)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|sub| !sub.is_empty() && !sub.ends_with('.'))
    };
    host == "gcr.io" || host == "container.cloud.google.com" || under("gcr.io") || under("pkg.dev")
}

/// What an image on a host that is neither Google's nor a mirror gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OtherHosts {
    /// Nothing: the next backend is asked.
    #[default]
    NotMine,
    /// The access token, keyed by the image's registry.
    AccessToken,
}

/// Why this backend owns an image.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// One of Google's registries.
    Google,
    /// A configured mirror.
    Mirror(&'a Mirror),
    /// `gcp.otherHosts: accessToken`.
    Other,
}

/// Who owns the query's image: Google, the first mirror that matches, or (with
/// [`OtherHosts::AccessToken`]) anyone; `None` when it is not this backend's.
pub(crate) fn owner<'a>(
    mirrors: &'a [Mirror],
    other_hosts: OtherHosts,
    query: &Query,
) -> Option<Owner<'a>> {
    if is_google_registry(query.image.host()) {
        return Some(Owner::Google);
    }
    mirrors
        .iter()
        .find(|m| m.matches(&query.target))
        .map(Owner::Mirror)
        .or((other_hosts == OtherHosts::AccessToken).then_some(Owner::Other))
}

/// How widely "not mine" holds for an image no rule owns (see the module docs): the
/// registry ([`Outcome::NOT_MINE`](keyring_api::Outcome::NOT_MINE)), or this image only ([`Outcome::NOT_MINE_AT_THIS_PATH`](keyring_api::Outcome::NOT_MINE_AT_THIS_PATH))
/// when a mirror covers its host at another path.
pub(crate) fn refusal_scope(mirrors: &[Mirror], query: &Query) -> CacheKeyType {
    match mirror_at_another_path(mirrors, query) {
        Some(_) => CacheKeyType::Image,
        None => CacheKeyType::Registry,
    }
}

/// A mirror with a path that covers the image's host, for an image it does not match.
pub(crate) fn mirror_at_another_path<'a>(
    mirrors: &'a [Mirror],
    query: &Query,
) -> Option<&'a Mirror> {
    mirrors
        .iter()
        .find(|m| !m.path().is_empty() && m.covers_host(&query.target))
}

/// A validated mirror pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Mirror {
    pattern: String,
    /// The path prefix, with its leading `/`; empty when the pattern has none.
    path_len: usize,
}

impl Mirror {
    /// Checks one entry; see the module docs for the rules. The error's setting is the entry,
    /// quoted (`mirror "*.com"`: mirror patterns are not secret).
    pub fn parse(entry: &str) -> Result<Self, InvalidSetting> {
        let at = format!("mirror {entry:?}");
        let fail = |reason: &str| InvalidSetting::new(at.clone(), reason);
        if entry.is_empty() {
            return Err(fail("empty; write host[:port][/path]"));
        }
        if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail("contains white space or control characters"));
        }
        if let Some((scheme, _)) = entry.split_once("://") {
            return Err(fail(&format!(
                "drop the scheme {scheme:?}: write host[:port][/path]"
            )));
        }
        if entry.contains(['?', '#', '@']) {
            return Err(fail("must not contain '?', '#' or '@'"));
        }
        let (hostport, path) = match entry.find('/') {
            Some(i) => entry.split_at(i),
            None => (entry, ""),
        };
        if path == "/" {
            return Err(fail("drop the trailing '/'"));
        }
        let host = split_port(&at, hostport)?;
        check_host(&at, host)?;
        validate_match_image(entry).map_err(|e| fail(&format!("not a kubelet pattern: {e}")))?;
        Ok(Mirror {
            pattern: entry.to_string(),
            path_len: path.len(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The path prefix (`/gcr`), empty when the mirror is a whole registry.
    pub fn path(&self) -> &str {
        &self.pattern[self.pattern.len() - self.path_len..]
    }

    /// Whether the image is on this mirror, by the kubelet's `URLsMatchStr`.
    pub fn matches(&self, target: &Target) -> bool {
        target.matched_by(&self.pattern)
    }

    /// Whether the image's host and port are this mirror's, whatever the paths: some image of
    /// its registry is on the mirror.
    pub fn covers_host(&self, target: &Target) -> bool {
        target.host_matched_by(self.pattern.as_bytes())
    }
}

impl TryFrom<String> for Mirror {
    type Error = InvalidSetting;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Mirror::parse(&s)
    }
}

/// Splits off and checks an optional `:port`; returns the host. `setting` names the entry,
/// for the error.
fn split_port<'a>(setting: &str, hostport: &'a str) -> Result<&'a str, InvalidSetting> {
    let fail = |problem: String| InvalidSetting::new(setting.to_string(), problem);
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| fail("unclosed '[' in an IPv6 address".into()))?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(fail("unexpected text after ']'".into())),
        };
        (&hostport[..end + 2], port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => {
                return Err(fail(format!(
                    "port {port:?} is not a number from 1 to 65535"
                )))
            }
        }
    }
    Ok(host)
}

/// Checks the host part: an IPv6 literal, or labels that are literals or whole `*`.
/// `setting` names the entry, for the error.
fn check_host(setting: &str, host: &str) -> Result<(), InvalidSetting> {
    let fail = |problem: String| InvalidSetting::new(setting.to_string(), problem);
    if let Some(inner) = host.strip_prefix('[') {
        let addr = inner.strip_suffix(']').unwrap_or(inner);
        return addr
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| fail(format!("{addr:?} is not an IPv6 address")));
    }
    if host.is_empty() {
        return Err(fail("no host".into()));
    }
    let mut literal = 0;
    let mut wild = 0;
    for label in host.split('.') {
        if label == "*" {
            wild += 1;
        } else if label.is_empty() {
            return Err(fail("empty label in the host".into()));
        } else if label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            literal += 1;
        } else {
            return Err(fail(format!(
                "host label {label:?}: only letters, digits, '-', '_', or a whole-label '*'"
            )));
        }
    }
    if wild > 0 && literal < 2 {
        return Err(fail(
            "too broad: a pattern with '*' needs at least two literal labels (*.example.com)"
                .into(),
        ));
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::{ImageName, Outcome};

    fn query(image: &str) -> Query {
        Query::new(ImageName::parse(image).unwrap())
    }

    #[test]
    fn google_registries_are_gcr_io_pkg_dev_and_container_cloud_google_com_only() {
        for host in [
            "gcr.io",
            "us.gcr.io",
            "eu.gcr.io",
            "mirror.gcr.io",
            "GCR.io",
            "us-docker.pkg.dev",
            "europe-west1-docker.pkg.dev",
            "a.b.pkg.dev",
            "container.cloud.google.com",
        ] {
            assert!(is_google_registry(host), "{host}");
        }
        for host in [
            "pkg.dev",
            "evilgcr.io",
            "gcr.io.evil.com",
            "gcr.iox",
            ".gcr.io",
            "a..gcr.io",
            "us-docker.pkg.dev.evil.com",
            "notpkg.dev",
            "cloud.google.com",
            "x.container.cloud.google.com",
            "docker.io",
            "",
        ] {
            assert!(!is_google_registry(host), "{host}");
        }
    }

    #[test]
    fn ownership_is_google_or_a_listed_mirror() {
        let mirrors = [
            Mirror::parse("reg.example.com:5000").unwrap(),
            Mirror::parse("m.example.com/gcr").unwrap(),
        ];
        for (image, owned) in [
            ("gcr.io/p/i", true),
            ("us-docker.pkg.dev/p/r/i:1", true),
            ("gcr.io:443/p/i", true),
            ("reg.example.com:5000/p/i", true),
            ("reg.example.com/p/i", false),
            ("m.example.com/gcr/p/i", true),
            ("m.example.com/other/i", false),
            ("nginx", false),
            ("quay.io/p/i", false),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com/i", false),
        ] {
            let q = query(image);
            assert_eq!(
                owner(&mirrors, OtherHosts::NotMine, &q).is_some(),
                owned,
                "{image}"
            );
            assert!(
                owner(&mirrors, OtherHosts::AccessToken, &q).is_some(),
                "{image}"
            );
        }
    }

    #[test]
    fn not_mine_holds_for_the_registry_unless_a_mirror_has_another_path_of_its_host() {
        let mirrors = [
            Mirror::parse("*.mirror.example.com/gcr").unwrap(),
            Mirror::parse("reg.example.com:5000").unwrap(),
        ];
        for (image, refusal) in [
            (
                "eu.mirror.example.com/other/x",
                Outcome::NOT_MINE_AT_THIS_PATH,
            ),
            ("eu.mirror.example.com/x", Outcome::NOT_MINE_AT_THIS_PATH),
            ("mirror.example.com/gcr/x", Outcome::NOT_MINE),
            ("eu.mirror.example.com:5000/gcr/x", Outcome::NOT_MINE),
            ("reg.example.com/gcr/x", Outcome::NOT_MINE),
            ("quay.io/gcr/x", Outcome::NOT_MINE),
        ] {
            let q = query(image);
            assert!(
                owner(&mirrors, OtherHosts::NotMine, &q).is_none(),
                "{image}"
            );
            let scope = refusal_scope(&mirrors, &q);
            assert_eq!(Outcome::NotApplicable { scope }, refusal, "{image}");
        }
    }

    #[test]
    fn accepts_hosts_ports_paths_and_wildcards() {
        for (entry, path) in [
            ("gcr-mirror.example.com", ""),
            ("reg.example.com:5000", ""),
            ("localhost:5000", ""),
            ("registry", ""),
            ("*.mirror.example.com", ""),
            ("*.*.example.com/gcr", "/gcr"),
            ("reg.example.com/team/gcr", "/team/gcr"),
            ("[::1]:5000", ""),
            ("[fd00::1]/x", "/x"),
            ("10.0.0.5:443", ""),
        ] {
            let m = Mirror::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
            assert_eq!(m.as_str(), entry);
            assert_eq!(m.path(), path, "{entry}");
        }
    }

    #[test]
    fn refuses_with_the_entry_and_the_reason() {
        for (entry, reason) in [
            ("", "empty"),
            ("https://reg.example.com", "drop the scheme \"https\""),
            ("reg.example.com/", "trailing"),
            ("reg.example.com:0", "port \"0\""),
            ("reg.example.com:70000", "port"),
            ("reg.example.com:+5", "port"),
            ("reg.example.com:", "port \"\""),
            ("*", "too broad"),
            ("*.com", "too broad"),
            ("*.*", "too broad"),
            ("*:5000", "too broad"),
            ("reg-*.example.com", "whole-label"),
            ("reg[0-9].example.com", "whole-label"),
            ("reg..example.com", "empty label"),
            (".example.com", "empty label"),
            ("user@reg.example.com", "'@'"),
            ("reg.example.com/x?y", "'?'"),
            ("reg example.com", "white space"),
            ("[::1", "unclosed"),
            ("[zz::1]:5", "IPv6"),
            ("[::1]x", "after ']'"),
            (":5000", "no host"),
        ] {
            let e = Mirror::parse(entry).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("mirror {entry:?}: ")) && e.contains(reason),
                "{entry:?}: {e}"
            );
        }
    }

    #[test]
    fn matching_follows_the_kubelet() {
        let on = |m: &str, image: &str| Mirror::parse(m).unwrap().matches(&Target::new(image));
        assert!(on("reg.example.com:5000", "reg.example.com:5000/p/i"));
        assert!(!on("reg.example.com:5000", "reg.example.com/p/i"));
        assert!(!on("reg.example.com", "reg.example.com:5000/p/i"));
        assert!(on("*.mirror.example.com", "eu.mirror.example.com/p/i"));
        assert!(!on("*.mirror.example.com", "a.eu.mirror.example.com/p/i"));
        assert!(!on("*.mirror.example.com", "mirror.example.com/p/i"));
        assert!(on("reg.example.com/gcr", "reg.example.com/gcr/p/i"));
        assert!(!on("reg.example.com/gcr", "reg.example.com/other/i"));
        assert!(!on(
            "gcr-mirror.example.com",
            "gcr-mirror.example.com.evil.io/x"
        ));
    }
}
