//! The gcp backend: Google Container Registry and Artifact Registry (and configured mirrors of
//! them) get `oauth2accesstoken` / a Google OAuth access token.
//!
//! # Which images
//!
//! * Google's registries: `gcr.io` and its subdomains (`us.gcr.io`, `mirror.gcr.io`, ...),
//!   every subdomain of `pkg.dev` (`us-docker.pkg.dev`, ...), and
//!   `container.cloud.google.com`. Google owns these domains, so any port or depth is safe.
//! * The config's `mirrors` ([`Config`]), matched with the kubelet's own rules.
//! * Nothing else. Upstream's auth-provider-gcp also answers for whatever host the kubelet's
//!   `matchImages` let through (PR #793), which sends a Google token to any registry a
//!   too-wide pattern admits; here a host that is neither Google's nor a listed mirror is
//!   [`Outcome::NotApplicable`] and never sees a token.
//!
//! For any other image `provide` returns at once, without building a runtime or a client and
//! without I/O (unless `dockercfg` is on, below).
//!
//! # The answer
//!
//! Username `oauth2accesstoken`, password the access token. That is the user name Google
//! documents for GCR and Artifact Registry; upstream sends `_token`, which the registries
//! also accept today but is undocumented. The `auth` key is the image's registry
//! (`host[:port]`), or registry plus path for a mirror with a path (then `cacheKeyType` is
//! `Image`, else `Registry`). `lifetime` is the token's real remaining life minus five
//! minutes and up to a minute of jitter (so the nodes of a cluster do not all refresh at once),
//! at least one minute but never past the token's expiry; `expires_at` is the expiry itself.
//!
//! Where the token comes from is described in [`token`] (key file,
//! application default credentials, metadata server; the metadata server's address can be
//! overridden with `GCE_METADATA_HOST`).
//!
//! # Failure
//!
//! For an image this backend owns, any failure is an `Err(BackendError)` with one line: what
//! failed, for which registry, and the likely fix. Upstream answers such failures with an
//! empty `auth` and exit 0, so the pull runs anonymously and the user sees a 401 far away from
//! the cause. Nothing here ever answers Ok with empty credentials for a Google registry.
//!
//! # Deadlines
//!
//! Metadata requests connect within 2 s and finish within 3 s (see [`metadata`]); the whole
//! `provide` call, retries included, is cut at [`TOTAL_DEADLINE`], far under the kubelet's
//! 60 s exec timeout.
//!
//! # Docker config from metadata
//!
//! With `dockercfg: true`, `provide` first reads the `google-dockercfg` (then
//! `google-dockercfg-url`) instance attribute ([`dockercfg`]) for *every* image, since such a
//! config may hold credentials for any registry; scope it with the kubelet's `matchImages`.
//! An entry that matches the image answers (five-minute lifetime, like a file on disk). If
//! none does, a Google registry or mirror gets the access token as usual and any other image
//! is not applicable (the next backend, e.g. docker-config, is asked). If the metadata server
//! cannot be read, that is an error for every image: the operator said credentials live there.
//!
//! # Service-account tokens (KEP-4412)
//!
//! A request that carries the pod's service-account token from a service account that opted
//! in (`iam.gke.io/enable-wi-image-pull: "true"`, or `gcp.workloadIdentity.optIn: all`) is
//! answered with a token from Google STS for that service account, optionally impersonating
//! the Google service account it names (`iam.gke.io/gcp-service-account`); see
//! [`federation`]. Opted in but failing is an error, never the node's identity. Other
//! requests with a token use the node's identity unless `gcp.nodeIdentityFallback: false`.

pub mod config;
pub mod dockercfg;
mod error;
pub mod federation;
pub mod metadata;
pub mod token;
pub mod upstream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use keyring_api::backend::Query;
use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, Backend, BackendError, CacheKeyType, Deadline, Outcome};

pub use config::{Config, Mirror};

use error::Error;

/// The backend's name, in logs, errors and the cache.
pub const NAME: &str = "gcp";

/// This backend as the binary sees it: name, the environment its answers depend on, and
/// the upstream plugin it answers for.
pub static BACKEND: keyring_api::BackendInfo = keyring_api::BackendInfo {
    name: NAME,
    cache_env: &["GOOGLE_*", "GCE_*", "CLOUDSDK_*", "KUBE_SIDECAR_*"],
    upstream: Some(&upstream::PLUGIN),
};

/// The `gcp:` section of the plugin config and the backend made from it.
pub struct Gcp;

impl keyring_api::Configurable for Gcp {
    type Config = Config;
    const BACKEND: &'static keyring_api::BackendInfo = &BACKEND;
    const CONFIGURE_UPSTREAM: keyring_api::backend::ConfigureUpstream<Config> = upstream::configure;

