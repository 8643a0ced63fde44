//! The plugin's own config file (`--config` / `KUBELET_KEYRING_CONFIG`), YAML or JSON.
//!
//! Parsed in two layers: [`RawConfig`] mirrors the file (serde, unknown fields refused, errors
//! carry line and column); [`Config`] is the validated form the rest of the program uses.
//! Every backend owns its section (`ecr:`, `gcp:`, `acr:`) and validates it when it builds its
//! provider. No file means defaults: every compiled-in backend, in the order
//! ecr, gcp, acr, docker-config.
//!
//! ```yaml
//! apiVersion: kubelet-keyring/v1alpha1
//! kind: KeyringConfig
//! providers: [ecr, gcp, acr, docker-config]   # order of the chain; omit one to disable it
//! ```

use std::path::{Path, PathBuf};

use keyring_api::ProviderError;
use serde::Deserialize;

use crate::upstream::Upstream;

/// The `apiVersion` of the plugin config.
pub const API_VERSION: &str = "kubelet-keyring/v1alpha1";
/// The `kind` of the plugin config.
pub const KIND: &str = "KeyringConfig";
/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// Must be [`API_VERSION`] when present.
    pub api_version: Option<String>,
    /// Must be [`KIND`] when present.
    pub kind: Option<String>,
    /// Provider names in chain order.
    pub providers: Option<Vec<String>>,
    /// The ECR backend's section.
    #[cfg(feature = "ecr")]
    pub ecr: Option<keyring_ecr::Config>,
    /// The GCP backend's section.
    #[cfg(feature = "gcp")]
    pub gcp: Option<keyring_gcp::Config>,
    /// The ACR backend's section.
    #[cfg(feature = "acr")]
    pub acr: Option<keyring_acr::Config>,
    /// Sections of backends this build does not have are accepted, and warned about.
    #[cfg(not(feature = "ecr"))]
    pub ecr: Option<serde::de::IgnoredAny>,
    /// See `ecr`.
    #[cfg(not(feature = "gcp"))]
    pub gcp: Option<serde::de::IgnoredAny>,
    /// See `ecr`.
    #[cfg(not(feature = "acr"))]
    pub acr: Option<serde::de::IgnoredAny>,
}

/// A provider of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderName {
    /// AWS ECR private and Public.
    Ecr,
    /// GCR and Artifact Registry.
    Gcp,
    /// Azure Container Registry.
    Acr,
    /// docker config.json / .dockercfg (and the credential helpers they name).
    DockerConfig,
}

impl ProviderName {
    /// Every provider, in the default chain order.
    pub const ALL: [ProviderName; 4] = [
        ProviderName::Ecr,
        ProviderName::Gcp,
        ProviderName::Acr,
        ProviderName::DockerConfig,
    ];

    /// The name used in the config file and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Ecr => "ecr",
            ProviderName::Gcp => "gcp",
            ProviderName::Acr => "acr",
            ProviderName::DockerConfig => "docker-config",
        }
    }

    /// Whether this build includes the backend.
    pub fn compiled_in(self) -> bool {
        match self {
            ProviderName::Ecr => cfg!(feature = "ecr"),
            ProviderName::Gcp => cfg!(feature = "gcp"),
            ProviderName::Acr => cfg!(feature = "acr"),
            ProviderName::DockerConfig => true,
        }
    }
}

/// The validated config.
#[derive(Debug, Default)]
pub struct Config {
    /// Where it came from, if from a file.
    pub path: Option<PathBuf>,
    /// The file's text (empty without a file): part of the cache context, so a config change
    /// never serves answers made under the old one.
    pub text: String,
    /// The chain, in order; only compiled-in backends.
    pub order: Vec<ProviderName>,
    /// Whether the file listed `providers` (then an upstream name does not narrow the chain).
    pub order_given: bool,
    /// Upstream arguments and environment that shape the answers ([`Config::apply_upstream`]),
    /// for the cache context.
    pub upstream_context: Vec<u8>,
    /// The ECR section.
    #[cfg(feature = "ecr")]
    pub ecr: keyring_ecr::Config,
    /// The GCP section.
    #[cfg(feature = "gcp")]
    pub gcp: keyring_gcp::Config,
    /// The ACR section.
    #[cfg(feature = "acr")]
    pub acr: keyring_acr::Config,
}

/// Why the config was refused. The text names the file and the line or field.
#[derive(Debug, thiserror::Error)]
#[error("config {path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

