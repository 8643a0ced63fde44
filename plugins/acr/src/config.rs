//! The `acr:` section of the plugin config, and the Azure clouds.
//!
//! [`Config`] mirrors the section as written; [`Config::validate`] checks it without I/O and
//! yields [`Settings`], the only form the backend uses. The node's `azure.json`, which names
//! the node's identity, is read per request by the identity step, not here.

use std::path::PathBuf;

use serde::Deserialize;

use crate::host::{is_dns_name, is_host_port, is_login_server, Mirror};

/// This backend's section of the plugin config file (`acr:`).
///
/// ```yaml
/// acr:
///   cloudConfig: /etc/kubernetes/azure.json   # identity, tenant and cloud of the node
///   mirrors:
///     - source: mcr.microsoft.com              # images named mcr.microsoft.com/...
///       registry: myacr.azurecr.io             # are served by this ACR
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// The node's `azure.json`. When set, its identity settings are used; otherwise the
    /// `AZURE_*` environment variables, and managed identity when those name none.
    pub cloud_config: Option<PathBuf>,
    /// The Azure cloud (`AzurePublicCloud`, `AzureChinaCloud`, `AzureUSGovernmentCloud`),
    /// overriding `azure.json`'s `cloud`. Without either, the cloud follows the login
    /// server's suffix (`azurecr.cn` is China, `azurecr.us` US Government).
    pub cloud: Option<String>,
    /// Registries whose images are served by an ACR.
    #[serde(default)]
    pub mirrors: Vec<MirrorConfig>,
    /// More login-server suffixes, for clouds beyond the four built in
    /// (`azurecr.io`, `.cn`, `.us`, `.de`), e.g. `azurecr.microsoft.scloud`.
    #[serde(default)]
    pub registry_suffixes: Vec<String>,
    /// When the kubelet sends a service-account token (KEP-4412) but the service account's
    /// annotations do not name its identity fully: `true` (the default under this program's
    /// name) lets the node stand in: its identity without a `kubernetes.azure.com/acr-client-id`
    /// annotation, its tenant without `kubernetes.azure.com/acr-tenant-id`, an identity
    /// binding's default client ID for an empty annotation. `false` (the default under
    /// `acr-credential-provider`, as upstream) fails the request naming the annotation.
    pub node_identity_fallback: Option<bool>,
    /// Whether an image reached through a mirror always uses the node's identity, even when
    /// the kubelet sent a service-account token (upstream's rule: mirrors serve the node's
    /// bootstrap images). Default `false`; `true` under the upstream name.
    pub mirrors_use_node_identity: Option<bool>,
    /// AKS identity bindings: the pod's service-account token exchanged at the cluster's
    /// identity-binding endpoint (upstream `--ib-*` flags).
    pub identity_binding: Option<IdentityBindingConfig>,
    /// Endpoint overrides, for tests, proxies and clouds not built in.
    #[serde(default)]
    pub endpoints: Endpoints,
    /// Answering under the upstream name (`acr-credential-provider`): set by the upstream
    /// module's `configure`, never read from the file. The node's identity then
    /// comes from the cloud config alone, as upstream's does (no `AZURE_*` variable names,
    /// completes or relocates it), and the ACR exchange names the cloud config's `tenantId`.
    #[serde(skip)]
    pub as_upstream: bool,
}

/// The identity-binding exchange of AKS (upstream `acr-credential-provider --ib-*`).
///
/// With a service-account token in the request, the token is the client assertion of a
/// `client_credentials` grant (`scope` ACR's, `client_id` from the service account's
/// `kubernetes.azure.com/acr-client-id` annotation or `defaultClientId`) POSTed to
/// `https://<sniName>/`, dialled at `apiServer` (an IP, or a name resolved when needed),
/// the server certificate checked against `caFile` for the name `sniName`, never through a
/// proxy. The answer's `access_token` is then exchanged at ACR as any Entra ID token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IdentityBindingConfig {
    /// The TLS server name of the endpoint (`--ib-sni-name`), no scheme.
    pub sni_name: String,
    /// The client ID when the service account has no annotation (`--ib-default-client-id`).
    pub default_client_id: Option<String>,
    /// The tenant when the service account has no `kubernetes.azure.com/acr-tenant-id`
    /// annotation (`--ib-default-tenant-id`).
    pub default_tenant_id: Option<String>,
    /// The address dialled (`--ib-apiserver-ip`): an IP, or a DNS name resolved when an
    /// exchange is made.
    pub api_server: String,
    /// The CA bundle the endpoint's certificate must chain to; default
    /// [`IB_CA_FILE`].
    pub ca_file: Option<PathBuf>,
    /// The port dialled; default 443, the only one upstream dials.
    pub port: Option<u16>,
}

