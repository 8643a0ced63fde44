//! Whom we authenticate as: the Entra ID identity that asks for the ACR token, and asking.
//!
//! Selection ([`select`]), first match wins:
//!
//! 0. **Identity binding** (`acr.identityBinding`, upstream's `--ib-*`; [`binding`]): the
//!    request carries the pod's token and a client ID is known (annotation, else
//!    `defaultClientId`); the token is exchanged at the binding endpoint. With a binding
//!    configured the token is not used otherwise: without a client ID the node identity
//!    answers, unless `nodeIdentityFallback: false`.
//! 1. **Service-account token** (KEP-4412, kubelet ≥ 1.33 with `tokenAttributes`;
//!    [`workload`]): the request carries the pod's token and the service account is annotated
//!    with `kubernetes.azure.com/acr-client-id` and `kubernetes.azure.com/acr-tenant-id`. The
//!    token is the client assertion of that application. A missing annotation is an error
//!    under `nodeIdentityFallback: false` (the default under the upstream name, as upstream);
//!    otherwise the node's identity stands in for a missing client ID, its tenant for a
//!    missing tenant.
//! 2. **The cloud config** (`cloudConfig`, the `azure.json` argument; [`azure_json`]):
//!    `useManagedIdentityExtension` → managed identity (`userAssignedIdentityID`: a client
//!    ID, or an ARM resource ID with `/subscriptions/`); `useFederatedWorkloadIdentityExtension`
//!    → workload identity with `aadFederatedTokenFile`; else `aadClientId` with
//!    `aadClientSecret`, or with `aadClientCertPath`.
//! 3. **Environment** (under this program's name only, without a cloud config), as
//!    `azidentity`'s default chain reads it: `AZURE_CLIENT_SECRET`, then
//!    `AZURE_CLIENT_CERTIFICATE_PATH`, then `AZURE_FEDERATED_TOKEN_FILE` (each with
//!    `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`); otherwise managed identity, user-assigned when
//!    `AZURE_CLIENT_ID` is set.
//!
//! Under the upstream name ([`Settings::as_upstream`]) the node's identity comes from the
//! cloud config alone, as upstream's: no `AZURE_*` variable names it (step 3 is not taken: a
//! missing cloud config is an error), completes it (`AZURE_TENANT_ID`,
//! `AZURE_FEDERATED_TOKEN_FILE`) or moves its authority (`AZURE_AUTHORITY_HOST`).
//!
//! An image reached through a mirror skips 0 and 1 when `mirrorsUseNodeIdentity` is set
//! (upstream's rule, on under its name).
//!
//! Asking ([`token`]): managed identity asks IMDS ([`imds`]), or Azure Arc's agent when this
//! machine is Arc-enabled ([`arc`], which also refuses the managed identities of App
//! Service, Service Fabric, Cloud Shell and Azure ML), for resource
//! `https://containerregistry.azure.net`; a service principal (secret, or a certificate's
//! signed assertion, [`cert`]) and workload identity (the projected token file, or the pod's
//! token) ask the tenant's v2 token endpoint ([`service_principal`]) for scope
//! `https://containerregistry.azure.net/.default` with `grant_type=client_credentials`; an
//! identity binding asks the cluster's endpoint ([`binding`]). The authority host is, first
//! found: `acr.endpoints.authorityHost` (or the `AZURE_ENVIRONMENT_FILEPATH` file's),
//! `AZURE_AUTHORITY_HOST` (not under the upstream name), `acr.cloud`, `azure.json`'s `cloud`,
//! the cloud of the login server's suffix. A cloud config's `resourceManagerEndpoint` other
//! than a built-in cloud's names endpoints upstream discovers from ARM metadata: refused
//! unless the authority is given one of those ways.
//!
//! The tenant the ACR exchange names ([`AadToken::tenant`]): under the upstream name the cloud
//! config's `tenantId` (an empty `tenant` when it has none), whatever the identity, as
//! upstream; otherwise the identity's, else the Entra token's own `tid` (none when neither).
//!
//! Unlike the Go plugin, a service principal's secret is only ever sent to Entra ID: the
//! kubelet gets an ACR refresh token, never the secret.
//!
//! # Why not `azure_identity`
//!
//! The official Azure SDK for Rust (`azure_identity` 1.0.0 with `azure_core` 1.1.0) was tried
//! for these calls and not taken: it costs more than it gives here.
//!
//! * **Fit.** Its certificate credential needs openssl (this build is static, ring only), so
//!   our own RS256 assertion would stay; the IMDS address is fixed (`169.254.169.254`, no
//!   `acr.endpoints.imds`, no fake in tests) and authority hosts must be `https://`; the
//!   managed-identity retry policy (1.34 s initial delay, 6 retries, 72 s in total) runs past
//!   the kubelet's 60 s unless cut from outside; its errors quote Entra's
//!   `error_description`, where ours name only codes. Its default features bring reqwest 0.13
//!   with rustls on aws-lc-rs, so keeping ring needs a transport of our own (an adapter from
//!   its `HttpClient` to keyring-net: 40 lines).
//! * **Figures** (a stand-alone client-secret token program, keyring-net alone vs.
//!   `ClientSecretCredential` on that adapter, release profile without LTO, 16 codegen units,
//!   stripped, on this shared 2-core machine): binary 3,083,712 → 3,893,608 bytes (+0.81 MiB,
//!   +26 %); 62 more crates in that program, 23 of them new to kubelet-keyring (azure_core,
//!   typespec*, futures, async-lock, event-listener, rand, pin-project, ...), 240 s more
//!   release compile time for those, and the build with it took 496 s more wall time (tokio
//!   and serde rebuilt with more features); a cold token call against a local HTTPS fake Entra
//!   ID (hyperfine, 30 runs) 49.4 ± 11.6 ms without, 44.8 ± 16.8 ms with: no difference within
//!   the noise (user + system 11.9 vs 12.2 ms).

