//! `acr-credential-provider` (kubernetes-sigs/cloud-provider-azure
//! `cmd/acr-credential-provider` + `pkg/credentialprovider`): its command line and
//! environment, and what this backend does with them.
//!
//! Upstream is `acr-credential-provider <cloud-config-file> [flags]`, a cobra command with
//! `-r/--registry-mirror`, the identity-binding flags `--ib-sni-name`,
//! `--ib-default-client-id`, `--ib-default-tenant-id`, `--ib-apiserver-ip`, `--version`,
//! `--help`, and the flags component-base's `logs.AddFlags` registers (`-v`/`--v`,
//! `--vmodule`, `--log-flush-frequency`). Under its name:
//!
//! * the positional file is `acr.cloudConfig` (JSON or YAML, read again for every image);
//!   without one, `/etc/kubernetes/azure.json` when it exists (upstream requires the
//!   argument; that is AKS's path), else an ACR image fails naming the argument;
//! * the node's identity comes from that file alone, as upstream's ([`Config::as_upstream`]):
//!   the `AZURE_*` identity variables and `AZURE_AUTHORITY_HOST`, which upstream never reads
//!   on this path, are ignored with a warning line; the ACR exchange names the file's
//!   `tenantId`, as upstream's;
//! * a pod's service-account token needs both `kubernetes.azure.com/acr-client-id` and
//!   `kubernetes.azure.com/acr-tenant-id`, as upstream (`acr.nodeIdentityFallback` is off);
//! * `--registry-mirror=<source>:<acr>[,...]` adds `acr.mirrors`; a source may carry a port
//!   (`mirror.local:5000:myacr.azurecr.io`: the last `:` separates the ACR), which upstream
//!   cannot express; the source must equal the image's registry (upstream tests a string
//!   prefix, so `mcr.microsoft.com.evil.example` matched too); a malformed entry is an
//!   error here (upstream logs and skips it). A mirrored image uses the node's identity
//!   even with a service-account token, as upstream (`acr.mirrorsUseNodeIdentity`);
//! * `--ib-*` set `acr.identityBinding`, cross-checked as upstream does; the exchange is in
//!   [`crate::identity::binding`]. `--ib-default-tenant-id` is checked and, as upstream,
//!   used nowhere. A request without a service-account token uses the node's identity
//!   (upstream fails it);
//! * `AZURE_ENVIRONMENT_FILEPATH` (Azure Stack and AKS custom clouds, `cloud:
//!   AzureStackCloud`): its `activeDirectoryEndpoint` is the Entra ID authority and its
//!   `containerRegistryDNSSuffix` one more login-server suffix, read on every invocation;
//! * Azure Arc's managed identity (`IDENTITY_ENDPOINT` with `IMDS_ENDPOINT`, or the agent's
//!   `himds` binary) is used as upstream's SDK uses it ([`crate::identity::arc`]).
//!
//! What stays this backend's: a service principal's secret is exchanged for an ACR refresh
//! token instead of being handed to the runtime, and the answer carries the image's registry
//! (and the ACR) rather than wildcard keys, beside upstream's anonymous `*.azurecr.*` entry.
//! An image that is neither ACR's nor a mirror's gets an empty answer with exit 0, as
//! upstream. [`PLUGIN`]'s `differences` lists every difference and its reason.
//!
//! The table's rows named `azure.json <field>` are fields of the cloud config that upstream's
//! credential provider reads or ignores, not variables.
//!
//! A plugin config file (`KUBELET_KEYRING_CONFIG`) that sets a field wins over the flag.

use std::path::{Path, PathBuf};

use keyring_api::upstream::{self, EnvVar, Fate, Flag, Parsed, Plugin, Positionals, Takes};
use keyring_api::BackendError;

pub use crate::config::DEFAULT_CLOUD_CONFIG;
use crate::config::{split_url, Config, IdentityBindingConfig, MirrorConfig};
use crate::host::{is_dns_name, is_host_port, is_login_server};

/// Largest environment file read; a larger one is refused, not cut.
const MAX_ENV_FILE: u64 = 1 << 20;