/// Upstream's CA for the identity-binding endpoint (AKS's cluster CA on the node).
pub const IB_CA_FILE: &str = "/etc/kubernetes/certs/ca.crt";

/// One mirror mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MirrorConfig {
    /// The registry as images name it: `host` or `host:port`, no scheme or path.
    pub source: String,
    /// The ACR login server that serves it (`myacr.azurecr.io`).
    pub registry: String,
}

/// Endpoint overrides.
///
/// The authority host, the registry and the identity-binding endpoint receive a secret (a
/// client secret or assertion, an Entra ID token, the pod's service-account token), so they
/// must be `https://`; plain `http://` is taken here only to a loopback address (`127.0.0.0/8`,
/// `::1`, `localhost`), which never leaves the node: how the tests reach their fake servers.
/// The same URLs from the environment (`AZURE_AUTHORITY_HOST`, `AZURE_ENVIRONMENT_FILEPATH`)
/// must be `https://`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Endpoints {
    /// The IMDS token URL; default
    /// `http://169.254.169.254/metadata/identity/oauth2/token`.
    pub imds: Option<String>,
    /// The Entra ID authority host, e.g. `https://login.microsoftonline.com/`; default from
    /// the cloud (or `AZURE_AUTHORITY_HOST`).
    pub authority_host: Option<String>,
    /// Where registry requests go instead of `https://<login server>`: `scheme://host[:port]`.
    /// The login server stays the `service` and the answer's key. For tests (`http://` to
    /// loopback) and for reaching ACR through a private-link proxy.
    pub registry: Option<String>,
    /// Where the identity-binding exchange goes instead of `https://<sniName>/` dialled at
    /// the API server: a full URL, reached directly (no proxy, system CAs). For tests.
    pub identity_binding: Option<String>,
}

/// AKS's cloud config, used under the upstream name when no file is given.
pub const DEFAULT_CLOUD_CONFIG: &str = "/etc/kubernetes/azure.json";

/// The default IMDS token endpoint.
pub const IMDS_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// A validated section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// See [`Config::cloud_config`].
    pub cloud_config: Option<PathBuf>,
    /// See [`Config::cloud`].
    pub cloud: Option<Cloud>,
    /// See [`Config::mirrors`]; lower-case.
    pub mirrors: Vec<Mirror>,
    /// See [`Config::registry_suffixes`]; lower-case, no leading dot.
    pub registry_suffixes: Vec<String>,
    /// See [`Config::node_identity_fallback`].
    pub node_identity_fallback: bool,
    /// The IMDS token URL.
    pub imds: String,
    /// The authority host override, without trailing `/`.
    pub authority_host: Option<String>,
    /// The registry base URL override, without trailing `/`.
    pub registry_base: Option<BaseUrl>,
    /// See [`Config::mirrors_use_node_identity`].
    pub mirrors_use_node_identity: bool,
    /// See [`Config::identity_binding`], checked.
    pub identity_binding: Option<IdentityBinding>,
    /// See [`Config::as_upstream`].
    pub as_upstream: bool,
}

/// A checked [`IdentityBindingConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityBinding {
    /// The TLS server name.
    pub sni_name: String,
    /// The default client ID.
    pub default_client_id: Option<String>,
    /// The default tenant.
    pub default_tenant_id: Option<String>,
    /// An IP or a DNS name.
    pub api_server: String,
    /// The CA bundle.
    pub ca_file: PathBuf,
    /// The port.
    pub port: u16,
    /// `endpoints.identityBinding`, when set.
    pub endpoint_override: Option<String>,
}

/// `scheme://authority` with nothing after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`, lower-case.
    pub authority: String,
}

