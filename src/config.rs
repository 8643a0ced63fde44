//! The plugin's own config file (`--config` / `KUBELET_KEYRING_CONFIG`), YAML or JSON.
//!
//! Parsed in two layers: [`RawConfig`] mirrors the file (serde, unknown fields refused, errors
//! carry line and column); [`Config`] is the validated form the rest of the program uses.
//! Every backend owns its section (`ecr:`, `gcp:`, `acr:`, `identity:`) and validates it when
//! it builds its backend; `mirrors:` ([`crate::mirrors`]) is every backend's. No file means
//! defaults: every compiled-in backend, in the order ecr, gcp, acr, identity, docker-config,
//! and no mirrors.
//!
//! ```yaml
//! apiVersion: kubelet-keyring/v1alpha1
//! kind: KeyringConfig
//! backends: [ecr, gcp, acr, identity, docker-config]   # the chain's order; omit one to disable it
//! mirrors:                                   # credentials that follow mirrors
//!   registries: [{source: docker.io, mirrors: [harbor.example.com/dockerhub]}]
//! ```

use std::path::{Path, PathBuf};

use keyring_api::nesting::check_nesting;
use keyring_api::BackendError;

use crate::backends::{compiled_in, NAMES};
use crate::mirrors::Mirrors;
use crate::upstream::Upstream;

/// The `apiVersion` of the plugin config.
pub const API_VERSION: &str = "kubelet-keyring/v1alpha1";
/// The `kind` of the plugin config.
pub const KIND: &str = "KeyringConfig";
/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

pub use crate::backends::{RawConfig, Sections};

/// The validated config.
#[derive(Debug, Default)]
pub struct Config {
    /// Where it came from, if from a file.
    pub path: Option<PathBuf>,
    /// The file's text (empty without a file): part of the cache context, so a config change
    /// never serves answers made under the old one.
    pub text: String,
    /// The chain, in order: names of compiled-in backends.
    pub order: Vec<&'static str>,
    /// Whether the file listed `backends` (then an upstream name does not narrow the chain).
    pub order_given: bool,
    /// Upstream arguments and environment that shape the answers ([`Config::apply_upstream`]),
    /// for the cache context.
    pub upstream_context: Vec<u8>,
    /// The backends' sections.
    pub sections: Sections,
    /// The `mirrors:` section, with the runtime files it names once [`Config::load`] read
    /// them.
    pub mirrors: Mirrors,
}

/// Why the config was refused. The text names the file and the line or field.
#[derive(Debug, thiserror::Error)]
#[error("config {path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