const FLAGS: &[Flag] = &[
    Flag {
        long: "registry-mirror",
        short: Some('r'),
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "comma-separated <source>[:<port>]:<acr login server> pairs (acr.mirrors); images of the source get the ACR's credentials, with the node's identity",
        source: "cmd/acr-credential-provider/main.go",
    },
    Flag {
        long: "ib-sni-name",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "identity bindings: the TLS name of the API server's token endpoint; pods' service-account tokens are exchanged there (acr.identityBinding.sniName)",
        source: "cmd/acr-credential-provider/main.go",
    },
    Flag {
        long: "ib-default-client-id",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "identity bindings: the client ID when the service account has no kubernetes.azure.com/acr-client-id annotation",
        source: "cmd/acr-credential-provider/main.go",
    },
    Flag {
        long: "ib-default-tenant-id",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "identity bindings: accepted and checked (it needs --ib-sni-name), and, as upstream, used nowhere: the ACR exchange names the cloud config's tenantId",
        source: "cmd/acr-credential-provider/main.go",
    },
    Flag {
        long: "ib-apiserver-ip",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "identity bindings: the address the endpoint is dialled at, an IP or a DNS name (resolved when an exchange is made)",
        source: "cmd/acr-credential-provider/main.go",
    },
    Flag {
        long: "version",
        short: None,
        takes: Takes::Bool,
        fate: Fate::Honoured,
        note: "prints the version and exits (-v is klog's verbosity, as upstream)",
        source: "cmd/acr-credential-provider/main.go",
    },
    upstream::help("cmd/acr-credential-provider/main.go"),
];

/// The note of the `AZURE_*` identity variables upstream's credential provider never reads.
const NOT_READ: &str = "not read, as upstream's credential provider reads none of the AZURE_* identity variables: the node's identity comes from the cloud config alone (under kubelet-keyring's own name they name the identity when there is no cloud config)";