pub mod arc;
pub mod azure_json;
pub mod binding;
pub mod cert;
pub mod imds;
pub mod service_principal;
pub mod workload;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use keyring_api::backend::Query;
use keyring_api::jwt::unverified_claims;
use keyring_api::Secret;

use crate::config::{normalize_authority_host, Cloud, Settings};
use crate::error::{Error, Stage};
use crate::http::Http;
use service_principal::Proof;

/// The annotation naming the application a service account pulls as.
pub const ANNOTATION_CLIENT_ID: &str = "kubernetes.azure.com/acr-client-id";
/// The annotation naming that application's tenant.
pub const ANNOTATION_TENANT_ID: &str = "kubernetes.azure.com/acr-tenant-id";
/// The Entra ID resource of ACR (IMDS `resource`).
pub const RESOURCE: &str = "https://containerregistry.azure.net";
/// The Entra ID scope of ACR (v2 token endpoint and identity binding `scope`).
pub const SCOPE: &str = "https://containerregistry.azure.net/.default";
/// `client_assertion_type` for JWT assertions (RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Largest `azure.json` or certificate file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads an environment variable; empty counts as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsiId {
    /// By client (application) ID.
    ClientId(String),
    /// By ARM resource ID.
    ResourceId(String),
}

/// How the identity proves itself.
#[derive(Debug, Clone)]
pub enum Credential {
    /// IMDS; `None` is the system-assigned identity.
    ManagedIdentity(Option<MsiId>),
    /// Azure Arc's agent at that endpoint; `None` is the system-assigned identity.
    ArcManagedIdentity(Option<MsiId>, arc::Endpoint),
    /// A service principal's client secret.
    ClientSecret(Secret<String>),
    /// A service principal's certificate (PEM file with the key).
    Certificate(PathBuf),
    /// Workload identity: a projected service-account token file.
    FederatedTokenFile(PathBuf),
    /// The pod's service-account token from the kubelet request (KEP-4412).
    ServiceAccountToken(Secret<String>),
    /// The pod's service-account token, exchanged at the AKS identity-binding endpoint
    /// (`acr.identityBinding`).
    IdentityBinding(Secret<String>),
}

/// The selected identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The proof.
    pub credential: Credential,
    /// The application (client) ID; empty for managed identity.
    pub client_id: String,
    /// The tenant, when known (required for all but managed identity).
    pub tenant: Option<String>,
    /// The authority host (no trailing `/`); only for non-managed identities.
    pub authority: Option<String>,
    /// Where the selection came from (`azure.json`, `environment`, ...), for diagnostics.
    pub origin: String,
    /// The cloud config's `tenantId`, which the ACR exchange names under the upstream name;
    /// set by [`select`].
    pub cloud_config_tenant: Option<String>,
}

