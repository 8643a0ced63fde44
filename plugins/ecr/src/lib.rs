//! The ECR backend: registry tokens for AWS ECR private registries, ECR Public, and hosts
//! configured as ECR mirrors.
//!
//! Contract:
//!
//! * **Which images.** In this order: a host matching an entry of the config's `mirrors`
//!   ([`config`]); an ECR Public host (`public.ecr.aws`, `ecr-public.aws.com`); a private
//!   registry host ([`host::PrivateHost`]: every partition, FIPS, dual-stack). The image's
//!   port is ignored for the last two, as upstream does. Anything else is
//!   [`Outcome::NotApplicable`], decided from the host alone: no SDK, runtime, TLS or regex
//!   is built for it, and [`EcrBackend::new`] does no work either.
//! * **Which call.** Private and mirror: `ecr:GetAuthorizationToken` in the host's (or the
//!   entry's) region, without the deprecated `registryIds` (the token is good for every
//!   registry the identity may read there). Public: `ecr-public:GetAuthorizationToken` in
//!   us-east-1. FIPS and dual-stack API endpoints when a mirror entry asks for them, or the
//!   host is a FIPS or dual-stack one and `ecr.endpointVariantsFromHost` is on (the default
//!   under this program's name; off under upstream's, which never derives them from the
//!   host), or the SDK's own settings say so. Endpoints and the budget: [`token`]; the SDK's
//!   HTTP client, retries and timeouts: [`sdk`].
//! * **The answer.** One `auth` entry keyed by the image's registry as written (port kept,
//!   so a mirror `mirror.example.com:5000` gets exactly that key), user name and password
//!   from the decoded token (the user is normally `AWS`), `cacheKeyType` `Registry`,
//!   `lifetime` by the API's one rule (until 5 min before the token expires; a token
//!   without an expiry, or already expired by this node's clock, for the pull at hand
//!   only: `cacheDuration: 0s`) and `expires_at` the token's expiry ([`answer`]).
//! * **Failure.** `Err` with one line: which registry, what failed, the likely fix
//!   ([`error`]). Never a token, never an AWS response's message text.
//!
//! * **Whose credentials.** The node's, through the AWS SDK's default chain ([`identity`]),
//!   unless the request carries the pod's service-account token (KEP-4412): then the ECR
//!   call is signed with a role assumed with that token (`sts:AssumeRoleWithWebIdentity`).
//!   The role is, first found: the service account's annotation [`ROLE_ANNOTATION`], the
//!   config's `serviceAccountRoleArn`, the environment's [`ROLE_ENV`] (upstream's variable).
//!   With none of them, or the annotation present but empty (as upstream: it then decides
//!   alone), the node's credentials answer if `nodeIdentityFallback` is on (the default, as
//!   upstream does since PR #1281), else the request fails with a line saying how to name a
//!   role. An invalid role ARN fails the request, naming where it came from. The role is
//!   assumed in the registry's region, or for ECR Public and other hosts in the SDK's
//!   default region, as upstream.
//!   The answer is the same shape (`Registry`); the kubelet should cache it per service
//!   account (`tokenAttributes.cacheType: ServiceAccount`), and the binary's cache keys it by
//!   service account too. With `ecr.irsaRoleAnnotation: true`, IRSA's
//!   [`IRSA_ROLE_ANNOTATION`] is the last source (opt-in: that role was granted for the
//!   pod's own AWS calls, not necessarily for pulls).
//! * **Other hosts.** With `ecr.otherHosts: defaultRegion` (the default under the upstream
//!   name, see [`upstream`]) a host that is neither ECR's nor a mirror gets a token of the
//!   SDK's default region instead of [`Outcome::NotApplicable`].
//!
//! Module map, in the order [`EcrBackend::provide`] runs them (each names only modules
//! above it):
//!
//! | module | job |
//! |---|---|
//! | [`config`] | the `ecr:` section (serde) and its checks, no I/O |
//! | [`host`] | which images are mine ([`Route`]: mirror, Public, private host, other host) and which call gets their token; no I/O |
//! | [`error`] | every failure and its one-line wording, into [`BackendError`] |
//! | [`sdk`] | the AWS SDK's set-up for one call: the HTTP client from keyring-net's policy, bounds, the files it reads, endpoint overrides |
//! | [`identity`] | whom we sign as: the node's credentials chain (a `credential_process` profile run by `identity::credential_process`), or `identity::sts`, the pod's token exchanged for a role |
//! | [`token`] | the `GetAuthorizationToken` call (ECR, ECR Public), its runtime, budget and endpoint |
//! | [`answer`] | the [`keyring_api::Answer`]: decoded user and password, lifetime, key |
//! | [`upstream`] | `ecr-credential-provider`'s command line and environment, `configure` |

pub mod config;
pub mod host;
pub mod upstream;

mod answer;
mod error;
mod identity;
mod sdk;
mod token;

use keyring_api::backend::{Explanation, Query};
use keyring_api::{Backend, BackendError, Outcome};

pub use config::{Config, Mirror};
pub use host::Route;

/// The backend's name.
pub const NAME: &str = "ecr";

