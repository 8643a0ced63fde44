//! The AKS identity-binding exchange (upstream `acr-credential-provider --ib-*`), as
//! `pkg/credentialprovider/identity_bindings_credentials.go` performs it:
//!
//! `POST https://<sniName>/` (form: `grant_type=client_credentials`,
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
//! `client_assertion=<the pod's service-account token>`, `client_id`, `scope=<ACR>/.default`)
//! dialled at the API server's address whatever the name resolves to, the certificate
//! verified for `sniName` against the cluster CA file only, no proxy. A 200 answer carries
//! `{"access_token": ..., "expires_in": ...}`: an Entra ID token that the ACR exchange then
//! takes as any other.
//!
//! [`select`] makes the pod's token this identity when a client ID is known (the service
//! account's annotation, else `defaultClientId`); [`token`] makes the exchange.
//!
//! The API server may be given as a DNS name (AKS passes its FQDN); upstream resolves it at
//! start with a 10 s timeout, for every invocation. Here it is resolved only when an
//! exchange is made, within the same bound and the invocation's deadline.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use keyring_api::{Deadline, Secret};

use super::{
    access_token, check_client_id, is_tenant_id, Credential, Identity, ANNOTATION_CLIENT_ID,
    ANNOTATION_TENANT_ID, ASSERTION_TYPE, SCOPE,
};
use crate::config::IdentityBinding;
use crate::error::{error_code, transient, Error, Stage};
use crate::http::{Body, Call, Http, Route};

/// The identity the pod's `token` gets through the binding `ib`: the application of the
/// service account's annotation, else `defaultClientId`; `None` when neither names one and
/// `fallback` (`acr.nodeIdentityFallback`) lets the node's identity answer. Without
/// `fallback` an annotation that is present but empty is used as upstream uses it (and
/// fails), instead of giving way to the default.
pub fn select(
    ib: &IdentityBinding,
    token: &Secret<String>,
    annotations: &BTreeMap<String, String>,
    node_tenant: Option<String>,
    fallback: bool,
) -> Result<Option<Identity>, Error> {
    let nonempty = |k: &str| annotations.get(k).filter(|v| !v.is_empty()).cloned();
    let client_id = match annotations.get(ANNOTATION_CLIENT_ID) {
        Some(given) if !fallback => Some(given.clone()).filter(|c| !c.is_empty()),
        _ => nonempty(ANNOTATION_CLIENT_ID).or_else(|| ib.default_client_id.clone()),
    };
    match client_id {
        Some(client_id) => {
            // The ACR exchange names the node's tenant, as upstream (its binding credential
            // keeps the annotation's or default tenant unused); else, under this program's
            // name, the binding's, when it is a tenant ID at all.
            let tenant = node_tenant.filter(|t| is_tenant_id(t)).or_else(|| {
                nonempty(ANNOTATION_TENANT_ID)
                    .or_else(|| ib.default_tenant_id.clone())
                    .filter(|t| is_tenant_id(t))
            });
            Ok(Some(Identity {
                credential: Credential::IdentityBinding(token.clone()),
                client_id: check_client_id(&client_id, ANNOTATION_CLIENT_ID)?,
                tenant,
                authority: None,
                origin: format!("identity binding {}", ib.sni_name),
                cloud_config_tenant: None,
            }))
        }
        None if !fallback => Err(Error::Setup(
            if annotations.contains_key(ANNOTATION_CLIENT_ID) {
                format!("the service account's {ANNOTATION_CLIENT_ID} annotation is empty, and an annotation that is there is used instead of --ib-default-client-id (as upstream); set it or remove it")
            } else {
                format!("the kubelet sent a service-account token but the service account has no {ANNOTATION_CLIENT_ID} annotation and there is no default client ID (--ib-default-client-id); annotate the service account")
            },
        )),
        None => {
            tracing::debug!(
                "service-account token without {ANNOTATION_CLIENT_ID} nor a default client ID; using the node identity"
            );
            Ok(None)
        }
    }
}

/// Upstream's bound on resolving `--ib-apiserver-ip` when it is a name.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest CA bundle read; a larger one is refused, not cut.
const MAX_CA_BYTES: u64 = 1 << 20;