    fn build(config: &Config) -> Result<Box<dyn keyring_api::Backend>, BackendError> {
        Ok(Box::new(GcpBackend::new(config.clone())))
    }
}
/// The user name that goes with an access token.
pub const USERNAME: &str = "oauth2accesstoken";
/// The cut-off for one `provide` call.
pub const TOTAL_DEADLINE: Duration = Duration::from_secs(20);

/// The environment this backend reads, captured once per call so tests can supply their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `GOOGLE_APPLICATION_CREDENTIALS`, when set and not empty.
    pub application_credentials: Option<PathBuf>,
    /// The home directory (`$HOME`, else the password database).
    pub home: Option<PathBuf>,
    /// `GCE_METADATA_HOST`, when set and not empty.
    pub metadata_host: Option<String>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Env {
            application_credentials: var("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
            home: std::env::home_dir().filter(|h| !h.as_os_str().is_empty()),
            metadata_host: var("GCE_METADATA_HOST").map(|v| v.to_string_lossy().into_owned()),
        }
    }
}

/// Whether `host` (no port) is one of Google's registries.
pub fn is_google_registry(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let under = |domain: &str| {
        host.strip_suffix(domain)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|sub| !sub.is_empty() && !sub.ends_with('.'))
    };
    host == "gcr.io" || host == "container.cloud.google.com" || under("gcr.io") || under("pkg.dev")
}

/// Why this backend owns an image.
#[derive(Debug, Clone, Copy)]
enum Owner<'a> {
    Google,
    Mirror(&'a Mirror),
    /// `gcp.otherHosts: accessToken`.
    Other,
}

/// The gcp backend.
#[derive(Debug, Clone)]
pub struct GcpBackend {
    config: Config,
    env: Option<Env>,
}

impl GcpBackend {
    /// A backend with this config; reads the process environment when asked. No I/O.
    pub fn new(config: Config) -> Self {
        GcpBackend { config, env: None }
    }

    /// A backend that uses `env` instead of the process environment.
    pub fn with_env(config: Config, env: Env) -> Self {
        GcpBackend {
            config,
            env: Some(env),
        }
    }

    fn owner(&self, query: &Query) -> Option<Owner<'_>> {
        if is_google_registry(query.image.host()) {
            return Some(Owner::Google);
        }
        self.config
            .mirrors
            .iter()
            .find(|m| m.matches(&query.target))
            .map(Owner::Mirror)
            .or(
                (self.config.other_hosts == Some(config::OtherHosts::AccessToken))
                    .then_some(Owner::Other),
            )
    }

    async fn run(
        &self,
        query: &Query,
        owner: Option<Owner<'_>>,
        env: &Env,
        deadline: Deadline,
    ) -> Result<Outcome, BackendError> {
        if self.config.dockercfg {
            let md = metadata::Metadata::new(env.metadata_host.as_deref(), deadline)
                .map_err(|e| dockercfg::backend_error(query, e))?;
            let loaded = dockercfg::load(&md)
                .await
                .map_err(|e| dockercfg::backend_error(query, e))?;
            if let Some((entries, origin)) = loaded {
                if let Some(answer) = dockercfg::answer(&entries, &origin, query) {
                    return Ok(Outcome::Answer(answer));
                }
                tracing::debug!("{origin}: no entry for {}", query.image);
            }
        }
        let Some(owner) = owner else {
            return Ok(Outcome::NOT_MINE);
        };
        let token =
            match federation::decide(&self.config, query).map_err(|e| token_error(query, e))? {
                federation::Decision::Node => {
                    let source = token::select(env).map_err(|e| token_error(query, e))?;
                    token::fetch(source, env, deadline)
                        .await
                        .map_err(|e| token_error(query, e))?
                }
                federation::Decision::Exchange {
                    wi,
                    token,
                    impersonate,
                } => federation::exchange(wi, env, token, impersonate.as_deref(), deadline)
                    .await
                    .map_err(|e| token_error(query, e))?,
            };
        // The fetchers date the token on the system clock; the answer is
        // dated on the query's clock (the same one, but for a test build's fixed clock).
        let token = token::AccessToken {
            expires_at: rebase(token.expires_at, SystemTime::now(), query.clock.now()),
            ..token
        };
        let mut answer = token_answer(query, owner, token, query.clock.now())?;
        let o = self.config.answer_override;
        if let Some(max) = o.max_lifetime {
            answer.lifetime = answer.lifetime.min(max);
        }
        if let Some(t) = o.cache_key_type {
            answer.cache_key_type = t;
        }
        Ok(Outcome::Answer(answer))
    }
}

