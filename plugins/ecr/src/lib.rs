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
//!   us-east-1. FIPS and dual-stack API endpoints when the host (or entry) asks for them.
//!   Credentials, endpoints, retries and deadlines: see [`aws`].
//! * **The answer.** One `auth` entry keyed by the image's registry as written (port kept,
//!   so a mirror `mirror.example.com:5000` gets exactly that key), user name and password
//!   from the decoded token (the user is normally `AWS`), `cacheKeyType` `Registry`,
//!   `lifetime` by the API's one rule (until 5 min before the token expires, an expired
//!   token is an error) and `expires_at` the token's expiry ([`token`]).
//! * **Failure.** `Err` with one line: which registry, what failed, the likely fix. Never
//!   a token, never an AWS response's message text.
//!
//! * **Service-account tokens (KEP-4412).** When the request carries the pod's token, the
//!   ECR call is signed with a role assumed with that token (`sts:AssumeRoleWithWebIdentity`,
//!   see [`aws`]). The role is, first found: the service account's annotation
//!   [`ROLE_ANNOTATION`], the config's `serviceAccountRoleArn`, the environment's
//!   [`ROLE_ENV`] (upstream's variable). With none of them the node's credentials answer if
//!   `nodeIdentityFallback` is on (the default, as upstream does since PR #1281), else the
//!   request fails with a line saying how to name a role. An invalid role ARN fails the
//!   request, naming where it came from. The answer is the same shape (`Registry`); the
//!   kubelet should cache it per service account (`tokenAttributes.cacheType:
//!   ServiceAccount`), and the binary's cache keys it by service account too. With
//!   `ecr.irsaRoleAnnotation: true`, IRSA's [`IRSA_ROLE_ANNOTATION`] is the last source
//!   (opt-in: that role was granted for the pod's own AWS calls, not necessarily for pulls).
//! * **Other hosts.** With `ecr.otherHosts: defaultRegion` (the default under the upstream
//!   name, see [`upstream`]) a host that is neither ECR's nor a mirror gets a token of the
//!   SDK's default region instead of [`Outcome::NotApplicable`].

pub mod aws;
pub mod config;
pub mod host;
pub mod token;
pub mod upstream;

use std::collections::BTreeMap;
use std::time::SystemTime;

use keyring_api::backend::Query;
use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, Backend, BackendError, CacheKeyType, Outcome};

pub use config::{Config, Mirror};

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

/// Whose credentials sign the ECR call for this query, and how to say so: the node's, or a
/// role assumed with the pod's service-account token. `env_role` is [`ROLE_ENV`]'s value.
/// The error is [`ErrorKind::Misconfigured`](keyring_api::ErrorKind::Misconfigured): one line
/// naming the registry, without the token.
pub fn select_identity(
    config: &Config,
    query: &Query,
    env_role: Option<&str>,
) -> Result<(aws::Identity, String), BackendError> {
    let Some(token) = &query.service_account_token else {
        return Ok((aws::Identity::Node, "the node's AWS credentials".into()));
    };
    let non_empty = |s: &&str| !s.trim().is_empty();
    let role = query
        .service_account_annotations
        .get(ROLE_ANNOTATION)
        .map(String::as_str)
        .filter(non_empty)
        .map(|r| (r, format!("annotation {ROLE_ANNOTATION}")))
        .or_else(|| {
            config
                .service_account_role_arn
                .as_deref()
                .map(|r| (r, "ecr.serviceAccountRoleArn".to_string()))
        })
        .or_else(|| {
            env_role
                .filter(non_empty)
                .map(|r| (r, ROLE_ENV.to_string()))
        })
        .or_else(|| {
            query
                .service_account_annotations
                .get(IRSA_ROLE_ANNOTATION)
                .map(String::as_str)
                .filter(non_empty)
                .filter(|_| config.irsa_role_annotation)
                .map(|r| (r, format!("annotation {IRSA_ROLE_ANNOTATION}")))
        });
    match role {
        Some((arn, from)) => {
            let arn = arn.trim();
            config::check_role_arn(&from, arn).map_err(|e| {
                let message = format!("{}: role from {e}", query.image.registry());
                BackendError::misconfigured(NAME, message).with_source(e)
            })?;
            Ok((
                aws::Identity::WebIdentity {
                    role_arn: arn.to_string(),
                    session_name: config.session_name().to_string(),
                    token: token.clone(),
                },
                format!("role {arn} (from {from}) with the pod's service-account token"),
            ))
        }
        None if config.node_identity_fallback => Ok((
            aws::Identity::Node,
            "the node's AWS credentials (the service account names no role)".into(),
        )),
        None => Err(BackendError::misconfigured(NAME, format!(
            "{}: the kubelet sent a service-account token but no role is named for it; annotate the service account with {ROLE_ANNOTATION}, or set ecr.serviceAccountRoleArn or {ROLE_ENV}, or set ecr.nodeIdentityFallback: true to pull with the node's credentials",
            query.image.registry()
        ))),
    }
}

