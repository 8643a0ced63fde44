//! Which images are ACR images, and which login server answers for them.
//!
//! A login server is `<name>[-<dnl hash>][.<region>.geo].<suffix>`:
//!
//! * `<name>`: the registry name, ASCII letters and digits (ACR allows 5 to 50; any length up
//!   to 50 is accepted here so a future relaxation does not silently lose credentials);
//! * `-<dnl hash>`: the domain-name-label suffix of registries created with DNL scope
//!   (`myacr-b5a3fdd8e8cbh0hc.azurecr.io`), exactly one hyphen;
//! * `.<region>.geo`: a regional (geo-replica) endpoint (`myacr.eastus2.geo.azurecr.io`);
//! * `<suffix>`: `azurecr.io` (public), `azurecr.cn` (China), `azurecr.us` (US Government),
//!   `azurecr.de` (the retired German cloud), plus any configured `registrySuffixes`.
//!
//! Data endpoints (`myacr.eastus.data.azurecr.io`) are blob redirect targets, not login
//! servers, and are not matched. The comparison is on the image's *registry* (the text
//! before the first `/`), so `evil.com/x.azurecr.io` and `x.azurecr.io.evil.com` are not ACR
//! images; a registry with a port is not either (ACR serves on 443 only).
//!
//! Mirrors map a registry host (`mcr.microsoft.com`, `mirror.local:5000`) to an ACR login
//! server; the source must equal the image's registry exactly (case-insensitively), unlike the
//! upstream plugin's string-prefix test that also matched `mcr.microsoft.com.evil.com`.

/// The login-server suffixes of the Azure clouds.
pub const SUFFIXES: [&str; 4] = ["azurecr.io", "azurecr.cn", "azurecr.us", "azurecr.de"];

/// Longest registry name ACR allows.
const MAX_NAME: usize = 50;
/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// Whether `host` (a registry without port) is an ACR login server under one of
/// [`SUFFIXES`] or `extra_suffixes` (lower-case, without a leading dot).
pub fn is_login_server(host: &str, extra_suffixes: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    SUFFIXES
        .iter()
        .copied()
        .chain(extra_suffixes.iter().map(String::as_str))
        .any(|suffix| {
            host.strip_suffix(suffix)
                .and_then(|rest| rest.strip_suffix('.'))
                .is_some_and(is_login_prefix)
        })
}

/// `<name>[-<hash>]` or `<name>[-<hash>].<region>.geo`.
fn is_login_prefix(prefix: &str) -> bool {
    let labels: Vec<&str> = prefix.split('.').collect();
    match labels.as_slice() {
        [name] => is_registry_label(name),
        [name, region, "geo"] => is_registry_label(name) && is_alnum(region, MAX_LABEL),
        _ => false,
    }
}

/// `<name>` or `<name>-<hash>`.
fn is_registry_label(label: &str) -> bool {
    if label.len() > MAX_LABEL {
        return false;
    }
    match label.split_once('-') {
        None => is_alnum(label, MAX_NAME),
        Some((name, hash)) => is_alnum(name, MAX_NAME) && is_alnum(hash, MAX_LABEL),
    }
}

fn is_alnum(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `s` is a DNS name: dot-separated labels of letters, digits and inner hyphens.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= MAX_LABEL
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// Whether `s` is `host[:port]` with a DNS name or IPv4 host: what a mirror source may be.
pub fn is_host_port(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    port_ok && is_dns_name(host)
}

/// A validated mirror mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry as images name it, lower-case, port included (`mcr.microsoft.com`).
    pub source: String,
    /// The ACR login server that holds its content, lower-case.
    pub registry: String,
}

/// Where an image's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The ACR login server to authenticate against (lower-case).
    pub login_server: String,
    /// The image's registry as written, when it reached ACR through a mirror.
    pub mirror_source: Option<String>,
    /// The `auth` keys of the answer: the image's registry as written (what the kubelet
    /// matches), and the login server when that differs.
    pub keys: Vec<String>,
}

