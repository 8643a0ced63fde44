//! OAuth 2.0 Token Exchange (RFC 8693) at any authorization server.
//!
//! Request (RFC 8693 §2.1), one form POST to the rule's `endpoint`:
//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token`,
//! `subject_token_type` (default `urn:ietf:params:oauth:token-type:jwt`), and `audience`,
//! `resource`, `scope`, `requested_token_type` when configured. Client authentication
//! (RFC 6749 §2.3.1): none; `client_id` in the form when only an ID is set; HTTP Basic of the
//! form-urlencoded ID and secret when `clientSecretFile` is set (the secret is read from the
//! file for each exchange, never logged, wiped after use).
//!
//! Answer (RFC 8693 §2.2.1): `access_token` (the registry password), `issued_token_type`,
//! `token_type`, `expires_in` (the lifetime; else the token's own `exp`). Errors (§2.2.2,
//! RFC 6749 §5.2) are shown by their `error` code only.

use std::time::SystemTime;

use base64::Engine as _;
use keyring_api::{InvalidSetting, Secret};
use serde::Deserialize;

use super::{exchange_json, non_empty, validity, Issued};
use crate::config::TokenExchange;
use crate::error::{Error, Stage};
use crate::http::{Body, Http};

/// `grant_type` of a token exchange.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The default `subject_token_type`.
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The largest client secret file read.
const MAX_SECRET_FILE: u64 = 16 << 10;

#[derive(Deserialize)]
struct Answer {
    access_token: Option<Secret<String>>,
    #[serde(default, deserialize_with = "super::seconds")]
    expires_in: Option<f64>,
}

/// Exchanges `subject` at `t.endpoint`.
pub fn exchange(
    t: &TokenExchange,
    subject: &Secret<String>,
    http: &Http,
    now: SystemTime,
) -> Result<Issued, Error> {
    let subject_type = t.subject_token_type.as_deref().unwrap_or(JWT_TYPE);
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", GRANT_TYPE),
        ("subject_token", subject.expose()),
        ("subject_token_type", subject_type),
    ];
    for (k, v) in [
        ("audience", &t.audience),
        ("resource", &t.resource),
        ("scope", &t.scope),
        ("requested_token_type", &t.requested_token_type),
    ] {
        if let Some(v) = v {
            form.push((k, v.as_str()));
        }
    }
    let basic;
    let mut headers: Vec<(&str, &str)> = Vec::new();
    match (&t.client_id, &t.client_secret_file) {
        (Some(id), Some(file)) => {
            let secret = read_secret(file)?;
            let enc = |s: &str| {
                keyring_net::form(&[("", s)])
                    .trim_start_matches('=')
                    .to_string()
            };
            basic = Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    enc(id),
                    enc(secret.expose())
                ))
            ));
            headers.push(("Authorization", basic.expose()));
        }
        (Some(id), None) => form.push(("client_id", id.as_str())),
        _ => {}
    }
    let hint = "check the rule's tokenExchange settings (endpoint, audience, client) and the server's trust of the token's issuer";
    let answer: Answer = exchange_json(http, &t.endpoint, &headers, Body::Form(&form), hint)?;
    let token = non_empty(
        answer.access_token,
        Stage::Exchange,
        &t.endpoint,
        "access_token",
    )?;
    Ok(Issued {
        username: t.username.clone(),
        validity: validity(&token, answer.expires_in, now),
        password: token,
    })
}

/// The client secret in `path`: one line, trimmed.
fn read_secret(path: &std::path::Path) -> Result<Secret<String>, Error> {
    let secret = crate::read_secret_file(path, MAX_SECRET_FILE, "clientSecretFile")?;
    if secret.expose().is_empty() {
        return Err(InvalidSetting::new(
            format!("clientSecretFile {}", path.display()),
            "it is empty",
        )
        .into());
    }
    Ok(secret)
}