impl Identity {
    /// A short, secret-free description: `managed identity (client id ...) from azure.json`.
    pub fn describe(&self) -> String {
        let what = match &self.credential {
            Credential::ManagedIdentity(None) => "managed identity (system-assigned)".to_string(),
            Credential::ManagedIdentity(Some(MsiId::ClientId(c))) => {
                format!("managed identity (client id {c})")
            }
            Credential::ManagedIdentity(Some(MsiId::ResourceId(r))) => {
                format!("managed identity ({r})")
            }
            Credential::ArcManagedIdentity(None, _) => {
                "Azure Arc managed identity (system-assigned)".to_string()
            }
            Credential::ArcManagedIdentity(Some(MsiId::ClientId(c)), _) => {
                format!("Azure Arc managed identity (client id {c})")
            }
            Credential::ArcManagedIdentity(Some(MsiId::ResourceId(r)), _) => {
                format!("Azure Arc managed identity ({r})")
            }
            Credential::ClientSecret(_) => {
                format!("service principal {} (client secret)", self.client_id)
            }
            Credential::Certificate(p) => format!(
                "service principal {} (certificate {})",
                self.client_id,
                p.display()
            ),
            Credential::FederatedTokenFile(_) => {
                format!("workload identity {}", self.client_id)
            }
            Credential::ServiceAccountToken(_) => {
                format!("service-account token for {}", self.client_id)
            }
            Credential::IdentityBinding(_) => {
                format!(
                    "identity binding of the service account to {}",
                    self.client_id
                )
            }
        };
        format!("{what} from {}", self.origin)
    }
}

/// An Entra ID access token for ACR, and the tenant the ACR exchange names.
pub struct AadToken {
    /// The token.
    pub token: Secret<String>,
    /// Under the upstream name the cloud config's `tenantId` (empty when it has none), as
    /// upstream sends it; otherwise
    /// the identity's tenant, else the token's own `tid` (managed identity may not know its
    /// tenant; the token does).
    pub tenant: Option<String>,
}

/// Picks the identity for one request to `login_server`; reads `azure.json` when configured,
/// nothing else. `mirrored`: the image reached `login_server` through a mirror, whose
/// images, with `mirrorsUseNodeIdentity`, do not use the pod's service-account token.
pub fn select(
    settings: &Settings,
    env: Env<'_>,
    query: &Query,
    login_server: &str,
    mirrored: bool,
) -> Result<Identity, Error> {
    let azure = match &settings.cloud_config {
        Some(path) => Some((azure_json::read(path)?, path.as_path())),
        None if settings.as_upstream => return Err(Error::Setup(format!(
            "acr-credential-provider takes the node's identity from its cloud config file, its first argument (as upstream), and none was given nor is there {}; add it to the provider's args",
            crate::config::DEFAULT_CLOUD_CONFIG
        ))),
        None => None,
    };
    if let Some((a, path)) = &azure {
        azure_json::check_resource_manager(a, path, settings)?;
    }
    // Under the upstream name no AZURE_* variable names, completes or moves the identity.
    let no_env = |_: &str| None;
    let identity_env: Env<'_> = if settings.as_upstream { &no_env } else { env };
    let azure_cloud = azure.as_ref().map(|(a, _)| a.cloud.as_str());
    let authority = || authority_host(settings, identity_env, azure_cloud, login_server);
    let cloud_config_tenant = azure
        .as_ref()
        .map(|(a, _)| a.tenant_id.trim().to_string())
        .filter(|t| !t.is_empty());
    let node_tenant = cloud_config_tenant
        .clone()
        .or_else(|| identity_env("AZURE_TENANT_ID"));

    // The pod's identity, when the kubelet sent its token.
    let token = query
        .service_account_token
        .as_ref()
        .filter(|_| !(mirrored && settings.mirrors_use_node_identity));
    let mut pod = None;
    if let Some(token) = token {
        let annotations = &query.service_account_annotations;
        let fallback = settings.node_identity_fallback;
        pod = match &settings.identity_binding {
            Some(ib) => binding::select(ib, token, annotations, node_tenant.clone(), fallback)?,
            None => workload::select(
                token,
                annotations,
                node_tenant.clone(),
                fallback,
                &authority,
            )?,
        };
    }

    // Else the node's.
    let mut identity = match (pod, &azure) {
        (Some(pod), _) => pod,
        (None, Some((a, path))) => azure_json::select(a, path, identity_env, &authority)?,
        (None, None) => from_env(env, &authority)?,
    };
    if let Credential::ManagedIdentity(id) = &identity.credential {
        let exists = |p: &Path| std::fs::metadata(p).is_ok();
        if let arc::Source::Arc(endpoint) = arc::detect(env, &exists)? {
            identity.credential = Credential::ArcManagedIdentity(id.clone(), endpoint);
        }
    }
    identity.cloud_config_tenant = cloud_config_tenant;
    Ok(identity)
}

