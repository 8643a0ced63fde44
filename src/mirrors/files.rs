//! The runtimes' own mirror settings: containerd's `hosts.toml` tree and CRI-O's
//! `containers-registries.conf`, read bounded when the config loads ([`Read::load`]) and
//! parsed (with the `toml` crate) only when an image needs its mirrors.
//!
//! * **containerd** (`docs/hosts.md`): for a registry `host[:port]` the first of the
//!   directories `<hostsDir>/host_port_`, `<hostsDir>/host:port` (only with a port),
//!   `<hostsDir>/host`, `<hostsDir>/_default` that exists is the registry's namespace; its
//!   `hosts.toml` lists `[host."https://mirror[:port][/path]"]` tables, tried in file order,
//!   then `server` (the upstream, or the one endpoint when it names another registry). Each
//!   host that is not the registry itself (nor, for `docker.io`, Docker Hub's own endpoints)
//!   is a mirror; its image is the host and path (with `override_path = true`, the path
//!   without its leading `/v2`), then the image's repository path. A namespace without
//!   `hosts.toml` has no mirrors, as containerd then uses no mirror either.
//! * **registries.conf** (`containers-registries.conf(5)`, version 2): the `[[registry]]`
//!   whose `prefix` (or `location` when there is no prefix) is the longest match of the image
//!   (`*.example.com` for any subdomain) lists its `[[registry.mirror]]` locations, then its
//!   own `location` when that rewrites the prefix. A mirror's image is its location followed by
//!   what follows the prefix in the image name, as containers/image rewrites references.
//!   `pull-from-mirror` and `mirror-by-digest-only` are not applied (the kubelet does not say
//!   whether the pull is by digest: any mirror may be tried). The drop-in directory
//!   (`containers-registries.conf.d(5)`, `/etc/containers/registries.conf.d` unless the
//!   config names another) is read after the file as containers/image reads it: its `*.conf`
//!   files (not its subdirectories) in the order of their names, each `[[registry]]` replacing
//!   one of the same prefix (`location` when it has none) read before it. A drop-in that
//!   cannot be parsed is warned about and left out (containers/image refuses the whole
//!   configuration; a pull must not fail for it here); the per-user directory under `$HOME`
//!   is not read (CRI-O runs as root, and the kubelet's `HOME` is not the runtime's).
//!
//! A file that cannot be read (missing is not a problem: the node may run the other runtime)
//! or parsed is named in a warning and left out; it never fails a pull.

use std::path::{Path, PathBuf};

use keyring_api::ImageName;
use serde::Deserialize;

use super::{mirror_image, shown, Mirror, Route, Strategy, MAX_MIRRORS};

/// containerd's usual `config_path`.
pub const CONTAINERD_HOSTS_DIR: &str = "/etc/containerd/certs.d";
/// The system-wide `containers-registries.conf`.
pub const REGISTRIES_CONF: &str = "/etc/containers/registries.conf";
/// Its drop-in directory.
pub const REGISTRIES_CONF_D: &str = "/etc/containers/registries.conf.d";
/// containerd's fallback namespace.
pub const DEFAULT_NAMESPACE: &str = "_default";

/// The most namespace directories listed in the hosts tree.
const MAX_NAMESPACES: usize = 512;
/// The largest `hosts.toml` read.
const MAX_HOSTS_TOML: u64 = 64 << 10;
/// The largest `registries.conf` (or drop-in) read.
const MAX_REGISTRIES_CONF: u64 = 1 << 20;
/// The most drop-in files read from `registries.conf.d`.
const MAX_DROP_INS: usize = 64;

/// The files as read when the config loaded.
#[derive(Debug, Default, Clone)]
pub struct Read {
    /// The hosts tree's directory, when one was read.
    hosts_dir: Option<PathBuf>,
    /// Each namespace directory's name and its `hosts.toml` (`None`: the directory has none).
    namespaces: Vec<(String, Option<Vec<u8>>)>,
    /// `registries.conf`'s path and bytes.
    registries_conf: Option<(PathBuf, Vec<u8>)>,
    /// The drop-ins of `registries.conf.d`, path and bytes, in the order they apply.
    drop_ins: Vec<(PathBuf, Vec<u8>)>,
}