/// This backend as the binary sees it: name, the environment its answers depend on, and
/// the upstream plugin it answers for.
pub static BACKEND: keyring_api::BackendInfo = keyring_api::BackendInfo {
    name: NAME,
    cache_env: &["AWS_*"],
    upstream: Some(&upstream::PLUGIN),
};

/// The `ecr:` section of the plugin config and the backend made from it.
pub struct Ecr;

impl keyring_api::Configurable for Ecr {
    type Config = Config;
    const BACKEND: &'static keyring_api::BackendInfo = &BACKEND;
    const CONFIGURE_UPSTREAM: keyring_api::backend::ConfigureUpstream<Config> = upstream::configure;

    fn build(config: &Config) -> Result<Box<dyn keyring_api::Backend>, BackendError> {
        Ok(Box::new(EcrBackend::new(config.clone())))
    }
}

/// The service-account annotation upstream's ecr-credential-provider reads the ECR role from.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/ecr-role-arn";
/// The environment variable upstream reads the default role from.
pub const ROLE_ENV: &str = "AWS_ECR_ROLE_ARN";
/// IRSA's service-account annotation, consulted last when `ecr.irsaRoleAnnotation` is on.
pub const IRSA_ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";

/// The ECR backend.
#[derive(Debug, Clone)]
pub struct EcrBackend {
    config: Config,
}

impl EcrBackend {
    /// A backend for a validated config section. Cheap: no I/O, no client.
    pub fn new(config: Config) -> Self {
        EcrBackend { config }
    }

    /// Where the image's token would come from, or `None` when it is not an ECR image.
    pub fn route(&self, query: &Query) -> Option<Route> {
        host::route(&self.config, query)
    }
}

impl Backend for EcrBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn explain(&self, query: &Query) -> Explanation {
        let Some(route) = self.route(query) else {
            return Explanation {
                applies: Some(false),
                summary: format!(
                    "{} is not an ECR registry (private, in any partition, or Public) nor a configured mirror",
                    query.image.host()
                ),
                details: Vec::new(),
            };
        };
        let call = route.call(self.config.endpoint_variants_from_host());
        let mut details = vec![format!(
            "token from {}{}{}",
            route.describe(),
            if call.fips { ", FIPS API endpoint" } else { "" },
            if call.dual_stack {
                ", dual-stack API endpoint"
            } else {
                ""
            }
        )];
        details.push(format!("AWS credentials: {}", identity::node_source()));
        for k in [
            "AWS_ENDPOINT_URL_ECR",
            "AWS_ENDPOINT_URL_ECR_PUBLIC",
            "AWS_ENDPOINT_URL",
            "HTTPS_PROXY",
        ] {
            if std::env::var_os(k).is_some_and(|v| !v.is_empty()) {
                details.push(format!("{k} is set"));
            }
        }
        details.push(format!(
            "with a pod's service-account token: the role of annotation {ROLE_ANNOTATION}, else {}, else {ROLE_ENV}{}",
            match &self.config.service_account_role_arn {
                Some(r) => format!("ecr.serviceAccountRoleArn ({r})"),
                None => "ecr.serviceAccountRoleArn (not set)".into(),
            },
            if self.config.node_identity_fallback {
                ", else the node's credentials"
            } else {
                "; none of them fails the request (ecr.nodeIdentityFallback: false)"
            }
        ));
        details.push(
            "answer: user AWS with the decoded token, cached until 5 minutes before it expires (a token without an expiry, or already expired by this node's clock: for this pull only)"
                .into(),
        );
        Explanation {
            applies: Some(true),
            summary: format!("{} is served by ECR", query.image.registry()),
            details,
        }
    }

    fn provide(&self, query: &Query) -> Result<Outcome, BackendError> {
        let Some(route) = self.route(query) else {
            return Ok(Outcome::NOT_MINE);
        };
        let registry = query.image.registry();
        tracing::debug!("{registry}: {}", route.describe());
        let failed = |e: error::Error| e.into_backend(registry, &route);
        let env_role = std::env::var(ROLE_ENV).ok();
        let (identity, who) =
            identity::select(&self.config, query, env_role.as_deref()).map_err(failed)?;
        tracing::debug!("{registry}: signing with {who}");
        let call = route.call(self.config.endpoint_variants_from_host());
        let token = token::fetch(
            &call,
            &identity,
            query.deadline,
            self.config.go_proxy_variables,
            query.clock.now(),
        )
        .map_err(failed)?;
        let mut answer =
            answer::answer(registry, &route, &token, query.clock.now()).map_err(failed)?;
        if query.service_account_token.is_some() {
            answer.source = format!("{} as {who}", answer.source);
        }
        Ok(Outcome::Answer(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::ImageName;

    #[test]
    fn other_images_are_not_mine_without_any_aws_work() {
        // No credentials, no endpoint, no network: a non-ECR image must not get that far.
        let p = EcrBackend::new(Config::default());
        assert_eq!(
            p.provide(&Query::new(ImageName::parse("quay.io/x/y").unwrap()))
                .unwrap(),
            Outcome::NOT_MINE
        );
    }
}
