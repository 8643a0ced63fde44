//! Image-reference normalization, as the kubelet's `ParseImageName` does it with
//! `distribution/reference.ParseNormalizedNamed` (spec section 6).
//!
//! The result is the repository name the kubelet sends as `image` and matches against:
//! domain, `/`, path, with no tag or digest. `nginx:1.25` → `docker.io/library/nginx`,
//! `index.docker.io/x` → `docker.io/library/x`, `localhost:5000/a:b` → `localhost:5000/a`.
//! The kubelet's own output is a fixed point, so a request from the kubelet passes through
//! unchanged and a hand-typed reference gets the name the kubelet would have sent.
//!
//! The grammar is the current one: a first component with an upper-case letter is a domain,
//! and bracketed IPv6 domains (`[::1]:5000/x`) are accepted.

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalized repository name: `domain/path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName {
    name: String,
    domain_len: usize,
}

impl ImageName {
    /// Normalizes an image reference; see the module docs.
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        normalize(reference)
    }

    /// The whole normalized name, `domain/path`: what the kubelet sends as `image`.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The registry: the text before the first `/`, port included (the kubelet's `Registry`
    /// cache key).
    pub fn registry(&self) -> &str {
        &self.name[..self.domain_len]
    }

    /// The host of the registry, without port or IPv6 brackets.
    pub fn host(&self) -> &str {
        let domain = self.registry();
        if let Some(inner) = domain.strip_prefix('[') {
            return inner.split(']').next().unwrap_or(inner);
        }
        domain.split(':').next().unwrap_or(domain)
    }

    /// The repository path after the registry.
    pub fn path(&self) -> &str {
        &self.name[self.domain_len + 1..]
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why a reference is not a valid image name; texts follow `distribution/reference`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Empty input.
    #[error("repository name must have at least one component")]
    Empty,
    /// A 64-hex-digit string, which would be ambiguous with an image ID.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    /// Upper case in the repository path.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// Anything the grammar does not accept (schemes, spaces, empty components, ...).
    #[error("invalid reference format")]
    Format,
    /// `domain/path` longer than 255 bytes.
    #[error("repository name must not be more than 255 characters")]
    TooLong,
    /// A digest whose algorithm or hex is not valid.
    #[error("invalid checksum digest format")]
    Digest,
    /// A digest algorithm other than sha256, sha384, sha512.
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
}

fn normalize(s: &str) -> Result<ImageName, ImageError> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ImageError::HexIdentifier(s.to_string()));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = remainder.split(':').next().unwrap_or(&remainder);
    if remote.to_lowercase() != remote {
        return Err(ImageError::Uppercase(remote.to_string()));
    }
    let full = format!("{domain}/{remainder}");
    parse_reference(&full)
}

fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.into(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    let (domain, remote) = if maybe_domain == "localhost"
        || (maybe_domain != LEGACY_DEFAULT_DOMAIN
            && maybe_domain != DEFAULT_DOMAIN
            && (maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain))
    {
        return (maybe_domain.into(), maybe_remote.into());
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN || maybe_domain == DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, maybe_remote)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if !remote.contains('/') {
        return (domain.into(), format!("{OFFICIAL_REPO_PREFIX}{remote}"));
    }
    (domain.into(), remote.into())
}

/// `reference.Parse` of `domain/path[:tag][@digest]`, returning the name part.
fn parse_reference(s: &str) -> Result<ImageName, ImageError> {
    if s.is_empty() {
        return Err(ImageError::Empty);
    }
    let (before_digest, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    // The tag starts at a ':' after the last '/' (a ':' before it belongs to the port).
    let last_slash = before_digest.rfind('/').unwrap_or(0);
    let (name, tag) = match before_digest[last_slash..].find(':') {
        Some(i) => (
            &before_digest[..last_slash + i],
            Some(&before_digest[last_slash + i + 1..]),
        ),
        None => (before_digest, None),
    };
    let domain_len = name_grammar(name).ok_or_else(|| {
        if name_grammar(&name.to_lowercase()).is_some() {
            ImageError::Uppercase(name.to_string())
        } else {
            ImageError::Format
        }
    })?;
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return Err(ImageError::Format);
        }
    }
    if let Some(d) = digest {
        check_digest(d)?;
    }
    if name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ImageError::TooLong);
    }
    Ok(ImageName {
        name: name.to_string(),
        domain_len,
    })
}

/// Checks `[domain/]path-component(/path-component)*`; returns the length of the text before
/// the first `/` (the kubelet's registry, its `Registry` cache key).
///
/// `split_docker_domain` always supplies a first component, but the grammar's domain is
/// optional: a first component that is no domain but is a path component (`my_reg.io`, with
/// its `_`) still parses, as part of a domain-less path, and the name stays as written.
fn name_grammar(name: &str) -> Option<usize> {
    let (domain, path) = name.split_once('/')?;
    if !path.split('/').all(is_path_component) {
        return None;
    }
    if !is_domain(domain) && !is_path_component(domain) {
        return None;
    }
    Some(domain.len())
}

/// `domain-name | IPv6 in brackets`, then an optional `:port`.
fn is_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty() && host.split('.').all(is_domain_component)
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex`, where the grammar allows any `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`
/// algorithm with 32+ hex digits, and the digest library then insists on a known one.
fn check_digest(d: &str) -> Result<(), ImageError> {
    let (alg, hex) = d.split_once(':').ok_or(ImageError::Format)?;
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ImageError::Format);
    }
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ImageError::DigestAlgorithm),
    };
    if hex.len() != want || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ImageError::Digest);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn n(s: &str) -> Result<String, ImageError> {
        ImageName::parse(s).map(|i| i.to_string())
    }

    #[test]
    fn spec_section_6_table() {
        let ok: Vec<(String, &str)> = vec![
            ("root".into(), "docker.io/library/root"),
            ("root:tag".into(), "docker.io/library/root"),
            (format!("root@sha256:{D}"), "docker.io/library/root"),
            ("user/repo".into(), "docker.io/user/repo"),
            ("user/repo:tag".into(), "docker.io/user/repo"),
            (format!("user/repo@sha256:{D}"), "docker.io/user/repo"),
            ("url:5000/repo".into(), "url:5000/repo"),
            ("url:5000/repo:tag".into(), "url:5000/repo"),
            (format!("url:5000/repo@sha256:{D}"), "url:5000/repo"),
            (format!("url:5000/repo:latest@sha256:{D}"), "url:5000/repo"),
            ("nginx:1.25".into(), "docker.io/library/nginx"),
            ("library/nginx".into(), "docker.io/library/nginx"),
            ("docker.io/nginx".into(), "docker.io/library/nginx"),
            ("index.docker.io/nginx".into(), "docker.io/library/nginx"),
            (
                "index.docker.io/library/nginx".into(),
                "docker.io/library/nginx",
            ),
            ("docker.io/library/nginx".into(), "docker.io/library/nginx"),
            ("localhost/foo".into(), "localhost/foo"),
            ("localhost:5000/foo:tag".into(), "localhost:5000/foo"),
            ("registry.k8s.io/pause:3.9".into(), "registry.k8s.io/pause"),
            (
                "123456789.dkr.ecr.us-east-1.amazonaws.com/repo:tag".into(),
                "123456789.dkr.ecr.us-east-1.amazonaws.com/repo",
            ),
            (
                "Registry.Example.com/foo".into(),
                "Registry.Example.com/foo",
            ),
            ("foo_bar/baz".into(), "docker.io/foo_bar/baz"),
            ("Foo/bar".into(), "Foo/bar"),
            ("[::1]:5000/foo".into(), "[::1]:5000/foo"),
            ("[::1]/foo:tag".into(), "[::1]/foo"),
            ("a.io/b__c/d--e/f.g".into(), "a.io/b__c/d--e/f.g"),
        ];
        for (input, want) in ok {
            assert_eq!(n(&input), Ok(want.to_string()), "{input}");
        }
        let bad = [
            "ROOT",
            "http://root",
            D,
            "MyRegistry.io/Foo",
            "",
            "nginx:",
            "a.io/b___c",
            "a.io/-b",
            "a.io//b",
            "a b",
            "a.io/b@sha256:abc",
            "[::1/foo",
            "a.io:/foo",
        ];
        for input in bad {
            assert!(n(input).is_err(), "{input:?} should fail");
        }
        assert!(matches!(n("ROOT"), Err(ImageError::Uppercase(_))));
        assert!(matches!(
            n(&format!("a.io/b@sha256:{}", D.to_uppercase())),
            Err(ImageError::Digest)
        ));
        assert!(matches!(
            n(&format!("a.io/b@md5:{D}")),
            Err(ImageError::DigestAlgorithm)
        ));
    }

    // Found by the differential test against Go (fuzz/differential): distribution/reference
    // matches `docker.i_o/nginx` as a path without a domain, and the kubelet uses that name.
    #[test]
    fn regression_docker_i_o_nginx_parses_as_a_domainless_path() {
        for (input, want) in [
            ("docker.i_o/nginx", "docker.i_o/nginx"),
            ("my_reg.local/team/app:1", "my_reg.local/team/app"),
            (
                &format!("gcr.i_o/{D}") as &str,
                &format!("gcr.i_o/{D}") as &str,
            ),
        ] {
            assert_eq!(n(input).as_deref(), Ok(want), "{input}");
            assert_eq!(n(want).as_deref(), Ok(want), "fixed point {want}");
        }
        let i = ImageName::parse("my_reg.local/app").unwrap();
        assert_eq!((i.registry(), i.path()), ("my_reg.local", "app"));
        // Still refused: not a domain and not a path component either.
        for bad in ["-a.io/x", "a..b/x", "a_.io/x", "My_reg.io/x"] {
            assert!(n(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn an_image_name_splits_into_registry_host_and_path_with_ports_and_ipv6() {
        let i = ImageName::parse("localhost:5000/team/app:1").unwrap();
        assert_eq!(
            (i.registry(), i.host(), i.path()),
            ("localhost:5000", "localhost", "team/app")
        );
        let i = ImageName::parse("[::1]:5000/app").unwrap();
        assert_eq!((i.registry(), i.host()), ("[::1]:5000", "::1"));
    }

    #[test]
    fn normalized_names_are_fixed_points() {
        for s in [
            "docker.io/library/nginx",
            "url:5000/repo",
            "Foo/bar",
            "[::1]:5000/foo",
        ] {
            assert_eq!(n(s).as_deref(), Ok(s));
        }
    }
}
