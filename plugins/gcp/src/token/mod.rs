//! The calls that turn an identity into the registry credential, a Google OAuth access
//! token (Google's registries take it as the password of `oauth2accesstoken`):
//!
//! * the node's key file or gcloud credentials: an OAuth token endpoint ([`oauth`]);
//! * the node without files: the metadata server's default service account ([`metadata`]);
//! * the pod's service-account token: Google STS, then optionally the IAM credentials API
//!   ([`federation`]);
//! * the node's `external_account` file: its subject token, then the same two calls
//!   ([`external_account`]).
//!
//! The metadata server is also where `gcp.dockercfg` reads docker credentials ([`dockercfg`]).
//! Every request goes through [`keyring_net`] and ends by the invocation's deadline; no
//! error quotes a response body. Every expiry a peer states (`expires_in` of the metadata
//! server, an OAuth endpoint or STS; `expireTime` of the IAM credentials API) becomes a time on
//! the query's [`Clock`] only through [`keyring_api::lifetime`], which never overflows: a
//! hostile `expires_in` of 2^64-1 is clamped, a negative one refused, one already past left to
//! the answer's lifetime check (which names the node's clock).

pub mod dockercfg;
pub mod external_account;
pub mod federation;
pub mod metadata;
pub mod oauth;

use std::time::SystemTime;

use keyring_api::{lifetime, Clock, Deadline, Secret};
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
    /// The token, the registry password.
    pub token: Secret<String>,
    /// Its expiry on the query's clock, as the peer stated it.
    pub expires_at: SystemTime,
    /// Which identity, for diagnostics; never secret.
    pub source: String,
}

/// Gets a token for `identity`, within `deadline`; its expiry is dated on `clock` (the
/// query's), from when each request was sent.
pub(crate) async fn fetch(
    identity: Identity<'_>,
    env: &Env,
    clock: &Clock,
    deadline: Deadline,
) -> Result<AccessToken, Error> {
    match identity {
        Identity::Node(Source::Metadata { key_files }) => {
            Metadata::new(env.metadata_host.as_deref(), deadline)?
                .token(clock, key_files)
                .await
        }
        Identity::Node(Source::ServiceAccount {
            path,
            origin,
            json,
            email,
        }) => oauth::service_account(&path, origin, &json, &email, clock, deadline).await,
        Identity::Node(Source::AuthorizedUser { path, json }) => {
            oauth::authorized_user(&path, &json, clock, deadline).await
        }
        Identity::Node(Source::ExternalAccount {
            path,
            origin,
            account,
        }) => external_account::fetch(&path, origin, &account, env, clock, deadline).await,
        Identity::Pod {
            wi,
            token,
            impersonate,
        } => federation::exchange(wi, env, token, impersonate.as_deref(), clock, deadline).await,
    }
}

/// A token endpoint's JSON answer: `access_token`, and `expires_in` (seconds from `now`, when
/// the request was sent) as the expiry, through [`lifetime::expiry_in`] or
/// [`lifetime::expiry_in_secs_f64`] so that no number a peer sends overflows the time (a huge
/// one is clamped to [`lifetime::HORIZON`]). The error text never quotes the body.
pub(crate) fn parse_token_response(
    body: &[u8],
    now: SystemTime,
) -> Result<(Secret<String>, SystemTime), String> {
    #[derive(Deserialize)]
    struct Resp {
        access_token: Secret<String>,
        expires_in: serde_json::Number,
    }
    let r: Resp = serde_json::from_slice(body).map_err(|_| {
        "is not JSON with a string access_token and a numeric expires_in".to_string()
    })?;
    if r.access_token.expose().is_empty() {
        return Err("has an empty access_token".into());
    }
    let expires_at = match r.expires_in.as_u64() {
        Some(0) => return Err("has expires_in 0".into()),
        Some(secs) => Some(lifetime::expiry_in(now, secs)),
        None => r
            .expires_in
            .as_f64()
            .and_then(|secs| lifetime::expiry_in_secs_f64(now, secs)),
    };
    let expires_at = expires_at.ok_or("has a negative expires_in")?;
    Ok((r.access_token, expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_token_response_needs_a_token_and_a_positive_expires_in_and_is_never_quoted() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (t, at) = parse_token_response(
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.expose(), "ya29.x");
        assert_eq!(at, now + Duration::from_secs(3599));
        for bad in [
            &br#"{"access_token":"ya29.SECRET","expires_in":"3599"}"#[..],
            br#"{"access_token":"","expires_in":3599}"#,
            br#"{"access_token":"ya29.SECRET","expires_in":0}"#,
            br#"{"access_token":"ya29.SECRET","expires_in":-1}"#,
            br#"{"access_token":"ya29.SECRET","expires_in":-1e300}"#,
            br#"{"expires_in":5}"#,
            b"ya29.SECRET",
        ] {
            let e = parse_token_response(bad, now).unwrap_err();
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    #[test]
    fn an_expires_in_past_any_horizon_is_clamped_to_it_without_overflow() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for huge in [
            "18446744073709551615",
            "9223372036854775807",
            "1e300",
            "1e20",
        ] {
            let body = format!(r#"{{"access_token":"ya29.x","expires_in":{huge}}}"#);
            let (_, at) = parse_token_response(body.as_bytes(), now).unwrap();
            assert_eq!(at, now + lifetime::HORIZON, "{huge}");
        }
        let (_, at) =
            parse_token_response(br#"{"access_token":"ya29.x","expires_in":1.5}"#, now).unwrap();
        assert_eq!(at, now + Duration::from_millis(1500));
    }
}
