//! The provider chain: which backend answers for an image.
//!
//! Providers are asked in order (cloud registries by host first, then the docker config
//! files); the first that answers wins. A provider that fails for a registry it owns stops
//! the chain with its error: a weaker source would only turn that failure into a 401 later.
//! When nobody answers, the result is "no credentials", which is not an error.

use keyring_api::provider::Query;
use keyring_api::{Answer, Outcome, Provider, ProviderError};
use keyring_docker_config::{DockerConfigProvider, SearchPaths};

use crate::backends::DOCKER_CONFIG;
use crate::config::Config;

/// The ordered providers.
pub struct Chain {
    providers: Vec<Box<dyn Provider>>,
}

/// Who answered, and what.
pub struct Resolved {
    /// The answering provider's name, `None` when nobody answered.
    pub provider: Option<&'static str>,
    /// The answer (an empty one when nobody answered).
    pub answer: Answer,
}

impl Chain {
    /// The chain for this process, from flags and environment. Builds nothing expensive:
    /// cloud backends create their clients only inside `provide`, when they own the image.
    pub fn new(config: &Config, paths: SearchPaths) -> Result<Self, ProviderError> {
        let mut providers: Vec<Box<dyn Provider>> = Vec::with_capacity(config.order.len());
        for name in &config.order {
            match config.sections.provider(name) {
                Some(p) => providers.push(p?),
                None if *name == DOCKER_CONFIG => {
                    providers.push(Box::new(DockerConfigProvider::new(paths.clone())))
                }
                // The config keeps only compiled-in names.
                None => {}
            }
        }
        Ok(Chain { providers })
    }

    /// Each provider's explanation, in chain order (for `explain`; no network, no secrets).
    pub fn explain(
        &self,
        query: &Query,
    ) -> Vec<(&'static str, keyring_api::provider::Explanation)> {
        self.providers
            .iter()
            .map(|p| (p.name(), p.explain(query)))
            .collect()
    }

    /// Asks each provider in turn.
    pub fn resolve(&self, query: &Query) -> Result<Resolved, ProviderError> {
        for p in &self.providers {
            let _span = tracing::debug_span!("provider", name = p.name()).entered();
            match p.provide(query)? {
                Outcome::Answer(answer) => {
                    tracing::info!(
                        provider = p.name(),
                        source = %answer.source,
                        keys = answer.auth.len(),
                        "answered {}",
                        query.image
                    );
                    return Ok(Resolved {
                        provider: Some(p.name()),
                        answer,
                    });
                }
                Outcome::NotApplicable => {
                    tracing::debug!(provider = p.name(), "not applicable");
                }
            }
        }
        tracing::info!("no provider has credentials for {}", query.image);
        Ok(Resolved {
            provider: None,
            answer: Answer {
                auth: Default::default(),
                cache_key_type: keyring_api::CacheKeyType::Registry,
                lifetime: keyring_docker_config::LIFETIME,
                expires_at: None,
                source: "none".into(),
            },
        })
    }
}