impl Config {
    /// Loads and validates the file at `path`, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Config::validate(RawConfig::default(), None);
        };
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        use std::io::Read;
        let mut text = String::new();
        let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
        if let Ok(meta) = file.metadata() {
            warn_if_others_can_write(path, &meta);
        }
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| err(format!("cannot read: {e}")))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(err(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let raw = Config::parse(&text).map_err(err)?;
        let mut config = Config::validate(raw, Some(path))?;
        config.text = text;
        Ok(config)
    }

    /// Parses YAML or JSON text into the raw layer.
    pub fn parse(text: &str) -> Result<RawConfig, String> {
        if text.trim().is_empty() {
            return Ok(RawConfig::default());
        }
        serde_norway::from_str(text).map_err(|e| e.to_string())
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
        let order_given = raw.providers.is_some();
        let order = match raw.providers {
            None => ProviderName::ALL
                .into_iter()
                .filter(|p| p.compiled_in())
                .collect(),
            Some(names) => {
                let mut order = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    let p = ProviderName::ALL
                        .into_iter()
                        .find(|p| p.as_str() == name)
                        .ok_or_else(|| {
                            err(format!(
                                "providers[{i}]: unknown provider {name:?}; known: ecr, gcp, acr, docker-config"
                            ))
                        })?;
                    if order.contains(&p) {
                        return Err(err(format!("providers[{i}]: {name:?} listed twice")));
                    }
                    if !p.compiled_in() {
                        tracing::warn!(
                            "provider {name:?} is not compiled into this build; skipping it"
                        );
                        continue;
                    }
                    order.push(p);
                }
                order
            }
        };
        // Backend sections that need more than their serde shape are checked here, so a bad
        // one is a config error (exit 2) before any request, not a failure of every pull.
        #[cfg(feature = "acr")]
        if let Some(acr) = &raw.acr {
            acr.validate().map_err(|e| err(format!("acr: {e}")))?;
        }
        #[cfg(not(feature = "ecr"))]
        if raw.ecr.is_some() {
            tracing::warn!("the ecr section is ignored: this build has no ecr backend");
        }
        #[cfg(not(feature = "gcp"))]
        if raw.gcp.is_some() {
            tracing::warn!("the gcp section is ignored: this build has no gcp backend");
        }
        #[cfg(not(feature = "acr"))]
        if raw.acr.is_some() {
            tracing::warn!("the acr section is ignored: this build has no acr backend");
        }
        Ok(Config {
            path: path.map(Path::to_path_buf),
            text: String::new(),
            order,
            order_given,
            upstream_context: Vec::new(),
            #[cfg(feature = "ecr")]
            ecr: raw.ecr.unwrap_or_default(),
            #[cfg(feature = "gcp")]
            gcp: raw.gcp.unwrap_or_default(),
            #[cfg(feature = "acr")]
            acr: raw.acr.unwrap_or_default(),
        })
    }
}

impl Config {
    /// Applies the upstream plugins' command line ([`crate::upstream`]): under an upstream
    /// name the chain is that plugin's backend alone (unless the file lists `providers`);
    /// each active backend applies the flags it knows. Warned flags and variables are
    /// logged here, once each.
    pub fn apply_upstream(
        &mut self,
        up: &Upstream,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ProviderError> {
        if up.is_empty() {
            return Ok(());
        }
        if let Some(p) = up.persona {
            if !self.order_given {
                self.order.retain(|n| n.as_str() == p.backend);
            }
        }
        // Read only by the backends compiled in.
        #[allow(unused_variables)]
        let as_upstream = up.persona.is_some();
        for p in up.active() {
            match p.backend {
                #[cfg(feature = "ecr")]
                keyring_ecr::NAME => {
                    keyring_ecr::upstream::configure(&mut self.ecr, &up.parsed, as_upstream, env)?
                }
                #[cfg(feature = "gcp")]
                keyring_gcp::NAME => {
                    keyring_gcp::upstream::configure(&mut self.gcp, &up.parsed, as_upstream, env)?
                }
                #[cfg(feature = "acr")]
                keyring_acr::NAME => {
                    keyring_acr::upstream::configure(&mut self.acr, &up.parsed, as_upstream, env)?
                }
                _ => {}
            }
        }
        for w in up.warnings(env)? {
            tracing::warn!("{w}");
        }
        self.upstream_context = up.context();
        Ok(())
    }

    /// Everything of the config that shapes answers, for the cache context.
    pub fn context_bytes(&self) -> Vec<u8> {
        let mut out = self.text.as_bytes().to_vec();
        out.extend_from_slice(&self.upstream_context);
        out
    }
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
    fn defaults_without_a_file() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.order.last(), Some(&ProviderName::DockerConfig));
        assert!(c.order.iter().all(|p| p.compiled_in()));
    }

    #[test]
    fn order_and_errors_name_the_place() {
        let raw = Config::parse("providers: [docker-config]\n").unwrap();
        let c = Config::validate(raw, None).unwrap();
        assert_eq!(c.order, [ProviderName::DockerConfig]);

        let e = Config::parse("providers: [docker-config]\nbogus: 1\n").unwrap_err();
        assert!(
            e.contains("unknown field `bogus`") && e.contains("line 2"),
            "{e}"
        );

        let raw = Config::parse("providers: [docker-config, quay]").unwrap();
        let e = Config::validate(raw, None).unwrap_err().to_string();
        assert!(e.contains("providers[1]") && e.contains("quay"), "{e}");

        let raw = Config::parse(r#"{"apiVersion": "v9"}"#).unwrap();
        assert!(Config::validate(raw, None)
            .unwrap_err()
            .to_string()
            .contains("apiVersion"));
    }
}
