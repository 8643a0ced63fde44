//! `sts:AssumeRoleWithWebIdentity` with a pod's service-account token, in the call's STS
//! region (the endpoint the SDK gives, or `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`),
//! through the call's HTTP client and retries, within the credentials' share of the budget. The call is unsigned: the token is the proof.
//! The temporary credentials sign the one ECR call and are dropped with the runtime.

use std::time::Duration;

use aws_config::Region;
use aws_credential_types::Credentials;
use aws_sdk_ecr::config::SharedHttpClient;
use keyring_api::Secret;

use crate::error::Error;
use crate::sdk::{self, MAX_ATTEMPTS};

/// The SDK service ID of STS, which also names its endpoint variable.
const SERVICE_ID: &str = "STS";

/// The role's temporary credentials for the token, within `within` (all attempts).
pub(super) async fn assume_role(
    http: &SharedHttpClient,
    region: &Region,
    role_arn: &str,
    session_name: &str,
    token: &Secret<String>,
    within: Duration,
) -> Result<Credentials, Error> {
    let sdk = sdk::loader(http.clone(), region.clone(), within)
        .no_credentials()
        .load()
        .await;
    let endpoint = match sdk::endpoint_override(&sdk, SERVICE_ID) {
        Some(url) => format!(
            "{} ({})",
            sdk::shown_url(&url),
            sdk::describe_override("AWS_ENDPOINT_URL_STS")
        ),
        None => format!("STS in {region}"),
    };
    let client = aws_sdk_sts::Client::new(&sdk);
    let out = client
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token.expose().as_str())
        .send()
        .await
        .map_err(|e| Error::assume_role(e, role_arn, &endpoint, within, MAX_ATTEMPTS))?;
    let Some(c) = out.credentials else {
        return Err(Error::NoStsCredentials {
            role_arn: role_arn.to_string(),
            endpoint,
        });
    };
    tracing::debug!("assumed role {role_arn} with the service-account token at {endpoint}");
    // No expiry: the credentials sign this one call and are dropped with the runtime, so
    // STS's statement of their expiry is not turned into a time at all.
    Ok(Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "kubelet-keyring service-account token",
    ))
}
