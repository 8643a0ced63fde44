//! Which Entra ID identity asks for the ACR token, and asking.
//!
//! Selection, first match wins:
//!
//! 0. **Identity binding** (`acr.identityBinding`, upstream's `--ib-*`): the request carries
//!    the pod's token and a client ID is known (annotation, else `defaultClientId`); the token
//!    is exchanged at the binding endpoint ([`crate::binding`]). With a binding configured the
//!    token is not used otherwise: without a client ID the node identity answers, unless
//!    `nodeIdentityFallback: false`.
//! 1. **Service-account token** (KEP-4412, kubelet ≥ 1.33 with `tokenAttributes`): the request
//!    carries the pod's token and the service account is annotated with
//!    `kubernetes.azure.com/acr-client-id` (and `kubernetes.azure.com/acr-tenant-id`, else the
//!    node's tenant). The token is the client assertion of that application. Without the
//!    client-id annotation the node identity is used, unless `nodeIdentityFallback: false`.
//! 2. **`azure.json`** (`cloudConfig` set): `useManagedIdentityExtension` → managed identity
//!    (`userAssignedIdentityID`: a client ID, or an ARM resource ID with `/subscriptions/`);
//!    `useFederatedWorkloadIdentityExtension` → workload identity with `aadFederatedTokenFile`;
//!    else `aadClientId` with `aadClientSecret`, or with `aadClientCertPath`.
//! 3. **Environment**, as `azidentity`'s default chain reads it: `AZURE_CLIENT_SECRET`, then
//!    `AZURE_CLIENT_CERTIFICATE_PATH`, then `AZURE_FEDERATED_TOKEN_FILE` (each with
//!    `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`); otherwise managed identity, user-assigned when
//!    `AZURE_CLIENT_ID` is set.
//!
//! An image reached through a mirror skips 0 and 1 when `mirrorsUseNodeIdentity` is set
//! (upstream's rule, on under its name).
//!
//! Managed identity asks IMDS for resource `https://containerregistry.azure.net`; the others
//! ask the tenant's v2 token endpoint for scope `https://containerregistry.azure.net/.default`
//! with `grant_type=client_credentials`. The authority host is, first found:
//! `acr.endpoints.authorityHost`, `AZURE_AUTHORITY_HOST`, `acr.cloud`, `azure.json`'s `cloud`,
//! the cloud of the login server's suffix.
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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use keyring_api::backend::Query;
use keyring_api::Secret;

use crate::config::{normalize_authority_host, AzureJson, Cloud, Settings};
use crate::error::{error_code, Error, Stage};
use crate::http::{transient, Body, Call, Http, Route};
use crate::jwt::{is_tenant_id, AssertionClaims};

/// The annotation naming the application a service account pulls as.
pub const ANNOTATION_CLIENT_ID: &str = "kubernetes.azure.com/acr-client-id";
/// The annotation naming that application's tenant.
pub const ANNOTATION_TENANT_ID: &str = "kubernetes.azure.com/acr-tenant-id";
/// The IMDS `api-version`.
pub const IMDS_API_VERSION: &str = "2018-02-01";
/// `client_assertion_type` for JWT assertions (RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Largest `azure.json` or certificate file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest federated token file read.
const MAX_TOKEN_FILE_BYTES: u64 = 64 << 10;
/// How long a signed client assertion is valid.
const ASSERTION_VALIDITY: Duration = Duration::from_secs(10 * 60);

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

/// An Entra ID access token for ACR.
pub struct AadToken {
    /// The token.
    pub token: Secret<String>,
}

/// Picks the identity for one request; reads `azure.json` when configured, nothing else.
pub fn select(
    settings: &Settings,
    env: Env<'_>,
    query: &Query,
    login_server: &str,
) -> Result<Identity, Error> {
    select_for(settings, env, query, login_server, false)
}