/// The ECR backend.
#[derive(Debug, Clone)]
pub struct EcrBackend {
    config: Config,
}

/// Where an image's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A configured mirror.
    Mirror(Mirror),
    /// ECR Public; `dual_stack` for `ecr-public.aws.com`.
    Public {
        /// The dual-stack host.
        dual_stack: bool,
    },
    /// A private registry host.
    Private(host::PrivateHost),
    /// Another host, under `ecr.otherHosts: defaultRegion`.
    DefaultRegion,
}

impl Route {
    /// The call to make.
    pub fn call(&self) -> aws::Call {
        match self {
            Route::Mirror(m) => aws::Call {
                api: aws::Api::Private,
                region: Some(m.region.clone()),
                fips: m.fips,
                dual_stack: m.dual_stack,
            },
            Route::Public { dual_stack } => aws::Call {
                api: aws::Api::Public,
                region: Some(host::PUBLIC_REGION.into()),
                fips: false,
                dual_stack: *dual_stack,
            },
            Route::Private(h) => aws::Call {
                api: aws::Api::Private,
                region: Some(h.sdk_region()),
                fips: h.fips,
                dual_stack: h.dual_stack(),
            },
            Route::DefaultRegion => aws::Call {
                api: aws::Api::Private,
                region: None,
                fips: false,
                dual_stack: false,
            },
        }
    }

    /// Where the credential comes from, for the answer's `source` and messages.
    pub fn describe(&self) -> String {
        match self {
            Route::Mirror(m) => match &m.registry_id {
                Some(id) => format!("ECR {} via mirror {} (account {id})", m.region, m.host),
                None => format!("ECR {} via mirror {}", m.region, m.host),
            },
            Route::Public { .. } => format!("ECR Public {}", host::PUBLIC_REGION),
            Route::Private(h) => format!("ECR {} (account {})", h.sdk_region(), h.account),
            Route::DefaultRegion => "ECR of the default region (ecr.otherHosts)".into(),
        }
    }
}

impl EcrBackend {
    /// A backend for a validated config section. Cheap: no I/O, no client.
    pub fn new(config: Config) -> Self {
        EcrBackend { config }
    }

    /// Where the image's token would come from, or `None` when it is not an ECR image.
    pub fn route(&self, query: &Query) -> Option<Route> {
        if let Some(m) = self.config.mirror_for(&query.target) {
            return Some(Route::Mirror(m.clone()));
        }
        let host = query.image.host();
        if let Some(dual_stack) = host::public_host(host) {
            return Some(Route::Public { dual_stack });
        }
        host::PrivateHost::parse(host)
            .map(Route::Private)
            .or(
                (self.config.other_hosts() == config::OtherHosts::DefaultRegion)
                    .then_some(Route::DefaultRegion),
            )
    }

