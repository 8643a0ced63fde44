//! What a backend is to the binary.
//!
//! A *backend* is one source of credentials inside kubelet-keyring (`ecr`, `gcp`, `acr`,
//! `docker-config`, ...), one crate each. It gives the binary three things:
//!
//! * a [`BackendInfo`] (`pub static BACKEND`): its name, the environment its answers depend
//!   on, the upstream plugin it answers for;
//! * for a backend with a section in the plugin config file, a type implementing
//!   [`Configurable`]: how to check that section, apply an upstream command line to it and
//!   build the backend from it;
//! * the built value, a [`Backend`]: it gets a [`Query`] (the normalized image, parsed once,
//!   plus the v1 service-account fields) and answers with one of three outcomes:
//!   * `Ok(Outcome::Answer(..))`: credentials (possibly none) and how long they stay good;
//!   * `Ok(Outcome::NotApplicable { scope })`: not my image, or not configured here; try the
//!     next (`scope`: whether the refusal holds for the registry or only this image);
//!   * `Err(BackendError)`: this is my registry and I failed (its
//!     [`ErrorKind`](crate::ErrorKind) decides exit code and stale serving). The chain
//!     stops: falling through to a weaker source would hide the failure behind a 401 at
//!     pull time.
//!
//! The binary lists the backends in one place (`src/backends.rs`) and derives from that list
//! the config file's sections, the chain, the cache context (a changed variable a backend
//! reads must not find another environment's answers) and the names it answers to. So `src/`
//! names no cloud SDK variable, no backend constant and no backend's config type.
//!
//! Backends are synchronous. A cloud backend that needs async I/O builds its runtime inside
//! [`Backend::provide`], so the hot path (cache hit, docker config) never pays for one.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::deadline::Deadline;
use crate::error::BackendError;
use crate::image::ImageName;
use crate::pattern::Target;
use crate::secret::Secret;
use crate::upstream::{Parsed, Plugin};
use crate::wire::{AuthConfig, CacheKeyType};

/// Reads one environment variable (the process environment in the binary, a map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Applies an upstream plugin's command line and environment to a config section.
/// `as_upstream`: the binary runs under the upstream name, whose defaults then apply where
/// the file did not set a field.
pub type ConfigureUpstream<C> = fn(
    config: &mut C,
    parsed: &Parsed,
    as_upstream: bool,
    env: Env<'_>,
) -> Result<(), BackendError>;

/// A backend with its own section in the plugin config file (`ecr:`, `gcp:`, `acr:`).
///
/// The binary reads the section with serde (so errors keep their line and column), calls
/// [`Configurable::check`] when the file is loaded (a bad section exits 2 before any request),
/// [`Configurable::CONFIGURE_UPSTREAM`] when it runs with an upstream plugin's command line,
/// and [`Configurable::build`] only when the chain is built, on a cache miss.
pub trait Configurable {
    /// The section as serde reads it; `Default` when the file has none.
    type Config: serde::de::DeserializeOwned + Default + Clone + fmt::Debug;

    /// The static description.
    const BACKEND: &'static BackendInfo;

    /// Checks what the section's serde shape cannot (URLs, hosts, combinations). No I/O.
    fn check(config: &Self::Config) -> Result<(), BackendError> {
        let _ = config;
        Ok(())
    }

    /// Applies an upstream plugin's command line and environment to the section (the
    /// backend's `upstream::configure`).
    const CONFIGURE_UPSTREAM: ConfigureUpstream<Self::Config>;

    /// Builds the backend. Cheap: no I/O, no client (those come in `provide`).
    fn build(config: &Self::Config) -> Result<Box<dyn Backend>, BackendError>;

    /// What is wrong with the kubelet's entry for this section (for `validate-config`): a
    /// rule the entry's `matchImages` never lets the kubelet ask for, a service-account
    /// token the entry's `tokenAttributes` never sends or sends for another audience. No I/O;
    /// nothing by default.
    fn kubelet_findings(config: &Self::Config, entry: &KubeletEntry<'_>) -> Vec<Finding> {
        let _ = (config, entry);
        Vec::new()
    }