/// [`select`] for an image that reached `login_server` through a mirror when `mirrored`:
/// with `mirrorsUseNodeIdentity` its service-account token is not used.
pub fn select_for(
    settings: &Settings,
    env: Env<'_>,
    query: &Query,
    login_server: &str,
    mirrored: bool,
) -> Result<Identity, Error> {
    let azure = match &settings.cloud_config {
        Some(path) => Some((read_azure_json(path)?, path.as_path())),
        None => None,
    };
    let azure_cloud = azure.as_ref().map(|(a, _)| a.cloud.as_str());
    let authority = || authority_host(settings, env, azure_cloud, login_server);
    let node_tenant = azure
        .as_ref()
        .map(|(a, _)| a.tenant_id.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| env("AZURE_TENANT_ID"));

    let token = query
        .service_account_token
        .as_ref()
        .filter(|_| !(mirrored && settings.mirrors_use_node_identity));
    if let (Some(ib), Some(token)) = (&settings.identity_binding, token) {
        let annotations = &query.service_account_annotations;
        let nonempty = |k: &str| annotations.get(k).filter(|v| !v.is_empty()).cloned();
        match nonempty(ANNOTATION_CLIENT_ID).or_else(|| ib.default_client_id.clone()) {
            Some(client_id) => {
                // The ACR exchange names the node's tenant, as upstream (its binding
                // credential keeps the annotation's or default tenant unused); else the
                // binding's, when it is a tenant ID at all.
                let tenant = node_tenant
                    .clone()
                    .filter(|t| is_tenant_id(t))
                    .or_else(|| {
                        nonempty(ANNOTATION_TENANT_ID)
                            .or_else(|| ib.default_tenant_id.clone())
                            .filter(|t| is_tenant_id(t))
                    });
                return Ok(Identity {
                    credential: Credential::IdentityBinding(token.clone()),
                    client_id: check_client_id(&client_id, ANNOTATION_CLIENT_ID)?,
                    tenant,
                    authority: None,
                    origin: format!("identity binding {}", ib.sni_name),
                });
            }
            None if !settings.node_identity_fallback => {
                return Err(Error::Setup(format!(
                    "the kubelet sent a service-account token but the service account has no {ANNOTATION_CLIENT_ID} annotation and there is no default client ID (--ib-default-client-id); annotate the service account"
                )));
            }
            None => tracing::debug!(
                "service-account token without {ANNOTATION_CLIENT_ID} nor a default client ID; using the node identity"
            ),
        }
    } else if let (Some(token), None) = (token, &settings.identity_binding) {
        let annotations = &query.service_account_annotations;
        match annotations
            .get(ANNOTATION_CLIENT_ID)
            .filter(|c| !c.is_empty())
        {
            Some(client_id) => {
                let (tenant, origin) = match annotations
                    .get(ANNOTATION_TENANT_ID)
                    .filter(|t| !t.is_empty())
                {
                    Some(t) => (t.clone(), "service-account annotations"),
                    None => (
                        node_tenant.clone().ok_or_else(|| {
                            Error::Setup(format!(
                                "the service account has {ANNOTATION_CLIENT_ID} but no {ANNOTATION_TENANT_ID} annotation, and the node has no tenant (azure.json tenantId or AZURE_TENANT_ID); annotate the service account"
                            ))
                        })?,
                        "service-account annotation and the node's tenant",
                    ),
                };
                return Ok(Identity {
                    credential: Credential::ServiceAccountToken(token.clone()),
                    client_id: check_client_id(client_id, ANNOTATION_CLIENT_ID)?,
                    tenant: Some(check_tenant(&tenant, ANNOTATION_TENANT_ID)?),
                    authority: Some(authority()?),
                    origin: origin.into(),
                });
            }
            None if !settings.node_identity_fallback => {
                return Err(Error::Setup(format!(
                    "the kubelet sent a service-account token but the service account has no {ANNOTATION_CLIENT_ID} annotation, and acr.nodeIdentityFallback is false; annotate the service account with the client ID of an identity that has AcrPull"
                )));
            }
            None => tracing::debug!(
                "service-account token without {ANNOTATION_CLIENT_ID}; using the node identity"
            ),
        }
    }

    if let Some((a, path)) = &azure {
        return from_azure_json(a, path, env, authority);
    }
    from_env(env, authority)
}

