//! The `gcp:` section of the plugin config file, validated while it is parsed.
//!
//! ```yaml
//! gcp:
//!   # Registries that are not Google's but front one (pull-through caches, mirrors behind
//!   # containerd's hosts.toml) and must get the Google access token too.
//!   mirrors: ["gcr-mirror.example.com", "reg.example.com:5000", "*.mirror.example.com/gcr"]
//!   # Read docker credentials from the metadata attributes google-dockercfg and
//!   # google-dockercfg-url before minting access tokens (default false).
//!   dockercfg: false
//! ```
//!
//! A mirror entry is a kubelet match pattern ([`keyring_api::pattern`]) restricted so that it
//! cannot hand the token to hosts nobody meant: `host[:port][/path]`, no scheme, each host
//! label either a literal (`[A-Za-z0-9_-]`) or a whole-label `*`, and a pattern with a `*`
//! needs at least two literal labels (`*.example.com` is fine, `*.com` and `*` are not).
//! A bad entry fails the whole config with an error that quotes it.

use keyring_api::pattern::{validate_match_image, Target};
use serde::Deserialize;

/// This backend's section of the plugin config file (`gcp:`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Extra registries that get the Google access token, matched against the image with the
    /// kubelet's rules. Google's own hosts need no entry.
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
    /// Consult the metadata attributes `google-dockercfg`, then `google-dockercfg-url`, for
    /// every image before minting an access token (upstream's `--authFlow=dockercfg` and
    /// `dockercfg-url`). See the crate docs for when it answers.
    #[serde(default)]
    pub dockercfg: bool,
}

/// A validated mirror pattern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Mirror {
    pattern: String,
    /// The path prefix, with its leading `/`; empty when the pattern has none.
    path_len: usize,
}

/// Why a mirror entry was refused. The text quotes the entry (mirror patterns are not secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mirror {entry:?}: {reason}")]
pub struct MirrorError {
    entry: String,
    reason: String,
}

impl Mirror {
    /// Checks one entry; see the module docs for the rules.
    pub fn parse(entry: &str) -> Result<Self, MirrorError> {
        let fail = |reason: &str| MirrorError {
            entry: entry.to_string(),
            reason: reason.to_string(),
        };
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
        let host = split_port(hostport).map_err(|r| fail(&r))?;
        check_host(host).map_err(|r| fail(&r))?;
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
}

impl TryFrom<String> for Mirror {
    type Error = MirrorError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Mirror::parse(&s)
    }
}

/// Splits off and checks an optional `:port`; returns the host.
fn split_port(hostport: &str) -> Result<&str, String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed '[' in an IPv6 address")?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("unexpected text after ']'".into()),
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
            _ => return Err(format!("port {port:?} is not a number from 1 to 65535")),
        }
    }
    Ok(host)
}

/// Checks the host part: an IPv6 literal, or labels that are literals or whole `*`.
fn check_host(host: &str) -> Result<(), String> {
    if let Some(inner) = host.strip_prefix('[') {
        let addr = inner.strip_suffix(']').unwrap_or(inner);
        return addr
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("{addr:?} is not an IPv6 address"));
    }
    if host.is_empty() {
        return Err("no host".into());
    }
    let mut literal = 0;
    let mut wild = 0;
    for label in host.split('.') {
        if label == "*" {
            wild += 1;
        } else if label.is_empty() {
            return Err("empty label in the host".into());
        } else if label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            literal += 1;
        } else {
            return Err(format!(
                "host label {label:?}: only letters, digits, '-', '_', or a whole-label '*'"
            ));
        }
    }
    if wild > 0 && literal < 2 {
        return Err(
            "too broad: a pattern with '*' needs at least two literal labels (*.example.com)"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn config_parses_and_refuses_unknown_fields() {
        let c: Config = serde_json::from_str(
            r#"{"mirrors": ["reg.example.com:5000", "*.m.example.com/gcr"], "dockercfg": true}"#,
        )
        .unwrap();
        assert_eq!(c.mirrors.len(), 2);
        assert_eq!(c.mirrors[1].path(), "/gcr");
        assert!(c.dockercfg);
        assert_eq!(
            serde_json::from_str::<Config>("{}").unwrap(),
            Config::default()
        );

        let e = serde_json::from_str::<Config>(r#"{"mirrors": ["ok.example.com", "*"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mirror \"*\": too broad"), "{e}");
        let e = serde_json::from_str::<Config>(r#"{"mirror": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `mirror`"), "{e}");
    }

    #[test]
    fn example_config_file_parses() {
        #[derive(Deserialize)]
        struct File {
            gcp: Config,
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/gcp.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let file: File = serde_norway::from_str(&text).unwrap();
        let mirrors: Vec<&str> = file.gcp.mirrors.iter().map(Mirror::as_str).collect();
        assert_eq!(
            mirrors,
            [
                "gcr-mirror.example.com",
                "reg.example.com:5000",
                "*.mirror.example.com/gcr"
            ]
        );
        assert!(!file.gcp.dockercfg);
    }
}