    /// The answer for a token fetched for `registry` at `now`.
    fn answer(
        registry: &str,
        route: &Route,
        token: &aws::Token,
        now: SystemTime,
    ) -> Result<Answer, BackendError> {
        let (username, password) = token::decode(&token.authorization).map_err(|e| {
            BackendError::protocol(
                NAME,
                format!(
                    "{registry}: {e} ({}); if AWS_ENDPOINT_URL* is set, check that it points at ECR",
                    token.endpoint
                ),
            )
        })?;
        let lifetime = match token::lifetime(token.expires_at, now) {
            Ok(Some(l)) => l,
            Ok(None) => {
                tracing::warn!(
                    "the ECR token for {registry} came without an expiry; reporting a lifetime of {}s",
                    lifetime::DOCKER_CONFIG.as_secs()
                );
                lifetime::DOCKER_CONFIG
            }
            Err(e) => {
                return Err(BackendError::protocol(
                    NAME,
                    format!("{registry}: the token from {}: {e}", token.endpoint),
                ))
            }
        };
        tracing::info!(
            "ECR token for {registry} from {}, lifetime {}s",
            token.endpoint,
            lifetime.as_secs()
        );
        let mut auth = BTreeMap::new();
        auth.insert(registry.to_string(), AuthConfig { username, password });
        Ok(Answer {
            auth,
            cache_key_type: CacheKeyType::Registry,
            lifetime,
            expires_at: token.expires_at,
            source: route.describe(),
        })
    }
}