fn from_azure_json(
    a: &AzureJson,
    path: &Path,
    env: Env<'_>,
    authority: impl Fn() -> Result<String, Error>,
) -> Result<Identity, Error> {
    let origin = format!("azure.json {}", path.display());
    let content = |problem: String| Error::Content {
        what: "azure.json",
        path: path.to_path_buf(),
        problem,
    };
    if a.use_managed_identity_extension {
        let id = a.user_assigned_identity_id.trim();
        let id = if id.is_empty() {
            None
        } else if id.to_ascii_lowercase().contains("/subscriptions/") {
            Some(MsiId::ResourceId(id.to_string()))
        } else {
            Some(MsiId::ClientId(check_client_id(
                id,
                "userAssignedIdentityID",
            )?))
        };
        return Ok(Identity {
            credential: Credential::ManagedIdentity(id),
            client_id: String::new(),
            tenant: Some(a.tenant_id.clone()).filter(|t| is_tenant_id(t)),
            authority: None,
            origin,
        });
    }
    let tenant = match a.tenant_id.as_str() {
        "" => {
            return Err(content(
                "has no tenantId, which a service principal or workload identity needs".into(),
            ))
        }
        t => check_tenant(t, "tenantId")?,
    };
    let client_id = match a.aad_client_id.as_str() {
        "" => {
            return Err(content(
                "has no aadClientId; set it, or useManagedIdentityExtension: true".into(),
            ))
        }
        c => check_client_id(c, "aadClientId")?,
    };
    let credential = if a.use_federated_workload_identity_extension {
        let file = Some(a.aad_federated_token_file.clone())
            .filter(|f| !f.is_empty())
            .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE"))
            .ok_or_else(|| {
                content("sets useFederatedWorkloadIdentityExtension but no aadFederatedTokenFile (nor is AZURE_FEDERATED_TOKEN_FILE set)".into())
            })?;
        Credential::FederatedTokenFile(file.into())
    } else if !a.aad_client_secret.expose().is_empty() {
        Credential::ClientSecret(a.aad_client_secret.clone())
    } else if !a.aad_client_cert_path.is_empty() {
        Credential::Certificate(a.aad_client_cert_path.clone().into())
    } else {
        return Err(content(
            "names no credential: set useManagedIdentityExtension (and userAssignedIdentityID for a user-assigned identity), aadClientSecret or aadClientCertPath, or useFederatedWorkloadIdentityExtension".into(),
        ));
    };
    Ok(Identity {
        credential,
        client_id,
        tenant: Some(tenant),
        authority: Some(authority()?),
        origin,
    })
}

fn from_env(
    env: Env<'_>,
    authority: impl Fn() -> Result<String, Error>,
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
    })
}

