//! The OAuth 2.0 calls of the node's credentials files, ours on [`keyring_net`] like every
//! other request of this backend, so they go through `HTTPS_PROXY` (gcp_auth, used before,
//! dials directly and cannot be given a client), retry under the invocation deadline and
//! never log a body:
//!
//! * a service-account key: an RS256 JWT (`iss` the key's `client_email`, `aud` its
//!   `token_uri`, `scope` [`SCOPE`], one hour) signed with ring, posted to `token_uri` as
//!   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`;
//! * gcloud's `authorized_user`: `grant_type=refresh_token` with the file's `client_id`,
//!   `client_secret` and `refresh_token`, posted to its `token_uri` or [`USER_TOKEN_URI`].
//!
//! Errors name the file, the endpoint (without user-info or query) and the status, never a
//! body (an OAuth error description may quote input) or the file's contents.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use keyring_api::{Clock, Deadline, ErrorKind, Secret};
use keyring_net::http::{header, Request, StatusCode};
use keyring_net::{Client, Policy, Route};
use serde::Deserialize;

use super::{parse_token_response, AccessToken, SCOPE};
use crate::error::Error;
use crate::identity::key_file::Origin;

/// Where gcloud's `authorized_user` refresh tokens are redeemed when the file names no
/// `token_uri` (Google's OAuth 2.0 token endpoint, as in Go's `golang.org/x/oauth2/google`).
pub const USER_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Token endpoints: one refused connection or 429/5xx is tried again; a timeout is not (a
/// second 10 s wait would leave nothing of the backend's 20 s for the answer).
const TOKEN_POLICY: Policy = Policy {
    retry_timeouts: false,
    ..Policy::DEFAULT.with_max_body(64 << 10).with_attempts(2)
};
/// How long a signed assertion is valid (Google's maximum).
const ASSERTION_VALIDITY: u64 = 3600;

/// A service-account key's token: a signed assertion redeemed at the key's `token_uri`.
pub(crate) async fn service_account(
    path: &Path,
    origin: Origin,
    json: &Secret<String>,
    email: &str,
    clock: &Clock,
    deadline: Deadline,
) -> Result<AccessToken, Error> {
    let what = format!("{} {} ({email})", origin.describe(), path.display());
    let fail = |kind, reason: String, hint| Error::TokenExchange {
        kind,
        origin: what.clone(),
        reason,
        hint,
    };
    #[derive(Deserialize)]
    struct Key {
        private_key: Secret<String>,
        token_uri: String,
    }
    let key: Key = serde_json::from_str(json.expose()).map_err(|_| {
        fail(
            ErrorKind::Misconfigured,
            "not a service-account key".into(),
            "download the key again",
        )
    })?;
    let now = clock.now();
    let jwt = assertion(email, &key.token_uri, &key.private_key, now).map_err(|reason| {
        fail(
            ErrorKind::Misconfigured,
            format!("the private key is unusable ({reason})"),
            "download the key again",
        )
    })?;
    let form = Secret::new(keyring_net::form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", jwt.expose()),
    ]));
    redeem(
        &key.token_uri,
        form,
        deadline,
        now,
        what.clone(),
        |kind, reason| {
            fail(
                kind,
                reason,
                "check that the key is not deleted or disabled and that its token_uri is reachable",
            )
        },
    )
    .await
}

/// gcloud's `authorized_user` token: the refresh token redeemed at the file's `token_uri`.
pub(crate) async fn authorized_user(
    path: &Path,
    json: &Secret<String>,
    clock: &Clock,
    deadline: Deadline,
) -> Result<AccessToken, Error> {
    let what = format!(
        "application default credentials {} (authorized_user)",
        path.display()
    );
    let fail = |kind, reason: String| Error::TokenExchange {
        kind,
        origin: what.clone(),
        reason,
        hint: "run gcloud auth application-default login again, or use a service-account key",
    };
    #[derive(Deserialize)]
    struct User {
        client_id: String,
        client_secret: Secret<String>,
        refresh_token: Secret<String>,
        token_uri: Option<String>,
    }
    let user: User = serde_json::from_str(json.expose()).map_err(|_| {
        fail(
            ErrorKind::Misconfigured,
            "lacks client_id, client_secret or refresh_token".into(),
        )
    })?;
    let form = Secret::new(keyring_net::form(&[
        ("grant_type", "refresh_token"),
        ("client_id", &user.client_id),
        ("client_secret", user.client_secret.expose()),
        ("refresh_token", user.refresh_token.expose()),
    ]));
    let uri = user.token_uri.as_deref().unwrap_or(USER_TOKEN_URI);
    redeem(uri, form, deadline, clock.now(), what.clone(), fail).await
}

/// Posts `form` to the token endpoint `uri` at `now` and reads `access_token` / `expires_in`.
/// Errors name the status, never the body (an OAuth error description may quote input).
async fn redeem(
    uri: &str,
    form: Secret<String>,
    deadline: Deadline,
    now: SystemTime,
    source: String,
    fail: impl Fn(ErrorKind, String) -> Error,
) -> Result<AccessToken, Error> {
    let client = Client::new(Route::Proxied, TOKEN_POLICY)
        .map_err(|e| fail(ErrorKind::Misconfigured, e.to_string()))?;
    let resp = client
        .send(
            deadline,
            &|| {
                Request::post(uri)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::USER_AGENT, keyring_net::USER_AGENT)
                    .body(form.expose().clone().into())
            },
            &keyring_net::transient,
        )
        .await
        .map_err(|e| {
            let kind = match e.cause {
                keyring_net::FetchError::Request(_) | keyring_net::FetchError::TlsSetup(_) => {
                    ErrorKind::Misconfigured
                }
                _ => ErrorKind::Unavailable,
            };
            fail(
                kind,
                format!(
                    "token request to {} failed: {e}",
                    keyring_net::shown_url(uri)
                ),
            )
        })?;
    if resp.status != StatusCode::OK {
        let kind = if keyring_net::transient(resp.status) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Denied
        };
        return Err(fail(
            kind,
            format!("token request failed: HTTP {}", resp.status.as_u16()),
        ));
    }
    let (token, expires_at) = parse_token_response(&resp.body, now).map_err(|reason| {
        fail(
            ErrorKind::Protocol,
            format!("the token endpoint's answer {reason}"),
        )
    })?;
    Ok(AccessToken {
        token,
        expires_at,
        source,
    })
}

/// The signed JWT-bearer assertion of a service-account key. The error never quotes the key.
fn assertion(
    email: &str,
    token_uri: &str,
    pem: &Secret<String>,
    now: SystemTime,
) -> Result<Secret<String>, &'static str> {
    use keyring_net::jwt::KeyError;
    let key = keyring_net::jwt::rsa_key_from_pem(pem.expose().as_bytes()).map_err(|e| match e {
        KeyError::NoKey | KeyError::NotRsa => "not a PEM RSA private key",
        KeyError::Rejected(_) => "not an RSA key ring accepts",
    })?;
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970")?
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": iat,
        "exp": iat + ASSERTION_VALIDITY,
    });
    keyring_net::jwt::sign_rs256(
        &key,
        &header,
        &claims,
        &keyring_net::jwt::SystemRandom::new(),
    )
    .map_err(|_| "RS256 signing failed")
}
