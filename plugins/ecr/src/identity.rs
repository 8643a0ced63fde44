//! Whom the ECR call is signed as: the node's AWS credentials, or a role assumed with the
//! pod's service-account token (KEP-4412).
//!
//! * [`select`] decides from the request, the config and [`ROLE_ENV`] (see the crate docs
//!   for the order of the role's sources and the fallback to the node). An
//!   [`ROLE_ANNOTATION`] that is present but empty (or blank) names no role and stops the
//!   search, as upstream: the node's credentials, not the config's or [`ROLE_ENV`]'s role
//!   (blank is taken as empty, where upstream would send it to STS and fail).
//! * The node's credentials ([`credentials`] with [`Identity::Node`]): the SDK's default
//!   chain (env, profile incl. SSO and assume-role, web identity, ECS / EKS Pod Identity,
//!   EC2 IMDSv2), resolved first and on their own so that a failure there is reported as a
//!   credentials problem, within the time the call leaves them
//!   ([`crate::sdk::credentials_budget`]). Keys in the environment, the chain's first link,
//!   are taken without building the rest of it; as in the Go SDK, `AWS_ACCESS_KEY` and
//!   `AWS_SECRET_KEY` stand in for `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, and
//!   `AWS_DEFAULT_PROFILE` for `AWS_PROFILE` ([`crate::sdk::profile_name`]). When the
//!   environment has no keys and the profile's chain rests on a `credential_process`, the
//!   profile link (the chain's next) is ours ([`credential_process`]): the process runs
//!   bounded and is killed with its process group when the credentials' time passes, with
//!   the SDK's semantics otherwise; every other profile stays the SDK's.
//! * A pod's role ([`Identity::WebIdentity`]): `sts:AssumeRoleWithWebIdentity` with the
//!   token ([`sts`]); the node's credentials are then not looked up at all.

mod credential_process;
mod sts;

use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::profile::ProfileSet;
use aws_config::provider_config::ProviderConfig;
use aws_config::Region;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_sdk_ecr::config::SharedHttpClient;
use aws_types::sdk_config::SdkConfig;
use keyring_api::backend::Query;
use keyring_api::{Deadline, Secret};

use crate::config::{self, Config};
use crate::error::Error;
use crate::sdk;
use crate::{IRSA_ROLE_ANNOTATION, ROLE_ANNOTATION, ROLE_ENV};

/// Whose credentials sign the ECR call.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// The node's: the SDK's default chain.
    Node,
    /// A role assumed with the pod's service-account token (KEP-4412).
    WebIdentity {
        /// The role.
        role_arn: String,
        /// `RoleSessionName` of the session (shows in CloudTrail).
        session_name: String,
        /// The token (`WebIdentityToken`).
        token: Secret<String>,
    },
}

/// Whose credentials sign the ECR call for this query, and how to say so: the node's, or a
/// role assumed with the pod's service-account token. `env_role` is [`ROLE_ENV`]'s value.
/// The errors are misconfigurations, without the token.
pub(crate) fn select(
    config: &Config,
    query: &Query,
    env_role: Option<&str>,
) -> Result<(Identity, String), Error> {
    let Some(token) = &query.service_account_token else {
        return Ok((Identity::Node, "the node's AWS credentials".into()));
    };
    let non_empty = |s: &&str| !s.trim().is_empty();
    let annotation = query
        .service_account_annotations
        .get(ROLE_ANNOTATION)
        .map(String::as_str);
    if annotation.is_some_and(|a| !non_empty(&a)) {
        // Upstream: the annotation, when present, is the only source; empty means no role.
        return match config.node_identity_fallback {
            true => Ok((
                Identity::Node,
                format!("the node's AWS credentials (annotation {ROLE_ANNOTATION} is empty)"),
            )),
            false => Err(Error::NoRole),
        };
    }
    let role = annotation
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
            config::check_role_arn(&from, arn).map_err(Error::RoleArn)?;
            Ok((
                Identity::WebIdentity {
                    role_arn: arn.to_string(),
                    session_name: config.session_name().to_string(),
                    token: token.clone(),
                },
                format!("role {arn} (from {from}) with the pod's service-account token"),
            ))
        }
        None if config.node_identity_fallback => Ok((
            Identity::Node,
            "the node's AWS credentials (the service account names no role)".into(),
        )),
        None => Err(Error::NoRole),
    }
}

/// Which link of the node's chain would answer, from the environment alone, for `explain`.
pub(crate) fn node_source() -> &'static str {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).is_some();
    // The keys as the chain takes them: under the SDK's names or the Go SDK's.
    if go_alias_credentials(&|k| std::env::var(k).ok()).is_some() {
        "AWS keys in the environment"
    } else if env("AWS_WEB_IDENTITY_TOKEN_FILE") {
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)"
    } else if env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    {
        "the ECS / EKS Pod Identity container endpoint"
    } else if env("AWS_PROFILE") {
        "the AWS_PROFILE profile"
    } else if crate::sdk::profile_name().is_some() {
        "the AWS_DEFAULT_PROFILE profile"
    } else {
        "the default chain: ~/.aws profiles, then the instance metadata service (IMDSv2)"
    }
}