/// The target for an image whose registry is `registry` (as written, port included), or
/// `None` when it is neither mirrored nor an ACR login server.
pub fn resolve(registry: &str, mirrors: &[Mirror], extra_suffixes: &[String]) -> Option<Target> {
    let lower = registry.to_ascii_lowercase();
    if let Some(m) = mirrors.iter().find(|m| m.source == lower) {
        let mut keys = vec![registry.to_string()];
        if m.registry != lower {
            keys.push(m.registry.clone());
        }
        return Some(Target {
            login_server: m.registry.clone(),
            mirror_source: Some(registry.to_string()),
            keys,
        });
    }
    is_login_server(&lower, extra_suffixes).then(|| Target {
        login_server: lower,
        mirror_source: None,
        keys: vec![registry.to_string()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_servers_are_a_name_with_dnl_and_geo_forms_under_a_cloud_suffix() {
        let yes = [
            "myacr.azurecr.io",
            "MyAcr.AzureCR.io",
            "a.azurecr.io",
            "myacr.azurecr.cn",
            "myacr.azurecr.us",
            "myacr.azurecr.de",
            // domain name label (DNL) scope
            "myacr-b5a3fdd8e8cbh0hc.azurecr.io",
            // regional (geo-replica) endpoints, also with DNL
            "myacr.eastus2.geo.azurecr.io",
            "myacr-abc123.westeurope.geo.azurecr.io",
            "myacr.chinanorth3.geo.azurecr.cn",
        ];
        for h in yes {
            assert!(is_login_server(h, &[]), "{h} should be ACR");
        }
        let no = [
            "azurecr.io",
            ".azurecr.io",
            "myacr.azurecr.com",
            "myacr.azurecr.io.evil.com",
            "myacr.azurecr.io.",
            "evil.com",
            "my_acr.azurecr.io",
            "my-acr-x.azurecr.io",
            "-acr.azurecr.io",
            "acr-.azurecr.io",
            "a.b.azurecr.io",
            "myacr.eastus.data.azurecr.io",
            "myacr.eastus.geo.evil.azurecr.io",
            "myacr..geo.azurecr.io",
            "myacrazurecr.io",
            "xazurecr.io",
            "",
        ];
        for h in no {
            assert!(!is_login_server(h, &[]), "{h} should not be ACR");
        }
        let long = format!("{}.azurecr.io", "a".repeat(51));
        assert!(!is_login_server(&long, &[]));
        let max = format!("{}.azurecr.io", "a".repeat(50));
        assert!(is_login_server(&max, &[]));
    }

    #[test]
    fn configured_suffixes_make_more_login_servers() {
        let extra = vec!["azurecr.microsoft.scloud".to_string()];
        assert!(is_login_server("myacr.azurecr.microsoft.scloud", &extra));
        assert!(!is_login_server("myacr.azurecr.microsoft.scloud", &[]));
        assert!(!is_login_server("myacr.azurecr.microsoft.scloud.x", &extra));
    }

    #[test]
    fn resolve_images_by_registry_only() {
        let none: [Mirror; 0] = [];
        let t = resolve("myacr.azurecr.io", &none, &[]).unwrap();
        assert_eq!(t.login_server, "myacr.azurecr.io");
        assert_eq!(t.keys, ["myacr.azurecr.io"]);
        assert_eq!(t.mirror_source, None);

        // Spoofing attempts: the ACR name sits in the path or is a prefix of another domain.
        for image in [
            "evil.com/x.azurecr.io",
            "x.azurecr.io.evil.com/foo",
            "evil.com/x.azurecr.io/foo",
            "x.azurecr.io:8443/foo",
            "docker.io/library/x.azurecr.io",
        ] {
            let img = keyring_api::ImageName::parse(image).unwrap();
            assert_eq!(resolve(img.registry(), &none, &[]), None, "{image}");
        }
        let img = keyring_api::ImageName::parse("X.azurecr.io/foo/bar:1").unwrap();
        let t = resolve(img.registry(), &none, &[]).unwrap();
        assert_eq!(t.login_server, "x.azurecr.io");
        assert_eq!(
            t.keys,
            ["X.azurecr.io"],
            "the key is the registry as written"
        );
    }

    #[test]
    fn mirrors_match_whole_hosts() {
        let mirrors = [
            Mirror {
                source: "mcr.microsoft.com".into(),
                registry: "myacr.azurecr.io".into(),
            },
            Mirror {
                source: "mirror.local:5000".into(),
                registry: "other.azurecr.io".into(),
            },
        ];
        let t = resolve("mcr.microsoft.com", &mirrors, &[]).unwrap();
        assert_eq!(t.login_server, "myacr.azurecr.io");
        assert_eq!(t.mirror_source.as_deref(), Some("mcr.microsoft.com"));
        assert_eq!(t.keys, ["mcr.microsoft.com", "myacr.azurecr.io"]);

        let t = resolve("mirror.local:5000", &mirrors, &[]).unwrap();
        assert_eq!(t.login_server, "other.azurecr.io");
        assert_eq!(resolve("mirror.local", &mirrors, &[]), None, "port matters");
        assert_eq!(resolve("mirror.local:50001", &mirrors, &[]), None);
        assert_eq!(resolve("mcr.microsoft.com.evil.com", &mirrors, &[]), None);
        assert_eq!(resolve("evilmcr.microsoft.com", &mirrors, &[]), None);
        assert_eq!(resolve("mcr.microsoft.co", &mirrors, &[]), None);
    }

    #[test]
    fn a_mirror_source_is_a_host_with_an_optional_port() {
        for ok in [
            "mcr.microsoft.com",
            "a:1",
            "mirror.local:5000",
            "10.0.0.1:443",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "",
            "https://mcr.microsoft.com",
            "mcr.microsoft.com/path",
            "a:",
            "a:0",
            "a:65536",
            "a:b",
            "-a.com",
            "a..com",
            "*.example.com",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
