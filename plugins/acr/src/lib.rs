//! The ACR backend: Azure Container Registry credentials from an Entra ID identity.
//!
//! Contract:
//!
//! * **Which images.** Those whose registry is an ACR login server
//!   (`<name>[-<dnl hash>][.<region>.geo].azurecr.{io,cn,us,de}`, plus configured suffixes;
//!   see [`host`]) or a configured mirror source. Every other image is
//!   [`Outcome::NotApplicable`], decided from the image name alone, before any I/O.
//!   The login server is the image's own registry (or the mirror's configured target),
//!   never anything further along the image name.
//! * **Which identity.** A KEP-4412 service-account token with its annotations, else the
//!   node's `azure.json`, else the `AZURE_*` environment, else managed identity; see
//!   [`identity`].
//! * **The exchange.** Entra ID token for `https://containerregistry.azure.net` → `GET /v2/`
//!   challenge → `POST /oauth2/exchange` → ACR refresh token; see [`exchange`].
//! * **The answer.** `{username: 00000000-0000-0000-0000-000000000000, password: <refresh
//!   token>}` keyed by the image's registry (and the login server, for a mirror);
//!   `cacheKeyType: Registry`; `expires_at` is the refresh token's own `exp`, and `lifetime`
//!   that minus a margin of [`MARGIN`] plus up to [`MAX_JITTER`] (so nodes do not refresh in
//!   step), never under [`MIN_LIFETIME`]. A service principal's secret is never handed out.
//! * **Failures** for an ACR image are `Err` with one line naming the stage (IMDS, AAD,
//!   `/v2/` challenge, exchange), the status or cause and the likely fix, never a secret or a
//!   response body; the whole exchange stays within [`http::TOTAL_BUDGET`].
//!
//! [`AcrProvider::new`] only validates the `acr:` section; HTTP agents are built inside
//! `provide`, and only for ACR images.
//!
//! **Dependencies.** HTTP goes through `ureq` 3: `provide` is synchronous and makes three or
//! four sequential requests, so a maintained blocking client is the natural fit; it needs no
//! tokio runtime per exec, and with only its `rustls` feature it brings rustls on **ring**
//! with the webpki roots (no aws-lc, no native-tls/openssl, no gzip). The certificate
//! credential's RS256 assertion and `x5t` thumbprint use `ring` directly (already in the
//! tree through rustls), and PEM parsing `rustls-pki-types`; `jsonwebtoken` was not used as
//! its current major version offers aws-lc or RustCrypto backends, not ring. See [`http`]
//! for timeouts, retries and proxies.

pub mod cert;
pub mod challenge;
pub mod config;
pub mod error;
pub mod exchange;
pub mod host;
pub mod http;
pub mod identity;
pub mod jwt;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use keyring_api::provider::Query;
use keyring_api::wire::AuthConfig;
use keyring_api::{Answer, CacheKeyType, Outcome, Provider, ProviderError};
use ring::rand::SecureRandom;

pub use config::{Config, ConfigError, Endpoints, MirrorConfig, Settings};

/// The provider's name.
pub const NAME: &str = "acr";
/// The user name ACR expects with a refresh token.
pub const USERNAME: &str = "00000000-0000-0000-0000-000000000000";
/// The Entra ID resource of ACR (IMDS `resource`).
pub const RESOURCE: &str = "https://containerregistry.azure.net";
/// The Entra ID scope of ACR (v2 token endpoint `scope`).
pub const SCOPE: &str = "https://containerregistry.azure.net/.default";
/// Sent on every request.
pub const USER_AGENT: &str = concat!("kubelet-keyring/", env!("CARGO_PKG_VERSION"), " (acr)");

/// Refresh this long before the refresh token expires.
pub const MARGIN: Duration = Duration::from_secs(5 * 60);
/// Up to this much more margin, at random.
pub const MAX_JITTER: Duration = Duration::from_secs(60);
/// Shortest lifetime reported, even for a token about to expire (or with no `exp`), so the
/// kubelet does not exec the plugin for every pull.
pub const MIN_LIFETIME: Duration = Duration::from_secs(60);

