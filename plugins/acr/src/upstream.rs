//! `acr-credential-provider` (kubernetes-sigs/cloud-provider-azure
//! `cmd/acr-credential-provider` + `pkg/credentialprovider`): its command line and
//! environment, and what this backend does with them.
//!
//! Upstream is `acr-credential-provider <cloud-config-file> [flags]`, a cobra command with
//! `-r/--registry-mirror`, the identity-binding flags `--ib-sni-name`,
//! `--ib-default-client-id`, `--ib-default-tenant-id`, `--ib-apiserver-ip`, `--version`,
//! `--help`, and the flags component-base's `logs.AddFlags` registers (klog's, with
//! underscores, `-v` among them, and `--log-flush-frequency`). Under its name:
//!
//! * the positional file is `acr.cloudConfig` (JSON or YAML, read again for every image);
//!   without one, `/etc/kubernetes/azure.json` when it exists (upstream requires the
//!   argument; that is AKS's path);
//! * `--registry-mirror=<source>:<acr>[,...]` adds `acr.mirrors`; a source may carry a port
//!   (`mirror.local:5000:myacr.azurecr.io`: the last `:` separates the ACR), which upstream
//!   cannot express; the source must equal the image's registry (upstream tests a string
//!   prefix, so `mcr.microsoft.com.evil.example` matched too); a malformed entry is an
//!   error here (upstream logs and skips it). A mirrored image uses the node's identity
//!   even with a service-account token, as upstream (`acr.mirrorsUseNodeIdentity`);
//! * `--ib-*` set `acr.identityBinding`, cross-checked as upstream does; the exchange is in
//!   [`crate::binding`]. A request without a service-account token uses the node's
//!   identity (upstream fails it);
//! * `AZURE_ENVIRONMENT_FILEPATH` (Azure Stack and AKS custom clouds, `cloud:
//!   AzureStackCloud`): its `activeDirectoryEndpoint` is the Entra ID authority and its
//!   `containerRegistryDNSSuffix` one more login-server suffix, read on every invocation.
//!
//! What stays this backend's: a service principal's secret is exchanged for an ACR refresh
//! token instead of being handed to the runtime, and the answer carries the image's registry
//! (and the ACR) rather than wildcard keys. An image that is neither ACR's nor a mirror's
//! gets an empty answer with exit 0, as upstream.
//!
//! A plugin config file (`KUBELET_KEYRING_CONFIG`) that sets a field wins over the flag.

use std::path::{Path, PathBuf};

use keyring_api::upstream::{self, EnvVar, Fate, Flag, Parsed, Plugin, Positionals, Takes};
use keyring_api::BackendError;

use crate::config::{Config, IdentityBindingConfig, MirrorConfig};
use crate::host::{is_dns_name, is_host_port, is_login_server};

/// AKS's cloud config, used under the upstream name when no file is given.
pub const DEFAULT_CLOUD_CONFIG: &str = "/etc/kubernetes/azure.json";
/// Largest environment file read.
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
        note: "identity bindings: the tenant when the service account has no kubernetes.azure.com/acr-tenant-id annotation; as upstream the exchange names the node's tenant (azure.json) and this only when that has none",
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

const OTHER_MI: &str = "a managed-identity endpoint other than IMDS (App Service, Azure Arc, Cloud Shell, Service Fabric) is not supported: use IMDS or a service principal in the cloud config";
const ONLY_WITH: &str =
    "only used together with IDENTITY_ENDPOINT or MSI_ENDPOINT, which are refused when set";