impl Backend for GcpBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn explain(&self, query: &Query) -> keyring_api::backend::Explanation {
        let owner = self.owner(query);
        let mut details = Vec::new();
        if self.config.dockercfg {
            details.push(
                "gcp.dockercfg is on: the metadata google-dockercfg / google-dockercfg-url attributes are read first, for every image".to_string(),
            );
        }
        let summary = match owner {
            Some(Owner::Google) => format!("{} is a Google registry", query.image.host()),
            Some(Owner::Mirror(m)) => format!("{} matches the configured mirror {:?}", query.image.registry(), m.as_str()),
            Some(Owner::Other) => format!("{} is not Google's, but gcp.otherHosts is accessToken (upstream's behaviour)", query.image.host()),
            None if self.config.dockercfg => {
                "not a Google registry or mirror; answers only if the metadata docker config has an entry".to_string()
            }
            None => {
                return keyring_api::backend::Explanation {
                    applies: Some(false),
                    summary: format!(
                        "{} is not gcr.io, *.gcr.io, *.pkg.dev, container.cloud.google.com or a configured mirror",
                        query.image.host()
                    ),
                    details,
                }
            }
        };
        let env = self.env.clone().unwrap_or_else(Env::from_process);
        details.push(match token::select(&env) {
            Ok(token::Source::ServiceAccount { path, email, .. }) => {
                format!("token: service-account key {} ({email})", path.display())
            }
            Ok(token::Source::AuthorizedUser { path, .. }) => {
                format!("token: gcloud application default credentials {}", path.display())
            }
            Ok(token::Source::Metadata) => format!(
                "token: the metadata server at {} (no GOOGLE_APPLICATION_CREDENTIALS, no gcloud ADC file)",
                env.metadata_host.as_deref().unwrap_or("169.254.169.254")
            ),
            Err(e) => format!("token: the credentials cannot be used: {e}"),
        });
        details.push(match &self.config.workload_identity {
            Some(wi) => format!(
                "with a pod's service-account token: exchanged at {} when the service account opted in ({}), else {}",
                wi.sts_endpoint,
                match wi.opt_in {
                    config::OptIn::Annotation => format!("annotation {}: \"true\"", federation::OPT_IN_ANNOTATION),
                    config::OptIn::All => "optIn: all".into(),
                },
                if self.config.node_identity_fallback { "the node's identity" } else { "an error (nodeIdentityFallback: false)" }
            ),
            None => format!(
                "with a pod's service-account token: {} (gcp.workloadIdentity is not configured; an opted-in service account fails)",
                if self.config.node_identity_fallback { "the node's identity" } else { "an error (nodeIdentityFallback: false)" }
            ),
        });
        details.push(format!(
            "answer: user {USERNAME:?} with the access token, cached until 5 minutes before it expires"
        ));
        keyring_api::backend::Explanation {
            applies: if owner.is_some() { Some(true) } else { None },
            summary,
            details,
        }
    }

    fn provide(&self, query: &Query) -> Result<Outcome, BackendError> {
        let owner = self.owner(query);
        if owner.is_none() && !self.config.dockercfg {
            return Ok(Outcome::NOT_MINE);
        }
        let env = self.env.clone().unwrap_or_else(Env::from_process);
        // The backend's own bound, cut to what is left of the invocation's budget.
        let limit = query.deadline.cap(TOTAL_DEADLINE);
        let deadline = Deadline::after(limit);
        let rt = keyring_net::Blocking::new().map_err(|e| {
            let e = Error::Runtime(e);
            BackendError::new(NAME, e.kind(), e.to_string())
        })?;
        keyring_api::quiet::run("keyring_gcp", || {
            rt.block_on(async {
                tokio::time::timeout(limit, self.run(query, owner, &env, deadline))
                    .await
                    .unwrap_or_else(|_| {
                        let e = Error::Deadline(limit);
                        Err(BackendError::new(
                            NAME,
                            e.kind(),
                            format!("{}: {e}", query.image.registry()),
                        ))
                    })
            })
        })
    }
}

fn token_error(query: &Query, e: Error) -> BackendError {
    BackendError::new(
        NAME,
        e.kind(),
        format!("no access token for {}: {e}", query.image.registry()),
    )
}

