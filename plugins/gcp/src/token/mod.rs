//! The calls that turn an identity into the registry credential, a Google OAuth access
//! token (Google's registries take it as the password of `oauth2accesstoken`):
//!
//! * the node's key file or gcloud credentials: an OAuth token endpoint ([`oauth`]);
//! * the node without files: the metadata server's default service account ([`metadata`]);
//! * the pod's service-account token: Google STS, then optionally the IAM credentials API
//!   ([`federation`]).
//!
//! The metadata server is also where `gcp.dockercfg` reads docker credentials ([`dockercfg`]).
//! Every request goes through [`keyring_net`] and ends by the invocation's deadline; no
//! error quotes a response body.

pub mod dockercfg;
pub mod federation;
pub mod metadata;
pub mod oauth;

use std::time::{Duration, SystemTime};

use keyring_api::{Deadline, Secret};
use serde::Deserialize;

use crate::error::Error;
use crate::identity::key_file::Source;
use crate::identity::{Env, Identity};
use metadata::Metadata;

/// The OAuth scope asked for with file credentials: Artifact Registry needs cloud-platform
/// (GCR would do with devstorage.read_only).
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A token and when it stops working.
pub(crate) struct AccessToken {
    pub token: Secret<String>,
    pub expires_at: SystemTime,
    /// Which identity, for diagnostics; never secret.
    pub source: String,
}

/// Gets a token for `identity`, within `deadline`.
pub(crate) async fn fetch(
    identity: Identity<'_>,
    env: &Env,
    deadline: Deadline,
) -> Result<AccessToken, Error> {
    match identity {
        Identity::Node(Source::Metadata) => {
            Metadata::new(env.metadata_host.as_deref(), deadline)?
                .token()
                .await
        }
        Identity::Node(Source::ServiceAccount {
            path,
            origin,
            json,
            email,
        }) => oauth::service_account(&path, origin, &json, &email, deadline).await,
        Identity::Node(Source::AuthorizedUser { path, json }) => {
            oauth::authorized_user(&path, &json, deadline).await
        }
        Identity::Pod {
            wi,
            token,
            impersonate,
        } => federation::exchange(wi, env, token, impersonate.as_deref(), deadline).await,
    }
}

/// A token endpoint's JSON answer: `access_token` and `expires_in` (seconds). The error text
/// never quotes the body.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<(Secret<String>, Duration), String> {
    #[derive(Deserialize)]
    struct Resp {
        access_token: Secret<String>,
        expires_in: u64,
    }
    let r: Resp = serde_json::from_slice(body).map_err(|_| {
        "is not JSON with a string access_token and a numeric expires_in".to_string()
    })?;
    if r.access_token.expose().is_empty() {
        return Err("has an empty access_token".into());
    }
    if r.expires_in == 0 {
        return Err("has expires_in 0".into());
    }
    Ok((r.access_token, Duration::from_secs(r.expires_in)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_needs_a_token_and_a_positive_expires_in_and_is_never_quoted() {
        let (t, d) = parse_token_response(
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.expose(), "ya29.x");
        assert_eq!(d, Duration::from_secs(3599));
        for bad in [
            &br#"{"access_token":"ya29.SECRET","expires_in":"3599"}"#[..],
            br#"{"access_token":"","expires_in":3599}"#,
            br#"{"access_token":"ya29.SECRET","expires_in":0}"#,
            br#"{"expires_in":5}"#,
            b"ya29.SECRET",
        ] {
            let e = parse_token_response(bad).unwrap_err();
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
}
