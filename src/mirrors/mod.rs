//! Credentials that follow mirrors, for every backend: the plugin config's `mirrors:` section,
//! and optionally containerd's `hosts.toml` tree and CRI-O's `registries.conf`.
//!
//! A pull-through cache or mirror serves images under the *source's* name: the pod says
//! `docker.io/library/nginx`, the runtime fetches it from `harbor.example.com/dockerhub`. The
//! kubelet asks for the source image only, and containerd hands what it gets to every host of
//! the registry's namespace, mirrors and source alike (containerd issue 10996). So the
//! source's key must carry the mirror's credentials. (CRI-O does not use them: its
//! containers/image sends a pull's credential to endpoints of the source's domain only, so
//! there a mirror's credential comes from an auth file.) For an image with mirrors, the whole
//! backend chain is asked for each mirror's image (the same repository path under the
//! mirror's location) and, unless the strategy is `mirrorOnly`, for the source image too, and
//! [`merge`] answers the **source's** registry with every credential found, in the order the
//! [`Strategy`] says (as mesosphere/dynamic-credential-provider's `MirrorConfig` does):
//!
//! | strategy | credentials, in the order the kubelet tries them |
//! |---|---|
//! | `mirrorOnly` | the mirrors' (the source is not asked) |
//! | `mirrorFirst` (default) | the mirrors', then the source's |
//! | `mirrorLast` | the source's, then the mirrors' |
//!
//! The kubelet tries each credential of an answer in turn, most specific key first, so the
//! order is carried by the keys: the first under the registry (`docker.io`), the next under
//! the registry with its first label a glob (`*.io`), then `**.io`; each matches the image and
//! sorts after the one before ([`merge::ordered_keys`]).
//!
//! ```yaml
//! mirrors:
//!   credentials: mirrorFirst                 # mirrorOnly | mirrorFirst | mirrorLast
//!   registries:                              # first: the longest matching source wins
//!     - source: docker.io                    # host[:port][/path] or *.example.com
//!       mirrors: [harbor.example.com/dockerhub]
//!       credentials: mirrorOnly              # this source only
//!   containerd: {hostsDir: /etc/containerd/certs.d}          # read <host>/hosts.toml
//!   registriesConf: {path: /etc/containers/registries.conf}  # [[registry.mirror]], and
//!                                 # dropInDir (default /etc/containers/registries.conf.d)
//! ```
//!
//! Where the mirrors of an image come from, first found wins: the `registries` list, then
//! containerd's `hosts.toml` of the image's registry (or `_default`), then `registries.conf`
//! with its drop-ins ([`files`]). The files are read (bounded, [`keyring_api::file`]) when the config is
//! loaded, and their bytes are part of the cache context, so an edited `hosts.toml` never
//! serves answers made under the old one; they are parsed only on a miss.
//!
//! Lifetime and scope of a merged answer: the narrowest of the parts (a mirror path prefix
//! makes every answer for its host `Image`-scoped). A part that fails does not hide the
//! others' credentials: they are answered, for at most [`keyring_api::lifetime::MIN`], with a
//! warning; only when no part has credentials is the failure the answer.

pub mod files;
pub mod merge;

use std::path::PathBuf;

use keyring_api::{CacheKeyType, ImageName, InvalidSetting};
use serde::Deserialize;

/// The most mirrors asked for one image: each may cost a backend call within the deadline.
pub const MAX_MIRRORS: usize = 8;

/// Which credentials the kubelet tries first when the source and a mirror both have some.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Strategy {
    /// Only the mirrors' credentials; the source is not asked.
    #[serde(rename = "mirrorOnly", alias = "MirrorCredentialsOnly")]
    MirrorOnly,
    /// The mirrors', then the source's.
    #[default]
    #[serde(rename = "mirrorFirst", alias = "MirrorCredentialsFirst")]
    MirrorFirst,
    /// The source's, then the mirrors'.
    #[serde(rename = "mirrorLast", alias = "MirrorCredentialsLast")]
    MirrorLast,
}

impl Strategy {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::MirrorOnly => "mirrorOnly",
            Strategy::MirrorFirst => "mirrorFirst",
            Strategy::MirrorLast => "mirrorLast",
        }
    }

    /// In words, for `explain`.
    pub fn says(self) -> &'static str {
        match self {
            Strategy::MirrorOnly => "the mirrors' credentials only; the source is not asked",
            Strategy::MirrorFirst => "the mirrors' credentials first, then the source's",
            Strategy::MirrorLast => "the source's credentials first, then the mirrors'",
        }
    }
}