/// `t` on the system clock reading `system`, moved to a clock reading `clock` at that moment.
fn rebase(t: SystemTime, system: SystemTime, clock: SystemTime) -> SystemTime {
    match t.duration_since(system) {
        Ok(ahead) => clock + ahead,
        Err(e) => clock
            .checked_sub(e.duration())
            .unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// The answer for a token.
fn token_answer(
    query: &Query,
    owner: Owner<'_>,
    token: token::AccessToken,
    now: SystemTime,
) -> Result<Answer, BackendError> {
    let registry = query.image.registry();
    let (key, cache_key_type) = match owner {
        Owner::Mirror(m) if !m.path().is_empty() => {
            (format!("{registry}{}", m.path()), CacheKeyType::Image)
        }
        _ => (registry.to_string(), CacheKeyType::Registry),
    };
    let lifetime = lifetime::for_expiry(now, token.expires_at)
        .map_err(|e| BackendError::protocol(NAME, format!("{registry}: {} ({e})", token.source)))?;
    let mut auth = BTreeMap::new();
    auth.insert(
        key,
        AuthConfig {
            username: USERNAME.to_string(),
            password: token.token,
        },
    );
    Ok(Answer {
        auth,
        cache_key_type,
        lifetime,
        expires_at: Some(token.expires_at),
        source: token.source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::{ImageName, Secret};

    fn query(image: &str) -> Query {
        Query::new(ImageName::parse(image).unwrap())
    }

    #[test]
    fn google_hosts() {
        for host in [
            "gcr.io",
            "us.gcr.io",
            "eu.gcr.io",
            "mirror.gcr.io",
            "GCR.io",
            "us-docker.pkg.dev",
            "europe-west1-docker.pkg.dev",
            "a.b.pkg.dev",
            "container.cloud.google.com",
        ] {
            assert!(is_google_registry(host), "{host}");
        }
        for host in [
            "pkg.dev",
            "evilgcr.io",
            "gcr.io.evil.com",
            "gcr.iox",
            ".gcr.io",
            "a..gcr.io",
            "us-docker.pkg.dev.evil.com",
            "notpkg.dev",
            "cloud.google.com",
            "x.container.cloud.google.com",
            "docker.io",
            "",
        ] {
            assert!(!is_google_registry(host), "{host}");
        }
    }

    #[test]
    fn ownership_is_google_or_a_listed_mirror() {
        let config: Config =
            serde_json::from_str(r#"{"mirrors": ["reg.example.com:5000", "m.example.com/gcr"]}"#)
                .unwrap();
        let p = GcpBackend::with_env(config, Env::default());
        for (image, owned) in [
            ("gcr.io/p/i", true),
            ("us-docker.pkg.dev/p/r/i:1", true),
            ("gcr.io:443/p/i", true),
            ("reg.example.com:5000/p/i", true),
            ("reg.example.com/p/i", false),
            ("m.example.com/gcr/p/i", true),
            ("m.example.com/other/i", false),
            ("nginx", false),
            ("quay.io/p/i", false),
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com/i", false),
        ] {
            assert_eq!(p.owner(&query(image)).is_some(), owned, "{image}");
        }
    }

    #[test]
    fn foreign_images_are_not_applicable_without_io() {
        // A metadata host that would fail loudly if anything were asked of it.
        let env = Env {
            metadata_host: Some("bad host!".into()),
            application_credentials: Some("/nonexistent/key.json".into()),
            home: None,
        };
        let p = GcpBackend::with_env(Config::default(), env);
        for image in [
            "nginx",
            "quay.io/p/i",
            "gcr.io.evil.com/x",
            "reg.example.com:5000/x",
        ] {
            assert_eq!(
                p.provide(&query(image)).unwrap(),
                Outcome::NOT_MINE,
                "{image}"
            );
        }
        // The same backend fails for a Google image, naming the registry and the cause.
        let e = p
            .provide(&query("us-docker.pkg.dev/p/r/i"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("gcp: no access token for us-docker.pkg.dev: GOOGLE_APPLICATION_CREDENTIALS /nonexistent/key.json: no such file"),
            "{e}"
        );
    }

    #[test]
    fn token_answers() {
        let config: Config = serde_json::from_str(r#"{"mirrors": ["m.example.com/gcr"]}"#).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = || token::AccessToken {
            token: Secret::new("ya29.t".into()),
            expires_at: now + Duration::from_secs(3599),
            source: "test".into(),
        };
        let q = query("us-docker.pkg.dev/p/r/i:1");
        let a = token_answer(&q, Owner::Google, token(), now).unwrap();
        assert_eq!(a.auth.keys().collect::<Vec<_>>(), ["us-docker.pkg.dev"]);
        assert_eq!(a.auth["us-docker.pkg.dev"].username, "oauth2accesstoken");
        assert_eq!(a.auth["us-docker.pkg.dev"].password.expose(), "ya29.t");
        assert_eq!(a.cache_key_type, CacheKeyType::Registry);
        // The one lifetime rule: expiry less the margin; jitter is the cache's, not ours.
        assert_eq!(a.lifetime, Duration::from_secs(3599 - 300));
        assert_eq!(a.expires_at, Some(now + Duration::from_secs(3599)));

        let q = query("m.example.com/gcr/p/i");
        let a = token_answer(&q, Owner::Mirror(&config.mirrors[0]), token(), now).unwrap();
        assert_eq!(a.auth.keys().collect::<Vec<_>>(), ["m.example.com/gcr"]);
        assert_eq!(a.cache_key_type, CacheKeyType::Image);
    }
}
