//! `POST /oauth2/exchange` on the registry: the Entra ID token for an ACR refresh token, at
//! the URL the [challenge](super::challenge) named.

use keyring_api::Secret;

use super::challenge::Directive;
use crate::error::{error_code, transient, Error, Stage};
use crate::http::{Body, Call, Http, Route};

/// `POST /oauth2/exchange`: the Entra ID token for an ACR refresh token.
pub fn exchange(
    http: &Http,
    directive: &Directive,
    login_server: &str,
    tenant: Option<&str>,
    aad_token: &Secret<String>,
) -> Result<Secret<String>, Error> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "access_token_refresh_token"),
        ("service", &directive.service),
        ("access_token", aad_token.expose()),
        ("refresh_token", aad_token.expose()),
    ];
    if let Some(t) = tenant {
        form.push(("tenant", t));
    }
    let url = directive.exchange_url.as_str();
    let reply = http.send(&Call {
        stage: Stage::Exchange,
        url,
        query: &[],
        headers: &[],
        body: Body::Form(&form),
        route: Route::Proxied,
        retry_status: transient,
        hint: "can the node reach the registry?",
    })?;
    drop(form);
    if reply.status != 200 {
        let hint = match reply.status {
            400 | 401 => format!("ACR refused the Entra ID token: give the identity the AcrPull role on {login_server} (or a token from the registry's tenant), and check that the registry allows Entra ID authentication"),
            403 => format!("{login_server} refused the client: check the registry's network rules and that the identity may pull"),
            404 => format!("{login_server} has no token exchange endpoint; is it an ACR login server?"),
            429 => "throttled by ACR; the kubelet will retry".into(),
            _ => "ACR failed; retry later".into(),
        };
        return Err(Error::Status {
            stage: Stage::Exchange,
            url: url.into(),
            status: reply.status,
            code: error_code(reply.body.expose()),
            hint,
        });
    }
    #[derive(serde::Deserialize)]
    struct ExchangeResponse {
        refresh_token: Option<Secret<String>>,
    }
    let parsed: ExchangeResponse =
        serde_json::from_slice(reply.body.expose()).map_err(|_| Error::Response {
            stage: Stage::Exchange,
            url: url.into(),
            problem: "the 200 response is not the expected JSON (a proxy in between?)".into(),
        })?;
    parsed
        .refresh_token
        .filter(|t| !t.expose().is_empty())
        .ok_or_else(|| Error::Response {
            stage: Stage::Exchange,
            url: url.into(),
            problem: "the response has no refresh_token".into(),
        })
}
