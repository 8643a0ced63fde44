//! The identity backend: any registry, any identity. Rules in the plugin config's
//! `identity:` section trade the pod's service-account token (KEP-4412) or the node's own
//! identity for a registry credential, by the registry vendor's documented exchange.
//!
//! Contract:
//!
//! * **Which images.** Those matched by a rule's `hosts` (kubelet match patterns); rules are
//!   tried in order and the first match wins ([`host`]). Another image of a host a rule names
//!   under other paths is [`Outcome::NOT_MINE_AT_THIS_PATH`], every other image
//!   [`Outcome::NOT_MINE`], decided from the image alone, before any I/O. No rule, no image.
//! * **Which identity.** Per rule: the pod's token, the node's (token file, AWS, GCE
//!   metadata, Azure IMDS), or the pod's when its service account carries the rule's
//!   annotation ([`identity`]). A pod token whose `aud` is not the rule's audience is refused
//!   before it goes anywhere.
//! * **The exchange.** Pass-through, RFC 8693, Quay, Artifactory (OIDC, AWS), Cloudsmith,
//!   Vault/OpenBao, a namespace Secret ([`token`]). The token goes only to the matched
//!   rule's endpoint, over TLS ([`http`]), within the invocation's deadline.
//! * **The answer.** One key (the registry, or the image under path-scoped rules), the
//!   issued user and credential, a lifetime from the credential's own expiry by the one rule
//!   of every backend ([`answer`]); the pod's own token is never cached by anyone.
//! * **Cache.** Token-mode answers are cached per service account by the binary (its cache
//!   key folds in the token's service account and the annotations), and concurrent misses for
//!   one service account and registry make one exchange (the binary's single flight).
//! * **Failures** are one line naming the rule's stage, endpoint, status or cause and the
//!   likely fix; never a token, credential, client secret or body ([`error`]).
//!
//! Module map (the plan every backend shares):
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the `identity:` section and its checks (also against the kubelet's entry, for `validate-config`) |
//! | [`host`] | which rule serves an image |
//! | [`identity`] | whom we authenticate as: [`identity::jwt`], [`identity::node`], [`identity::aws`] |
//! | [`token`] | the exchange: [`token::oauth`], [`token::vendors`], [`token::vault`], [`token::kube`] |
//! | [`answer`] | keys, user, lifetime, scope |
//! | [`error`] | errors and their wording |
//! | [`http`] | the requests, on keyring-net: TLS only, one budget |
//!
//! There is no upstream plugin to answer for: `CONFIGURE_UPSTREAM` changes nothing.

pub mod answer;
pub mod config;
pub mod error;
pub mod host;
pub mod http;
pub mod identity;
pub mod token;

use keyring_api::backend::{Explanation, Query};
use keyring_api::{Backend, BackendError, Outcome};

pub use config::Config;

/// The backend's name (and its config section's).
pub const NAME: &str = "identity";

/// Sent on every request.
pub const USER_AGENT: &str = concat!("kubelet-keyring/", env!("CARGO_PKG_VERSION"), " (identity)");

/// The text of the file at `path` that `setting` names (a token, a client secret), trimmed,
/// in wiped memory: read by [`keyring_api::file::read_secret`] (a FIFO, device or directory is
/// refused, never waited on), at most `max` bytes, UTF-8. Errors are one line naming `setting` and
/// the file.
pub(crate) fn read_secret_file(
    path: &std::path::Path,
    max: u64,
    setting: &str,
) -> Result<keyring_api::Secret<String>, error::Error> {
    let bad = |p: String| -> error::Error {
        keyring_api::InvalidSetting::new(format!("{setting} {}", path.display()), p).into()
    };
    let bytes = keyring_api::file::read_secret(path, max).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => bad(e.to_string()),
        _ => bad(format!("cannot read it: {e}")),
    })?;
    let text = std::str::from_utf8(bytes.expose()).map_err(|_| bad("not UTF-8 text".into()))?;
    Ok(keyring_api::Secret::new(text.trim().to_string()))
}

/// This backend as the binary sees it: the AWS credentials chain's and the GCE metadata
/// host's variables change its answers.
pub static BACKEND: keyring_api::BackendInfo = keyring_api::BackendInfo {
    name: NAME,
    cache_env: &["AWS_*", "GCE_METADATA_HOST"],
    upstream: None,
};

/// The `identity:` section of the plugin config and the backend made from it.
pub struct Identity;

impl keyring_api::Configurable for Identity {
    type Config = Config;
    const BACKEND: &'static keyring_api::BackendInfo = &BACKEND;
    const CONFIGURE_UPSTREAM: keyring_api::backend::ConfigureUpstream<Config> = |_, _, _, _| Ok(());

