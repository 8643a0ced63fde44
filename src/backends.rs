//! The backends this build carries: the one list to extend when a backend crate is added.
//!
//! `cloud_backends!` below names each backend with a config section, with the cargo
//! feature that compiles it in and its [`keyring_api::Configurable`] type. From that one line per backend
//! come the config file's sections ([`RawConfig`], [`Sections`]), the backends of the chain
//! ([`Sections::backend`]), the upstream command line applied to each section
//! ([`Sections::configure_upstream`]), the default chain order ([`NAMES`]) and the list of
//! [`BackendInfo`]s ([`all`]) from which the cache context and the upstream names are derived.
//! `docker-config`, which every build has and which has no section, is last in the chain.
//!
//! A section of a backend this build leaves out is accepted and warned about, so one config
//! file serves builds with and without it.

use keyring_api::upstream::Parsed;
use keyring_api::{Backend, BackendError, BackendInfo};
use serde::Deserialize;

/// The docker config files' backend name, last in the default chain.
pub const DOCKER_CONFIG: &str = "docker-config";

/// Generates the config file's raw and checked sections and the per-backend dispatch from
/// one line per backend: `field: "cargo feature" => Configurable type`.
macro_rules! cloud_backends {
    ($($name:ident: $feature:literal => $kit:ty),* $(,)?) => {
        /// Every backend name this source knows (compiled in or not), in the default chain
        /// order: the cloud backends, then docker-config.
        pub const NAMES: &[&str] = &[$(stringify!($name),)* DOCKER_CONFIG];

        /// Every backend compiled in, in the default chain order.
        pub fn all() -> &'static [&'static BackendInfo] {
            const ALL: &[&BackendInfo] = &[
                $(#[cfg(feature = $feature)] <$kit as keyring_api::Configurable>::BACKEND,)*
                &keyring_docker_config::BACKEND,
            ];
            ALL
        }

        /// The plugin config file as written (the `config` module documents it). Unknown fields
        /// are refused; serde's errors carry line and column.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct RawConfig {
            /// Must be `kubelet-keyring/v1alpha1` when present (checked by `Config::validate`).
            pub api_version: Option<String>,
            /// Must be `KeyringConfig` when present.
            pub kind: Option<String>,
            /// Backend names in chain order. `providers`, its name before 0.2, is read too.
            #[serde(alias = "providers")]
            pub backends: Option<Vec<String>>,
            /// Credentials that follow mirrors, for every backend ([`crate::mirrors`]).
            pub mirrors: Option<crate::mirrors::MirrorsConfig>,
            $(
                #[doc = concat!("The `", stringify!($name), ":` section.")]
                #[cfg(feature = $feature)]
                pub $name: Option<<$kit as keyring_api::Configurable>::Config>,
                #[doc = concat!("The `", stringify!($name), ":` section, which this build ignores.")]
                #[cfg(not(feature = $feature))]
                pub $name: Option<serde::de::IgnoredAny>,
            )*
        }

        /// The sections of the compiled-in backends, checked; defaults where the file had none.
        #[derive(Debug, Default, Clone)]
        pub struct Sections {
            $(
                #[doc = concat!("The `", stringify!($name), ":` section.")]
                #[cfg(feature = $feature)]
                pub $name: <$kit as keyring_api::Configurable>::Config,
            )*
        }

        impl RawConfig {
            /// The backends' sections, each checked by its backend (a bad one fails the load,
            /// exit 2, before any request). Sections of backends left out are warned about.
            pub fn sections(&self) -> Result<Sections, BackendError> {
                $(
                    #[cfg(feature = $feature)]
                    if let Some(section) = &self.$name {
                        <$kit as keyring_api::Configurable>::check(section)?;
                    }
                    #[cfg(not(feature = $feature))]
                    if self.$name.is_some() {
                        tracing::warn!(
                            "the {} section is ignored: this build has no {} backend",
                            stringify!($name),
                            stringify!($name)
                        );
                    }
                )*
                Ok(Sections {
                    $(
                        #[cfg(feature = $feature)]
                        $name: self.$name.clone().unwrap_or_default(),
                    )*
                })
            }
        }

        impl Sections {
            /// The backend of backend `name`, built from its section; `None` for a name that
            /// is not a compiled-in cloud backend.
            pub fn backend(
                &self,
                name: &str,
            ) -> Option<Result<Box<dyn Backend>, BackendError>> {
                $(
                    #[cfg(feature = $feature)]
                    if name == stringify!($name) {
                        return Some(<$kit as keyring_api::Configurable>::build(&self.$name));
                    }
                )*
                let _ = name;
                None
            }

            /// What each backend of `order` finds wrong with the kubelet entry `entry` for
            /// its section (`validate-config`; no I/O).
            pub fn kubelet_findings(
                &self,
                order: &[&str],
                entry: &keyring_api::backend::KubeletEntry<'_>,
            ) -> Vec<keyring_api::backend::Finding> {
                // `mut` is unused in a build without cloud backends.
                #[allow(unused_mut)]
                let mut out = Vec::new();
                $(
                    #[cfg(feature = $feature)]
                    if order.contains(&stringify!($name)) {
                        out.extend(<$kit as keyring_api::Configurable>::kubelet_findings(&self.$name, entry));
                    }
                )*
                let _ = (order, entry);
                out
            }

            /// The host patterns each backend of `order` needs some kubelet entry to admit,
            /// with the setting naming each (`validate-config`).
            pub fn kubelet_hosts(&self, order: &[&str]) -> Vec<(String, String)> {
                #[allow(unused_mut)]
                let mut out = Vec::new();
                $(
                    #[cfg(feature = $feature)]
                    if order.contains(&stringify!($name)) {
                        out.extend(<$kit as keyring_api::Configurable>::kubelet_hosts(&self.$name));
                    }
                )*
                let _ = order;
                out
            }

            /// Applies an upstream command line to backend `name`'s section (nothing for a
            /// backend without one).
            pub fn configure_upstream(
                &mut self,
                name: &str,
                parsed: &Parsed,
                as_upstream: bool,
                env: keyring_api::backend::Env<'_>,
            ) -> Result<(), BackendError> {
                $(
                    #[cfg(feature = $feature)]
                    if name == stringify!($name) {
                        let configure = <$kit as keyring_api::Configurable>::CONFIGURE_UPSTREAM;
                        return configure(&mut self.$name, parsed, as_upstream, env);
                    }
                )*
                let _ = (name, parsed, as_upstream, env);
                Ok(())
            }
        }
    };
}

cloud_backends! {
    ecr: "ecr" => keyring_ecr::Ecr,
    gcp: "gcp" => keyring_gcp::Gcp,
    acr: "acr" => keyring_acr::Acr,
    identity: "identity" => keyring_identity::Identity,
}

/// Whether this build includes the backend called `name`.
pub fn compiled_in(name: &str) -> bool {
    all().iter().any(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_every_backend_once_and_docker_config_last() {
        let names: Vec<&str> = all().iter().map(|b| b.name).collect();
        assert_eq!(names.last(), Some(&DOCKER_CONFIG));
        for (i, n) in names.iter().enumerate() {
            assert!(!names[i + 1..].contains(n), "{n} twice");
            assert!(NAMES.contains(n), "{n} not in NAMES");
        }
        // Each compiled-in cloud backend builds a backend from a default section.
        let sections = RawConfig::default().sections().unwrap();
        for n in names.iter().filter(|n| **n != DOCKER_CONFIG) {
            let p = sections.backend(n).expect(n).unwrap();
            assert_eq!(p.name(), *n);
        }
        assert!(sections.backend(DOCKER_CONFIG).is_none());
    }
}
