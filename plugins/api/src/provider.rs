//! The [`Provider`] trait every backend implements, and what it returns.
//!
//! A provider gets a [`Query`] (the normalized image, parsed once, plus the v1
//! service-account fields) and answers with one of three outcomes:
//!
//! * `Ok(Outcome::Answer(..))`: credentials (possibly none) and how long they stay good;
//! * `Ok(Outcome::NotApplicable)`: not my registry, or not configured here; try the next;
//! * `Err(ProviderError)`: this is my registry and I failed (its [`ErrorKind`](crate::ErrorKind)
//!   decides exit code and stale serving). The chain stops: falling through
//!   to a weaker source would hide the failure behind a 401 at pull time.
//!
//! Providers are synchronous. A cloud backend that needs async I/O builds its runtime inside
//! `provide`, so the hot path (cache hit, docker config) never pays for one.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::deadline::Deadline;
use crate::error::ProviderError;
use crate::image::ImageName;
use crate::pattern::Target;
use crate::secret::Secret;
use crate::wire::AuthConfig;

/// How the kubelet keys its cache of an answer (`cacheKeyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKeyType {
    /// Per repository: the answer holds only for this image's repository.
    Image,
    /// Per registry (text before the first `/`): the answer holds for every image there.
    Registry,
    /// For every image the provider's `matchImages` admits.
    Global,
}

impl CacheKeyType {
    /// The wire spelling (`Image`, `Registry`, `Global`; exact case).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKeyType::Image => "Image",
            CacheKeyType::Registry => "Registry",
            CacheKeyType::Global => "Global",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [
            CacheKeyType::Image,
            CacheKeyType::Registry,
            CacheKeyType::Global,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// What a provider is asked.
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
    /// provider ends by then.
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

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Registry pattern → credential. Empty means "no credentials" (a valid answer).
    pub auth: BTreeMap<String, AuthConfig>,
    /// The widest scope for which this exact answer holds.
    pub cache_key_type: CacheKeyType,
    /// How long, from now, the answer may be reused: by the kubelet (`cacheDuration`) and by
    /// our own cache. Never longer than the credential lives.
    pub lifetime: Duration,
    /// When the credential itself stops working, if the backend knows (cloud tokens).
    pub expires_at: Option<SystemTime>,
    /// Where the credential came from, for diagnostics: a file path, a helper name, a cloud
    /// identity. Never a secret.
    pub source: String,
}

/// A provider's outcome for one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This provider answers (possibly with no credentials).
    Answer(Answer),
    /// Not this provider's registry, or not configured; ask the next.
    NotApplicable,
}

/// What `kubelet-keyring explain` shows for one provider: whether it owns the image and why,
/// found without network I/O and without any secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// `Some(true)`: this provider answers for the image; `Some(false)`: it passes it on;
    /// `None`: it cannot tell without asking a remote service.
    pub applies: Option<bool>,
    /// One line: the decision and the reason.
    pub summary: String,
    /// Supporting facts: files searched, keys that matched or not and why, identity sources.
    pub details: Vec<String>,
}

/// A credential source.
pub trait Provider: Send + Sync {
    /// A short stable name (`docker-config`, `ecr`, ...), used in logs, errors and the cache.
    fn name(&self) -> &'static str;

    /// Answers one query; see the module docs for the three outcomes.
    fn provide(&self, query: &Query) -> Result<Outcome, ProviderError>;

    /// Explains, without network I/O or secrets, whether and how this provider would answer.
    fn explain(&self, _query: &Query) -> Explanation {
        Explanation {
            applies: None,
            summary: "no explanation available for this provider".into(),
            details: Vec::new(),
        }
    }
}
