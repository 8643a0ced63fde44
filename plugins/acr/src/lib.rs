//! The ACR backend: Azure Container Registry credentials from an Entra ID identity.
//!
//! Contract, in the order [`AcrBackend`]'s `provide` follows it (host → identity → token →
//! answer):
//!
//! * **Which images** ([`host`]). Those whose registry is an ACR login server
//!   (`<name>[-<dnl hash>][.<region>.geo].azurecr.{io,cn,us,de}`, plus configured suffixes)
//!   or a configured mirror source. Every other image is [`Outcome::NotApplicable`], decided
//!   from the image name alone, before any I/O. The login server is the image's own registry
//!   (or the mirror's configured target), never anything further along the image name.
//!   Mirrors map whole hosts, never paths, so "not mine" is never path-scoped here.
//! * **Which identity** ([`identity`]). A KEP-4412 service-account token (through an AKS
//!   identity binding when configured) with its annotations, else the node's `azure.json`,
//!   else (under this program's name only) the `AZURE_*` environment, else managed identity
//!   (IMDS, or Azure Arc's agent); then its Entra ID token for
//!   `https://containerregistry.azure.net`.
//! * **The token** ([`token`]). `GET /v2/` challenge → `POST /oauth2/exchange` → ACR refresh
//!   token.
//! * **The answer** ([`answer`]). `{username: 00000000-0000-0000-0000-000000000000, password:
//!   <refresh token>}` keyed by the image's registry (and the login server, for a mirror),
//!   and upstream's anonymous entry `"*.azurecr.*": {"", ""}`; `cacheKeyType: Registry`; `expires_at` is the refresh token's own `exp`, and `lifetime`
//!   comes from it by the one rule of every backend ([`keyring_api::lifetime::for_expiry`]:
//!   the expiry less a margin, within a floor and a ceiling; the cache adds the jitter). A
//!   service principal's secret is never handed out.
//! * **Failures** ([`error`]) for an ACR image are `Err` with one line naming the stage (IMDS,
//!   AAD, `/v2/` challenge, exchange), the status or cause and the likely fix, never a secret
//!   or a response body; the whole exchange stays within [`http::TOTAL_BUDGET`]. A secret or
//!   token is only ever sent over https, except to a loopback address named in
//!   `acr.endpoints` (how tests reach their fakes).
//!
//! [`AcrBackend::new`] only validates the `acr:` section; HTTP agents are built inside
//! `provide`, and only for ACR images.
//!
//! # Module map
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the `acr:` section and its checks; the Azure clouds |
//! | [`host`] | which registries are ACR login servers or mirrors; no I/O |
//! | [`identity`] | the Entra ID identity and its token: [`identity::azure_json`] (the node's file), [`identity::imds`] (managed identity), [`identity::arc`] (its source; Azure Arc's agent), [`identity::service_principal`] (the v2 token endpoint) with [`identity::cert`] (certificate assertions), [`identity::workload`] (service-account tokens), [`identity::binding`] (AKS identity bindings) |
//! | [`token`] | the registry's [`token::challenge`] and [`token::exchange`]: the ACR refresh token |
//! | [`answer`] | the `Answer`: keys, user name, lifetime |
//! | [`error`] | the failures and their one-line wording |
//! | [`http`] | the requests of one `provide` on [`keyring_net`]: budget, retries, routes |
//! | [`upstream`] | `acr-credential-provider`'s command line and variables |
//!
//! **Dependencies.** HTTP goes through [`keyring_net`], the one network layer of every
//! backend (hyper, rustls on **ring**, the system's roots; no aws-lc, no native-tls/openssl),
//! on a current-thread runtime built only when an ACR image misses the cache. The
//! certificate credential's RS256 assertion and `x5t` thumbprint use `ring` directly
//! (already in the tree through rustls), and PEM parsing `rustls-pki-types`; `jsonwebtoken`
//! was not used as its current major version offers aws-lc or RustCrypto backends, not ring.
//! The official `azure_identity` crate was evaluated for the Entra ID, managed-identity and
//! workload-identity calls and not taken; the figures are in [`identity`]. See [`http`]
//! for timeouts, retries and proxies.

pub mod answer;
pub mod config;
pub mod error;
pub mod host;
pub mod http;
pub mod identity;
pub mod token;
pub mod upstream;

use keyring_api::backend::Query;
use keyring_api::{Answer, Backend, BackendError, Outcome};

pub use answer::{ANONYMOUS_KEY, USERNAME};
pub use config::{Config, ConfigError, Endpoints, MirrorConfig, Settings};

/// The backend's name.
pub const NAME: &str = "acr";

/// This backend as the binary sees it: name, the environment its answers depend on, and
/// the upstream plugin it answers for.
pub static BACKEND: keyring_api::BackendInfo = keyring_api::BackendInfo {
    name: NAME,
    cache_env: &["AZURE_*", "IDENTITY_*", "MSI_*", "IMDS_*"],
    upstream: Some(&upstream::PLUGIN),
};