impl Read {
    /// Reads the hosts tree under `hosts_dir`, the `registries_conf` file and the drop-ins
    /// of `drop_in_dir`, each when given.
    pub fn load(
        hosts_dir: Option<&Path>,
        registries_conf: Option<&Path>,
        drop_in_dir: Option<&Path>,
    ) -> Read {
        let mut read = Read::default();
        if let Some(dir) = hosts_dir {
            read.namespaces = read_hosts_dir(dir);
            read.hosts_dir = Some(dir.to_path_buf());
        }
        if let Some(path) = registries_conf {
            read.registries_conf = read_file(path, MAX_REGISTRIES_CONF).map(|b| (path.into(), b));
        }
        if let Some(dir) = drop_in_dir {
            read.drop_ins = read_drop_ins(dir);
        }
        read
    }

    /// Every name and byte read, length-prefixed, for the cache context.
    pub fn context_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |b: &[u8]| {
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        };
        for (name, bytes) in &self.namespaces {
            put(name.as_bytes());
            match bytes {
                Some(b) => put(b),
                None => put(b"\xff(no hosts.toml)"),
            }
        }
        for (path, bytes) in self.registries_conf.iter().chain(&self.drop_ins) {
            put(path.as_os_str().as_encoded_bytes());
            put(bytes);
        }
        out
    }

    /// containerd's mirrors of `image` (see the module docs), with `strategy`.
    pub fn containerd_route(&self, image: &ImageName, strategy: Option<Strategy>) -> Option<Found> {
        let dir = self.hosts_dir.as_ref()?;
        let (name, bytes) = namespaces_of(image.registry())
            .into_iter()
            .find_map(|n| self.namespaces.iter().find(|(name, _)| *name == n))?;
        let path = dir.join(name).join("hosts.toml");
        let bytes = bytes.as_ref()?;
        let hosts = match parse::<HostsToml>(bytes) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("{}: not used: {e}", path.display());
                return None;
            }
        };
        let mut locations = Vec::new();
        for (url, host) in &hosts.host {
            match host_location(url, host.override_path) {
                Some(l) => locations.push(l),
                None => tracing::warn!(
                    "{}: host {:?} is not an http(s) URL without user-info; skipped",
                    path.display(),
                    shown(url)
                ),
            }
        }
        if let Some(server) = &hosts.server {
            match host_location(server, hosts.override_path) {
                Some(l) => locations.push(l),
                None => tracing::warn!(
                    "{}: server {:?} is not an http(s) URL without user-info; skipped",
                    path.display(),
                    shown(server)
                ),
            }
        }
        let rest = &image.as_str()[image.registry().len()..];
        Some(Found {
            mirrors: mirrors_at(image, &locations, rest, &path.display().to_string()),
            strategy,
            origin: path.display().to_string(),
        })
    }

    /// The `[[registry]]` tables of `registries.conf` and its drop-ins as prefix rules,
    /// with `strategy`: a drop-in's table replaces one of the same prefix read before it.
    pub fn registries_conf_rules(&self, strategy: Option<Strategy>) -> Vec<PrefixRule> {
        let mut rules = match &self.registries_conf {
            Some((path, bytes)) => registry_tables(path, bytes, strategy),
            None => Vec::new(),
        };
        for (path, bytes) in &self.drop_ins {
            for rule in registry_tables(path, bytes, strategy) {
                rules.retain(|r| r.prefix != rule.prefix);
                rules.push(rule);
            }
        }
        rules
    }
}

/// The `[[registry]]` tables of one `registries.conf` file as prefix rules; none, with a
/// warning, when it does not parse.
fn registry_tables(path: &Path, bytes: &[u8], strategy: Option<Strategy>) -> Vec<PrefixRule> {
    let conf = match parse::<RegistriesConf>(bytes) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("{}: not used: {e}", path.display());
            return Vec::new();
        }
    };
    conf.registry
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let location = r.location.unwrap_or_default();
            let location = location.trim_end_matches('/');
            let prefix = match r.prefix.as_deref().map(|p| p.trim_end_matches('/')) {
                Some(p) if !p.is_empty() => p.to_string(),
                _ if !location.is_empty() => location.to_string(),
                _ => return None,
            };
            let mut locations: Vec<String> = r
                .mirror
                .into_iter()
                .filter_map(|m| m.location)
                .map(|l| l.trim_end_matches('/').to_string())
                .filter(|l| !l.is_empty())
                .collect();
            // A location that rewrites the prefix is where the source's images really are.
            if !location.is_empty() && location != prefix {
                locations.push(location.to_string());
            }
            Some(PrefixRule {
                origin: format!(
                    "{} [[registry]] {} (prefix {prefix:?})",
                    path.display(),
                    i + 1
                ),
                prefix,
                locations,
                colon_separates: true,
                strategy,
            })
        })
        .collect()
}