impl BaseUrl {
    /// `scheme://authority`.
    pub fn as_url(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// Why the section was refused; the text names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("acr.{field}: {message}")]
pub struct ConfigError {
    /// The field path, e.g. `mirrors[0].registry`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

impl Config {
    /// Checks the section (no I/O) and resolves defaults.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let cloud = match &self.cloud {
            None => None,
            Some(name) => Some(Cloud::parse(name).ok_or_else(|| {
                err(
                    "cloud",
                    format!("unknown cloud {name:?}; known: {}", Cloud::NAMES),
                )
            })?),
        };
        if let Some(p) = &self.cloud_config {
            if p.as_os_str().is_empty() {
                return Err(err("cloudConfig", "empty path"));
            }
        }
        let mut registry_suffixes = Vec::new();
        for (i, s) in self.registry_suffixes.iter().enumerate() {
            let s = s.trim_start_matches('.').to_ascii_lowercase();
            if !is_dns_name(&s) || !s.contains('.') {
                return Err(err(
                    format!("registrySuffixes[{i}]"),
                    format!("{s:?} is not a DNS suffix like azurecr.io"),
                ));
            }
            registry_suffixes.push(s);
        }
        let mut mirrors: Vec<Mirror> = Vec::new();
        for (i, m) in self.mirrors.iter().enumerate() {
            let source = m.source.trim().to_ascii_lowercase();
            if !is_host_port(&source) {
                return Err(err(
                    format!("mirrors[{i}].source"),
                    format!(
                        "{:?} is not a registry host (host or host:port, no scheme or path)",
                        m.source
                    ),
                ));
            }
            let registry = m.registry.trim().to_ascii_lowercase();
            if !is_login_server(&registry, &registry_suffixes) {
                return Err(err(
                    format!("mirrors[{i}].registry"),
                    format!(
                        "{:?} is not an ACR login server (<name>.azurecr.io, .cn, .us, .de or a registrySuffixes entry)",
                        m.registry
                    ),
                ));
            }
            if mirrors.iter().any(|o| o.source == source) {
                return Err(err(
                    format!("mirrors[{i}].source"),
                    format!("{source:?} is mapped twice"),
                ));
            }
            mirrors.push(Mirror { source, registry });
        }
        let imds = match &self.endpoints.imds {
            None => IMDS_URL.to_string(),
            Some(u) => {
                let (scheme, authority, rest) = split_url(u)
                    .ok_or_else(|| err("endpoints.imds", format!("{u:?} is not an http(s) URL")))?;
                if rest.contains(['?', '#']) {
                    return Err(err(
                        "endpoints.imds",
                        "no query or fragment: the backend adds the query",
                    ));
                }
                format!("{scheme}://{authority}{rest}")
            }
        };
        let authority_host = match &self.endpoints.authority_host {
            None => None,
            Some(u) => {
                let field = "endpoints.authorityHost";
                let host = normalize_authority_host(u).ok_or_else(|| {
                    err(field, format!("{u:?} is not an http(s) URL without query"))
                })?;
                let (scheme, authority, _) = split_url(&host).unwrap_or_default();
                check_clear_text(
                    field,
                    u,
                    &scheme,
                    &authority,
                    "the client secret or assertion",
                )?;
                Some(host)
            }
        };
        let registry_base = match &self.endpoints.registry {
            None => None,
            Some(u) => {
                let field = "endpoints.registry";
                let (scheme, authority, rest) = split_url(u)
                    .ok_or_else(|| err(field, format!("{u:?} is not an http(s) URL")))?;
                if !(rest.is_empty() || rest == "/") {
                    return Err(err(field, "only scheme://host[:port], no path"));
                }
                check_clear_text(field, u, &scheme, &authority, "the Entra ID token")?;
                Some(BaseUrl {
                    scheme,
                    authority: authority.to_ascii_lowercase(),
                })
            }
        };
        let identity_binding = match &self.identity_binding {
            None => None,
            Some(ib) => Some(check_identity_binding(
                ib,
                self.endpoints.identity_binding.as_deref(),
            )?),
        };
        Ok(Settings {
            mirrors_use_node_identity: self.mirrors_use_node_identity.unwrap_or(false),
            identity_binding,
            cloud_config: self.cloud_config.clone(),
            cloud,
            mirrors,
            registry_suffixes,
            node_identity_fallback: self.node_identity_fallback.unwrap_or(true),
            imds,
            authority_host,
            registry_base,
            as_upstream: self.as_upstream,
        })
    }
}

fn check_identity_binding(
    ib: &IdentityBindingConfig,
    endpoint: Option<&str>,
) -> Result<IdentityBinding, ConfigError> {
    let sni = ib.sni_name.trim().to_ascii_lowercase();
    if sni.starts_with("http://") || sni.starts_with("https://") {
        return Err(err(
            "identityBinding.sniName",
            "must not contain a scheme (https:// or http://)",
        ));
    }
    if !is_dns_name(&sni) {
        return Err(err(
            "identityBinding.sniName",
            format!("{:?} is not a DNS name", ib.sni_name),
        ));
    }
    let api_server = ib.api_server.trim().to_string();
    if api_server.parse::<std::net::IpAddr>().is_err()
        && !is_dns_name(&api_server.to_ascii_lowercase())
    {
        return Err(err(
            "identityBinding.apiServer",
            format!(
                "{:?} is neither an IP address nor a DNS name",
                ib.api_server
            ),
        ));
    }
    let id = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let endpoint_override = match endpoint {
        None => None,
        Some(u) => {
            let field = "endpoints.identityBinding";
            let (scheme, authority, rest) =
                split_url(u).ok_or_else(|| err(field, format!("{u:?} is not an http(s) URL")))?;
            check_clear_text(
                field,
                u,
                &scheme,
                &authority,
                "the pod's service-account token",
            )?;
            Some(format!(
                "{scheme}://{authority}{}",
                if rest.is_empty() { "/" } else { &rest }
            ))
        }
    };
    Ok(IdentityBinding {
        sni_name: sni,
        default_client_id: id(&ib.default_client_id),
        default_tenant_id: id(&ib.default_tenant_id),
        api_server,
        ca_file: ib.ca_file.clone().unwrap_or_else(|| IB_CA_FILE.into()),
        port: match ib.port {
            Some(0) => return Err(err("identityBinding.port", "0 is not a port")),
            Some(p) => p,
            None => 443,
        },
        endpoint_override,
    })
}

/// Refuses an endpoint `u` (`field` of `acr.endpoints`, split into `scheme` and `authority`)
/// that would carry `what` in clear: plain `http://` is taken only to a loopback address.
fn check_clear_text(
    field: &str,
    u: &str,
    scheme: &str,
    authority: &str,
    what: &str,
) -> Result<(), ConfigError> {
    if scheme == "https" || is_loopback(authority) {
        return Ok(());
    }
    Err(err(
        field,
        format!("{u:?} would receive {what} in clear: use https:// (http:// only to a loopback address, as for tests)"),
    ))
}

/// Whether the host of `authority` (`host[:port]`, `[v6][:port]`) is a loopback address or
/// `localhost`.
pub(crate) fn is_loopback(authority: &str) -> bool {
    let host = authority
        .strip_prefix('[')
        .and_then(|a| a.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| authority.rsplit_once(':').map_or(authority, |(h, _)| h));
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://authority/rest` → parts, scheme http or https (lower-cased), authority a
/// `host[:port]` without user info.
pub fn split_url(u: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = u.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority
        .strip_prefix('[')
        .and_then(|a| a.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| authority.rsplit_once(':').map_or(authority, |(h, _)| h));
    if authority.is_empty() || authority.contains('@') || host.is_empty() {
        return None;
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
    {
        if !port.bytes().all(|b| b.is_ascii_digit()) || port.is_empty() {
            return None;
        }
    }
    Some((scheme, authority.to_string(), path.to_string()))
}

/// An authority host URL without query and without trailing `/`.
pub fn normalize_authority_host(u: &str) -> Option<String> {
    let (scheme, authority, rest) = split_url(u)?;
    if rest.contains(['?', '#']) {
        return None;
    }
    Some(format!(
        "{scheme}://{authority}{}",
        rest.trim_end_matches('/')
    ))
}

/// The Azure clouds this backend knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// `AzurePublicCloud`.
    Public,
    /// `AzureChinaCloud` (21Vianet).
    China,
    /// `AzureUSGovernmentCloud`.
    UsGovernment,
    /// `AzureGermanCloud` (retired; kept for its `azurecr.de` registries).
    Germany,
}

impl Cloud {
    const NAMES: &'static str =
        "AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud, AzureGermanCloud";

    /// Parses a cloud name as `azure.json` and the Azure SDKs spell it (case-insensitive).
    pub fn parse(name: &str) -> Option<Cloud> {
        match name.trim().to_ascii_lowercase().as_str() {
            "azurepubliccloud" | "azurecloud" | "public" => Some(Cloud::Public),
            "azurechinacloud" | "china" => Some(Cloud::China),
            "azureusgovernmentcloud" | "azureusgovernment" | "usgovernment" => {
                Some(Cloud::UsGovernment)
            }
            "azuregermancloud" | "germany" => Some(Cloud::Germany),
            _ => None,
        }
    }

    /// The cloud a login server belongs to, by suffix; `None` for configured extra suffixes.
    pub fn of_login_server(host: &str) -> Option<Cloud> {
        let host = host.to_ascii_lowercase();
        [
            Cloud::Public,
            Cloud::China,
            Cloud::UsGovernment,
            Cloud::Germany,
        ]
        .into_iter()
        .find(|c| host.ends_with(&format!(".{}", c.registry_suffix())))
    }

    /// The Entra ID authority host, without trailing `/`.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::China => "https://login.chinacloudapi.cn",
            Cloud::UsGovernment => "https://login.microsoftonline.us",
            Cloud::Germany => "https://login.microsoftonline.de",
        }
    }

    /// The ACR login-server suffix.
    pub fn registry_suffix(self) -> &'static str {
        match self {
            Cloud::Public => "azurecr.io",
            Cloud::China => "azurecr.cn",
            Cloud::UsGovernment => "azurecr.us",
            Cloud::Germany => "azurecr.de",
        }
    }

    /// The name `azure.json` uses.
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "AzurePublicCloud",
            Cloud::China => "AzureChinaCloud",
            Cloud::UsGovernment => "AzureUSGovernmentCloud",
            Cloud::Germany => "AzureGermanCloud",
        }
    }
}

#[cfg(test)]
mod tests;
