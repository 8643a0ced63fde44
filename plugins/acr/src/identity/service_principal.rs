//! The tenant's Entra ID v2 token endpoint: `POST <authority>/<tenant>/oauth2/v2.0/token`
//! with `grant_type=client_credentials`, the client ID, scope
//! `https://containerregistry.azure.net/.default`, and the application's [`Proof`]: its
//! client secret, or a client assertion (a certificate's signed one, [`super::cert`]; the
//! projected service-account token of workload identity or the pod's token,
//! [`super::workload`]). Through `HTTPS_PROXY` when set. The answer's `access_token` is the
//! Entra ID token; a refusal names the `AADSTS` code and its likely fix, never Entra's
//! description.

use keyring_api::Secret;

use super::{access_token, Identity, ASSERTION_TYPE, SCOPE};
use crate::error::{error_code, transient, Error, Stage};
use crate::http::{Body, Call, Http, Route};

/// How a confidential client authenticates.
pub enum Proof {
    /// A client secret (`client_secret`).
    Secret(Secret<String>),
    /// A JWT client assertion (`client_assertion`, RFC 7523).
    Assertion(Secret<String>),
}

/// The Entra ID token for ACR of the service principal `identity`, proving itself with what
/// `proof` makes for the token URL (an assertion's audience).
pub fn token(
    identity: &Identity,
    http: &Http,
    proof: impl FnOnce(&str) -> Result<Proof, Error>,
) -> Result<Secret<String>, Error> {
    let (Some(tenant), Some(authority)) = (&identity.tenant, &identity.authority) else {
        return Err(Error::Setup(
            "internal: a service principal without tenant or authority".into(),
        ));
    };
    let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
    let proof = proof(&url)?;
    let mut fields: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_id", &identity.client_id),
        ("scope", SCOPE),
    ];
    match &proof {
        Proof::Secret(s) => fields.push(("client_secret", s.expose())),
        Proof::Assertion(a) => {
            fields.push(("client_assertion_type", ASSERTION_TYPE));
            fields.push(("client_assertion", a.expose()));
        }
    }
    let reply = http.send(&Call {
        stage: Stage::Aad,
        url: &url,
        query: &[],
        headers: &[],
        body: Body::Form(&fields),
        route: Route::Proxied,
        retry_status: transient,
        hint: "can the node reach the Entra ID authority host (proxy, firewall, DNS)? is the cloud right?",
    })?;
    drop(fields);
    if reply.status != 200 {
        let code = error_code(reply.body.expose());
        let hint = aad_hint(reply.status, code.as_deref(), identity);
        return Err(Error::Status {
            stage: Stage::Aad,
            url,
            status: reply.status,
            code,
            hint,
        });
    }
    access_token(&reply.body, Stage::Aad, &url)
}

/// The likely fix for an Entra ID token error.
fn aad_hint(status: u16, code: Option<&str>, identity: &Identity) -> String {
    let client = &identity.client_id;
    let tenant = identity.tenant.as_deref().unwrap_or("?");
    let has = |c: &str| code.is_some_and(|code| code.split(' ').any(|x| x == c));
    if has("AADSTS7000215") || has("AADSTS7000222") {
        return format!("the client secret of {client} is wrong or expired: rotate it in azure.json / AZURE_CLIENT_SECRET");
    }
    if has("AADSTS700016") {
        return format!("application {client} is not in tenant {tenant}: check the client ID, the tenant and the cloud");
    }
    if has("AADSTS90002") || has("AADSTS900023") {
        return format!(
            "tenant {tenant} not found: check the tenant ID and the cloud (authority host)"
        );
    }
    if has("AADSTS700027") || has("AADSTS700023") || has("AADSTS7000274") {
        return format!("Entra ID rejected the certificate assertion: upload this certificate to application {client}, and check the node's clock");
    }
    if has("AADSTS70021") || has("AADSTS700211") || has("AADSTS700212") || has("AADSTS700213") {
        return format!("no federated credential of application {client} matches this token's issuer, subject and audience (api://AzureADTokenExchange): add one for the service account");
    }
    if has("AADSTS700024") || has("AADSTS50013") {
        return "the assertion is expired or not yet valid: check the node clock and that the projected token is refreshed".into();
    }
    match status {
        400 | 401 => {
            format!("check the client ID {client}, tenant {tenant}, its credential and the cloud")
        }
        403 => "Entra ID refused the request (conditional access or a blocked application?)".into(),
        429 => "throttled by Entra ID; the kubelet will retry".into(),
        _ => "Entra ID failed; retry later".into(),
    }
}