impl Config {
    /// Loads and validates the file at `path`, or the defaults when `path` is `None`
    /// ([`Config::read`], then [`Config::from_read`]).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Config::from_read(Config::read(path)?)
    }

    /// Reads the file at `path` without parsing it: it must be a regular file (a FIFO,
    /// device or directory is refused before anything is read or warned about), of at most
    /// 1 MiB, UTF-8, nested at most [`MAX_FLOW_DEPTH`](keyring_api::nesting::MAX_FLOW_DEPTH)
    /// brackets and [`MAX_BLOCK_DEPTH`](keyring_api::nesting::MAX_BLOCK_DEPTH) levels of
    /// indentation deep ([`check_nesting`]).
    pub fn read(path: Option<&Path>) -> Result<Read, ConfigError> {
        let Some(path) = path else {
            return Ok(Read {
                path: None,
                text: String::new(),
            });
        };
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        let refused = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::FileTooLarge => {
                err(e.to_string())
            }
            _ => err(format!("cannot read: {e}")),
        };
        let file = keyring_api::file::open_regular(path).map_err(refused)?;
        if let Ok(meta) = file.metadata() {
            warn_if_others_can_write(path, &meta);
        }
        let bytes = keyring_api::file::read_at_most(file, MAX_CONFIG_BYTES).map_err(refused)?;
        let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8 text".into()))?;
        check_nesting(text.as_bytes()).map_err(|e| err(e.to_string()))?;
        Ok(Read {
            path: Some(path.to_path_buf()),
            text,
        })
    }

    /// Parses and validates what [`Config::read`] read (no file: the defaults). The runtime
    /// files its `mirrors:` section names (containerd's `hosts.toml` tree,
    /// `registries.conf`) are read here, bounded, for the cache context
    /// ([`Mirrors::read_files`]).
    pub fn from_read(read: Read) -> Result<Self, ConfigError> {
        let Some(path) = read.path else {
            return Config::validate(RawConfig::default(), None);
        };
        let raw = Config::parse(&read.text).map_err(|e| ConfigError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut config = Config::validate(raw, Some(&path))?;
        config.text = read.text;
        config.mirrors.read_files();
        Ok(config)
    }

    /// Parses YAML or JSON text into the raw layer.
    pub fn parse(text: &str) -> Result<RawConfig, serde_norway::Error> {
        if text.trim().is_empty() {
            return Ok(RawConfig::default());
        }
        serde_norway::from_str(text)
    }

    /// Checks the raw layer and resolves defaults.
    pub fn validate(raw: RawConfig, path: Option<&Path>) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError {
            path: path.map_or("(defaults)".into(), |p| p.display().to_string()),
            message,
        };
        if let Some(v) = raw.api_version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(err(format!(
                "apiVersion: unsupported value {v:?}, expected {API_VERSION:?}"
            )));
        }
        if let Some(k) = raw.kind.as_deref().filter(|k| *k != KIND) {
            return Err(err(format!(
                "kind: unsupported value {k:?}, expected {KIND:?}"
            )));
        }
        let order_given = raw.backends.is_some();
        let order = match &raw.backends {
            None => NAMES.iter().copied().filter(|n| compiled_in(n)).collect(),
            Some(names) => {
                let mut order = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let known = NAMES.iter().copied().find(|n| n == name).ok_or_else(|| {
                        err(format!(
                            "backends[{i}]: unknown backend {name:?}; known: {}",
                            NAMES.join(", ")
                        ))
                    })?;
                    if names[..i].contains(name) {
                        return Err(err(format!("backends[{i}]: {name:?} listed twice")));
                    }
                    if !compiled_in(known) {
                        tracing::warn!(
                            "backend {name:?} is not compiled into this build; skipping it"
                        );
                        continue;
                    }
                    order.push(known);
                }
                order
            }
        };
        // Sections that need more than their serde shape are checked here, so a bad one is a
        // config error (exit 2) before any request, not a failure of every pull.
        let sections = raw.sections().map_err(|e| err(e.to_string()))?;
        let mirrors =
            Mirrors::new(raw.mirrors.unwrap_or_default()).map_err(|e| err(e.to_string()))?;
        Ok(Config {
            path: path.map(Path::to_path_buf),
            text: String::new(),
            order,
            order_given,
            upstream_context: Vec::new(),
            sections,
            mirrors,
        })
    }
}

impl Config {
    /// Applies the upstream plugins' command line ([`crate::upstream`]): under an upstream
    /// name the chain is that plugin's backend alone (unless the file lists `backends`);
    /// each active backend applies the flags it knows. Warned flags and variables are
    /// logged here, once each.
    pub fn apply_upstream(
        &mut self,
        up: &Upstream,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), BackendError> {
        if up.is_empty() {
            return Ok(());
        }
        if let Some(p) = up.persona {
            if !self.order_given {
                self.order.retain(|n| *n == p.backend);
            }
        }
        let as_upstream = up.persona.is_some();
        for p in up.active() {
            self.sections
                .configure_upstream(p.backend, &up.parsed, as_upstream, env)?;
        }
        for w in up.warnings(env)? {
            tracing::warn!("{w}");
        }
        self.upstream_context = up.context();
        Ok(())
    }

    /// Everything of the config that shapes answers, for the cache context: the file's
    /// text, the upstream command line, and the runtimes' mirror files it had read.
    pub fn context_bytes(&self) -> Vec<u8> {
        context_of(
            &self.text,
            &self.upstream_context,
            &self.mirrors.context_bytes(),
        )
    }
}

/// The plugin config file as read, not parsed yet ([`Config::read`]).
#[derive(Debug)]
pub struct Read {
    path: Option<PathBuf>,
    text: String,
}

