//! Workload identity: a Kubernetes service-account token as the client assertion of an
//! Entra ID application with a federated credential for it.
//!
//! Two sources of the token:
//!
//! * the pod's own, which the kubelet sends with the request (KEP-4412, `tokenAttributes`):
//!   [`select`] makes it the identity when the service account is annotated with
//!   `kubernetes.azure.com/acr-client-id` and `kubernetes.azure.com/acr-tenant-id` (with
//!   `acr.nodeIdentityFallback`, the node's tenant stands in for the second);
//! * the node's projected token file (`AZURE_FEDERATED_TOKEN_FILE`, or azure.json's
//!   `aadFederatedTokenFile`), read for every request by [`token_file`], since the kubelet
//!   rotates it.
//!
//! Either is posted to Entra ID by [`super::service_principal`].

use std::collections::BTreeMap;
use std::path::Path;

use keyring_api::Secret;

use super::{
    check_client_id, check_tenant, read_bounded, Credential, Identity, ANNOTATION_CLIENT_ID,
    ANNOTATION_TENANT_ID,
};
use crate::error::Error;

/// Largest federated token file read.
const MAX_TOKEN_FILE_BYTES: u64 = 64 << 10;

/// The identity the pod's `token` names through the service account's `annotations`, or
/// `None` when they name no application and `fallback` (`acr.nodeIdentityFallback`) lets
/// the node's identity answer. `node_tenant`: the cloud config's `tenantId` (or
/// `AZURE_TENANT_ID` under this program's name), which stands in for a missing
/// `kubernetes.azure.com/acr-tenant-id` only with `fallback`; without it, as upstream, both
/// annotations are required.
pub fn select(
    token: &Secret<String>,
    annotations: &BTreeMap<String, String>,
    node_tenant: Option<String>,
    fallback: bool,
    authority: &dyn Fn() -> Result<String, Error>,
) -> Result<Option<Identity>, Error> {
    let annotation = |k: &str| annotations.get(k).filter(|v| !v.is_empty());
    let Some(client_id) = annotation(ANNOTATION_CLIENT_ID) else {
        if !fallback {
            return Err(Error::Setup(format!(
                "the kubelet sent a service-account token but the service account's {ANNOTATION_CLIENT_ID} annotation is missing or empty (and acr.nodeIdentityFallback is false, the default under acr-credential-provider, as upstream); annotate the service account with the client ID of an identity that has AcrPull"
            )));
        }
        tracing::debug!(
            "service-account token without {ANNOTATION_CLIENT_ID}; using the node identity"
        );
        return Ok(None);
    };
    let (tenant, origin) = match annotation(ANNOTATION_TENANT_ID) {
        Some(t) => (t.clone(), "service-account annotations"),
        None if !fallback => {
            return Err(Error::Setup(format!(
                "the service account has {ANNOTATION_CLIENT_ID} but its {ANNOTATION_TENANT_ID} annotation is missing or empty (and acr.nodeIdentityFallback is false, the default under acr-credential-provider, as upstream); annotate the service account with the identity's tenant"
            )))
        }
        None => (
            node_tenant.ok_or_else(|| {
                Error::Setup(format!(
                    "the service account has {ANNOTATION_CLIENT_ID} but no {ANNOTATION_TENANT_ID} annotation, and the node has no tenant (azure.json tenantId or AZURE_TENANT_ID); annotate the service account"
                ))
            })?,
            "service-account annotation and the node's tenant",
        ),
    };
    Ok(Some(Identity {
        credential: Credential::ServiceAccountToken(token.clone()),
        client_id: check_client_id(client_id, ANNOTATION_CLIENT_ID)?,
        tenant: Some(check_tenant(&tenant, ANNOTATION_TENANT_ID)?),
        authority: Some(authority()?),
        origin: origin.into(),
        cloud_config_tenant: None,
    }))
}

/// The projected service-account token in the file at `path`, trimmed.
pub fn token_file(path: &Path) -> Result<Secret<String>, Error> {
    let bytes = read_bounded(
        path,
        MAX_TOKEN_FILE_BYTES,
        "federated token file",
        "check AZURE_FEDERATED_TOKEN_FILE / aadFederatedTokenFile and the projected service-account token volume",
    )?;
    let text = std::str::from_utf8(bytes.expose())
        .map(str::trim)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Content {
            what: "federated token file",
            path: path.to_path_buf(),
            problem: "is empty or not text; is the projected token mounted?".into(),
        })?;
    Ok(Secret::new(text.to_string()))
}