/// The `mirrors:` section of the plugin config.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MirrorsConfig {
    /// The strategy of every source that names none.
    #[serde(default)]
    pub credentials: Strategy,
    /// Sources and their mirrors, written here.
    #[serde(default)]
    pub registries: Vec<RegistryMirrors>,
    /// Read containerd's `hosts.toml` tree.
    #[serde(default)]
    pub containerd: Option<ContainerdSource>,
    /// Read a `containers-registries.conf` (CRI-O, podman) for `[[registry.mirror]]`.
    #[serde(default)]
    pub registries_conf: Option<RegistriesConfSource>,
}

/// One source and its mirrors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryMirrors {
    /// The images it covers: `host[:port]`, `host[:port]/path` (a path prefix), or
    /// `*.example.com` (any subdomain), as `registries.conf`'s `prefix`.
    pub source: String,
    /// Where they are pulled from, in order: `host[:port][/path]`; the image's path after
    /// `source` is appended.
    pub mirrors: Vec<String>,
    /// This source's strategy.
    #[serde(default)]
    pub credentials: Option<Strategy>,
}

/// containerd's registry host namespaces (`config_path` of its CRI registry config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerdSource {
    /// The directory of `<host>/hosts.toml`; default `/etc/containerd/certs.d`.
    #[serde(default = "default_hosts_dir")]
    pub hosts_dir: PathBuf,
    /// The strategy for the mirrors found there.
    #[serde(default)]
    pub credentials: Option<Strategy>,
}

/// A `containers-registries.conf` (TOML, version 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistriesConfSource {
    /// The file; default `/etc/containers/registries.conf`.
    #[serde(default = "default_registries_conf")]
    pub path: PathBuf,
    /// Its drop-in directory (`containers-registries.conf.d(5)`); default
    /// `/etc/containers/registries.conf.d`, as CRI-O's, whatever `path` is; `null` for none.
    #[serde(default = "default_drop_in_dir")]
    pub drop_in_dir: Option<PathBuf>,
    /// The strategy for the mirrors found there.
    #[serde(default)]
    pub credentials: Option<Strategy>,
}

fn default_hosts_dir() -> PathBuf {
    PathBuf::from(files::CONTAINERD_HOSTS_DIR)
}

fn default_registries_conf() -> PathBuf {
    PathBuf::from(files::REGISTRIES_CONF)
}

fn default_drop_in_dir() -> Option<PathBuf> {
    Some(PathBuf::from(files::REGISTRIES_CONF_D))
}

impl MirrorsConfig {
    /// Checks what serde cannot (no I/O): sources and mirrors are registry locations, a
    /// source has at least one mirror, none is its own mirror.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        for (i, r) in self.registries.iter().enumerate() {
            let at = format!("mirrors.registries[{i}]");
            check_source(&r.source).map_err(|p| InvalidSetting::new(format!("{at}.source"), p))?;
            if r.mirrors.is_empty() {
                return Err(InvalidSetting::new(
                    format!("{at}.mirrors"),
                    "at least one mirror is required",
                ));
            }
            for (j, m) in r.mirrors.iter().enumerate() {
                let bad = |p: String| InvalidSetting::new(format!("{at}.mirrors[{j}]"), p);
                check_location(m).map_err(bad)?;
                if m.trim_end_matches('/') == r.source {
                    return Err(bad(format!("{:?} is the source itself", shown(m))));
                }
            }
        }
        Ok(())
    }
}

/// A location as it may be shown: one holding user-info (`user:password@host`, which no
/// runtime reads as a credential, but an operator may paste) is shown without it.
pub fn shown(location: &str) -> String {
    match location.rsplit_once('@') {
        None => location.to_string(),
        Some((before, after)) => {
            let scheme = before.find("://").map_or("", |i| &before[..i + 3]);
            format!("{scheme}[user-info removed]@{after}")
        }
    }
}

/// A source prefix: `host[:port][/path]` or `*.domain` (no port, no path).
fn check_source(s: &str) -> Result<(), String> {
    if let Some(domain) = s.strip_prefix("*.") {
        if domain.is_empty() || domain.contains(['/', ':', '@', '*']) {
            return Err(format!(
                "{:?}: a wildcard source is *.domain, without port or path",
                shown(s)
            ));
        }
        return check_location(domain);
    }
    check_location(s)
}

/// A registry location: `host[:port][/path]`, no scheme, no tag, a host the image
/// grammar takes for a registry (with a `.` or `:`, or `localhost`).
fn check_location(s: &str) -> Result<(), String> {
    if s.contains("://") {
        return Err(format!(
            "{:?}: write host[:port][/path], without a scheme",
            shown(s)
        ));
    }
    match mirror_image(s, "/x/y") {
        Some(_) => Ok(()),
        None => Err(format!(
            "{:?} is not a registry location: host[:port][/path], where the host has a dot or \
             a port or is localhost, and the path is lower-case repository components",
            shown(s)
        )),
    }
}