    /// The host patterns of this section the kubelet must send requests for (some entry's
    /// `matchImages` must admit each), with the setting that names each
    /// (`identity.rules[0].hosts[1]`), for `validate-config`. None by default.
    fn kubelet_hosts(config: &Self::Config) -> Vec<(String, String)> {
        let _ = config;
        Vec::new()
    }
}

/// A kubelet `CredentialProviderConfig` entry that runs this program, as
/// [`Configurable::kubelet_findings`] sees it. Several entries may share one plugin config
/// (one per service-account token audience): a section checks against an entry only what the
/// entry's `matchImages` sends it.
#[derive(Debug, Clone, Copy)]
pub struct KubeletEntry<'a> {
    /// `matchImages`: the images the kubelet runs the plugin for.
    pub match_images: &'a [String],
    /// `tokenAttributes`, when the entry has them.
    pub token_attributes: Option<KubeletTokenAttributes<'a>>,
}

/// An entry's `tokenAttributes` (KEP-4412).
#[derive(Debug, Clone, Copy)]
pub struct KubeletTokenAttributes<'a> {
    /// `serviceAccountTokenAudience`: the `aud` of every token the kubelet sends.
    pub audience: &'a str,
    /// `cacheType`: `Token` or `ServiceAccount` (empty before kubelet 1.34).
    pub cache_type: &'a str,
    /// `requireServiceAccount`.
    pub require_service_account: Option<bool>,
    /// `requiredServiceAccountAnnotationKeys`.
    pub required_annotations: &'a [String],
    /// `optionalServiceAccountAnnotationKeys`.
    pub optional_annotations: &'a [String],
}

impl KubeletTokenAttributes<'_> {
    /// Whether the kubelet passes the service-account annotation `key`.
    pub fn passes_annotation(&self, key: &str) -> bool {
        self.required_annotations
            .iter()
            .chain(self.optional_annotations)
            .any(|k| k == key)
    }
}

impl KubeletEntry<'_> {
    /// Whether some `matchImages` entry admits images of `host` (a rule's host pattern,
    /// itself possibly a glob: a `*` label of the pattern is admitted by a `*` label).
    pub fn admits(&self, host: &str) -> bool {
        self.match_images
            .iter()
            .any(|m| crate::pattern::urls_match(m, host))
    }
}

/// One thing `validate-config` reports about a backend's section against a kubelet entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A warning (pulls fail or do not do what the config says), or a note.
    pub warning: bool,
    /// What, naming the config field (`identity.rules[0]`) and the kubelet field.
    pub message: String,
}

/// A backend's static description.
#[derive(Debug)]
pub struct BackendInfo {
    /// The backend name (`ecr`, `gcp`, `acr`, `docker-config`).
    pub name: &'static str,
    /// Environment variables whose values change this backend's answers: names, or prefixes
    /// ending in `*`. Their values go into the cache context (only the presence of names that
    /// look secret).
    pub cache_env: &'static [&'static str],
    /// The upstream plugin this backend answers for under its names, if any.
    pub upstream: Option<&'static Plugin>,
}

impl BackendInfo {
    /// Whether `var` is one of [`BackendInfo::cache_env`].
    pub fn reads(&self, var: &str) -> bool {
        self.cache_env
            .iter()
            .any(|p| crate::upstream::env_covers(p, var))
    }
}

/// What a backend is asked.
#[derive(Debug, Clone)]
pub struct Query {
    /// The normalized image.
    pub image: ImageName,
    /// The same, parsed for matching.
    pub target: Target,
    /// v1 token mode: the pod's service-account token.
    pub service_account_token: Option<Secret<String>>,
    /// v1 token mode: the service account's configured annotations.
    pub service_account_annotations: BTreeMap<String, String>,
    /// The wall clock for expiry decisions (replaced in tests).
    pub clock: Clock,
    /// The invocation's deadline, shared with the cache lock wait: every network call of the
    /// backend ends by then.
    pub deadline: Deadline,
}

