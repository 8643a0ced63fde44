//! `auth-provider-gcp` (kubernetes/cloud-provider-gcp `cmd/auth-provider-gcp`), also
//! installed as `gcr-credential-provider` (OpenShift) and `gcp-credential-provider` (kOps):
//! its command line and environment, and what this backend does with them.
//!
//! Upstream is `auth-provider-gcp get-credentials [flags]` with klog's flags
//! (`klog.InitFlags`: GKE and kOps pass `--v=3`), `-a/--authFlow` (`gcr`, `dockercfg`,
//! `dockercfg-url`), `--identity-provider` and `--project-id` (Workload Identity image
//! pulls), and reads `KUBE_SIDECAR_CACHE_DURATION` and `KUBE_SIDECAR_CACHE_TYPE`. Under its
//! names this backend answers as upstream does (`Config::upstream`):
//!
//! * the answer's shape: user `_token`, keyed by the image's registry and `gcr.io`,
//!   `*.gcr.io`, `*.pkg.dev`, `container.cloud.google.com`, `cacheKeyType` `Image` unless
//!   `KUBE_SIDECAR_CACHE_TYPE` says otherwise (see the `answer` module);
//! * `--authFlow=gcr` (the default) is the access-token flow; `dockercfg` reads only the
//!   `google-dockercfg` attribute and `dockercfg-url` only the document
//!   `google-dockercfg-url` names, and either answers every entry of it and never a token;
//! * the node's token comes from the metadata server only: `GOOGLE_APPLICATION_CREDENTIALS`
//!   and gcloud's application default credentials, which upstream never reads, are read only
//!   when the plugin config lists them (`gcp.credentialFiles`);
//! * `--identity-provider` (with `--project-id`) sets `gcp.workloadIdentity`: service
//!   accounts annotated `iam.gke.io/enable-wi-image-pull: "true"` pull with the STS token of
//!   their own identity; without `--identity-provider` they pull as the node, as upstream;
//!   the Google service account `iam.gke.io/gcp-service-account` names is impersonated only
//!   when the plugin config says `workloadIdentity.impersonate: true` (upstream never does);
//! * `--project-id` alone is accepted and changes nothing, as upstream;
//! * any host the kubelet sends gets the access token (`gcp.otherHosts: accessToken`), as
//!   upstream does: the kubelet's `matchImages` is then the list of hosts that receive a
//!   Google token. Under this program's own name that needs the config line, because a
//!   too-wide pattern would hand the node's Google token to a registry nobody meant;
//! * `KUBE_SIDECAR_CACHE_DURATION` caps every answer's `cacheDuration` (never past the
//!   token's own life, which upstream can exceed) and `KUBE_SIDECAR_CACHE_TYPE` sets its
//!   `cacheKeyType`, the empty answer of a docker config flow included. Unset, a token
//!   answer lives as long as the token and a docker config document five minutes, like a
//!   file on disk (upstream's unset default is `0s`, which makes the kubelet exec the plugin
//!   for every pull); the empty answer (the flow's attribute not set) is `0s`, as upstream.
//!
//! Kept different on purpose, under every name, each in [`PLUGIN`]'s `differences`: a
//! failure exits 1 (2 for local misconfiguration) with one line the kubelet logs, where
//! upstream answers empty `auth` with exit 0 (the kubelet then pulls anonymously in both
//! cases, but an empty answer hides the cause, and with `KUBE_SIDECAR_CACHE_DURATION` set the
//! kubelet caches it); the disk cache; the `google-dockercfg-url` checks; the metadata server
//! reached directly, never through a proxy.
//!
//! Under the own name the same flags apply without upstream's defaults: `dockercfg` and
//! `dockercfg-url` turn on `gcp.dockercfg` (the metadata docker config first, then the
//! access token for Google's registries), `--project-id` without `--identity-provider` is an
//! error (it would do nothing), and `KUBE_SIDECAR_CACHE_TYPE` may narrow an answer's
//! `cacheKeyType`, never widen it past the one host the answer is keyed for.

use keyring_api::upstream::{self, EnvVar, Fate, Flag, Klog, Parsed, Plugin, Positionals, Takes};
use keyring_api::{BackendError, CacheKeyType};

use crate::config::{AuthFlow, Config, WorkloadIdentity};
use crate::host::OtherHosts;

const GET_CREDENTIALS: &str = "cmd/auth-provider-gcp/app/getcredentials.go";
const PROVIDER: &str = "cmd/auth-provider-gcp/provider/provider.go";

const FLAGS: &[Flag] = &[
    Flag {
        long: "authFlow",
        short: Some('a'),
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "gcr: the access token; dockercfg: every entry of the google-dockercfg attribute; dockercfg-url: every entry of the document google-dockercfg-url names; neither falls back to the token",
        source: GET_CREDENTIALS,
    },
    Flag {
        long: "identity-provider",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "Workload Identity image pulls for service accounts annotated iam.gke.io/enable-wi-image-pull (gcp.workloadIdentity.identityProvider); without it they pull as the node, as upstream; without --project-id (upstream: exit 1) the metadata server's project",
        source: GET_CREDENTIALS,
    },
    Flag {
        long: "project-id",
        short: None,
        takes: Takes::Value,
        fate: Fate::Honoured,
        note: "the project of the workload identity pool (gcp.workloadIdentity.projectId); without --identity-provider accepted and without effect, as upstream",
        source: GET_CREDENTIALS,
    },
    upstream::help("cmd/auth-provider-gcp/main.go"),
];