/// The image `location` + `rest` (`rest` is what followed the source prefix in the image
/// name: empty, or from a `/`), as containers/image rewrites a reference, if that is a
/// normalized image name the kubelet would send as it is (so its registry is `location`'s).
pub fn mirror_image(location: &str, rest: &str) -> Option<ImageName> {
    let name = format!("{}{rest}", location.trim_end_matches('/'));
    let image = ImageName::parse(&name).ok()?;
    (image.as_str() == name).then_some(image)
}

/// The checked section and the files it names, as read when the config was loaded.
#[derive(Debug, Default, Clone)]
pub struct Mirrors {
    config: MirrorsConfig,
    files: files::Read,
}

/// One mirror of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// Where, as configured (`harbor.example.com/dockerhub`).
    pub location: String,
    /// The image there, asked of the chain.
    pub image: ImageName,
}

/// The mirrors of one image and how their credentials combine with the source's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// In the order the runtime tries them.
    pub mirrors: Vec<Mirror>,
    /// Which credentials come first.
    pub strategy: Strategy,
    /// Where this route was configured (`mirrors.registries[0]`, a file).
    pub origin: String,
}

/// What the mirror configuration says about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// Its mirrors, if any.
    pub route: Option<Route>,
    /// The widest scope any answer for the image may have: `Image` when a mirror prefix
    /// with a path covers some images of its registry (then another image of the registry
    /// may have other mirrors, or none).
    pub scope: CacheKeyType,
}

impl Mirrors {
    /// The section, checked; no file read yet.
    pub fn new(config: MirrorsConfig) -> Result<Self, InvalidSetting> {
        config.check()?;
        Ok(Mirrors {
            config,
            files: files::Read::default(),
        })
    }

    /// Reads the files the section names (containerd's tree, `registries.conf`), bounded;
    /// what cannot be read is warned about and left out.
    pub fn read_files(&mut self) {
        self.files = files::Read::load(
            self.config
                .containerd
                .as_ref()
                .map(|c| c.hosts_dir.as_path()),
            self.config
                .registries_conf
                .as_ref()
                .map(|r| r.path.as_path()),
            self.config
                .registries_conf
                .as_ref()
                .and_then(|r| r.drop_in_dir.as_deref()),
        );
    }

    /// The sources of the `registries` list, in order.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.config.registries.iter().map(|r| r.source.as_str())
    }

    /// Whether nothing is mirrored.
    pub fn is_empty(&self) -> bool {
        self.config.registries.is_empty()
            && self.config.containerd.is_none()
            && self.config.registries_conf.is_none()
    }

    /// The files' names and bytes, for the cache context (the section itself is in the
    /// config text); when the section reads files, marked so even with none found: such a
    /// context never equals one made from the config's text alone.
    pub fn context_bytes(&self) -> Vec<u8> {
        if self.config.containerd.is_none() && self.config.registries_conf.is_none() {
            return Vec::new();
        }
        let mut out = b"\0runtime mirror files\0".to_vec();
        out.extend_from_slice(&self.files.context_bytes());
        out
    }

    /// The mirrors of `image` (see the module docs for which source wins) and the widest
    /// scope of its answers. Parses the files; no other I/O.
    pub fn lookup(&self, image: &ImageName) -> Lookup {
        if self.is_empty() {
            return Lookup {
                route: None,
                scope: CacheKeyType::Global,
            };
        }
        let default = self.config.credentials;
        let mut prefixes: Vec<files::PrefixRule> = self
            .config
            .registries
            .iter()
            .enumerate()
            .map(|(i, r)| files::PrefixRule {
                prefix: r.source.trim_end_matches('/').to_string(),
                locations: r.mirrors.clone(),
                origin: format!("mirrors.registries[{i}]"),
                colon_separates: false,
                strategy: r.credentials,
            })
            .collect();
        let explicit = prefixes.len();
        let conf = self.config.registries_conf.as_ref();
        if let Some(c) = conf {
            prefixes.extend(self.files.registries_conf_rules(c.credentials));
        }
        let scope = match prefixes
            .iter()
            .any(|p| p.has_path() && p.host_matches(image))
        {
            true => CacheKeyType::Image,
            false => CacheKeyType::Global,
        };
        // The written list first, then containerd, then registries.conf.
        let route = files::longest_match(&prefixes[..explicit], image)
            .or_else(|| {
                let c = self.config.containerd.as_ref()?;
                self.files.containerd_route(image, c.credentials)
            })
            .or_else(|| files::longest_match(&prefixes[explicit..], image))
            .map(|found| found.into_route(default))
            .filter(|r| !r.mirrors.is_empty());
        Lookup { route, scope }
    }
}

#[cfg(test)]
mod tests;
