//! Managed identity: the token from the VM's Instance Metadata Service (IMDS).
//!
//! `GET <imds>?api-version=2018-02-01&resource=https://containerregistry.azure.net` (with
//! `client_id` or `msi_res_id` for a user-assigned identity) and `Metadata: true`, never
//! through a proxy: IMDS is link-local plain HTTP (`acr.endpoints.imds` moves it, for tests).
//! It sends no secret; its answer's `access_token` is the Entra ID token.

use keyring_api::Secret;

use super::{access_token, MsiId, RESOURCE};
use crate::config::Settings;
use crate::error::{error_code, transient, Error, Stage};
use crate::http::{Body, Call, Http, Route};

/// The IMDS `api-version`.
pub const IMDS_API_VERSION: &str = "2018-02-01";

/// The managed identity's token for ACR (the system-assigned one when `id` is `None`).
pub fn token(
    id: Option<&MsiId>,
    settings: &Settings,
    http: &Http,
) -> Result<Secret<String>, Error> {
    let mut query: Vec<(&str, &str)> =
        vec![("api-version", IMDS_API_VERSION), ("resource", RESOURCE)];
    match id {
        Some(MsiId::ClientId(c)) => query.push(("client_id", c)),
        Some(MsiId::ResourceId(r)) => query.push(("msi_res_id", r)),
        None => {}
    }
    let url = settings.imds.as_str();
    let reply = http.send(&Call {
        stage: Stage::Imds,
        url,
        query: &query,
        headers: &[("Metadata", "true")],
        body: Body::Get,
        route: Route::Direct,
        // IMDS also answers 404 while an identity is being assigned and 410 while it updates.
        retry_status: |s| transient(s) || s == 404 || s == 410,
        hint: "is this an Azure VM or VMSS with a managed identity, and can the kubelet reach 169.254.169.254 directly?",
    })?;
    if reply.status != 200 {
        let code = error_code(reply.body.expose());
        let hint = match reply.status {
            400 => match id {
                Some(_) => "IMDS does not know that identity: assign the user-assigned identity to this VM/VMSS, or fix userAssignedIdentityID / AZURE_CLIENT_ID".to_string(),
                None => "this VM/VMSS has no system-assigned identity: enable it, or name a user-assigned one (userAssignedIdentityID in azure.json, or AZURE_CLIENT_ID)".to_string(),
            },
            403 | 401 => "IMDS refused the request; a proxy in between? IMDS must be reached without proxy".to_string(),
            _ => "IMDS failed; retry later, or check the VM's managed identity".to_string(),
        };
        return Err(Error::Status {
            stage: Stage::Imds,
            url: url.into(),
            status: reply.status,
            code,
            hint,
        });
    }
    access_token(&reply.body, Stage::Imds, url)
}