/// The `acr:` section of the plugin config and the backend made from it.
pub struct Acr;

impl keyring_api::Configurable for Acr {
    type Config = Config;
    const BACKEND: &'static keyring_api::BackendInfo = &BACKEND;
    const CONFIGURE_UPSTREAM: keyring_api::backend::ConfigureUpstream<Config> = upstream::configure;

    fn check(config: &Config) -> Result<(), BackendError> {
        config
            .validate()
            .map(drop)
            .map_err(|e| BackendError::misconfigured(NAME, e.to_string()))
    }

    fn build(config: &Config) -> Result<Box<dyn keyring_api::Backend>, BackendError> {
        Ok(Box::new(AcrBackend::new(config)?))
    }
}

type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The ACR backend.
pub struct AcrBackend {
    settings: Settings,
    env: EnvFn,
}

impl std::fmt::Debug for AcrBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcrBackend")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AcrBackend {
    /// Validates the `acr:` section; no I/O.
    pub fn new(config: &Config) -> Result<Self, BackendError> {
        let settings = config.validate().map_err(|e| {
            BackendError::misconfigured(NAME, format!("config: {e}")).with_source(e)
        })?;
        Ok(AcrBackend {
            settings,
            env: Box::new(|name| {
                std::env::var_os(name)
                    .and_then(|v| v.into_string().ok())
                    .filter(|v| !v.is_empty())
            }),
        })
    }

    /// Replaces the environment reader (tests).
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Box::new(env);
        self
    }

    /// The validated settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Host → identity → token → answer, for an image whose registry is `target`'s.
    fn fetch(&self, query: &Query, target: &host::Target) -> Result<Answer, error::Error> {
        let login = target.login_server.as_str();
        let mirrored = target.mirror_source.is_some();
        let identity = identity::select(&self.settings, &*self.env, query, login, mirrored)?;
        tracing::debug!(identity = %identity.describe(), login_server = login, "ACR credentials");
        let http = http::Http::new(query.deadline)?;
        let aad = identity::token(&identity, &self.settings, &http, query.clock.now())?;
        let refresh = token::refresh_token(&self.settings, &http, login, &aad)?;
        drop(aad);
        answer::answer(target, refresh, &identity.describe(), query.clock.now())
    }
}

impl Backend for AcrBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn explain(&self, query: &Query) -> keyring_api::backend::Explanation {
        let registry = query.image.registry();
        let Some(target) = host::resolve(
            registry,
            &self.settings.mirrors,
            &self.settings.registry_suffixes,
        ) else {
            return keyring_api::backend::Explanation {
                applies: Some(false),
                summary: format!("{registry} is not an ACR login server nor a configured mirror"),
                details: Vec::new(),
            };
        };
        let mut details = Vec::new();
        if let Some(source) = &target.mirror_source {
            details.push(format!(
                "{source} is mirrored by {} (acr.mirrors)",
                target.login_server
            ));
        }
        let upstream = self.settings.as_upstream;
        details.push(match &self.settings.cloud_config {
            Some(p) if upstream => format!(
                "identity: from {} (azure.json) alone, as upstream: managed identity (IMDS, or Azure Arc's agent) or the service principal it names",
                p.display()
            ),
            Some(p) => format!(
                "identity: from {} (azure.json), else AZURE_* variables, else managed identity",
                p.display()
            ),
            None if upstream => {
                "identity: none: acr-credential-provider needs its cloud config argument".into()
            }
            None => {
                "identity: AZURE_* variables, else the VM's managed identity (no acr.cloudConfig)"
                    .into()
            }
        });
        let fallback = self.settings.node_identity_fallback;
        details.push(format!(
            "with a pod's service-account token: the client assertion of the application named by {} (tenant from {}{}); without the client-id annotation {}",
            identity::ANNOTATION_CLIENT_ID,
            identity::ANNOTATION_TENANT_ID,
            if fallback { ", else the node's" } else { ", required" },
            if fallback {
                "the node's identity"
            } else {
                "an error (acr.nodeIdentityFallback: false)"
            }
        ));
        details.push(format!(
            "Entra ID token exchanged at {}/oauth2/exchange for an ACR refresh token; user {USERNAME}; keys {:?}, and {ANONYMOUS_KEY} with an empty credential (an anonymous pull when the token is refused)",
            target.login_server, target.keys
        ));
        keyring_api::backend::Explanation {
            applies: Some(true),
            summary: format!("{} is served by ACR ({})", registry, target.login_server),
            details,
        }
    }

    fn provide(&self, query: &Query) -> Result<Outcome, BackendError> {
        let Some(target) = host::resolve(
            query.image.registry(),
            &self.settings.mirrors,
            &self.settings.registry_suffixes,
        ) else {
            return Ok(Outcome::NOT_MINE);
        };
        self.fetch(query, &target)
            .map(Outcome::Answer)
            .map_err(|e| {
                // Name the login server once, at the front.
                let mut pe = e.into_backend_error();
                pe.message = format!("{}: {}", target.login_server, pe.message);
                pe
            })
    }
}