const ENV: &[EnvVar] = &[
    EnvVar {
        name: "AZURE_ENVIRONMENT_FILEPATH",
        fate: Fate::Honoured,
        note: "the cloud's environment file (cloud AzureStackCloud): activeDirectoryEndpoint is the Entra ID authority, containerRegistryDNSSuffix one more ACR suffix",
        source: "vendor/sigs.k8s.io/cloud-provider-azure/pkg/azclient/cloud.go",
    },
    EnvVar {
        name: "AZURE_AUTHORITY_HOST",
        fate: Fate::Honoured,
        note: "the Entra ID authority host; here it also wins over the cloud config's cloud",
        source: "vendor/github.com/Azure/azure-sdk-for-go/sdk/azidentity/azidentity.go",
    },
    EnvVar {
        name: "IDENTITY_ENDPOINT",
        fate: Fate::Refused,
        note: OTHER_MI,
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "MSI_ENDPOINT",
        fate: Fate::Refused,
        note: OTHER_MI,
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "IDENTITY_HEADER",
        fate: Fate::Warned,
        note: ONLY_WITH,
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "IMDS_ENDPOINT",
        fate: Fate::Warned,
        note: ONLY_WITH,
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "MSI_SECRET",
        fate: Fate::Warned,
        note: ONLY_WITH,
        source: "vendor/github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity/managedidentity.go",
    },
    EnvVar {
        name: "IDENTITY_SERVER_THUMBPRINT",
        fate: Fate::Warned,
        note: ONLY_WITH,
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
        note: "proxy for Entra ID and ACR, with NO_PROXY (either case); IMDS and the identity-binding endpoint are always direct",
        source: "vendor/github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime/transport_default_http_client.go (net/http ProxyFromEnvironment)",
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
    use std::io::Read;
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Environment {
        #[serde(default)]
        active_directory_endpoint: String,
        #[serde(default, rename = "containerRegistryDNSSuffix")]
        container_registry_dns_suffix: String,
    }
    let mut bytes = Vec::new();
    keyring_api::file::open(path)
        .and_then(|f| f.take(MAX_ENV_FILE).read_to_end(&mut bytes))
        .map_err(|e| {
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
mod tests {
    use super::*;
    use keyring_api::upstream::parse;
    use keyring_api::ErrorKind;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn run_with(
        a: &[&str],
        env: &[(&str, &str)],
        as_upstream: bool,
        default_exists: bool,
    ) -> Result<Config, String> {
        let parsed = parse(&PLUGIN, &args(a)).map_err(|e| e.message)?;
        let mut config = Config::default();
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        configure_with(&mut config, &parsed, as_upstream, &env, &|_| default_exists)
            .map_err(|e| e.message)?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    fn run(a: &[&str]) -> Result<Config, String> {
        run_with(a, &[], true, false)
    }

    fn mirror(source: &str, registry: &str) -> MirrorConfig {
        MirrorConfig {
            source: source.into(),
            registry: registry.into(),
        }
    }

    #[test]
    fn every_shipped_args_line_parses() {
        // AKS AgentBaker (all variants), the upstream examples and docs, OpenShift.
        let lines: &[&[&str]] = &[
            &["/etc/kubernetes/azure.json"],
            &["c:\\k\\azure.json"],
            &["/etc/kubernetes/cloud.conf"],
            &[
                "/etc/kubernetes/azure.json",
                "--registry-mirror=mcr.microsoft.com:xxx.azurecr.io",
            ],
            &[
                "/etc/kubernetes/azure.json",
                "--registry-mirror=mcr.microsoft.com:test.azurecr.io",
                "--ib-sni-name=test.sni.local",
                "--ib-default-client-id=my-client-id",
                "--ib-default-tenant-id=my-tenant-id",
                "--ib-apiserver-ip=apiserver.example.com",
            ],
        ];
        for line in lines {
            let c = run(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(c.cloud_config.as_deref(), Some(Path::new(line[0])));
            assert_eq!(c.mirrors_use_node_identity, Some(true));
        }
        let c = run(lines[4]).unwrap();
        assert_eq!(c.mirrors, [mirror("mcr.microsoft.com", "test.azurecr.io")]);
        let ib = c.identity_binding.unwrap();
        assert_eq!(ib.sni_name, "test.sni.local");
        assert_eq!(ib.default_client_id.as_deref(), Some("my-client-id"));
        assert_eq!(ib.default_tenant_id.as_deref(), Some("my-tenant-id"));
        assert_eq!(ib.api_server, "apiserver.example.com");
    }

    #[test]
    fn go_spellings_and_logging_flags() {
        let c = run(&[
            "-r",
            "mcr.microsoft.com:a.azurecr.io",
            "/etc/kubernetes/azure.json",
            "-v",
            "4",
            "--logtostderr=false",
            "--log-flush-frequency=5s",
        ])
        .unwrap();
        assert_eq!(c.mirrors, [mirror("mcr.microsoft.com", "a.azurecr.io")]);
        let p = parse(&PLUGIN, &args(&["x.json", "-v", "4", "--version"])).unwrap();
        assert_eq!(p.value("v"), Some("4"));
        assert!(p.is_set("version"));
        assert_eq!(
            parse(&PLUGIN, &args(&["a.json", "b.json"]))
                .unwrap_err()
                .kind,
            ErrorKind::Misconfigured
        );
        assert!(parse(&PLUGIN, &args(&["--ib-sni"]))
            .unwrap_err()
            .message
            .contains("unknown flag --ib-sni"));
    }

    #[test]
    fn mirrors_with_ports_and_errors() {
        let none: &[String] = &[];
        let m = parse_mirrors(
            " MCR.microsoft.com:MyAcr.azurecr.io , mirror.local:5000:foo.azurecr.io,,",
            none,
        )
        .unwrap();
        assert_eq!(
            m,
            [
                mirror("mcr.microsoft.com", "myacr.azurecr.io"),
                mirror("mirror.local:5000", "foo.azurecr.io"),
            ]
        );
        for (bad, why) in [
            ("mcr.microsoft.com", "no ':'"),
            ("mirror.local:5000", "not an ACR login server"),
            ("https://mcr.microsoft.com:a.azurecr.io", "not a host"),
            ("mcr.microsoft.com/x:a.azurecr.io", "not a host"),
            (
                "mcr.microsoft.com:evil.example.com",
                "not an ACR login server",
            ),
            ("a.io:x.azurecr.io,A.io:y.azurecr.io", "mapped twice"),
            ("mirror.local:99999:a.azurecr.io", "not a host"),
        ] {
            let e = parse_mirrors(bad, none).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Misconfigured);
            assert!(
                e.message.contains(why) && e.message.contains("--registry-mirror"),
                "{bad}: {}",
                e.message
            );
        }
        // A suffix of a custom cloud makes its registries ACRs.
        let custom = ["custom.registry.io".to_string()];
        assert!(parse_mirrors("mcr.microsoft.com:x.custom.registry.io", &custom).is_ok());
        // The plugin config's own mapping of a source wins.
        let parsed = parse(
            &PLUGIN,
            &args(&["--registry-mirror=mcr.microsoft.com:b.azurecr.io,q.io:c.azurecr.io"]),
        )
        .unwrap();
        let mut c = Config {
            mirrors: vec![mirror("mcr.microsoft.com", "a.azurecr.io")],
            ..Config::default()
        };
        configure_with(&mut c, &parsed, true, &|_| None, &|_| false).unwrap();
        assert_eq!(
            c.mirrors,
            [
                mirror("mcr.microsoft.com", "a.azurecr.io"),
                mirror("q.io", "c.azurecr.io")
            ]
        );
    }

    #[test]
    fn identity_binding_flags_are_checked_as_upstream() {
        let base = "/etc/kubernetes/azure.json";
        for (line, want) in [
            (
                &[
                    "--ib-sni-name=https://x.local",
                    "--ib-apiserver-ip=10.0.0.1",
                ][..],
                "must not contain a protocol prefix",
            ),
            (
                &["--ib-sni-name=x.local"],
                "--ib-apiserver-ip must be set when --ib-sni-name",
            ),
            (
                &["--ib-default-client-id=c"],
                "--ib-sni-name must be set when --ib-default-client-id",
            ),
            (
                &["--ib-default-tenant-id=t"],
                "--ib-sni-name must be set when --ib-default-tenant-id",
            ),
            (
                &["--ib-apiserver-ip=10.0.0.1"],
                "--ib-sni-name must be set when --ib-apiserver-ip",
            ),
            (
                &["--ib-sni-name=x.local", "--ib-apiserver-ip=not an ip"],
                "valid IP address or resolvable FQDN",
            ),
        ] {
            let mut a = vec![base];
            a.extend_from_slice(line);
            let e = run(&a).unwrap_err();
            assert!(e.contains(want), "{line:?}: {e}");
        }
        let c = run(&[base, "--ib-sni-name=x.local", "--ib-apiserver-ip=10.0.0.1"]).unwrap();
        let ib = c.identity_binding.unwrap();
        assert_eq!((ib.default_client_id, ib.default_tenant_id), (None, None));
        assert!(run(&[base]).unwrap().identity_binding.is_none());
    }

    #[test]
    fn cloud_config_default_only_under_the_upstream_name_and_when_present() {
        assert_eq!(
            run_with(&[], &[], true, true)
                .unwrap()
                .cloud_config
                .as_deref(),
            Some(Path::new(DEFAULT_CLOUD_CONFIG))
        );
        assert_eq!(run_with(&[], &[], true, false).unwrap().cloud_config, None);
        assert_eq!(run_with(&[], &[], false, true).unwrap().cloud_config, None);
        let c = run_with(&["/x/azure.json"], &[], false, true).unwrap();
        assert_eq!(c.cloud_config.as_deref(), Some(Path::new("/x/azure.json")));
        assert_eq!(c.mirrors_use_node_identity, None);
    }

    #[test]
    fn azure_stack_environment_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("akscustom.json");
        std::fs::write(
            &f,
            r#"{"name":"AzureStackCloud","activeDirectoryEndpoint":"https://login.custom.example/","containerRegistryDNSSuffix":".custom.registry.io","resourceManagerEndpoint":"https://management.custom.example/"}"#,
        )
        .unwrap();
        let path = f.to_str().unwrap();
        let c = run_with(
            &[
                "/etc/kubernetes/azure.json",
                "--registry-mirror=mcr.microsoft.com:a.custom.registry.io",
            ],
            &[("AZURE_ENVIRONMENT_FILEPATH", path)],
            true,
            false,
        )
        .unwrap();
        assert_eq!(c.registry_suffixes, ["custom.registry.io"]);
        let s = c.validate().unwrap();
        assert_eq!(
            s.authority_host.as_deref(),
            Some("https://login.custom.example")
        );
        assert_eq!(s.mirrors[0].registry, "a.custom.registry.io");
        std::fs::write(&f, "{not json: hunter2").unwrap();
        let e = run_with(&[], &[("AZURE_ENVIRONMENT_FILEPATH", path)], true, false).unwrap_err();
        assert!(
            e.contains("AZURE_ENVIRONMENT_FILEPATH") && !e.contains("hunter2"),
            "{e}"
        );
        let e = run_with(
            &[],
            &[("AZURE_ENVIRONMENT_FILEPATH", "/nonexistent/env.json")],
            true,
            false,
        )
        .unwrap_err();
        assert!(
            e.contains("cannot read AZURE_ENVIRONMENT_FILEPATH /nonexistent/env.json"),
            "{e}"
        );
    }

    #[test]
    fn every_flag_and_variable_has_a_note() {
        for f in PLUGIN.flags {
            assert!(!f.note.is_empty(), "{}", f.long);
        }
        for v in PLUGIN.env {
            assert!(!v.note.is_empty(), "{}", v.name);
        }
        // -v is klog's verbosity here, never --version's shorthand.
        assert!(PLUGIN.flags.iter().all(|f| f.short != Some('v')));
    }
}