/// The authority host; see the module docs for the order.
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
        return normalize_authority_host(&h).ok_or_else(|| {
            Error::Setup("AZURE_AUTHORITY_HOST is not an http(s) URL without query".into())
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

fn read_azure_json(path: &Path) -> Result<AzureJson, Error> {
    let bytes = read_bounded(
        path,
        MAX_CONFIG_BYTES,
        "azure.json",
        "check acr.cloudConfig",
    )?;
    AzureJson::parse(bytes.expose()).map_err(|e| Error::Content {
        what: "azure.json",
        path: path.to_path_buf(),
        problem: e.problem,
    })
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
    let mut bytes = Vec::new();
    let read = keyring_api::file::open(path).and_then(|f| f.take(max + 1).read_to_end(&mut bytes));
    // Wrapped before any early return, so a partial read is wiped too.
    let buf = Secret::new(bytes);
    read.map_err(file_err)?;
    if buf.expose().len() as u64 > max {
        return Err(Error::Content {
            what,
            path: path.to_path_buf(),
            problem: format!("is larger than {max} bytes"),
        });
    }
    Ok(buf)
}

/// Gets the Entra ID token for ACR.
pub fn token(
    identity: &Identity,
    settings: &Settings,
    http: &Http,
    now: SystemTime,
) -> Result<AadToken, Error> {
    match &identity.credential {
        Credential::ManagedIdentity(id) => imds_token(id.as_ref(), settings, http),
        Credential::ClientSecret(secret) => {
            aad_token(identity, http, |_| Ok(Form::Secret(secret.clone())))
        }
        Credential::Certificate(path) => aad_token(identity, http, |token_url| {
            let bytes = read_bounded(
                path,
                MAX_CONFIG_BYTES,
                "client certificate",
                "check aadClientCertPath / AZURE_CLIENT_CERTIFICATE_PATH and that the kubelet can read it",
            )?;
            let cert = crate::cert::load(bytes.expose()).map_err(|e| Error::Content {
                what: "client certificate",
                path: path.clone(),
                problem: e.to_string(),
            })?;
            tracing::debug!(thumbprint = %cert.thumbprint, "signing a client assertion");
            let assertion = crate::jwt::sign_assertion(
                &cert.key,
                &cert.x5t,
                &AssertionClaims {
                    client_id: &identity.client_id,
                    audience: token_url,
                    now,
                    validity: ASSERTION_VALIDITY,
                },
                &ring::rand::SystemRandom::new(),
            )?;
            Ok(Form::Assertion(assertion))
        }),
        Credential::FederatedTokenFile(path) => aad_token(identity, http, |_| {
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
                    path: path.clone(),
                    problem: "is empty or not text; is the projected token mounted?".into(),
                })?;
            Ok(Form::Assertion(Secret::new(text.to_string())))
        }),
        Credential::ServiceAccountToken(token) => {
            aad_token(identity, http, |_| Ok(Form::Assertion(token.clone())))
        }
        Credential::IdentityBinding(token) => match &settings.identity_binding {
            Some(ib) => crate::binding::token(ib, &identity.client_id, token, http.deadline()),
            None => Err(Error::Setup(
                "internal: an identity binding without acr.identityBinding".into(),
            )),
        },
    }
}

/// How a confidential client authenticates.
enum Form {
    Secret(Secret<String>),
    Assertion(Secret<String>),
}

fn imds_token(id: Option<&MsiId>, settings: &Settings, http: &Http) -> Result<AadToken, Error> {
    let mut query: Vec<(&str, &str)> = vec![
        ("api-version", IMDS_API_VERSION),
        ("resource", crate::RESOURCE),
    ];
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
    let token = access_token(&reply.body, Stage::Imds, url)?;
    Ok(AadToken { token })
}

