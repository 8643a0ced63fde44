//! The gcp backend: Google Container Registry and Artifact Registry (and configured mirrors of
//! them) get a Google OAuth access token as password (user `oauth2accesstoken`; `_token`
//! under auth-provider-gcp's names).
//!
//! # The plan
//!
//! [`GcpBackend::provide`] reads as the plan every backend follows, host → identity → token
//! → answer:
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the `gcp:` section of the plugin config, checked while it is read; no I/O |
//! | [`host`] | which images are this backend's: Google's registries, the configured mirrors, `otherHosts`; and how widely "not mine" holds; no I/O |
//! | [`identity`] | whom we authenticate as: the pod's service account when it opted in ([`identity::pod`]), else the node's key file, federation file ([`identity::external_account`]) or gcloud credentials ([`identity::key_file`]) or the metadata server; reads files, no network |
//! | [`token`] | the calls that turn that identity into an access token: OAuth token endpoints ([`token::oauth`]), the metadata server ([`token::metadata`]), Google STS and the IAM credentials API ([`token::federation`]), an `external_account` file's subject token and exchange ([`token::external_account`]); and the docker config metadata may deliver ([`token::dockercfg`]) |
//! | [`answer`] | the [`Answer`](keyring_api::Answer) in our shape or upstream's: `auth` keys, user name, lifetime (by [`keyring_api::lifetime`]), `cacheKeyType`, and upstream's `KUBE_SIDECAR_CACHE_*` on every answer |
//! | [`error`] | what can fail, in one line with the likely fix, and its [`BackendError`] |
//! | [`upstream`] | `auth-provider-gcp`'s command line and environment, and what they set here: under its names, its behaviour ([`Config::upstream`]) |
//!
//! # Which images
//!
//! Google's registries, the config's `mirrors` and nothing else unless `gcp.otherHosts:
//! accessToken` says so; see [`host`]. For any other image `provide` returns at once, without
//! building a runtime or a client and without I/O (unless `dockercfg` is on, below): not mine
//! for the registry ([`Outcome::NOT_MINE`]), or, when a mirror with a path covers the host at
//! another path, not mine for this image only ([`Outcome::NOT_MINE_AT_THIS_PATH`]), so that
//! the empty answer the binary then gives is never cached for the mirror's path too. The
//! same holds for a metadata docker config with an entry for another path of the registry.
//!
//! # The answer
//!
//! Username `oauth2accesstoken`, password the access token, keyed by the image's registry
//! (or registry and path, for a mirror with a path), cached until five minutes before the
//! token expires. Under auth-provider-gcp's names the answer has upstream's shape instead:
//! user `_token`, keyed for every Google registry too, `cacheKeyType` `Image`. The details in
//! [`answer`]. The cache, not this backend, takes refresh jitter off that lifetime, once.
//!
//! Where the token comes from is described in [`identity`] and [`token`] (key file,
//! workload identity federation file, application default credentials, when
//! `gcp.credentialFiles` lists them: by default under the own name, never under upstream's
//! names unless the plugin config says so; else the metadata server, whose address
//! `GCE_METADATA_HOST` can override). All of it is our own OAuth on [`keyring_net`]: Google's
//! `google-cloud-auth` crate was measured and not taken ([`token::external_account`] has the
//! figures and the reasons).
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
//! Metadata requests connect within 2 s and finish within 3 s (see [`token::metadata`]); the
//! whole `provide` call, retries included, is cut at [`TOTAL_DEADLINE`], far under the
//! kubelet's 60 s exec timeout.
//!
//! # Docker config from metadata
//!
//! With `dockercfg: true`, `provide` first reads the `google-dockercfg` (then
//! `google-dockercfg-url`) instance attribute ([`token::dockercfg`]) for *every* image, since
//! such a config may hold credentials for any registry; scope it with the kubelet's
//! `matchImages`. An entry that matches the image answers (five-minute lifetime, like a file
//! on disk). If none does, a Google registry or mirror gets the access token as usual and any
//! other image is not applicable (the next backend, e.g. docker-config, is asked). If the
//! metadata server cannot be read, that is an error for every image: the operator said
//! credentials live there.
//!
//! Under auth-provider-gcp's names, `--authFlow=dockercfg` reads only `google-dockercfg` and
//! `dockercfg-url` only `google-dockercfg-url`, and the whole document answers, for every
//! image, as upstream; an attribute that is not set is upstream's empty answer
//! (`cacheKeyType` `Image`, `cacheDuration` `0s`, both subject to `KUBE_SIDECAR_CACHE_*`
//! like every answer), so under these flows this backend answers every image and backends
//! after it are not asked; a metadata server that cannot be read is an error, as above.
//! Neither flow ever answers with a token. A document's answer lives five minutes, like a
//! file on disk, where upstream sends `0s` (see [`answer`]).
//!
//! # Service-account tokens (KEP-4412)
//!
//! A request that carries the pod's service-account token from a service account that opted
//! in (`iam.gke.io/enable-wi-image-pull: "true"`, or `gcp.workloadIdentity.optIn: all`) is
//! answered with a token from Google STS for that service account, impersonating the Google
//! service account it names (`iam.gke.io/gcp-service-account`) when
//! `gcp.workloadIdentity.impersonate` allows (by default under the own name, not under
//! upstream's names); see [`identity::pod`] and [`token::federation`]. Opted in but failing
//! is an error, never the node's identity; opted in without `gcp.workloadIdentity` is an
//! error under the own name and the node's identity under upstream's names, as upstream
//! without `--identity-provider`. Other requests with a token use the node's identity unless
//! `gcp.nodeIdentityFallback: false`.