/// The credentials that sign the call, through `http`, in `region` (STS's, and the chain's
/// for regional endpoints), within `within`; `now` is the clock's.
pub(crate) async fn credentials(
    identity: &Identity,
    http: &SharedHttpClient,
    region: &Region,
    within: Duration,
    now: SystemTime,
) -> Result<Credentials, Error> {
    match identity {
        Identity::Node => match env_credentials().await {
            Ok(c) => Ok(c),
            Err(e) => {
                // The chain goes past the environment only when it had nothing at all.
                let past_env = matches!(e, CredentialsError::CredentialsNotLoaded(_));
                node_credentials(http, region, within, now, past_env).await
            }
        },
        Identity::WebIdentity {
            role_arn,
            session_name,
            token,
        } => sts::assume_role(http, region, role_arn, session_name, token, within).await,
    }
}

/// The environment's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...), when
/// they are there: the first link of the SDK's default chain, asked on its own. Building the
/// whole chain costs more than anything else before the request (its web-identity link builds
/// an STS client: endpoint rules, the partition table, a regex; 17% of a cold fetch's
/// instructions, bench/ecr.sh PROFILE), and with keys in the environment the chain never asks
/// any other link. No answer, or an error (the SDK's, returned), goes to [`node_credentials`],
/// whose chain starts with this same backend and so gives the same answer or error.
async fn env_credentials() -> Result<Credentials, CredentialsError> {
    match aws_config::environment::EnvironmentVariableCredentialsProvider::new()
        .provide_credentials()
        .await
    {
        Ok(c) => Ok(c),
        Err(e) => go_alias_credentials(&|k| std::env::var(k).ok()).ok_or(e),
    }
}

/// Keys under the names the Go SDK also reads and the Rust SDK does not: `AWS_ACCESS_KEY`
/// for `AWS_ACCESS_KEY_ID`, `AWS_SECRET_KEY` for `AWS_SECRET_ACCESS_KEY` (each the first
/// non-empty of the two, as in aws-sdk-go-v2's `config/env_config.go`), with
/// `AWS_SESSION_TOKEN`. Asked only when the Rust SDK's own names gave nothing.
fn go_alias_credentials(env: &dyn Fn(&str) -> Option<String>) -> Option<Credentials> {
    let first = |names: [&str; 2]| {
        names
            .into_iter()
            .find_map(|n| env(n).filter(|v| !v.is_empty()))
    };
    let id = first(["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"])?;
    let secret = first(["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"])?;
    let session = env("AWS_SESSION_TOKEN").filter(|v| !v.is_empty());
    Some(Credentials::new(id, secret, session, None, "Environment"))
}

/// The node's credentials from the SDK's default chain, within `within`. With `past_env`
/// (the environment had no keys) a profile resting on a `credential_process` is answered by
/// [`profile_process`] instead, as the chain's profile link would answer it.
async fn node_credentials(
    http: &SharedHttpClient,
    region: &Region,
    within: Duration,
    now: SystemTime,
    past_env: bool,
) -> Result<Credentials, Error> {
    if past_env {
        if let Some(set) = profile_set().await {
            keyring_aws::files::check_profile_files(&set)?;
            if let Some(chain) = credential_process::find(&set) {
                return profile_process(&chain, http, region, within, now).await;
            }
        }
    }
    let provider_config = ProviderConfig::default()
        .with_http_client(http.clone())
        .with_region(Some(region.clone()));
    let imds = sdk::imds_client(&provider_config);
    let mut chain = DefaultCredentialsChain::builder()
        .configure(provider_config)
        .region(region.clone())
        .imds_client(imds);
    if let Some(profile) = sdk::profile_name() {
        chain = chain.profile_name(&profile);
    }
    let chain = chain.build().await;
    match tokio::time::timeout(within, chain.provide_credentials()).await {
        Err(_) => Err(Error::CredentialsTimeout { within }),
        Ok(Err(e)) => Err(Error::credentials(&e, within)),
        Ok(Ok(c)) => Ok(c),
    }
}

/// The profiles, loaded as the SDK's profile link loads them (the same files, `AWS_PROFILE`,
/// else [`sdk::profile_name`]): for a selected profile whose chain rests on a
/// `credential_process` ([`credential_process::find`]) and the files they name that the SDK
/// would read ([`keyring_aws::files::check_profile_files`]). Profiles that cannot be loaded
/// are left to the SDK, which says why.
async fn profile_set() -> Option<ProfileSet> {
    keyring_aws::files::load_profiles(sdk::profile_name().as_deref()).await
}