fn aad_token(
    identity: &Identity,
    http: &Http,
    form: impl FnOnce(&str) -> Result<Form, Error>,
) -> Result<AadToken, Error> {
    let (Some(tenant), Some(authority)) = (&identity.tenant, &identity.authority) else {
        return Err(Error::Setup(
            "internal: a service principal without tenant or authority".into(),
        ));
    };
    let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
    let proof = form(&url)?;
    let mut fields: Vec<(&str, &str)> = vec![
        ("grant_type", "client_credentials"),
        ("client_id", &identity.client_id),
        ("scope", crate::SCOPE),
    ];
    match &proof {
        Form::Secret(s) => fields.push(("client_secret", s.expose())),
        Form::Assertion(a) => {
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
    let token = access_token(&reply.body, Stage::Aad, &url)?;
    Ok(AadToken { token })
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Config;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned().filter(|v| !v.is_empty())
    }

    fn query() -> Query {
        Query::new(keyring_api::ImageName::parse("myacr.azurecr.io/app").unwrap())
    }

    fn settings() -> Settings {
        Config::default().validate().unwrap()
    }

    const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const C: &str = "11111111-2222-3333-4444-555555555555";

    #[test]
    fn environment_selection() {
        let s = settings();
        let q = query();
        let id = select(&s, &env_of(&[]), &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(id.credential, Credential::ManagedIdentity(None)));

        let id = select(
            &s,
            &env_of(&[("AZURE_CLIENT_ID", C)]),
            &q,
            "myacr.azurecr.io",
        )
        .unwrap();
        assert!(
            matches!(id.credential, Credential::ManagedIdentity(Some(MsiId::ClientId(ref c))) if c == C)
        );

        let e = env_of(&[
            ("AZURE_CLIENT_ID", C),
            ("AZURE_TENANT_ID", T),
            ("AZURE_CLIENT_SECRET", "hunter2"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]);
        let id = select(&s, &e, &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(id.credential, Credential::ClientSecret(_)));
        assert_eq!(
            id.authority.as_deref(),
            Some("https://login.microsoftonline.com")
        );
        assert!(!format!("{id:?}").contains("hunter2"));
        assert!(!id.describe().contains("hunter2"));

        let e = env_of(&[
            ("AZURE_CLIENT_ID", C),
            ("AZURE_TENANT_ID", T),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
        ]);
        let id = select(&s, &e, &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(id.credential, Credential::FederatedTokenFile(_)));
        assert_eq!(
            id.authority.as_deref(),
            Some("https://login.microsoftonline.us")
        );

        let e = env_of(&[("AZURE_CLIENT_SECRET", "hunter2"), ("AZURE_CLIENT_ID", C)]);
        let err = select(&s, &e, &q, "myacr.azurecr.io")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AZURE_TENANT_ID") && !err.contains("hunter2"),
            "{err}"
        );

        let e = env_of(&[("AZURE_CLIENT_ID", "x/../y")]);
        assert!(select(&s, &e, &q, "myacr.azurecr.io").is_err());
    }

    #[test]
    fn sovereign_authorities() {
        let s = settings();
        let none = env_of(&[]);
        let a = |cloud: Option<&str>, login: &str| authority_host(&s, &none, cloud, login);
        assert_eq!(
            a(None, "x.azurecr.cn").unwrap(),
            "https://login.chinacloudapi.cn"
        );
        assert_eq!(
            a(None, "x.azurecr.us").unwrap(),
            "https://login.microsoftonline.us"
        );
        assert_eq!(
            a(None, "x.azurecr.io").unwrap(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            a(Some("AzureChinaCloud"), "x.azurecr.io").unwrap(),
            "https://login.chinacloudapi.cn"
        );
        assert_eq!(
            a(Some("AzureUSGovernmentCloud"), "x.azurecr.io").unwrap(),
            "https://login.microsoftonline.us"
        );
        assert!(a(Some("AzureStackCloud"), "x.azurecr.io")
            .unwrap_err()
            .to_string()
            .contains("authorityHost"));
        let mut s2 = settings();
        s2.cloud = Some(Cloud::China);
        assert_eq!(
            authority_host(&s2, &none, Some("AzurePublicCloud"), "x.azurecr.io").unwrap(),
            "https://login.chinacloudapi.cn"
        );
        s2.authority_host = Some("http://127.0.0.1:9".into());
        assert_eq!(
            authority_host(&s2, &none, None, "x.azurecr.io").unwrap(),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn service_account_tokens() {
        let s = settings();
        let mut q = query();
        q.service_account_token = Some(Secret::new("sa.token.value".into()));
        // No annotation: node identity (fallback on by default).
        let id = select(&s, &env_of(&[]), &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(id.credential, Credential::ManagedIdentity(None)));
        // Fallback off: a clear error.
        let mut strict = settings();
        strict.node_identity_fallback = false;
        let err = select(&strict, &env_of(&[]), &q, "myacr.azurecr.io")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(ANNOTATION_CLIENT_ID) && !err.contains("sa.token"),
            "{err}"
        );
        // Client id annotation, tenant from the node.
        q.service_account_annotations
            .insert(ANNOTATION_CLIENT_ID.into(), C.into());
        let err = select(&s, &env_of(&[]), &q, "myacr.azurecr.io")
            .unwrap_err()
            .to_string();
        assert!(err.contains(ANNOTATION_TENANT_ID), "{err}");
        let id = select(
            &s,
            &env_of(&[("AZURE_TENANT_ID", T)]),
            &q,
            "myacr.azurecr.io",
        )
        .unwrap();
        assert!(matches!(id.credential, Credential::ServiceAccountToken(_)));
        assert_eq!(id.tenant.as_deref(), Some(T));
        q.service_account_annotations.insert(
            ANNOTATION_TENANT_ID.into(),
            "contoso.onmicrosoft.com".into(),
        );
        let id = select(
            &s,
            &env_of(&[("AZURE_TENANT_ID", T)]),
            &q,
            "myacr.azurecr.cn",
        )
        .unwrap();
        assert_eq!(id.tenant.as_deref(), Some("contoso.onmicrosoft.com"));
        assert_eq!(
            id.authority.as_deref(),
            Some("https://login.chinacloudapi.cn")
        );
        assert_eq!(id.client_id, C);
    }

    #[test]
    fn azure_json_selection() {
        let dir = tempfile::tempdir().unwrap();
        let write = |json: &str| {
            let p = dir.path().join("azure.json");
            std::fs::write(&p, json).unwrap();
            let mut s = settings();
            s.cloud_config = Some(p);
            s
        };
        let q = query();
        let none = env_of(&[]);
        let s = write(&format!(
            r#"{{"cloud":"AzurePublicCloud","tenantId":"{T}","aadClientId":"msi","aadClientSecret":"msi","useManagedIdentityExtension":true,"userAssignedIdentityID":"{C}"}}"#
        ));
        let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
        assert!(
            matches!(id.credential, Credential::ManagedIdentity(Some(MsiId::ClientId(ref c))) if c == C)
        );
        assert!(id.describe().contains("azure.json"));

        let s = write(
            r#"{"useManagedIdentityExtension":true,"userAssignedIdentityID":"/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i"}"#,
        );
        let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(
            id.credential,
            Credential::ManagedIdentity(Some(MsiId::ResourceId(_)))
        ));

        let s = write(&format!(
            r#"{{"cloud":"AzureChinaCloud","tenantId":"{T}","aadClientId":"{C}","aadClientSecret":"hunter2"}}"#
        ));
        let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(id.credential, Credential::ClientSecret(_)));
        assert_eq!(
            id.authority.as_deref(),
            Some("https://login.chinacloudapi.cn")
        );

        let s = write(&format!(
            r#"{{"tenantId":"{T}","aadClientId":"{C}","aadClientCertPath":"/etc/kubernetes/sp.pem"}}"#
        ));
        let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(id.credential, Credential::Certificate(_)));

        let s = write(&format!(
            r#"{{"tenantId":"{T}","aadClientId":"{C}","useFederatedWorkloadIdentityExtension":true,"aadFederatedTokenFile":"/t"}}"#
        ));
        let id = select(&s, &none, &q, "myacr.azurecr.io").unwrap();
        assert!(matches!(id.credential, Credential::FederatedTokenFile(_)));

        for (json, needle) in [
            (
                format!(r#"{{"tenantId":"{T}","aadClientId":"{C}"}}"#),
                "names no credential",
            ),
            (
                format!(r#"{{"aadClientId":"{C}","aadClientSecret":"hunter2"}}"#),
                "no tenantId",
            ),
            (
                r#"{"aadClientSecret": 12345}"#.to_string(),
                "not valid JSON",
            ),
        ] {
            let s = write(&json);
            let err = select(&s, &none, &q, "myacr.azurecr.io")
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains("hunter2") && !err.contains("12345"), "{err}");
        }

        let mut s = settings();
        s.cloud_config = Some(dir.path().join("missing.json"));
        let err = select(&s, &none, &q, "myacr.azurecr.io")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing.json") && err.contains("acr.cloudConfig"),
            "{err}"
        );
    }
}