const ENV: &[EnvVar] = &[
    EnvVar {
        name: "KUBE_SIDECAR_CACHE_DURATION",
        fate: Fate::Honoured,
        note: "a Go duration that caps every answer's cacheDuration (never past the token's life; a negative one exits 2) and is the empty answer's; unset, the token's life, 5m for a --authFlow=dockercfg|dockercfg-url document, where upstream sends 0s; 0s for the empty answer, as upstream",
        source: PROVIDER,
    },
    EnvVar {
        name: "KUBE_SIDECAR_CACHE_TYPE",
        fate: Fate::Honoured,
        note: "every answer's cacheKeyType, the empty one included: image (the default, as upstream), registry or global; another value exits 2 (upstream: 1)",
        source: PROVIDER,
    },
    EnvVar {
        name: "HTTPS_PROXY",
        fate: Fate::Honoured,
        note: "proxy for Google APIs (STS, google-dockercfg-url), with NO_PROXY (either case); the metadata server is always reached directly (upstream proxies it too unless NO_PROXY names it)",
        source: "cmd/auth-provider-gcp/app/getcredentials.go (utilnet.SetTransportDefaults: net/http ProxyFromEnvironment)",
    },
    EnvVar {
        name: "GOOGLE_APPLICATION_CREDENTIALS",
        fate: Fate::Warned,
        note: "upstream never reads it, nor gcloud's ADC file under HOME: the node's token comes from the metadata server unless the plugin config lists them in gcp.credentialFiles",
        source: "",
    },
    EnvVar {
        name: "GCE_METADATA_HOST",
        fate: Fate::Honoured,
        note: "the metadata server's address (upstream hard-codes metadata.google.internal): Google's own variable for it; it names no credential and none is sent there",
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
        "tokens are cached on disk and shared by every invocation on the node; cacheDuration is the token's life less 5 minutes, and 5 minutes for a --authFlow=dockercfg|dockercfg-url document (static credentials, re-read as often as a docker config file), unless KUBE_SIDECAR_CACHE_DURATION caps it (upstream: 0s for both; KUBE_SIDECAR_CACHE_DURATION=0s gives that); an empty answer is 0s, as upstream",
        "a failure exits 1 (2 for local misconfiguration) with one line on stderr, which the kubelet logs; upstream answers empty auth with exit 0, which hides the cause (the pull runs anonymously either way)",
        "google-dockercfg-url: the URL must be http(s) (any case, trimmed) without user-info, and redirects are not followed, since the body is a set of credentials (upstream follows up to 10)",
        "the metadata server is reached directly at 169.254.169.254 (or GCE_METADATA_HOST), never through HTTP_PROXY",
        "--identity-provider without --project-id uses the metadata server's project (upstream exits 1)",
        "under its own name kubelet-keyring sends a Google token only to Google's registries, keyed by the image's registry alone, as user oauth2accesstoken; under this name, as upstream, to any host the kubelet matched (gcp.otherHosts), also keyed for every Google registry, as _token",
        "the get-credentials word may be left out; klog's dashed spellings (--log-dir) and --log-flush-frequency, --logging-format are accepted too",
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
    let flow = match parsed.value("authFlow") {
        None | Some("gcr") => AuthFlow::Gcr,
        Some("dockercfg") => AuthFlow::Dockercfg,
        Some("dockercfg-url") => AuthFlow::DockercfgUrl,
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(BackendError::misconfigured(
                crate::NAME,
                format!("--authFlow {shown:?}: expected gcr, dockercfg or dockercfg-url"),
            ));
        }
    };
    if as_upstream {
        config.upstream = Some(flow);
    } else if flow != AuthFlow::Gcr {
        config.dockercfg = true;
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
    } else if parsed.value("project-id").is_some() && !as_upstream {
        // Upstream accepts it alone and does nothing with it; here it is a mistake to say.
        return Err(BackendError::misconfigured(
            crate::NAME,
            "--project-id is only used with --identity-provider; add it or remove --project-id",
        ));
    }
    if as_upstream {
        config.other_hosts.get_or_insert(OtherHosts::AccessToken);
        config.credential_files.get_or_insert_with(Vec::new);
        if let Some(wi) = &mut config.workload_identity {
            wi.impersonate.get_or_insert(false);
        }
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
            assert_eq!(c.upstream, Some(AuthFlow::Gcr));
            assert_eq!(c.other_hosts, Some(OtherHosts::AccessToken));
            assert_eq!(c.credential_files(), []);
        }
        let own = run(&["get-credentials"], &[], false).unwrap();
        assert_eq!(own.other_hosts, None);
        assert_eq!(own.upstream, None);
        assert_eq!(own.credential_files(), crate::config::ALL_CREDENTIAL_FILES);
    }

    #[test]
    fn auth_flows_and_workload_identity_flags_set_the_section() {
        // Upstream's flows exactly under its name; the metadata docker config first under ours.
        let c = run(&["get-credentials", "-a", "dockercfg-url"], &[], true).unwrap();
        assert_eq!(
            (c.upstream, c.dockercfg),
            (Some(AuthFlow::DockercfgUrl), false)
        );
        let c = run(&["get-credentials", "--authFlow=dockercfg"], &[], true).unwrap();
        assert_eq!(c.upstream, Some(AuthFlow::Dockercfg));
        assert!(
            run(&["get-credentials", "-a", "dockercfg-url"], &[], false)
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
        // Upstream never impersonates.
        assert_eq!(wi.impersonate, Some(false));
        // --project-id alone: nothing under the upstream name, an error under ours.
        let c = run(&["get-credentials", "--project-id=my-project"], &[], true).unwrap();
        assert_eq!(c.workload_identity, None);
        assert!(
            run(&["get-credentials", "--project-id=my-project"], &[], false)
                .unwrap_err()
                .contains("only used with --identity-provider")
        );
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