/// The node identity the `AZURE_*` variables name: step 3 of the selection.
fn from_env(
    env: Env<'_>,
    authority: &dyn Fn() -> Result<String, Error>,
) -> Result<Identity, Error> {
    let origin = "environment".to_string();
    let credential = if let Some(secret) = env("AZURE_CLIENT_SECRET") {
        Some((
            Credential::ClientSecret(Secret::new(secret)),
            "AZURE_CLIENT_SECRET",
        ))
    } else if let Some(path) = env("AZURE_CLIENT_CERTIFICATE_PATH") {
        Some((
            Credential::Certificate(path.into()),
            "AZURE_CLIENT_CERTIFICATE_PATH",
        ))
    } else {
        env("AZURE_FEDERATED_TOKEN_FILE").map(|path| {
            (
                Credential::FederatedTokenFile(path.into()),
                "AZURE_FEDERATED_TOKEN_FILE",
            )
        })
    };
    let Some((credential, var)) = credential else {
        let id = env("AZURE_CLIENT_ID")
            .map(|c| check_client_id(&c, "AZURE_CLIENT_ID"))
            .transpose()?
            .map(MsiId::ClientId);
        return Ok(Identity {
            credential: Credential::ManagedIdentity(id),
            client_id: String::new(),
            tenant: env("AZURE_TENANT_ID").filter(|t| is_tenant_id(t)),
            authority: None,
            origin,
            cloud_config_tenant: None,
        });
    };
    let missing = |name: &str| {
        Error::Setup(format!(
            "{var} is set but {name} is not; set both AZURE_CLIENT_ID and AZURE_TENANT_ID in the provider's env"
        ))
    };
    let client_id = env("AZURE_CLIENT_ID").ok_or_else(|| missing("AZURE_CLIENT_ID"))?;
    let tenant = env("AZURE_TENANT_ID").ok_or_else(|| missing("AZURE_TENANT_ID"))?;
    Ok(Identity {
        credential,
        client_id: check_client_id(&client_id, "AZURE_CLIENT_ID")?,
        tenant: Some(check_tenant(&tenant, "AZURE_TENANT_ID")?),
        authority: Some(authority()?),
        origin,
        cloud_config_tenant: None,
    })
}

/// The authority host; see the module docs for the order. `env` reads the variables that may
/// move it (none under the upstream name).
pub fn authority_host(
    settings: &Settings,
    env: Env<'_>,
    azure_cloud: Option<&str>,
    login_server: &str,
) -> Result<String, Error> {
    if let Some(h) = &settings.authority_host {
        return Ok(h.clone());
    }
    if let Some(h) = env("AZURE_AUTHORITY_HOST") {
        // Entra ID receives the client secret or assertion there: never in clear (only
        // acr.endpoints.authorityHost may name a loopback fake over http).
        return normalize_authority_host(&h)
            .filter(|h| h.starts_with("https://"))
            .ok_or_else(|| {
                Error::Setup("AZURE_AUTHORITY_HOST is not an https:// URL without query; Entra ID receives the client secret or assertion there".into())
            });
    }
    if let Some(c) = settings.cloud {
        return Ok(c.authority_host().into());
    }
    if let Some(name) = azure_cloud.map(str::trim).filter(|n| !n.is_empty()) {
        return Cloud::parse(name)
            .map(|c| c.authority_host().to_string())
            .ok_or_else(|| {
                Error::Setup(if name.eq_ignore_ascii_case("AzureStackCloud") {
                    "azure.json cloud AzureStackCloud takes its endpoints from the file AZURE_ENVIRONMENT_FILEPATH names, which is not set; set it in the kubelet's environment (or acr.endpoints.authorityHost)".to_string()
                } else {
                    format!(
                        "azure.json cloud {name:?} is not a cloud this build knows; set acr.endpoints.authorityHost (and acr.registrySuffixes)"
                    )
                })
            });
    }
    Ok(Cloud::of_login_server(login_server)
        .unwrap_or(Cloud::Public)
        .authority_host()
        .into())
}