/// The credentials of a profile chain resting on a `credential_process`, within `within`:
/// the process is killed with its group when that time passes.
async fn profile_process(
    chain: &credential_process::ProcessChain,
    http: &SharedHttpClient,
    region: &Region,
    within: Duration,
    now: SystemTime,
) -> Result<Credentials, Error> {
    let deadline = Deadline::after(within);
    // STS's settings, only when a role is assumed on top of the process.
    let sdk = match chain.roles.is_empty() {
        true => SdkConfig::builder().build(),
        false => {
            sdk::loader(http.clone(), region.clone(), within)
                .no_credentials()
                .load()
                .await
        }
    };
    match tokio::time::timeout(within, chain.credentials(&sdk, deadline, now)).await {
        Err(_) => Err(Error::CredentialsTimeout { within }),
        Ok(Err(e)) => Err(Error::credentials(&e, within)),
        Ok(Ok(c)) => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Route;
    use keyring_api::{BackendError, ImageName};

    #[test]
    fn a_service_account_token_is_signed_for_by_the_first_role_named() {
        let arn = "arn:aws:iam::111111111111:role/pull";
        let mut q = Query::new(
            ImageName::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/app").unwrap(),
        );
        // As the backend reports them.
        let reported = |config: &Config, q: &Query, env: Option<&str>| {
            let route = crate::host::route(config, q).unwrap();
            assert!(matches!(route, Route::Private(_)));
            select(config, q, env).map_err(|e| e.into_backend(q.image.registry(), &route))
        };
        let role = |r: Result<(Identity, String), BackendError>| match r.unwrap().0 {
            Identity::WebIdentity {
                role_arn,
                token,
                session_name,
            } => {
                assert_eq!(session_name, "kubelet-keyring");
                assert_eq!(token.expose(), "tok");
                Some(role_arn)
            }
            Identity::Node => None,
        };
        let config = Config::default();
        // No token: the node, whatever else is set.
        assert_eq!(role(reported(&config, &q, Some(arn))), None);
        q.service_account_token = Some(Secret::new("tok".into()));
        // Token, no role: the node (fallback on by default) or an error naming the fixes.
        assert_eq!(role(reported(&config, &q, None)), None);
        let strict = Config {
            node_identity_fallback: false,
            ..Config::default()
        };
        let e = reported(&strict, &q, None).unwrap_err();
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
        assert_eq!(role(reported(&strict, &q, Some(arn))).as_deref(), Some(arn));
        let configured = Config {
            service_account_role_arn: Some("arn:aws:iam::222222222222:role/default".into()),
            node_identity_fallback: false,
            ..Config::default()
        };
        assert_eq!(
            role(reported(&configured, &q, Some(arn))).as_deref(),
            Some("arn:aws:iam::222222222222:role/default")
        );
        q.service_account_annotations.insert(
            ROLE_ANNOTATION.into(),
            "arn:aws:iam::333333333333:role/team".into(),
        );
        let (identity, who) = reported(&configured, &q, Some(arn)).unwrap();
        assert!(
            matches!(identity, Identity::WebIdentity { ref role_arn, .. } if role_arn == "arn:aws:iam::333333333333:role/team")
        );
        assert!(
            who.contains("annotation eks.amazonaws.com/ecr-role-arn"),
            "{who}"
        );
        // Present but empty (or blank): no role, and no other source is asked, as upstream;
        // the node when it may stand in.
        for empty in ["", "  "] {
            q.service_account_annotations
                .insert(ROLE_ANNOTATION.into(), empty.into());
            let (identity, who) = reported(&Config::default(), &q, Some(arn)).unwrap();
            assert!(matches!(identity, Identity::Node), "{empty:?}");
            assert!(who.contains("is empty"), "{who}");
            let e = reported(&configured, &q, Some(arn)).unwrap_err();
            assert_eq!(e.kind, keyring_api::ErrorKind::Misconfigured);
        }
        // A bad ARN names its origin.
        q.service_account_annotations
            .insert(ROLE_ANNOTATION.into(), "pull-role".into());
        let e = reported(&configured, &q, None).unwrap_err();
        assert_eq!(e.kind, keyring_api::ErrorKind::Misconfigured);
        assert!(
            e.message.starts_with("123456789012.dkr.ecr.us-east-1.amazonaws.com: role from annotation eks.amazonaws.com/ecr-role-arn: \"pull-role\" is not an IAM role ARN"),
            "{e}"
        );
    }

    #[test]
    fn keys_under_the_go_sdks_other_names_are_the_environments_credentials() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = go_alias_credentials(&env(&[
            ("AWS_ACCESS_KEY", "AKIDALIAS"),
            ("AWS_SECRET_KEY", "alias-secret"),
            ("AWS_SESSION_TOKEN", "alias-session"),
        ]))
        .unwrap();
        assert_eq!(
            (c.access_key_id(), c.secret_access_key(), c.session_token()),
            ("AKIDALIAS", "alias-secret", Some("alias-session"))
        );
        // The canonical name first, either name for either half; both halves needed.
        let c = go_alias_credentials(&env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDMAIN"),
            ("AWS_ACCESS_KEY", "AKIDALIAS"),
            ("AWS_SECRET_KEY", "alias-secret"),
        ]))
        .unwrap();
        assert_eq!((c.access_key_id(), c.session_token()), ("AKIDMAIN", None));
        assert!(go_alias_credentials(&env(&[("AWS_ACCESS_KEY", "AKIDALIAS")])).is_none());
        assert!(
            go_alias_credentials(&env(&[("AWS_ACCESS_KEY", ""), ("AWS_SECRET_KEY", "s")]))
                .is_none()
        );
    }
}