/// How long an answer whose token expires at `exp` may be reused, seen at `now`.
pub fn lifetime(exp: SystemTime, now: SystemTime, jitter: Duration) -> Duration {
    let remaining = exp.duration_since(now).unwrap_or(Duration::ZERO);
    remaining
        .saturating_sub(MARGIN + jitter.min(MAX_JITTER))
        .max(MIN_LIFETIME)
}

/// A random jitter in `[0, MAX_JITTER)`; zero if the system has no randomness.
fn jitter() -> Duration {
    let mut b = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return Duration::ZERO;
    }
    let max_ms = MAX_JITTER.as_millis() as u32;
    Duration::from_millis(u64::from(u32::from_le_bytes(b) % max_ms))
}

type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The ACR provider.
pub struct AcrProvider {
    settings: Settings,
    env: EnvFn,
}

impl std::fmt::Debug for AcrProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcrProvider")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AcrProvider {
    /// Validates the `acr:` section; no I/O.
    pub fn new(config: &Config) -> Result<Self, ProviderError> {
        let settings = config
            .validate()
            .map_err(|e| ProviderError::with_source(NAME, format!("config: {e}"), e))?;
        Ok(AcrProvider {
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

    fn fetch(&self, query: &Query, target: &host::Target) -> Result<Answer, error::Error> {
        let login = target.login_server.as_str();
        let identity = identity::select(&self.settings, &*self.env, query, login)?;
        tracing::debug!(identity = %identity.describe(), login_server = login, "ACR credentials");
        let http = http::Http::new();
        let now = SystemTime::now();
        let aad = identity::token(&identity, &self.settings, &http, now)?;
        // The exchange names the tenant; managed identity may not know it, the token does.
        let tenant = identity
            .tenant
            .clone()
            .or_else(|| jwt::claims(aad.token.expose()).ok().and_then(|c| c.tid));
        let directive = exchange::challenge(&self.settings, &http, login)?;
        let refresh = exchange::exchange(&http, &directive, login, tenant.as_deref(), &aad.token)?;
        drop(aad);

        let now = SystemTime::now();
        let (lifetime, expires_at) = match jwt::claims(refresh.expose()) {
            Ok(jwt::Claims { exp: Some(exp), .. }) => {
                if exp <= now + MIN_LIFETIME {
                    tracing::warn!(
                        "the ACR refresh token for {login} expires within a minute of issue; is the node clock right?"
                    );
                }
                (lifetime(exp, now, jitter()), Some(exp))
            }
            Ok(_) => {
                tracing::warn!("the ACR refresh token for {login} has no exp claim; reporting a lifetime of {}s", MIN_LIFETIME.as_secs());
                (MIN_LIFETIME, None)
            }
            Err(e) => {
                tracing::warn!("cannot read the ACR refresh token's expiry for {login} ({e}); reporting a lifetime of {}s", MIN_LIFETIME.as_secs());
                (MIN_LIFETIME, None)
            }
        };
        let auth: BTreeMap<String, AuthConfig> = target
            .keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    AuthConfig {
                        username: USERNAME.into(),
                        password: refresh.clone(),
                    },
                )
            })
            .collect();
        let via = target
            .mirror_source
            .as_deref()
            .map(|m| format!(" (mirror of {m})"))
            .unwrap_or_default();
        Ok(Answer {
            auth,
            cache_key_type: CacheKeyType::Registry,
            lifetime,
            expires_at,
            source: format!("{login}{via} as {}", identity.describe()),
        })
    }
}

