//! `auth-provider-gcp` (kubernetes/cloud-provider-gcp `cmd/auth-provider-gcp`), also
//! installed as `gcr-credential-provider` (OpenShift) and `gcp-credential-provider` (kOps):
//! its command line and environment, and what this backend does with them.
//!
//! Upstream is `auth-provider-gcp get-credentials [flags]` with klog's flags (GKE and kOps
//! pass `--v=3`), `-a/--authFlow` (`gcr`, `dockercfg`, `dockercfg-url`),
//! `--identity-provider` and `--project-id` (Workload Identity image pulls), and reads
//! `KUBE_SIDECAR_CACHE_DURATION` and `KUBE_SIDECAR_CACHE_TYPE`. Under its names:
//!
//! * `--authFlow=gcr` (the default) is the access-token flow; `dockercfg` and
//!   `dockercfg-url` turn on `gcp.dockercfg` (the metadata docker config, then the access
//!   token for Google's registries, where upstream would answer nothing);
//! * `--identity-provider` / `--project-id` set `gcp.workloadIdentity` (opt-in by the
//!   service account's `iam.gke.io/enable-wi-image-pull` annotation, as upstream);
//! * any host the kubelet sends gets the access token (`gcp.otherHosts: accessToken`), as
//!   upstream does: the kubelet's `matchImages` is then the list of hosts that receive a
//!   Google token. Under this program's own name that needs the config line, because a
//!   too-wide pattern would hand the node's Google token to a registry nobody meant;
//! * `KUBE_SIDECAR_CACHE_DURATION` caps the answer's `cacheDuration` (never past the
//!   token's own life, which upstream can exceed) and `KUBE_SIDECAR_CACHE_TYPE` sets its
//!   `cacheKeyType`. Unset, the answer keeps this backend's: the token's life, `Registry`
//!   (upstream's unset default is `0s`, which makes the kubelet exec the plugin for every
//!   pull).
//!
//! Upstream answers a failure with empty credentials and exit 0; here it is an error the
//! kubelet logs, as under this program's own name.

use keyring_api::upstream::{EnvVar, Fate, Flag, Klog, Parsed, Plugin, Positionals, Takes};
use keyring_api::{BackendError, CacheKeyType};

use crate::config::{Config, WorkloadIdentity};
use crate::host::OtherHosts;

const GET_CREDENTIALS: &str = "cmd/auth-provider-gcp/app/getcredentials.go";
const PROVIDER: &str = "cmd/auth-provider-gcp/provider/provider.go";

const FLAGS: &[Flag] = &[
    Flag {
        long: "authFlow",
        short: Some('a'),
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "gcr: the access token; dockercfg, dockercfg-url: the metadata docker config first (gcp.dockercfg)",
        source: GET_CREDENTIALS,
    },
    Flag {
        long: "identity-provider",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "Workload Identity image pulls for service accounts annotated iam.gke.io/enable-wi-image-pull (gcp.workloadIdentity.identityProvider)",
        source: GET_CREDENTIALS,
    },
    Flag {
        long: "project-id",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "the project of the workload identity pool (gcp.workloadIdentity.projectId); the metadata server's when absent",
        source: GET_CREDENTIALS,
    },
    Flag {
        long: "help",
        short: Some('h'),
        takes: Takes::Bool,
        fate: Fate::Honoured,
        note: "prints the usage and exits",
        source: "cmd/auth-provider-gcp/main.go",
    },
];

const ENV: &[EnvVar] = &[
    EnvVar {
        name: "KUBE_SIDECAR_CACHE_DURATION",
        fate: Fate::Honoured,
        note: "a Go duration that caps the answer's cacheDuration (never past the token's life)",
        source: PROVIDER,
    },
    EnvVar {
        name: "KUBE_SIDECAR_CACHE_TYPE",
        fate: Fate::Honoured,
        note: "the answer's cacheKeyType: image, registry or global",
        source: PROVIDER,
    },
    EnvVar {
        name: "HTTPS_PROXY",
        fate: Fate::Honoured,
        note: "proxy for Google APIs, with NO_PROXY (either case); the metadata server is always direct",
        source: "cmd/auth-provider-gcp/app/getcredentials.go (utilnet.SetTransportDefaults: net/http ProxyFromEnvironment)",
    },
    EnvVar {
        name: "GOOGLE_APPLICATION_CREDENTIALS",
        fate: Fate::Honoured,
        note: "a service-account key file used instead of the metadata server (upstream ignores it)",
        source: "",
    },
    EnvVar {
        name: "GCE_METADATA_HOST",
        fate: Fate::Honoured,
        note: "the metadata server's address (upstream hard-codes metadata.google.internal)",
        source: "",
    },
];

/// `auth-provider-gcp` and the names distributions install it under.
pub static PLUGIN: Plugin = Plugin {
    backend: crate::NAME,
    names: &[
        "auth-provider-gcp",
        "gcr-credential-provider",
        "gcp-credential-provider",
    ],
    flags: FLAGS,
    klog: Klog::InitFlags("cmd/auth-provider-gcp/main.go"),
    env: ENV,
    positionals: Positionals::Subcommand("get-credentials"),
    differences: &[
        "tokens are cached on disk and shared by every invocation on the node",
        "the username is oauth2accesstoken (upstream: _token); Google's registries accept both",
        "under its own name kubelet-keyring sends a Google token only to Google's registries; under this name, as upstream, to any host the kubelet matched (gcp.otherHosts)",
        "the get-credentials word may be left out",
    ],
};