/// The address `api_server` names: itself when an IP, else the first address the system
/// resolver gives within [`RESOLVE_TIMEOUT`] (and `deadline`).
pub fn resolve(api_server: &str, deadline: Deadline) -> Result<IpAddr, Error> {
    if let Ok(ip) = api_server.parse::<IpAddr>() {
        return Ok(ip);
    }
    let name = api_server.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    // getaddrinfo cannot be cancelled: a thread that outlives a timeout is left to finish.
    std::thread::spawn(move || {
        let _ = tx.send((name.as_str(), 443).to_socket_addrs().map(|mut a| a.next()));
    });
    let fail = |why: &str| {
        Error::Setup(format!(
            "the identity-binding API server {api_server:?} (--ib-apiserver-ip) {why}; give its IP, or check the node's DNS"
        ))
    };
    match rx.recv_timeout(deadline.cap(RESOLVE_TIMEOUT)) {
        Ok(Ok(Some(addr))) => Ok(addr.ip()),
        Ok(Ok(None)) | Ok(Err(_)) => Err(fail("does not resolve")),
        Err(_) => Err(fail("did not resolve within 10 s")),
    }
}

fn read_roots(
    ib: &IdentityBinding,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, Error> {
    let path = &ib.ca_file;
    let bytes = keyring_api::file::read(path, MAX_CA_BYTES).map_err(|source| Error::File {
        what: "identity-binding CA",
        path: path.clone(),
        hint: "the cluster CA the identity-binding endpoint's certificate chains to (identityBinding.caFile)".into(),
        source,
    })?;
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(Error::Content {
            what: "identity-binding CA",
            path: path.clone(),
            problem: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

/// The Entra ID token for ACR that the identity-binding endpoint gives for the pod's
/// service-account `token` as application `client_id`.
pub fn token(
    ib: &IdentityBinding,
    client_id: &str,
    token: &Secret<String>,
    http: &Http,
) -> Result<Secret<String>, Error> {
    // The pinned client (the cluster's CA, the resolved address) is built only when used;
    // an endpoint override goes through the invocation's own session, as every other call.
    let pinned;
    let (http, url) = match &ib.endpoint_override {
        Some(u) => (http, u.clone()),
        None => {
            let deadline = http.deadline();
            let ip = resolve(&ib.api_server, deadline)?;
            let roots = read_roots(ib)?;
            pinned = Http::pinned(deadline, ip, roots)?;
            (
                &pinned,
                match ib.port {
                    443 => format!("https://{}/", ib.sni_name),
                    port => format!("https://{}:{port}/", ib.sni_name),
                },
            )
        }
    };
    let fields: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("scope", SCOPE),
        ("client_assertion", token.expose()),
        ("client_id", client_id),
    ];
    let hint = format!(
        "can the node reach the identity-binding endpoint {} at {} (--ib-apiserver-ip), and is {} its CA?",
        ib.sni_name,
        ib.api_server,
        ib.ca_file.display()
    );
    let reply = http.send(&Call {
        stage: Stage::IdentityBinding,
        url: &url,
        query: &[],
        headers: &[],
        body: Body::Form(&fields),
        route: Route::Direct,
        retry_status: transient,
        hint: &hint,
    })?;
    drop(fields);
    if reply.status != 200 {
        let code = error_code(reply.body.expose());
        let hint = match reply.status {
            400 | 401 | 403 => format!("the identity binding refused the service account as client {client_id}: check the binding of the service account to that identity (kubernetes.azure.com/acr-client-id or --ib-default-client-id)"),
            _ => "the identity-binding endpoint failed; retry later".to_string(),
        };
        return Err(Error::Status {
            stage: Stage::IdentityBinding,
            url,
            status: reply.status,
            code,
            hint,
        });
    }
    access_token(&reply.body, Stage::IdentityBinding, &url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_server_is_an_ip_or_a_name_the_system_resolves() {
        let d = Deadline::after(Duration::from_secs(5));
        assert_eq!(
            resolve("10.0.0.1", d).unwrap(),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(resolve("::1", d).unwrap(), "::1".parse::<IpAddr>().unwrap());
        // A name goes through the system resolver (/etc/hosts names localhost).
        assert!(resolve("localhost", d).unwrap().is_loopback());
        let e = resolve("no-such-host.invalid", d).unwrap_err().to_string();
        assert!(
            e.contains("--ib-apiserver-ip") && e.contains("does not resolve"),
            "{e}"
        );
    }
}