impl Read {
    /// The cache context bytes of a run with this file and `upstream_context` (the upstream
    /// command line's, as [`Config::apply_upstream`] records it), when they need no parsing:
    /// the same bytes [`Config::context_bytes`] gives once parsed. `None` when a line (its
    /// comment aside) names `containerd` or `registriesConf`: the runtime files those name
    /// are part of the context. So a cache hit parses nothing: a realistic identity config
    /// (5 KB of YAML) cost a hit 1.5 M instructions, nearly twice the hit itself.
    ///
    /// A config that reads runtime files always has a context these bytes never equal
    /// ([`Mirrors::context_bytes`] marks it), so a text that names them in some other way
    /// (an escaped key) costs its hits a parse, never a wrong answer.
    pub fn context_bytes(&self, upstream_context: &[u8]) -> Option<Vec<u8>> {
        let names_files = self.text.lines().any(|l| {
            let l = l.split('#').next().unwrap_or(l);
            l.contains("containerd") || l.contains("registriesConf")
        });
        (!names_files).then(|| context_of(&self.text, upstream_context, &[]))
    }
}

/// The one layout of the cache context's config bytes.
fn context_of(text: &str, upstream_context: &[u8], mirror_files: &[u8]) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    out.extend_from_slice(upstream_context);
    out.extend_from_slice(mirror_files);
    out
}

/// Whoever can write the config decides which credentials go to which registry: say so when
/// that is someone besides us and root.
pub fn warn_if_others_can_write(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    if meta.mode() & 0o022 != 0 {
        tracing::warn!(
            "{} is writable by group or others (mode {:o}); whoever can write it controls where credentials go",
            path.display(),
            meta.mode() & 0o777
        );
    } else if meta.uid() != me && meta.uid() != 0 {
        tracing::warn!(
            "{} is owned by uid {}, not by us or root",
            path.display(),
            meta.uid()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unparsed_context_is_the_parsed_one_or_none_when_mirrors_may_add_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.yaml");
        for (text, unparsed) in [
            ("backends: [docker-config]\n", true),
            ("identity:\n  rules: []\n", true),
            ("", true),
            (
                "mirrors: {registries: [{source: a.example.com, mirrors: [b.example.com]}]}\n",
                true,
            ),
            ("ecr: {mirrors: []}\n", true),
            (
                "# containerd's hosts.toml is not read\nbackends: [docker-config]\n",
                true,
            ),
            ("mirrors:\n  containerd: {hostsDir: /nonexistent}\n", false),
            ("mirrors: {registriesConf: {path: /nonexistent}}\n", false),
        ] {
            std::fs::write(&path, text).unwrap();
            let read = Config::read(Some(&path)).unwrap();
            let early = read.context_bytes(b"upstream");
            assert_eq!(early.is_some(), unparsed, "{text:?}");
            let mut config = Config::from_read(read).unwrap();
            config.upstream_context = b"upstream".to_vec();
            match early {
                Some(early) => assert_eq!(early, config.context_bytes(), "{text:?}"),
                // Files named, even none found: a context no unparsed text has.
                None => assert_ne!(
                    context_of(&config.text, b"upstream", &[]),
                    config.context_bytes(),
                    "{text:?}"
                ),
            }
        }
        let none = Config::read(None).unwrap();
        assert_eq!(
            none.context_bytes(&[]),
            Some(Config::load(None).unwrap().context_bytes())
        );
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.order.last(), Some(&crate::backends::DOCKER_CONFIG));
        assert!(c.order.iter().all(|p| compiled_in(p)));
    }

    #[test]
    fn order_and_errors_name_the_place() {
        let raw = Config::parse("backends: [docker-config]\n").unwrap();
        let c = Config::validate(raw, None).unwrap();
        assert_eq!(c.order, [crate::backends::DOCKER_CONFIG]);

        let e = Config::parse("backends: [docker-config]\nbogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `bogus`") && e.contains("line 2"),
            "{e}"
        );

        let raw = Config::parse("backends: [docker-config, quay]").unwrap();
        let e = Config::validate(raw, None).unwrap_err().to_string();
        assert!(e.contains("backends[1]") && e.contains("quay"), "{e}");

        let raw = Config::parse(r#"{"apiVersion": "v9"}"#).unwrap();
        assert!(Config::validate(raw, None)
            .unwrap_err()
            .to_string()
            .contains("apiVersion"));
    }
}