/// A source prefix and its mirror locations, from the config or `registries.conf`.
#[derive(Debug, Clone)]
pub struct PrefixRule {
    /// `host[:port][/path]` or `*.domain`.
    pub prefix: String,
    /// Mirror locations, in order.
    pub locations: Vec<String>,
    /// Where it was written.
    pub origin: String,
    /// containers/image's quirk: `example.com` also matches `example.com:5000/...`.
    pub colon_separates: bool,
    /// Its strategy, if it names one.
    pub strategy: Option<Strategy>,
}

impl PrefixRule {
    /// Whether the prefix has a path (covers only part of its registry).
    pub fn has_path(&self) -> bool {
        !self.prefix.starts_with("*.") && self.prefix.contains('/')
    }

    /// Whether the prefix's registry is `image`'s.
    pub fn host_matches(&self, image: &ImageName) -> bool {
        self.prefix.split('/').next() == Some(image.registry())
    }

    /// The length of `image`'s name the prefix matches, as containers/image's
    /// `refMatchingPrefix`.
    pub fn matched_len(&self, image: &ImageName) -> Option<usize> {
        let name = image.as_str();
        if let Some(domain) = self.prefix.strip_prefix('*') {
            // `*.example.com`: the first occurrence of `.example.com` in the host part.
            let at = name.find(domain)?;
            if name[..at].contains('/') {
                return None;
            }
            let end = at + domain.len();
            return match name.as_bytes().get(end) {
                None | Some(b':' | b'/' | b'@') => Some(end),
                _ => None,
            };
        }
        let rest = name.strip_prefix(self.prefix.as_str())?;
        match rest.as_bytes().first() {
            None | Some(b'/' | b'@') => Some(self.prefix.len()),
            Some(b':') if self.colon_separates => Some(self.prefix.len()),
            _ => None,
        }
    }
}

/// The mirrors found for an image, before the default strategy applies.
#[derive(Debug, Clone)]
pub struct Found {
    /// The mirrors, in order.
    pub mirrors: Vec<Mirror>,
    /// The strategy of the place that named them.
    pub strategy: Option<Strategy>,
    /// That place.
    pub origin: String,
}

impl Found {
    /// The route, with `default` where the place named no strategy.
    pub fn into_route(self, default: Strategy) -> Route {
        Route {
            mirrors: self.mirrors,
            strategy: self.strategy.unwrap_or(default),
            origin: self.origin,
        }
    }
}

/// The rule of `rules` with the longest matching prefix (the first among equals), as its
/// mirrors of `image`.
pub fn longest_match(rules: &[PrefixRule], image: &ImageName) -> Option<Found> {
    let mut best: Option<(&PrefixRule, usize)> = None;
    for r in rules {
        if r.matched_len(image).is_some()
            && best.is_none_or(|(b, _)| r.prefix.len() > b.prefix.len())
        {
            best = Some((r, r.matched_len(image)?));
        }
    }
    let (rule, len) = best?;
    let rest = &image.as_str()[len..];
    Some(Found {
        mirrors: mirrors_at(image, &rule.locations, rest, &rule.origin),
        strategy: rule.strategy,
        origin: rule.origin.clone(),
    })
}

/// The mirror images `location + rest`, leaving out the image's own registry (and Docker
/// Hub's endpoints for `docker.io`), repeats, and what is not an image name, at most
/// [`MAX_MIRRORS`].
fn mirrors_at(image: &ImageName, locations: &[String], rest: &str, origin: &str) -> Vec<Mirror> {
    let mut out: Vec<Mirror> = Vec::new();
    for location in locations {
        let Some(m) = mirror_image(location, rest) else {
            tracing::warn!(
                "{origin}: mirror {:?} does not make an image name of {image}; skipped",
                shown(location)
            );
            continue;
        };
        if is_the_source(image, &m) || out.iter().any(|o| o.image == m) {
            continue;
        }
        if out.len() == MAX_MIRRORS {
            tracing::warn!(
                "{origin}: more than {MAX_MIRRORS} mirrors for {image}; the rest are not asked"
            );
            break;
        }
        out.push(Mirror {
            location: location.clone(),
            image: m,
        });
    }
    out
}

