//! What the binary knows of a backend without building it: its name, the environment its
//! answers depend on, and the upstream plugin it answers for.
//!
//! Each backend crate declares one [`Backend`] (`pub static BACKEND`); the binary lists them
//! in one place and derives from them the cache context (a changed variable a backend reads
//! must not find another environment's answers) and the names it answers to. So `src/` names
//! no cloud SDK variable and no backend constant.

use crate::upstream::Plugin;

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
