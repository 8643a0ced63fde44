//! Decoding one `CredentialProviderConfig` file as the kubelet does (spec 2.1, 2.2).
//!
//! The kubelet turns YAML into JSON (first YAML document only), reads `kind` and `apiVersion`,
//! refuses kinds and versions it has not registered, then decodes strictly: an unknown field
//! (`providers[0].unknownField`) is an error, field names are case-sensitive, and a value of
//! the wrong JSON type (`defaultCacheDuration: 0` is a number, not a string) is fatal. `null`
//! means "absent" everywhere, as in Go.
//!
//! This module walks the parsed YAML itself instead of deriving `Deserialize`, so that it can
//! report every unknown field and type error with its kubelet path, not just the first, and so
//! that what the fields are depends on the config version and the kubelet release
//! (`tokenAttributes` exists only in config `v1` from 1.33, `cacheType` from 1.34).
//! Nothing here echoes an `env` value: those may hold secrets.

use keyring_api::Secret;

use crate::kubelet::Kubelet;

/// The config's API group.
pub const GROUP: &str = "kubelet.config.k8s.io";
/// The config's kind.
pub const KIND: &str = "CredentialProviderConfig";
/// One provider as the kubelet holds it after decoding, whatever the file's version.
#[derive(Debug, Clone, Default)]
pub struct Provider {
    /// `name`: the executable in the bin dir.
    pub name: String,
    /// `matchImages`.
    pub match_images: Vec<String>,
    /// `defaultCacheDuration` in nanoseconds; `None` when absent or null.
    pub default_cache_duration: Option<i64>,
    /// `apiVersion`: the protocol version.
    pub api_version: String,
    /// `args`.
    pub args: Vec<String>,
    /// `env`.
    pub env: Vec<EnvVar>,
    /// `tokenAttributes`.
    pub token_attributes: Option<TokenAttributes>,
    /// Fields whose value could not be decoded (already reported as errors); the rules about
    /// them are skipped rather than piling a "Required value" on top. `"*"`: the whole entry.
    pub undecodable: Vec<&'static str>,
}

impl Provider {
    /// Whether `field` decoded, so rules about it apply.
    pub fn decoded(&self, field: &str) -> bool {
        !self.undecodable.iter().any(|f| *f == field || *f == "*")
    }
}

/// An `env` entry. The value may be a secret (`AWS_SECRET_ACCESS_KEY`).
#[derive(Debug, Clone, Default)]
pub struct EnvVar {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: Secret<String>,
}

/// `tokenAttributes` (config `v1`, kubelet 1.33+).
#[derive(Debug, Clone, Default)]
pub struct TokenAttributes {
    /// `serviceAccountTokenAudience`.
    pub service_account_token_audience: String,
    /// `cacheType` (1.34+).
    pub cache_type: String,
    /// `requireServiceAccount`; `None` when absent.
    pub require_service_account: Option<bool>,
    /// `requiredServiceAccountAnnotationKeys`.
    pub required_service_account_annotation_keys: Vec<String>,
    /// `optionalServiceAccountAnnotationKeys`.
    pub optional_service_account_annotation_keys: Vec<String>,
    /// As [`Provider::undecodable`].
    pub undecodable: Vec<&'static str>,
}

impl TokenAttributes {
    /// Whether `field` decoded.
    pub fn decoded(&self, field: &str) -> bool {
        !self.undecodable.iter().any(|f| *f == field || *f == "*")
    }
}

/// Something wrong (or suspicious) found while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Index of the provider in the file, when it concerns one.
    pub provider: Option<usize>,
    /// The field's path (`providers[0].defaultCacheDuration`), when the message does not
    /// already name it.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A decoded file.
#[derive(Debug, Default)]
pub struct Decoded {
    /// The config version (`v1`), once `kind` and `apiVersion` were accepted.
    pub version: Option<String>,
    /// The providers, in file order (even those with errors).
    pub providers: Vec<Provider>,
    /// Decoding errors: the kubelet refuses the file.
    pub errors: Vec<Problem>,
    /// Traps noticed while decoding.
    pub warnings: Vec<Problem>,
    /// The provider list itself is unknown (wrong kind, bad YAML, `providers` not a list).
    pub fatal: bool,
}

/// Decodes `text` (YAML or JSON) for `kubelet`.
pub fn decode(text: &str, kubelet: &Kubelet) -> Decoded {
    walk::document(text, kubelet)
}

mod walk;

#[cfg(test)]
mod tests;
