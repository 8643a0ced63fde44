//! The backend chain: which backend answers for an image.
//!
//! Backends are asked in order (cloud registries by host first, then the docker config
//! files); the first that answers wins. A backend that fails for a registry it owns stops
//! the chain with its error: a weaker source would only turn that failure into a 401 later.
//! When nobody answers, the result is "no credentials", which is not an error.
//!
//! An image with mirrors ([`crate::mirrors`]) is asked of the chain once per mirror (the
//! mirror's image) and, unless the strategy is `mirrorOnly`, for itself, in the order the
//! strategy gives the credentials; [`crate::mirrors::merge`] makes one answer for the source
//! of them. The answer's scope is never wider than the mirror configuration allows.

use keyring_api::backend::Query;
use keyring_api::{Answer, Backend, BackendError, Outcome};
use keyring_docker_config::{DockerConfigBackend, SearchPaths};

use crate::backends::DOCKER_CONFIG;
use crate::config::Config;
use crate::mirrors::merge::{self, Part};
use crate::mirrors::{Lookup, Mirrors, Strategy};

/// The ordered backends.
pub struct Chain {
    backends: Vec<Box<dyn Backend>>,
    mirrors: Mirrors,
}

/// Who answered, and what.
pub struct Resolved {
    /// The answering backend's name, `None` when nobody answered.
    pub backend: Option<&'static str>,
    /// The answer (an empty one when nobody answered).
    pub answer: Answer,
}

impl Chain {
    /// The chain for this process, from flags and environment. Builds nothing expensive:
    /// cloud backends create their clients only inside `provide`, when they own the image.
    pub fn new(config: &Config, paths: SearchPaths) -> Result<Self, BackendError> {
        let mut backends: Vec<Box<dyn Backend>> = Vec::with_capacity(config.order.len());
        for name in &config.order {
            match config.sections.backend(name) {
                Some(p) => backends.push(p?),
                None if *name == DOCKER_CONFIG => {
                    backends.push(Box::new(DockerConfigBackend::new(paths.clone())))
                }
                // The config keeps only compiled-in names.
                None => {}
            }
        }
        Ok(Chain {
            backends,
            mirrors: config.mirrors.clone(),
        })
    }

    /// Each backend's explanation, in chain order (for `explain`; no network, no secrets).
    pub fn explain(&self, query: &Query) -> Vec<(&'static str, keyring_api::backend::Explanation)> {
        self.backends
            .iter()
            .map(|p| (p.name(), p.explain(query)))
            .collect()
    }

    /// What the mirror configuration says about `image` (for `explain`; no network).
    pub fn mirrors(&self, image: &keyring_api::ImageName) -> Lookup {
        self.mirrors.lookup(image)
    }

    /// Answers `query`: through its mirrors when it has some, else from the backends in
    /// turn; in both cases no wider than the mirror configuration allows.
    pub fn resolve(&self, query: &Query) -> Result<Resolved, BackendError> {
        let lookup = self.mirrors.lookup(&query.image);
        let mut resolved = match &lookup.route {
            None => self.resolve_here(query)?,
            Some(route) => {
                tracing::debug!(
                    "{} has {} mirror(s) ({}), {}",
                    query.image,
                    route.mirrors.len(),
                    route.origin,
                    route.strategy.says()
                );
                let ask = |image: &keyring_api::ImageName, mirror: Option<String>| {
                    let mut q = query.clone();
                    q.target = keyring_api::pattern::Target::new(image.as_str());
                    q.image = image.clone();
                    let result = self.resolve_here(&q).map(|r| (r.backend, r.answer));
                    Part {
                        image: image.clone(),
                        mirror,
                        result,
                    }
                };
                let mirrors = route
                    .mirrors
                    .iter()
                    .map(|m| ask(&m.image, Some(m.location.clone())));
                let parts: Vec<Part> = match route.strategy {
                    Strategy::MirrorOnly => mirrors.collect(),
                    Strategy::MirrorFirst => {
                        let mut p: Vec<Part> = mirrors.collect();
                        p.push(ask(&query.image, None));
                        p
                    }
                    Strategy::MirrorLast => {
                        let mut p = vec![ask(&query.image, None)];
                        p.extend(mirrors);
                        p
                    }
                };
                let (backend, answer) =
                    merge::merge(&query.image, parts, query.service_account_token.as_ref())?;
                tracing::info!(
                    backend = backend.unwrap_or("none"),
                    keys = answer.auth.len(),
                    "answered {} through its mirrors ({})",
                    query.image,
                    route.origin
                );
                Resolved { backend, answer }
            }
        };
        resolved.answer.cache_key_type = resolved.answer.cache_key_type.min(lookup.scope);
        Ok(resolved)
    }

    /// Asks each backend in turn, for `query`'s image itself.
    fn resolve_here(&self, query: &Query) -> Result<Resolved, BackendError> {
        // The empty answer's scope: the narrowest of the refusals (a backend that declined
        // only this path must not have "no credentials" cached for its whole registry).
        let mut scope = keyring_api::CacheKeyType::Registry;
        for p in &self.backends {
            let _span = tracing::debug_span!("backend", name = p.name()).entered();
            keyring_api::deadline::set_stage(format!("asking backend {}", p.name()));
            match p.provide(query)? {
                Outcome::Answer(answer) => {
                    tracing::info!(
                        backend = p.name(),
                        source = %answer.source,
                        keys = answer.auth.len(),
                        "answered {}",
                        query.image
                    );
                    return Ok(Resolved {
                        backend: Some(p.name()),
                        answer,
                    });
                }
                Outcome::NotApplicable { scope: declined } => {
                    tracing::debug!(
                        backend = p.name(),
                        scope = declined.as_str(),
                        "not applicable"
                    );
                    scope = scope.min(declined);
                }
            }
        }
        tracing::info!("no backend has credentials for {}", query.image);
        Ok(Resolved {
            backend: None,
            answer: Answer {
                auth: Default::default(),
                cache_key_type: scope,
                lifetime: keyring_docker_config::LIFETIME,
                expires_at: None,
                source: "none".into(),
            },
        })
    }
}