impl Provider for AcrProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn explain(&self, query: &Query) -> keyring_api::provider::Explanation {
        let registry = query.image.registry();
        let Some(target) = host::resolve(
            registry,
            &self.settings.mirrors,
            &self.settings.registry_suffixes,
        ) else {
            return keyring_api::provider::Explanation {
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
        details.push(match &self.settings.cloud_config {
            Some(p) => format!(
                "identity: from {} (azure.json), else AZURE_* variables, else managed identity",
                p.display()
            ),
            None => {
                "identity: AZURE_* variables, else the VM's managed identity (no acr.cloudConfig)"
                    .into()
            }
        });
        details.push(format!(
            "with a pod's service-account token: the client assertion of the application named by {} (tenant from {}, else the node's); without that annotation {}",
            identity::ANNOTATION_CLIENT_ID,
            identity::ANNOTATION_TENANT_ID,
            if self.settings.node_identity_fallback {
                "the node's identity"
            } else {
                "an error (acr.nodeIdentityFallback: false)"
            }
        ));
        details.push(format!(
            "Entra ID token exchanged at {}/oauth2/exchange for an ACR refresh token; user 00000000-0000-0000-0000-000000000000; keys {:?}",
            target.login_server, target.keys
        ));
        keyring_api::provider::Explanation {
            applies: Some(true),
            summary: format!("{} is served by ACR ({})", registry, target.login_server),
            details,
        }
    }

    fn provide(&self, query: &Query) -> Result<Outcome, ProviderError> {
        let Some(target) = host::resolve(
            query.image.registry(),
            &self.settings.mirrors,
            &self.settings.registry_suffixes,
        ) else {
            return Ok(Outcome::NotApplicable);
        };
        self.fetch(query, &target)
            .map(Outcome::Answer)
            .map_err(|e| {
                // Name the login server once, at the front.
                let mut pe = e.into_provider_error();
                pe.message = format!("{}: {}", target.login_server, pe.message);
                pe
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_from_exp() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h3 = now + Duration::from_secs(3 * 3600);
        assert_eq!(
            lifetime(h3, now, Duration::ZERO),
            Duration::from_secs(3 * 3600 - 300)
        );
        assert_eq!(
            lifetime(h3, now, Duration::from_secs(30)),
            Duration::from_secs(3 * 3600 - 330)
        );
        // Jitter is capped.
        assert_eq!(
            lifetime(h3, now, Duration::from_secs(3600)),
            Duration::from_secs(3 * 3600 - 360)
        );
        // 75 minutes (reported for service-principal tokens): 70 minutes.
        assert_eq!(
            lifetime(now + Duration::from_secs(75 * 60), now, Duration::ZERO),
            Duration::from_secs(70 * 60)
        );
        // Near or past expiry: the floor.
        for exp in [
            now + Duration::from_secs(6 * 60),
            now + Duration::from_secs(10),
            now,
            now - Duration::from_secs(3600),
        ] {
            assert_eq!(lifetime(exp, now, Duration::ZERO), MIN_LIFETIME);
        }
    }

    #[test]
    fn jitter_in_range() {
        for _ in 0..100 {
            assert!(jitter() < MAX_JITTER);
        }
    }

    #[test]
    fn non_acr_images_are_not_applicable_without_io() {
        // Endpoints that cannot be reached: any I/O would fail the test.
        let config: Config = serde_json::from_str(
            r#"{"cloudConfig": "/nonexistent/azure.json",
                "mirrors": [{"source": "mcr.microsoft.com", "registry": "myacr.azurecr.io"}],
                "endpoints": {"imds": "http://127.0.0.1:9/x", "registry": "http://127.0.0.1:9"}}"#,
        )
        .unwrap();
        let p = AcrProvider::new(&config).unwrap().with_env(|_| None);
        for image in [
            "docker.io/library/nginx",
            "evil.com/x.azurecr.io",
            "x.azurecr.io.evil.com/app",
            "mcr.microsoft.com.evil.com/app",
            "gcr.io/p/x",
        ] {
            let q = Query::new(keyring_api::ImageName::parse(image).unwrap());
            assert_eq!(p.provide(&q).unwrap(), Outcome::NotApplicable, "{image}");
        }
        // An ACR image does do I/O: here the missing azure.json, named in the error.
        let q = Query::new(keyring_api::ImageName::parse("myacr.azurecr.io/app").unwrap());
        let e = p.provide(&q).unwrap_err().to_string();
        assert!(
            e.starts_with("acr: myacr.azurecr.io: cannot read azure.json /nonexistent/azure.json"),
            "{e}"
        );
    }

    #[test]
    fn bad_config_is_a_provider_error() {
        let config: Config = serde_json::from_str(r#"{"cloud": "Mars"}"#).unwrap();
        let e = AcrProvider::new(&config).unwrap_err().to_string();
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert!(
            e.starts_with("acr: config: acr.cloud: unknown cloud \"Mars\""),
            "{e}"
        );
    }
}
