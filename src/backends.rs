//! The backends this build carries: the one list to extend when a backend crate is added.
//! The cache context and the upstream names are derived from it.

use keyring_api::Backend;

/// Every backend compiled in, in no particular order (the chain's order is the config's).
pub fn all() -> Vec<&'static Backend> {
    vec![
        &keyring_docker_config::BACKEND,
        #[cfg(feature = "ecr")]
        &keyring_ecr::BACKEND,
        #[cfg(feature = "gcp")]
        &keyring_gcp::BACKEND,
        #[cfg(feature = "acr")]
        &keyring_acr::BACKEND,
    ]
}