const ENV: &[EnvVar] = &[
    EnvVar {
        name: "AZURE_ENVIRONMENT_FILEPATH",
        fate: Fate::Honoured,
        note: "the cloud's environment file (cloud AzureStackCloud): activeDirectoryEndpoint (https:// only) is the Entra ID authority, containerRegistryDNSSuffix one more ACR suffix",
        source: "vendor/sigs.k8s.io/cloud-provider-azure/pkg/azclient/cloud.go",
    },
    EnvVar {
        name: "AZURE_AUTHORITY_HOST",
        fate: Fate::Warned,
        note: "not used, as upstream's SDK never uses it once the cloud config names a cloud (azclient always does): the authority comes from the cloud config's cloud or AZURE_ENVIRONMENT_FILEPATH",
        source: "vendor/github.com/Azure/azure-sdk-for-go/sdk/azidentity/azidentity.go",
    },
    EnvVar {
        name: "AZURE_CLIENT_ID",
        fate: Fate::Warned,
        note: NOT_READ,
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "AZURE_TENANT_ID",
        fate: Fate::Warned,
        note: NOT_READ,
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "AZURE_CLIENT_SECRET",
        fate: Fate::Warned,
        note: NOT_READ,
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "AZURE_CLIENT_CERTIFICATE_PATH",
        fate: Fate::Warned,
        note: NOT_READ,
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "AZURE_FEDERATED_TOKEN_FILE",
        fate: Fate::Warned,
        note: NOT_READ,
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "IDENTITY_ENDPOINT",
        fate: Fate::Honoured,
        note: "Azure Arc: with IMDS_ENDPOINT (or the agent's /opt/azcmagent/bin/himds), the agent's managed-identity endpoint, which names a key file in /var/opt/azcmagent/tokens to prove the caller; https://, or http:// to a loopback address only (the key travels in it). With IDENTITY_HEADER (App Service, Service Fabric) a managed identity is refused: exit 2 naming both",
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "IMDS_ENDPOINT",
        fate: Fate::Honoured,
        note: "with IDENTITY_ENDPOINT marks Azure Arc; its value is not used, as upstream",
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "MSI_ENDPOINT",
        fate: Fate::Refused,
        note: "Cloud Shell's (with MSI_SECRET, Azure Machine Learning's) managed identity is not supported on a node: unset it; use IMDS, Azure Arc or a service principal in the cloud config",
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "IDENTITY_HEADER",
        fate: Fate::Warned,
        note: "alone it has no effect, as upstream; with IDENTITY_ENDPOINT it marks App Service's or Service Fabric's managed identity, which is refused (exit 2) when the cloud config asks for a managed identity",
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "MSI_SECRET",
        fate: Fate::Warned,
        note: "only used with MSI_ENDPOINT (Azure Machine Learning), which is refused",
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "IDENTITY_SERVER_THUMBPRINT",
        fate: Fate::Warned,
        note: "only used with IDENTITY_ENDPOINT and IDENTITY_HEADER (Service Fabric), which are refused",
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "AZURE_REGIONAL_AUTHORITY_NAME",
        fate: Fate::Warned,
        note: "Entra ID's regional endpoints are not used; the global one issues the same tokens",
        source: "vendor/github.com/Azure/azure-sdk-for-go/sdk/azidentity/azidentity.go",
    },
    EnvVar {
        name: "AZURE_SDK_GO_LOGGING",
        fate: Fate::Warned,
        note: "the Go SDK's logging; use --v",
        source: "vendor/github.com/Azure/azure-sdk-for-go/sdk/internal/log/log.go",
    },
    EnvVar {
        name: "HTTPS_PROXY",
        fate: Fate::Honoured,
        note: "proxy for Entra ID and ACR, with NO_PROXY (either case); IMDS, the Azure Arc agent and the identity-binding endpoint are always direct",
        source: "vendor/github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime/transport_default_http_client.go (net/http ProxyFromEnvironment)",
    },
    EnvVar {
        name: "azure.json resourceManagerEndpoint",
        fate: Fate::Refused,
        note: "a cloud whose endpoints upstream discovers from ARM metadata (Azure Stack Hub, custom clouds): ACR images fail with exit 2 naming it, unless AZURE_ENVIRONMENT_FILEPATH or acr.endpoints.authorityHost gives the authority (and acr.registrySuffixes the suffix); the built-in clouds' ARM endpoints are taken as those clouds",
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "azure.json cloudConfigType",
        fate: Fate::Honoured,
        note: "read and without effect, as upstream (the plugin has no Kubernetes client: the file is all there is); a value that is not a string fails the file, as upstream",
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "azure.json aadClientCertPath",
        fate: Fate::Honoured,
        note: "upstream ignores it and hands the runtime aadClientId with an empty secret; here the certificate (PEM with its key) signs the assertion of aadClientId, the same application, for an ACR refresh token",
        source: "pkg/credentialprovider/azure_credentials.go",
    },
    EnvVar {
        name: "azure.json useFederatedWorkloadIdentityExtension",
        fate: Fate::Honoured,
        note: "upstream ignores it (and aadFederatedTokenFile) and hands the runtime aadClientId with the secret; here the token in aadFederatedTokenFile is the assertion of aadClientId, the same application (AZURE_FEDERATED_TOKEN_FILE is not read)",
        source: "pkg/credentialprovider/azure_credentials.go",
    },
];

/// `acr-credential-provider`.
pub static PLUGIN: Plugin = Plugin {
    backend: crate::NAME,
    names: &["acr-credential-provider"],
    flags: FLAGS,
    klog: upstream::Klog::ComponentBase("cmd/acr-credential-provider/main.go"),
    env: ENV,
    positionals: Positionals::OneFile,
    differences: &[
        "tokens are cached on disk and shared by every invocation on the node",
        "a service principal's secret is exchanged for an ACR refresh token, never handed to the container runtime",
        "a --registry-mirror source must equal the image's registry exactly (upstream's prefix test also matched longer hosts) and may carry a port; a malformed entry exits 2 instead of being skipped",
        "an --ib-apiserver-ip FQDN is resolved when an exchange is made, not at every start; a request without a service-account token uses the node identity instead of failing",
        "an image that is neither an ACR nor a mirror gets empty auth cached for 5 minutes (upstream: 0s)",
        "a service-account token whose acr-client-id or acr-tenant-id annotation is missing or empty fails ACR images with exit 2 (a misconfiguration), where upstream exits 1 for every image the kubelet sends, even one it then answers empty",
        "with a service principal in the cloud config, an annotated pod's service-account token gets that pod's own credentials (upstream checks the annotations, then hands every pod the node's secret): the pod's identity is what its annotations ask for, and the node's secret never reaches the runtime",
        "aadClientCertPath and useFederatedWorkloadIdentityExtension in the cloud config authenticate aadClientId (upstream ignores them and hands the runtime aadClientId with an unusable secret)",
        "a cloud config resourceManagerEndpoint other than a built-in cloud's is not fetched (Azure Stack Hub, custom clouds): ACR images fail with exit 2 naming it unless AZURE_ENVIRONMENT_FILEPATH or acr.endpoints.authorityHost names the authority, and a registry suffix only ARM metadata names needs acr.registrySuffixes",
        "cloud AzureStackCloud without AZURE_ENVIRONMENT_FILEPATH, or a cloud name this build does not know, fails with exit 2 naming it (upstream silently takes the public cloud and sends a service principal's secret there)",
        "Azure Arc's IDENTITY_ENDPOINT must be https:// or http:// to a loopback address, since the agent's key travels in it (upstream's SDK sends it anywhere); App Service, Service Fabric, Cloud Shell and Azure Machine Learning managed identities are refused with exit 2",
        "without the cloud-config argument /etc/kubernetes/azure.json is read when it exists (upstream exits 1 at start)",
    ],
};

