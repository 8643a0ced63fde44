//! What the binary knows of a backend: its static description ([`Backend`]: name, the
//! environment its answers depend on, the upstream plugin it answers for) and, for a backend
//! with a section in the plugin config file, how to check that section, apply the upstream
//! command line to it and build the provider from it ([`Configurable`]).
//!
//! Each backend crate declares one [`Backend`] (`pub static BACKEND`) and, if it has a config
//! section, one type implementing [`Configurable`]; the binary lists them in one place
//! (`src/backends.rs`) and derives from that list the config file's sections, the chain, the
//! cache context (a changed variable a backend reads must not find another environment's
//! answers) and the names it answers to. So `src/` names no cloud SDK variable, no backend
//! constant and no backend's config type.

use std::fmt;

use crate::error::ProviderError;
use crate::provider::Provider;
use crate::upstream::{Parsed, Plugin};

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
) -> Result<(), ProviderError>;

/// A backend with its own section in the plugin config file (`ecr:`, `gcp:`, `acr:`).
///
/// The binary reads the section with serde (so errors keep their line and column), calls
/// [`Configurable::check`] when the file is loaded (a bad section exits 2 before any request),
/// [`Configurable::CONFIGURE_UPSTREAM`] when it runs with an upstream plugin's command line,
/// and [`Configurable::provider`] only when the chain is built, on a cache miss.
pub trait Configurable {
    /// The section as serde reads it; `Default` when the file has none.
    type Config: serde::de::DeserializeOwned + Default + Clone + fmt::Debug;

    /// The static description.
    const BACKEND: &'static Backend;

    /// Checks what the section's serde shape cannot (URLs, hosts, combinations). No I/O.
    fn check(config: &Self::Config) -> Result<(), ProviderError> {
        let _ = config;
        Ok(())
    }

    /// Applies an upstream plugin's command line and environment to the section (the
    /// backend's `upstream::configure`).
    const CONFIGURE_UPSTREAM: ConfigureUpstream<Self::Config>;

    /// Builds the provider. Cheap: no I/O, no client (those come in `provide`).
    fn provider(config: &Self::Config) -> Result<Box<dyn Provider>, ProviderError>;
}

/// A backend's static description.
#[derive(Debug)]
pub struct Backend {
    /// The provider name (`ecr`, `gcp`, `acr`, `docker-config`).
    pub name: &'static str,
    /// Environment variables whose values change this backend's answers: names, or prefixes
    /// ending in `*`. Their values go into the cache context (only the presence of names that
    /// look secret).
    pub cache_env: &'static [&'static str],
    /// The upstream plugin this backend answers for under its names, if any.
    pub upstream: Option<&'static Plugin>,
}

impl Backend {
    /// Whether `var` is one of [`Backend::cache_env`].
    pub fn reads(&self, var: &str) -> bool {
        self.cache_env
            .iter()
            .any(|p| crate::upstream::env_covers(p, var))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        let b = Backend {
            name: "x",
            cache_env: &["AWS_*", "HOME"],
            upstream: None,
        };
        assert!(b.reads("AWS_PROFILE") && b.reads("HOME"));
        assert!(!b.reads("HOMER") && !b.reads("XAWS_PROFILE"));
    }
}