/// Applies an upstream command line and environment to the `gcp:` section; `as_upstream`:
/// run under an upstream name, whose defaults then apply where the plugin config file did
/// not set the field. `env` reads a variable (the process environment in the binary).
pub fn configure(
    config: &mut Config,
    parsed: &Parsed,
    as_upstream: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), BackendError> {
    match parsed.value("authFlow") {
        None | Some("gcr") => {}
        Some("dockercfg" | "dockercfg-url") => config.dockercfg = true,
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(BackendError::misconfigured(
                crate::NAME,
                format!("--authFlow {shown:?}: expected gcr, dockercfg or dockercfg-url"),
            ));
        }
    }
    if let Some(provider) = parsed.value("identity-provider") {
        if config.workload_identity.is_none() {
            let mut raw = serde_json::Map::new();
            raw.insert("identityProvider".into(), provider.into());
            if let Some(p) = parsed.value("project-id") {
                raw.insert("projectId".into(), p.into());
            }
            let wi: WorkloadIdentity = serde_json::from_value(raw.into()).map_err(|e| {
                BackendError::misconfigured(
                    crate::NAME,
                    format!("--identity-provider / --project-id: {e}"),
                )
            })?;
            config.workload_identity = Some(wi);
        }
    } else if parsed.value("project-id").is_some() {
        return Err(BackendError::misconfigured(
            crate::NAME,
            "--project-id is only used with --identity-provider; add it or remove --project-id",
        ));
    }
    if as_upstream {
        config.other_hosts.get_or_insert(OtherHosts::AccessToken);
    }
    if let Some(v) = env("KUBE_SIDECAR_CACHE_DURATION").filter(|v| !v.is_empty()) {
        let nanos = keyring_api::duration::parse(&v)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                BackendError::misconfigured(
                    crate::NAME,
                    format!(
                        "KUBE_SIDECAR_CACHE_DURATION {v:?} is not a duration such as 30m or 1h"
                    ),
                )
            })?;
        config.answer_override.max_lifetime =
            Some(std::time::Duration::from_nanos(nanos.unsigned_abs()));
    }
    if let Some(v) = env("KUBE_SIDECAR_CACHE_TYPE").filter(|v| !v.is_empty()) {
        // Upstream compares lower-case words.
        let t = match v.as_str() {
            "image" => CacheKeyType::Image,
            "registry" => CacheKeyType::Registry,
            "global" => CacheKeyType::Global,
            _ => {
                return Err(BackendError::misconfigured(
                    crate::NAME,
                    format!("KUBE_SIDECAR_CACHE_TYPE {v:?}: expected image, registry or global"),
                ))
            }
        };
        config.answer_override.cache_key_type = Some(t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Audience;
    use keyring_api::upstream::parse;
    use std::time::Duration;

    fn run(args: &[&str], env: &[(&str, &str)], as_upstream: bool) -> Result<Config, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let parsed = parse(&PLUGIN, &args).map_err(|e| e.message)?;
        let mut config = Config::default();
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        configure(&mut config, &parsed, as_upstream, &env).map_err(|e| e.message)?;
        Ok(config)
    }

    #[test]
    fn gke_and_kops_command_lines_give_any_host_the_token_only_under_the_upstream_name() {
        for line in [
            &["get-credentials", "--v=3"][..],
            &["get-credentials"],
            &["--v=3", "get-credentials", "--authFlow=gcr"],
        ] {
            let c = run(line, &[], true).unwrap();
            assert!(!c.dockercfg);
            assert_eq!(c.other_hosts, Some(OtherHosts::AccessToken));
        }
        assert_eq!(
            run(&["get-credentials"], &[], false).unwrap().other_hosts,
            None
        );
    }

    #[test]
    fn auth_flows_and_workload_identity_flags_set_the_section() {
        assert!(
            run(&["get-credentials", "-a", "dockercfg-url"], &[], true)
                .unwrap()
                .dockercfg
        );
        assert!(run(&["get-credentials", "--authFlow=x"], &[], true)
            .unwrap_err()
            .contains("expected gcr, dockercfg or dockercfg-url"));
        let c = run(
            &[
                "get-credentials",
                "--identity-provider=https://container.googleapis.com/v1/projects/my-project/locations/l/clusters/c",
                "--project-id=my-project",
            ],
            &[],
            true,
        )
        .unwrap();
        let wi = c.workload_identity.unwrap();
        assert!(matches!(
            wi.audience,
            Audience::IdentityNamespace { project_id: Some(ref p), .. } if p == "my-project"
        ));
        assert!(run(&["get-credentials", "--project-id=p"], &[], true).is_err());
    }

    #[test]
    fn the_sidecar_variables_cap_the_lifetime_and_set_the_cache_key_type() {
        let c = run(
            &["get-credentials"],
            &[
                ("KUBE_SIDECAR_CACHE_DURATION", "30m"),
                ("KUBE_SIDECAR_CACHE_TYPE", "global"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            c.answer_override.max_lifetime,
            Some(Duration::from_secs(1800))
        );
        assert_eq!(c.answer_override.cache_key_type, Some(CacheKeyType::Global));
        assert!(run(
            &["get-credentials"],
            &[("KUBE_SIDECAR_CACHE_TYPE", "Image")],
            true
        )
        .unwrap_err()
        .contains("expected image, registry or global"));
        assert!(run(
            &["get-credentials"],
            &[("KUBE_SIDECAR_CACHE_DURATION", "soon")],
            true
        )
        .is_err());
    }
}