/// Whether `mirror` is `image` itself, at its registry or (for Docker Hub) at Hub's own
/// endpoints, which containerd configs often name as `server` or a host.
fn is_the_source(image: &ImageName, mirror: &ImageName) -> bool {
    const HUB: [&str; 3] = ["docker.io", "registry-1.docker.io", "index.docker.io"];
    mirror == image
        || (image.registry() == "docker.io"
            && HUB.contains(&mirror.registry())
            && mirror.path() == image.path())
}

/// containerd's namespace directories for `registry`, in the order it tries them.
fn namespaces_of(registry: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(3);
    if let Some(i) = registry
        .rfind(':')
        .filter(|&i| i > 0 && !registry[i..].contains(']'))
    {
        out.push(format!("{}_{}_", &registry[..i], &registry[i + 1..]));
    }
    out.push(registry.to_string());
    out.push(DEFAULT_NAMESPACE.to_string());
    out
}

/// A `hosts.toml` URL as a mirror location: `host[:port][/path]`, the path without the
/// `/v2` that `override_path` puts in it. `None` for what is not http(s).
fn host_location(url: &str, override_path: bool) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut path = path.trim_end_matches('/');
    if override_path {
        path = path
            .strip_prefix("/v2")
            .filter(|p| p.is_empty() || p.starts_with('/'))?;
    }
    Some(format!("{authority}{path}"))
}

/// `hosts.toml`: what this program reads of it (other keys are containerd's).
#[derive(Debug, Deserialize)]
struct HostsToml {
    server: Option<String>,
    #[serde(default)]
    override_path: bool,
    #[serde(default)]
    host: indexmap::IndexMap<String, HostTable>,
}

/// One `[host."..."]` table.
#[derive(Debug, Deserialize)]
struct HostTable {
    #[serde(default)]
    override_path: bool,
}

/// `registries.conf` (version 2): the `[[registry]]` tables.
#[derive(Debug, Deserialize)]
struct RegistriesConf {
    #[serde(default)]
    registry: Vec<Registry>,
}

/// One `[[registry]]`.
#[derive(Debug, Deserialize)]
struct Registry {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    mirror: Vec<Endpoint>,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Deserialize)]
struct Endpoint {
    location: Option<String>,
}

/// Parses TOML bytes.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    toml::from_str(text).map_err(|e| e.message().to_string())
}

/// A file's bytes, or `None` with a warning (none when it does not exist).
fn read_file(path: &Path, max: u64) -> Option<Vec<u8>> {
    match keyring_api::file::read(path, max) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!("{}: not read: {e}", path.display());
            None
        }
    }
}

/// The `*.conf` files of a `registries.conf.d` directory, sorted by name, as containers/image
/// walks it (no subdirectory; a missing directory is no drop-in).
fn read_drop_ins(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!("{}: not read: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut names: Vec<std::ffi::OsString> = entries
        .flatten()
        .take(8 * MAX_DROP_INS)
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| e.file_name())
        .filter(|n| n.as_encoded_bytes().ends_with(b".conf"))
        .collect();
    names.sort();
    if names.len() > MAX_DROP_INS {
        tracing::warn!(
            "{}: more than {MAX_DROP_INS} drop-ins; the rest are not read",
            dir.display()
        );
        names.truncate(MAX_DROP_INS);
    }
    names
        .into_iter()
        .filter_map(|n| {
            let path = dir.join(n);
            read_file(&path, MAX_REGISTRIES_CONF).map(|b| (path, b))
        })
        .collect()
}

/// The namespace directories of the hosts tree and their `hosts.toml`, sorted by name.
fn read_hosts_dir(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!("{}: not read: {e}", dir.display());
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    // Bounded twice: what is listed (a hit pays for this walk) and what is kept.
    for entry in entries.flatten().take(8 * MAX_NAMESPACES) {
        let path = entry.path();
        // A symlinked namespace is followed, as containerd follows it.
        if !path.is_dir() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if out.len() == MAX_NAMESPACES {
            tracing::warn!(
                "{}: more than {MAX_NAMESPACES} registry namespaces; the rest are not read",
                dir.display()
            );
            break;
        }
        out.push((name, read_file(&path.join("hosts.toml"), MAX_HOSTS_TOML)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