fn check_client_id(id: &str, field: &str) -> Result<String, Error> {
    let id = id.trim();
    if !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        Ok(id.to_string())
    } else {
        Err(Error::Setup(format!(
            "{field} is not a client ID (a GUID like 00000000-0000-0000-0000-000000000000)"
        )))
    }
}

fn check_tenant(t: &str, field: &str) -> Result<String, Error> {
    let t = t.trim();
    if is_tenant_id(t) {
        Ok(t.to_string())
    } else {
        Err(Error::Setup(format!(
            "{field} is not a tenant ID (a GUID or a domain like contoso.onmicrosoft.com)"
        )))
    }
}

/// A tenant: a GUID or a domain name (`contoso.onmicrosoft.com`). Also what may go into the
/// authority URL's path, so nothing else is allowed.
pub fn is_tenant_id(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 256
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !t.starts_with('.')
        && !t.contains("..")
}

/// Reads a file of at most `max` bytes into a wiped-on-drop buffer.
fn read_bounded(
    path: &Path,
    max: u64,
    what: &'static str,
    hint: &str,
) -> Result<Secret<Vec<u8>>, Error> {
    let file_err = |source: std::io::Error| Error::File {
        what,
        path: path.to_path_buf(),
        hint: hint.to_string(),
        source,
    };
    let file = keyring_api::file::open(path).map_err(file_err)?;
    keyring_api::file::read_secret_at_most(file, max).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => Error::Content {
            what,
            path: path.to_path_buf(),
            problem: format!("is {e}"),
        },
        _ => file_err(e),
    })
}

/// Gets the Entra ID token for ACR.
pub fn token(
    identity: &Identity,
    settings: &Settings,
    http: &Http,
    now: SystemTime,
) -> Result<AadToken, Error> {
    let token = match &identity.credential {
        Credential::ManagedIdentity(id) => imds::token(id.as_ref(), settings, http)?,
        Credential::ArcManagedIdentity(id, endpoint) => arc::token(endpoint, id.as_ref(), http)?,
        Credential::ClientSecret(secret) => {
            service_principal::token(identity, http, |_| Ok(Proof::Secret(secret.clone())))?
        }
        Credential::Certificate(path) => service_principal::token(identity, http, |token_url| {
            cert::assertion(path, &identity.client_id, token_url, now).map(Proof::Assertion)
        })?,
        Credential::FederatedTokenFile(path) => service_principal::token(identity, http, |_| {
            workload::token_file(path).map(Proof::Assertion)
        })?,
        Credential::ServiceAccountToken(token) => {
            service_principal::token(identity, http, |_| Ok(Proof::Assertion(token.clone())))?
        }
        Credential::IdentityBinding(token) => match &settings.identity_binding {
            Some(ib) => binding::token(ib, &identity.client_id, token, http)?,
            None => {
                return Err(Error::Setup(
                    "internal: an identity binding without acr.identityBinding".into(),
                ))
            }
        },
    };
    let tenant = if settings.as_upstream {
        // Upstream's exchange sends the cloud config's TenantID for every identity, empty
        // when it has none.
        Some(identity.cloud_config_tenant.clone().unwrap_or_default())
    } else {
        identity.tenant.clone().or_else(|| {
            unverified_claims::<TenantClaim>(token.expose())
                .ok()
                .and_then(|c| c.tid)
                .filter(|t| is_tenant_id(t))
        })
    };
    Ok(AadToken { token, tenant })
}

/// The one claim read from an Entra ID access token (never verified: ACR verifies it).
#[derive(serde::Deserialize)]
struct TenantClaim {
    tid: Option<String>,
}

/// The `access_token` of a token endpoint's 200 answer (Entra ID, IMDS, identity binding).
pub(crate) fn access_token(
    body: &Secret<Vec<u8>>,
    stage: Stage,
    url: &str,
) -> Result<Secret<String>, Error> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        access_token: Option<Secret<String>>,
    }
    let parsed: TokenResponse =
        serde_json::from_slice(body.expose()).map_err(|_| Error::Response {
            stage,
            url: url.into(),
            problem:
                "the 200 response is not the expected JSON (a proxy or captive portal in between?)"
                    .into(),
        })?;
    parsed
        .access_token
        .filter(|t| !t.expose().is_empty())
        .ok_or_else(|| Error::Response {
            stage,
            url: url.into(),
            problem: "the response has no access_token".into(),
        })
}