    fn check(config: &Config) -> Result<(), BackendError> {
        config.validate().map_err(|e| e.into_backend_error(NAME))
    }

    fn build(config: &Config) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(IdentityBackend::new(config)?))
    }

    fn kubelet_findings(
        config: &Config,
        entry: &keyring_api::backend::KubeletEntry<'_>,
    ) -> Vec<keyring_api::backend::Finding> {
        config.kubelet_findings(entry)
    }

    fn kubelet_hosts(config: &Config) -> Vec<(String, String)> {
        config.kubelet_hosts()
    }
}

/// The backend.
#[derive(Debug)]
pub struct IdentityBackend {
    config: Config,
}

impl IdentityBackend {
    /// Checks the section; no I/O.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        config.validate().map_err(|e| e.into_backend_error(NAME))?;
        Ok(IdentityBackend {
            config: config.clone(),
        })
    }

    /// The rule label of rule `index` in messages.
    fn label(&self, index: usize) -> String {
        format!("identity.rules[{index}]")
    }

    fn fetch(
        &self,
        query: &Query,
        index: usize,
        rule: &config::Rule,
    ) -> Result<keyring_api::Answer, error::Error> {
        let at = self.label(index);
        let whom = identity::choose(rule, query, &at)?;
        let mut http = http::Http::new(query.deadline)?;
        let proof = identity::obtain(rule, whom, query, &http, &at)?;
        let issued = token::exchange(&rule.method, &proof, query, &mut http)?;
        drop(proof);
        let (scope, key) = host::scope(&self.config.rules, &query.target, query.image.registry());
        let source = format!(
            "{at} ({}) as {}",
            rule.method.name(),
            issued_for(rule, whom)
        );
        answer::build(issued, scope, key, source, query.clock.now())
    }
}

fn issued_for(rule: &config::Rule, whom: identity::Whom) -> String {
    match (whom, &rule.node) {
        (identity::Whom::Pod, _) => "the pod's service account".into(),
        (identity::Whom::Node, Some(n)) => format!("the node ({})", n.name()),
        (identity::Whom::Node, None) => "the node".into(),
    }
}

impl Backend for IdentityBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn provide(&self, query: &Query) -> Result<Outcome, BackendError> {
        match host::select(&self.config.rules, &query.target) {
            host::Selection::None => Ok(Outcome::NOT_MINE),
            host::Selection::OtherPath => Ok(Outcome::NOT_MINE_AT_THIS_PATH),
            host::Selection::Rule { index, rule, .. } => self
                .fetch(query, index, rule)
                .map(Outcome::Answer)
                .map_err(|e| e.into_backend_error(NAME)),
        }
    }

    fn explain(&self, query: &Query) -> Explanation {
        let (index, rule, pattern) = match host::select(&self.config.rules, &query.target) {
            host::Selection::Rule {
                index,
                rule,
                pattern,
            } => (index, rule, pattern),
            other => {
                return Explanation {
                    applies: Some(false),
                    summary: match other {
                        host::Selection::OtherPath => format!(
                            "a rule names {} only under other paths",
                            query.image.registry()
                        ),
                        _ if self.config.rules.is_empty() => "no identity.rules configured".into(),
                        _ => format!("no identity rule names {}", query.image.registry()),
                    },
                    details: Vec::new(),
                }
            }
        };
        let at = self.label(index);
        let mut details = vec![format!(
            "{at} matches through {pattern:?} (the first matching rule answers)"
        )];
        details.push(match identity::choose(rule, query, &at) {
            Ok(identity::Whom::Pod) => format!(
                "identity: the pod's service-account token (audience {:?})",
                rule.pod
                    .as_ref()
                    .map(|p| p.audience.as_str())
                    .unwrap_or_default()
            ),
            Ok(identity::Whom::Node) => format!(
                "identity: the node's ({})",
                rule.node
                    .as_ref()
                    .map(config::NodeSource::name)
                    .unwrap_or("none")
            ),
            Err(e) => format!("identity: none ({e})"),
        });
        let endpoints: Vec<String> = rule
            .method
            .endpoints()
            .iter()
            .map(|(_, u)| http::shown(u))
            .collect();
        details.push(if endpoints.is_empty() {
            format!(
                "method: {} (no exchange: the token is the password)",
                rule.method.name()
            )
        } else {
            format!("method: {} at {}", rule.method.name(), endpoints.join(", "))
        });
        Explanation {
            applies: Some(true),
            summary: format!(
                "{} is served by {at} ({})",
                query.image.as_str(),
                rule.method.name()
            ),
            details,
        }
    }
}