pub mod answer;
pub mod config;
pub mod error;
pub mod host;
pub mod identity;
pub mod token;
pub mod upstream;

use std::time::Duration;

use keyring_api::backend::Query;
use keyring_api::{Backend, BackendError, Deadline, Outcome};

pub use config::Config;
pub use identity::Env;

use answer::Shape;
use config::AuthFlow;
use error::Error;
use host::Owner;

/// The backend's name, in logs, errors and the cache.
pub const NAME: &str = "gcp";

/// This backend as the binary sees it: name, the environment its answers depend on, and
/// the upstream plugin it answers for.
pub static BACKEND: keyring_api::BackendInfo = keyring_api::BackendInfo {
    name: NAME,
    cache_env: &[
        "GOOGLE_*",
        "GCE_*",
        "CLOUDSDK_*",
        "KUBE_SIDECAR_*",
        // An external_account file's aws1 source (identity::AwsEnv).
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ],
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

/// The cut-off for one `provide` call.
pub const TOTAL_DEADLINE: Duration = Duration::from_secs(20);

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
        host::owner(
            &self.config.mirrors,
            self.config.other_hosts.unwrap_or_default(),
            query,
        )
    }

    /// `explain`'s line on the node's token: which source, and which files were not read.
    fn explain_node_token(&self, env: &Env) -> String {
        use identity::key_file::Source;
        let files = self.config.credential_files();
        let metadata = || {
            env.metadata_host
                .as_deref()
                .unwrap_or(token::metadata::DEFAULT_HOST)
        };
        match identity::key_file::select(env, files) {
            Ok(Source::ServiceAccount { path, email, .. }) => {
                format!("token: service-account key {} ({email})", path.display())
            }
            Ok(Source::AuthorizedUser { path, .. }) => {
                format!("token: gcloud application default credentials {}", path.display())
            }
            Ok(Source::ExternalAccount {
                path,
                origin,
                account,
            }) => format!(
                "token: workload identity federation, {} {}: {}",
                origin.describe(),
                path.display(),
                account.describe()
            ),
            Ok(Source::Metadata { .. }) if files.is_empty() => format!(
                "token: the metadata server at {} (gcp.credentialFiles is empty: GOOGLE_APPLICATION_CREDENTIALS and gcloud's ADC file are not read)",
                metadata()
            ),
            Ok(Source::Metadata { .. }) => format!(
                "token: the metadata server at {} (no GOOGLE_APPLICATION_CREDENTIALS, no gcloud ADC file)",
                metadata()
            ),
            Err(e) => format!("token: the credentials cannot be used: {e}"),
        }
    }

    /// `explain`'s line on a pod's service-account token.
    fn explain_pod_token(&self) -> String {
        let otherwise = if self.config.node_identity_fallback {
            "the node's identity"
        } else {
            "an error (nodeIdentityFallback: false)"
        };
        match &self.config.workload_identity {
            Some(wi) => format!(
                "with a pod's service-account token: exchanged at {} when the service account opted in ({}){}, else {otherwise}",
                wi.sts_endpoint,
                match wi.opt_in {
                    config::OptIn::Annotation => {
                        format!("annotation {}: \"true\"", identity::pod::OPT_IN_ANNOTATION)
                    }
                    config::OptIn::All => "optIn: all".into(),
                },
                if wi.impersonates() {
                    format!(", then as the Google service account {} names", identity::pod::GSA_ANNOTATION)
                } else {
                    format!(" ({} is not used: impersonate is off)", identity::pod::GSA_ANNOTATION)
                },
            ),
            None if self.config.upstream.is_some() => format!(
                "with a pod's service-account token: {otherwise} (no --identity-provider: an opted-in service account pulls as the node, as upstream)"
            ),
            None => format!(
                "with a pod's service-account token: {otherwise} (gcp.workloadIdentity is not configured; an opted-in service account fails)"
            ),
        }
    }

    /// The answers' shape: upstream's under its names, else ours.
    fn shape(&self) -> Shape {
        match self.config.upstream {
            Some(_) => Shape::Upstream,
            None => Shape::Own,
        }
    }

    /// Whether every image is asked of the metadata docker config, whoever owns it.
    fn reads_dockercfg(&self) -> bool {
        self.config.dockercfg
            || matches!(
                self.config.upstream,
                Some(AuthFlow::Dockercfg | AuthFlow::DockercfgUrl)
            )
    }

    /// The plan, then upstream's `KUBE_SIDECAR_CACHE_*` on whatever answered.
    async fn run(
        &self,
        query: &Query,
        owner: Option<Owner<'_>>,
        env: &Env,
        deadline: Deadline,
    ) -> Result<Outcome, BackendError> {
        Ok(match self.plan(query, owner, env, deadline).await? {
            Outcome::Answer(a) => Outcome::Answer(answer::overridden(
                a,
                self.config.answer_override,
                self.shape(),
            )),
            refused => refused,
        })
    }

    /// The plan, once the host said the image may be this backend's (or a docker config is
    /// read for every image): upstream's docker config flows alone; else the metadata docker
    /// config if on, then identity → token → answer for an owner.
    async fn plan(
        &self,
        query: &Query,
        owner: Option<Owner<'_>>,
        env: &Env,
        deadline: Deadline,
    ) -> Result<Outcome, BackendError> {
        let registry = query.image.registry();
        // How widely "not mine" holds, if it comes to that.
        let mut refusal = host::refusal_scope(&self.config.mirrors, query);
        let metadata = || {
            token::metadata::Metadata::new(env.metadata_host.as_deref(), deadline)
                .map_err(|e| error::no_dockercfg(registry, e))
        };
        if let Some(flow @ (AuthFlow::Dockercfg | AuthFlow::DockercfgUrl)) = self.config.upstream {
            // Upstream's flows: one attribute each, the whole document, never a token.
            let md = metadata()?;
            let (attribute, loaded) = match flow {
                AuthFlow::Dockercfg => (
                    token::dockercfg::ATTRIBUTE,
                    token::dockercfg::load_attribute(&md).await,
                ),
                _ => (
                    token::dockercfg::URL_ATTRIBUTE,
                    token::dockercfg::load_url(&md).await,
                ),
            };
            let loaded = loaded.map_err(|e| error::no_dockercfg(registry, e))?;
            // Not set: upstream's empty answer (not "not mine", whose empty answer the
            // binary would cache five minutes per registry); the overrides apply in `run`.
            return Ok(Outcome::Answer(match loaded {
                Some((entries, origin)) => answer::whole_dockercfg(&entries, &origin),
                None => answer::upstream_not_set(attribute, self.config.answer_override),
            }));
        }
        if self.config.dockercfg {
            let md = metadata()?;
            let loaded = token::dockercfg::load(&md)
                .await
                .map_err(|e| error::no_dockercfg(registry, e))?;
            if let Some((entries, origin)) = loaded {
                match answer::from_dockercfg(&entries, &origin, query) {
                    Outcome::NotApplicable { scope } => {
                        tracing::debug!("{origin}: no entry for {}", query.image);
                        refusal = refusal.min(scope);
                    }
                    answer => return Ok(answer),
                }
            }
        }
        let Some(owner) = owner else {
            return Ok(Outcome::NotApplicable { scope: refusal });
        };
        let identity =
            identity::whom(&self.config, query, env).map_err(|e| error::no_token(registry, e))?;
        let token = token::fetch(identity, env, &query.clock, deadline)
            .await
            .map_err(|e| error::no_token(registry, e))?;
        let answer = answer::from_token(query, owner, token, self.shape(), query.clock.now())?;
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
        match self.config.upstream {
            Some(AuthFlow::Dockercfg) => details.push(format!(
                "--authFlow=dockercfg: every entry of the metadata attribute {} answers, for every image; never a token",
                token::dockercfg::ATTRIBUTE
            )),
            Some(AuthFlow::DockercfgUrl) => details.push(format!(
                "--authFlow=dockercfg-url: every entry of the document the metadata attribute {} names answers, for every image; never a token",
                token::dockercfg::URL_ATTRIBUTE
            )),
            _ if self.config.dockercfg => details.push(
                "gcp.dockercfg is on: the metadata google-dockercfg / google-dockercfg-url attributes are read first, for every image".to_string(),
            ),
            _ => {}
        }
        if let (None, Some(m)) = (
            owner,
            host::mirror_at_another_path(&self.config.mirrors, query),
        ) {
            details.push(format!(
                "{} is the configured mirror {:?} only under {}: \"not mine\" holds for this image, not the registry",
                query.image.registry(),
                m.as_str(),
                m.path()
            ));
        }
        let summary = match owner {
            _ if self.shape() == Shape::Upstream && self.reads_dockercfg() => {
                "answers from the metadata docker config (auth-provider-gcp's docker config flow)".to_string()
            }
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
        if self.shape() == Shape::Upstream && self.reads_dockercfg() {
            return keyring_api::backend::Explanation {
                applies: None,
                summary,
                details,
            };
        }
        let env = self.env.clone().unwrap_or_else(Env::from_process);
        details.push(self.explain_node_token(&env));
        details.push(self.explain_pod_token());
        details.push(match self.shape() {
            Shape::Own => format!(
                "answer: user {:?} with the access token, keyed by the image's registry, cached until 5 minutes before it expires",
                answer::USERNAME
            ),
            Shape::Upstream => format!(
                "answer: user {:?} with the access token, keyed by the image's registry and {} (auth-provider-gcp's shape), cacheKeyType Image unless KUBE_SIDECAR_CACHE_TYPE says otherwise, cached until 5 minutes before it expires",
                answer::UPSTREAM_USERNAME,
                answer::UPSTREAM_KEYS.join(", ")
            ),
        });
        keyring_api::backend::Explanation {
            applies: if owner.is_some() { Some(true) } else { None },
            summary,
            details,
        }
    }

    fn provide(&self, query: &Query) -> Result<Outcome, BackendError> {
        let owner = self.owner(query);
        if owner.is_none() && !self.reads_dockercfg() {
            let scope = host::refusal_scope(&self.config.mirrors, query);
            return Ok(Outcome::NotApplicable { scope });
        }
        let env = self.env.clone().unwrap_or_else(Env::from_process);
        // The backend's own bound, cut to what is left of the invocation's budget.
        let limit = query.deadline.cap(TOTAL_DEADLINE);
        let deadline = Deadline::after(limit);
        let rt =
            keyring_net::Blocking::new().map_err(|e| error::failed(None, Error::Runtime(e)))?;
        keyring_api::quiet::run("keyring_gcp", || {
            rt.block_on(async {
                tokio::time::timeout(limit, self.run(query, owner, &env, deadline))
                    .await
                    .unwrap_or_else(|_| {
                        Err(error::failed(
                            Some(query.image.registry()),
                            Error::Deadline(limit),
                        ))
                    })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::ImageName;

    fn query(image: &str) -> Query {
        Query::new(ImageName::parse(image).unwrap())
    }

    #[test]
    fn foreign_images_are_not_applicable_without_io() {
        // A metadata host that would fail loudly if anything were asked of it.
        let env = Env {
            metadata_host: Some("bad host!".into()),
            application_credentials: Some("/nonexistent/key.json".into()),
            ..Env::default()
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
}