impl Backend for EcrBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn explain(&self, query: &Query) -> keyring_api::backend::Explanation {
        match self.route(query) {
            None => keyring_api::backend::Explanation {
                applies: Some(false),
                summary: format!(
                    "{} is not an ECR registry (private, in any partition, or Public) nor a configured mirror",
                    query.image.host()
                ),
                details: Vec::new(),
            },
            Some(route) => {
                let mut details = vec![format!("token from {}", route.describe())];
                let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).is_some();
                let creds = if env("AWS_ACCESS_KEY_ID") {
                    "AWS_ACCESS_KEY_ID in the environment"
                } else if env("AWS_WEB_IDENTITY_TOKEN_FILE") {
                    "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
                } else if env("AWS_CONTAINER_CREDENTIALS_FULL_URI") || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
                    "the ECS / EKS Pod Identity container endpoint"
                } else if env("AWS_PROFILE") {
                    "the AWS_PROFILE profile"
                } else {
                    "the default chain: ~/.aws profiles, then the instance metadata service (IMDSv2)"
                };
                details.push(format!("AWS credentials: {creds}"));
                for k in ["AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_ECR_PUBLIC", "AWS_ENDPOINT_URL", "HTTPS_PROXY"] {
                    if env(k) {
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
                    "answer: user AWS with the decoded token, cached until 5 minutes before it expires".into(),
                );
                keyring_api::backend::Explanation {
                    applies: Some(true),
                    summary: format!("{} is served by ECR", query.image.registry()),
                    details,
                }
            }
        }
    }

    fn provide(&self, query: &Query) -> Result<Outcome, BackendError> {
        let Some(route) = self.route(query) else {
            return Ok(Outcome::NOT_MINE);
        };
        let registry = query.image.registry();
        tracing::debug!("{registry}: {}", route.describe());
        let env_role = std::env::var(ROLE_ENV).ok();
        let (identity, who) = select_identity(&self.config, query, env_role.as_deref())?;
        tracing::debug!("{registry}: signing with {who}");
        let token = aws::fetch(&route.call(), &identity, query.deadline).map_err(|failure| {
            let aws::Failure { kind, message } = failure;
            let message = match &route {
                Route::Mirror(_) | Route::DefaultRegion => {
                    format!("{registry} ({}): {message}", route.describe())
                }
                _ => format!("{registry}: {message}"),
            };
            BackendError::new(NAME, kind, message)
        })?;
        let mut answer = Self::answer(registry, &route, &token, query.clock.now())?;
        if query.service_account_token.is_some() {
            answer.source = format!("{} as {who}", answer.source);
        }
        Ok(Outcome::Answer(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::{ImageName, Secret};
    use std::time::Duration;

    fn query(image: &str) -> Query {
        Query::new(ImageName::parse(image).unwrap())
    }

    fn backend(mirrors_yaml: &str) -> EcrBackend {
        EcrBackend::new(serde_norway::from_str(mirrors_yaml).unwrap())
    }

    #[test]
    fn routes_by_host() {
        let p = backend(
            "mirrors:\n- {host: 'mirror.example.com:5000', region: us-west-2, registryId: '210987654321'}\n- {host: 123456789012.dkr.ecr.us-east-1.amazonaws.com, region: eu-west-1}\n",
        );
        let route = |image: &str| p.route(&query(image));
        assert_eq!(
            route("mirror.example.com:5000/team/app").and_then(|r| r.call().region),
            Some("us-west-2".into())
        );
        // A mirror entry wins over the host parser.
        assert_eq!(
            route("123456789012.dkr.ecr.us-east-1.amazonaws.com/app").and_then(|r| r.call().region),
            Some("eu-west-1".into())
        );
        // Other hosts: nothing, or the default region when asked for.
        assert_eq!(route("docker.io/library/nginx"), None);
        let other = backend("otherHosts: defaultRegion\n");
        let r = other
            .route(&query("mirror.internal:5000/library/nginx"))
            .unwrap();
        assert_eq!(r, Route::DefaultRegion);
        assert_eq!(r.call().region, None);
        assert_eq!(
            route("public.ecr.aws/nginx/nginx:1"),
            Some(Route::Public { dual_stack: false })
        );
        assert_eq!(
            route("ecr-public.aws.com/x/y"),
            Some(Route::Public { dual_stack: true })
        );
        let r = route("210987654321.dkr-ecr-fips.us-east-2.on.aws/app@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap();
        let c = r.call();
        assert_eq!(
            (c.region.as_deref(), c.fips, c.dual_stack),
            (Some("us-east-2"), true, true)
        );
        // The port is ignored for ECR hosts, as upstream does.
        assert!(route("210987654321.dkr.ecr.us-east-2.amazonaws.com:443/app").is_some());
        for other in [
            "nginx",
            "docker.io/library/nginx",
            "gcr.io/x/y",
            "mirror.example.com/team/app",
            "mirror.example.com:5001/team/app",
            "public.ecr.aws.evil.io/x",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io/app",
            "evil.io/123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
            "localhost:5000/public.ecr.aws",
        ] {
            assert_eq!(route(other), None, "{other}");
        }
    }

    #[test]
    fn not_applicable_without_any_aws_work() {
        // No credentials, no endpoint, no network: a non-ECR image must not get that far.
        let p = EcrBackend::new(Config::default());
        assert_eq!(p.provide(&query("quay.io/x/y")).unwrap(), Outcome::NOT_MINE);
    }

    #[test]
    fn identity_for_service_account_tokens() {
        let arn = "arn:aws:iam::111111111111:role/pull";
        let mut q = query("123456789012.dkr.ecr.us-east-1.amazonaws.com/app");
        let role = |r: Result<(aws::Identity, String), BackendError>| match r.unwrap().0 {
            aws::Identity::WebIdentity {
                role_arn,
                token,
                session_name,
            } => {
                assert_eq!(session_name, "kubelet-keyring");
                assert_eq!(token.expose(), "tok");
                Some(role_arn)
            }
            aws::Identity::Node => None,
        };
        let config = Config::default();
        // No token: the node, whatever else is set.
        assert_eq!(role(select_identity(&config, &q, Some(arn))), None);
        q.service_account_token = Some(Secret::new("tok".into()));
        // Token, no role: the node (fallback on by default) or an error naming the fixes.
        assert_eq!(role(select_identity(&config, &q, None)), None);
        let strict = Config {
            node_identity_fallback: false,
            ..Config::default()
        };
        let e = select_identity(&strict, &q, None).unwrap_err();
        assert_eq!(e.kind, keyring_api::ErrorKind::Misconfigured);
        let e = e.message;
        assert!(
            e.contains(ROLE_ANNOTATION)
                && e.contains("ecr.serviceAccountRoleArn")
                && e.contains(ROLE_ENV)
                && e.contains("nodeIdentityFallback"),
            "{e}"
        );
        assert!(!e.contains("tok\""));
        // The environment, then the config, then the annotation win.
        assert_eq!(
            role(select_identity(&strict, &q, Some(arn))).as_deref(),
            Some(arn)
        );
        let configured = Config {
            service_account_role_arn: Some("arn:aws:iam::222222222222:role/default".into()),
            node_identity_fallback: false,
            ..Config::default()
        };
        assert_eq!(
            role(select_identity(&configured, &q, Some(arn))).as_deref(),
            Some("arn:aws:iam::222222222222:role/default")
        );
        q.service_account_annotations.insert(
            ROLE_ANNOTATION.into(),
            "arn:aws:iam::333333333333:role/team".into(),
        );
        let (identity, who) = select_identity(&configured, &q, Some(arn)).unwrap();
        assert!(
            matches!(identity, aws::Identity::WebIdentity { ref role_arn, .. } if role_arn == "arn:aws:iam::333333333333:role/team")
        );
        assert!(
            who.contains("annotation eks.amazonaws.com/ecr-role-arn"),
            "{who}"
        );
        // A bad ARN names its origin.
        q.service_account_annotations
            .insert(ROLE_ANNOTATION.into(), "pull-role".into());
        let e = select_identity(&configured, &q, None).unwrap_err();
        assert_eq!(e.kind, keyring_api::ErrorKind::Misconfigured);
        assert!(
            e.message.starts_with("123456789012.dkr.ecr.us-east-1.amazonaws.com: role from annotation eks.amazonaws.com/ecr-role-arn: \"pull-role\" is not an IAM role ARN"),
            "{e}"
        );
    }

    #[test]
    fn answer_shape() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let route = Route::Mirror(Mirror {
            host: "mirror.example.com:5000".into(),
            region: "us-west-2".into(),
            registry_id: Some("123456789012".into()),
            fips: false,
            dual_stack: false,
        });
        let token = aws::Token {
            authorization: Secret::new("QVdTOnBhc3N3b3Jk".into()), // AWS:password
            expires_at: Some(now + Duration::from_secs(12 * 3600)),
            endpoint: "the ECR API in us-west-2".into(),
        };
        let a = EcrBackend::answer("mirror.example.com:5000", &route, &token, now).unwrap();
        assert_eq!(a.cache_key_type, CacheKeyType::Registry);
        assert_eq!(a.lifetime, Duration::from_secs(12 * 3600 - 300));
        assert_eq!(a.expires_at, token.expires_at);
        let cred = &a.auth["mirror.example.com:5000"];
        assert_eq!(
            (cred.username.as_str(), cred.password.expose().as_str()),
            ("AWS", "password")
        );
        assert_eq!(
            a.source,
            "ECR us-west-2 via mirror mirror.example.com:5000 (account 123456789012)"
        );
        assert!(!format!("{a:?}").contains("password\""));

        let bad = aws::Token {
            authorization: Secret::new("bm8tY29sb24=".into()), // no-colon
            ..token
        };
        let e = EcrBackend::answer("mirror.example.com:5000", &route, &bad, now).unwrap_err();
        assert!(
            e.to_string().contains("does not decode to user:password"),
            "{e}"
        );
        assert!(!e.to_string().contains("bm8tY29sb24"), "{e}");
    }
}