impl Query {
    /// A query for a normalized image with no service-account data.
    pub fn new(image: ImageName) -> Self {
        let target = Target::new(image.as_str());
        Query {
            image,
            target,
            service_account_token: None,
            service_account_annotations: BTreeMap::new(),
            clock: Clock::invocation(),
            deadline: Deadline::invocation(),
        }
    }
}

/// A backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Registry pattern → credential. Empty means "no credentials" (a valid answer).
    pub auth: BTreeMap<String, AuthConfig>,
    /// The widest scope for which this exact answer holds.
    pub cache_key_type: CacheKeyType,
    /// How long, from now, the answer may be reused: by the kubelet (`cacheDuration`) and by
    /// our own cache. Never longer than the credential lives. Zero
    /// ([`lifetime::UNCACHED`](crate::lifetime::UNCACHED)): for this pull only, stored by
    /// neither.
    pub lifetime: Duration,
    /// When the credential itself stops working, if the backend knows (cloud tokens).
    pub expires_at: Option<SystemTime>,
    /// Where the credential came from, for diagnostics: a file path, a helper name, a cloud
    /// identity. Never a secret.
    pub source: String,
}

/// A backend's outcome for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This backend answers (possibly with no credentials).
    Answer(Answer),
    /// Not this backend's image, or not configured; ask the next. `scope` is the widest scope
    /// this refusal holds for, as the kubelet's `cacheKeyType`: `Registry` when the host
    /// alone decided it; `Image` when a rule of this backend covers the host only under some
    /// paths (a mirror at `host/gcr`), so that another image of the host may well be this
    /// backend's. When no backend answers, the empty answer is scoped by the narrowest
    /// refusal, so a path's "not mine" is never cached, by us or by the kubelet, for the
    /// whole registry.
    NotApplicable {
        /// The widest scope of the refusal.
        scope: CacheKeyType,
    },
}

impl Outcome {
    /// "Not mine", decided from the registry host alone: holds for every image of the host.
    pub const NOT_MINE: Outcome = Outcome::NotApplicable {
        scope: CacheKeyType::Registry,
    };

    /// "Not mine" for this image only: a rule of the backend covers other paths of its host.
    pub const NOT_MINE_AT_THIS_PATH: Outcome = Outcome::NotApplicable {
        scope: CacheKeyType::Image,
    };
}

/// What `kubelet-keyring explain` shows for one backend: whether it owns the image and why,
/// found without network I/O and without any secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// `Some(true)`: this backend answers for the image; `Some(false)`: it passes it on;
    /// `None`: it cannot tell without asking a remote service.
    pub applies: Option<bool>,
    /// One line: the decision and the reason.
    pub summary: String,
    /// Supporting facts: files searched, keys that matched or not and why, identity sources.
    pub details: Vec<String>,
}

/// A credential source.
pub trait Backend: Send + Sync {
    /// A short stable name (`docker-config`, `ecr`, ...), used in logs, errors and the cache.
    fn name(&self) -> &'static str;

    /// Answers one query; see the module docs for the three outcomes.
    fn provide(&self, query: &Query) -> Result<Outcome, BackendError>;

    /// Explains, without network I/O or secrets, whether and how this backend would answer.
    fn explain(&self, _query: &Query) -> Explanation {
        Explanation {
            applies: None,
            summary: "no explanation available for this backend".into(),
            details: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        let b = BackendInfo {
            name: "x",
            cache_env: &["AWS_*", "HOME"],
            upstream: None,
        };
        assert!(b.reads("AWS_PROFILE") && b.reads("HOME"));
        assert!(!b.reads("HOMER") && !b.reads("XAWS_PROFILE"));
    }
}