/// Applies an upstream command line and environment to the `acr:` section; `as_upstream`:
/// run under the upstream name, whose defaults then apply where the plugin config file did
/// not set the field. `env` reads a variable (the process environment in the binary).
pub fn configure(
    config: &mut Config,
    parsed: &Parsed,
    as_upstream: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), BackendError> {
    configure_with(config, parsed, as_upstream, env, &|p: &Path| p.is_file())
}

/// [`configure`] with `exists` deciding whether the default cloud config is there.
pub fn configure_with(
    config: &mut Config,
    parsed: &Parsed,
    as_upstream: bool,
    env: &dyn Fn(&str) -> Option<String>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<(), BackendError> {
    let file = match parsed.positionals.first() {
        Some(p) => Some(PathBuf::from(p)),
        None if as_upstream => {
            Some(PathBuf::from(DEFAULT_CLOUD_CONFIG)).filter(|p| exists(p.as_path()))
        }
        None => None,
    };
    if let Some(file) = file {
        config.cloud_config.get_or_insert(file);
    }
    if let Some(path) = env("AZURE_ENVIRONMENT_FILEPATH").filter(|v| !v.is_empty()) {
        apply_environment_file(config, Path::new(&path))?;
    }
    if let Some(value) = parsed.value("registry-mirror") {
        for m in parse_mirrors(value, &config.registry_suffixes)? {
            if !config
                .mirrors
                .iter()
                .any(|c| c.source.eq_ignore_ascii_case(&m.source))
            {
                config.mirrors.push(m);
            }
        }
    }
    if as_upstream {
        config.mirrors_use_node_identity.get_or_insert(true);
        config.node_identity_fallback.get_or_insert(false);
        config.as_upstream = true;
    }
    if let Some(ib) = identity_binding(parsed)? {
        config.identity_binding.get_or_insert(ib);
    }
    Ok(())
}

/// `--registry-mirror`: `<source>:<acr>` pairs separated by `,`, spaces ignored, as
/// upstream; the ACR is after the last `:`, so the source may carry a port.
pub fn parse_mirrors(value: &str, suffixes: &[String]) -> Result<Vec<MirrorConfig>, BackendError> {
    let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    for pair in value.split(',').filter(|p| !p.is_empty()) {
        let shown: String = pair.chars().take(80).collect();
        let bad = |why: &str| {
            BackendError::misconfigured(crate::NAME, format!(
                "--registry-mirror entry {shown:?}: {why}; expected <source host>[:<port>]:<acr login server>, e.g. mcr.microsoft.com:myacr.azurecr.io"
            ))
        };
        let (source, registry) = pair
            .rsplit_once(':')
            .ok_or_else(|| bad("no ':' between the source and the ACR"))?;
        let source = source.to_ascii_lowercase();
        let registry = registry.to_ascii_lowercase();
        if !is_host_port(&source) {
            return Err(bad("the source is not a host or host:port"));
        }
        if !is_login_server(&registry, suffixes) {
            return Err(bad("the target is not an ACR login server"));
        }
        if out.iter().any(|m: &MirrorConfig| m.source == source) {
            return Err(bad("the source is mapped twice"));
        }
        out.push(MirrorConfig { source, registry });
    }
    Ok(out)
}

/// The `--ib-*` flags, checked as upstream's `ParseIdentityBindingsConfig` does (except
/// that a name given as `--ib-apiserver-ip` is resolved when used, not at start).
fn identity_binding(parsed: &Parsed) -> Result<Option<IdentityBindingConfig>, BackendError> {
    let get = |f: &str| parsed.value(f).map(str::trim).filter(|v| !v.is_empty());
    let sni = get("ib-sni-name");
    let client = get("ib-default-client-id");
    let tenant = get("ib-default-tenant-id");
    let ip = get("ib-apiserver-ip");
    let needs_sni = |flag: &str| {
        BackendError::misconfigured(
            crate::NAME,
            format!("--ib-sni-name must be set when --{flag} is provided"),
        )
    };
    let Some(sni) = sni else {
        return match (client, tenant, ip) {
            (Some(_), _, _) => Err(needs_sni("ib-default-client-id")),
            (_, Some(_), _) => Err(needs_sni("ib-default-tenant-id")),
            (_, _, Some(_)) => Err(needs_sni("ib-apiserver-ip")),
            _ => Ok(None),
        };
    };
    if sni.starts_with("https://") || sni.starts_with("http://") {
        return Err(BackendError::misconfigured(
            crate::NAME,
            "--ib-sni-name must not contain a protocol prefix (https:// or http://)",
        ));
    }
    if !is_dns_name(&sni.to_ascii_lowercase()) {
        return Err(BackendError::misconfigured(
            crate::NAME,
            "--ib-sni-name is not a DNS name",
        ));
    }
    let Some(ip) = ip else {
        return Err(BackendError::misconfigured(
            crate::NAME,
            "--ib-apiserver-ip must be set when --ib-sni-name is provided",
        ));
    };
    if ip.parse::<std::net::IpAddr>().is_err() && !is_dns_name(&ip.to_ascii_lowercase()) {
        return Err(BackendError::misconfigured(
            crate::NAME,
            "--ib-apiserver-ip must be a valid IP address or resolvable FQDN",
        ));
    }
    Ok(Some(IdentityBindingConfig {
        sni_name: sni.to_string(),
        default_client_id: client.map(String::from),
        default_tenant_id: tenant.map(String::from),
        api_server: ip.to_string(),
        ca_file: None,
        port: None,
    }))
}

/// Reads the `AZURE_ENVIRONMENT_FILEPATH` file (go-autorest's `Environment` JSON) into the
/// section: the authority host and the registry suffix, where the section set neither.
fn apply_environment_file(config: &mut Config, path: &Path) -> Result<(), BackendError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Environment {
        #[serde(default)]
        active_directory_endpoint: String,
        #[serde(default, rename = "containerRegistryDNSSuffix")]
        container_registry_dns_suffix: String,
    }
    let bytes = keyring_api::file::read(path, MAX_ENV_FILE).map_err(|e| {
        BackendError::misconfigured(
            crate::NAME,
            format!(
                "cannot read AZURE_ENVIRONMENT_FILEPATH {}: {e}",
                path.display()
            ),
        )
    })?;
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let env: Environment = serde_json::from_slice(bytes).map_err(|e| {
        BackendError::misconfigured(
            crate::NAME,
            format!(
                "AZURE_ENVIRONMENT_FILEPATH {}: not valid JSON at line {} column {}",
                path.display(),
                e.line(),
                e.column()
            ),
        )
    })?;
    let authority = env.active_directory_endpoint.trim();
    if !authority.is_empty() && config.endpoints.authority_host.is_none() {
        // Entra ID receives the client secret or assertion there: never in clear.
        if split_url(authority).is_none_or(|(scheme, _, _)| scheme != "https") {
            return Err(BackendError::misconfigured(
                crate::NAME,
                format!(
                    "AZURE_ENVIRONMENT_FILEPATH {}: activeDirectoryEndpoint is not an https:// URL; Entra ID receives the client secret or assertion there",
                    path.display()
                ),
            ));
        }
        config.endpoints.authority_host = Some(authority.to_string());
    }
    let suffix = env
        .container_registry_dns_suffix
        .trim()
        .trim_start_matches('.')
        .to_ascii_lowercase();
    if !suffix.is_empty()
        && !config
            .registry_suffixes
            .iter()
            .any(|s| s.trim_start_matches('.').eq_ignore_ascii_case(&suffix))
    {
        config.registry_suffixes.push(suffix);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
