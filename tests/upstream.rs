//! The binary under the upstream plugins' names: every flag and variable of each upstream
//! plugin's table, and every klog flag under every name, has its fate (honoured, warned with
//! one stderr line, refused with exit 2 naming it), and the fates table in docs/migrating.md
//! is the tables' own rendering, with each row's upstream source (or "extra" where the Go
//! program has no such flag or variable).
//!
//! The shipped configs' entries run end to end in tests/ecr/shipped_configs.rs (moto),
//! tests/gcp/drop_in.rs (fake metadata) and tests/upstream_acr/shipped_entries.rs (fake
//! Azure), by the kubelet's rules.

use crate::common::upstream::entries;
use crate::common::{request, run_with, Sandbox, VERSIONS};
use keyring_api::upstream::{Fate, Flag, Plugin, Takes, KLOG_FLAGS};
use kubelet_keyring::upstream::plugins;
use std::path::Path;

#[test]
fn every_shipped_entry_is_found() {
    let ecr = entries(&["ecr-credential-provider"]);
    let gcp = entries(&[
        "auth-provider-gcp",
        "gcr-credential-provider",
        "gcp-credential-provider",
    ]);
    let acr = entries(&["acr-credential-provider"]);
    assert!(ecr.len() >= 15, "{}", ecr.len());
    assert!(gcp.len() >= 5, "{}", gcp.len());
    assert!(acr.len() >= 8, "{}", acr.len());
}

/// Environment under which every backend fails fast and without the network: nothing listens
/// at the endpoints, no credentials anywhere.
const DEAD_ENDS: &[(&str, &str)] = &[
    ("GCE_METADATA_HOST", "127.0.0.1:1"),
    ("AWS_ACCESS_KEY_ID", "x"),
    ("AWS_SECRET_ACCESS_KEY", "y"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
    ("AWS_MAX_ATTEMPTS", "1"),
];

/// A value for a flag that takes one, that each plugin's parser accepts.
fn value_for(f: &Flag) -> &'static str {
    match f.long {
        "v" => "3",
        "authFlow" => "gcr",
        "identity-provider" => "https://example.invalid/pool",
        "project-id" => "example-project",
        "registry-mirror" => "mcr.microsoft.com:myacr.azurecr.io",
        "ib-sni-name" => "ib.example.invalid",
        "ib-default-client-id" => "00000000-0000-0000-0000-000000000001",
        "ib-default-tenant-id" => "00000000-0000-0000-0000-000000000002",
        "ib-apiserver-ip" => "10.0.0.1",
        "log-flush-frequency" => "5s",
        "logging-format" => "text",
        "stderrthreshold" | "alsologtostderrthreshold" => "INFO",
        "log_file_max_size" => "1800",
        "log_backtrace_at" => "file.go:1",
        _ => "x",
    }
}

/// Runs the binary as `plugin`'s first name with `args` plus `env`, for an image of a host
/// no backend knows; returns (exit code, stderr).
fn run_as(s: &Sandbox, plugin: &Plugin, args: &[String], env: &[(&str, &str)]) -> (i32, String) {
    let bin = s.bin_dir_with(plugin.names[0]).join(plugin.names[0]);
    let mut cmd = std::process::Command::new(bin);
    cmd.env_clear()
        .env("HOME", &s.home)
        .env("KUBELET_KEYRING_ROOT_DIR", &s.root)
        .env("KUBELET_KEYRING_CACHE_DIR", &s.cache)
        .envs(DEAD_ENDS.iter().copied())
        .envs(env.iter().copied())
        .args(args)
        .current_dir(&s.cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run_with(
        cmd,
        request(VERSIONS[0], "registry.example.com/app").as_bytes(),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every flag and variable of every plugin's table, and every klog flag (accepted under every
/// name, upstream's or an extra), given to the binary under that name: honoured ones are
/// taken silently, warned ones cost exactly one stderr line naming them (and not the run),
/// refused ones exit 2 with a line naming them.
#[test]
fn fates_of_every_flag_and_variable() {
    let s = Sandbox::new();
    for plugin in plugins() {
        let klog: &[Flag] = KLOG_FLAGS;
        let lead: Vec<String> = match plugin.positionals {
            keyring_api::upstream::Positionals::Subcommand(w) => vec![w.to_string()],
            _ => vec![],
        };
        let (base_code, base_err) = run_as(&s, plugin, &lead, &[]);
        for f in plugin.flags.iter().chain(klog) {
            if matches!(f.long, "help" | "version") {
                continue; // they print and exit: tests/cli.rs
            }
            let mut args = lead.clone();
            match f.takes {
                Takes::Bool => args.push(format!("--{}", f.long)),
                Takes::Value => args.push(format!("--{}={}", f.long, value_for(f))),
            }
            // Flags that only mean something together (alone: a config error, exit 2, as
            // upstream).
            let together: &[&str] = match f.long {
                "project-id" => &["identity-provider"],
                "ib-sni-name"
                | "ib-default-client-id"
                | "ib-default-tenant-id"
                | "ib-apiserver-ip" => &["ib-sni-name", "ib-default-client-id", "ib-apiserver-ip"],
                _ => &[],
            };
            for other in together.iter().filter(|o| **o != f.long) {
                let flag = plugin
                    .flag(other)
                    .expect("a companion flag of the same plugin");
                args.push(format!("--{other}={}", value_for(flag)));
            }
            let (code, err) = run_as(&s, plugin, &args, &[]);
            let who = format!("{} {args:?}", plugin.names[0]);
            let naming = |e: &str| {
                e.lines()
                    .filter(|l| l.contains(&format!("--{}", f.long)))
                    .count()
            };
            match f.fate {
                Fate::Honoured => {
                    assert_ne!(code, 2, "{who}: {err}");
                    assert_eq!(naming(&err), 0, "{who}: {err}");
                }
                Fate::Warned => {
                    assert_eq!(code, base_code, "{who}: {err}");
                    assert_eq!(naming(&err), 1, "{who}: {err}");
                    assert_eq!(
                        err.lines().count(),
                        base_err.lines().count() + 1,
                        "{who}: {err}"
                    );
                }
                Fate::Refused => {
                    assert_eq!(code, 2, "{who}: {err}");
                    assert_eq!(err.lines().count(), 1, "{who}: {err}");
                    assert_eq!(naming(&err), 1, "{who}: {err}");
                }
            }
        }
        for v in plugin.env.iter().filter(|v| !v.name.ends_with('*')) {
            let (code, err) = match v.fate {
                Fate::Honoured => continue, // their meaning: each backend's own tests
                _ => run_as(&s, plugin, &lead, &[(v.name, "1")]),
            };
            let who = format!("{} {}", plugin.names[0], v.name);
            let naming = err.lines().filter(|l| l.contains(v.name)).count();
            match v.fate {
                Fate::Warned => {
                    assert_eq!(naming, 1, "{who}: {err}");
                    assert_eq!(code, base_code, "{who}: {err}");
                }
                Fate::Refused => {
                    assert_eq!(code, 2, "{who}: {err}");
                    assert_eq!(naming, 1, "{who}: {err}");
                }
                Fate::Honoured => unreachable!(),
            }
        }
    }
}

/// Tests that show a particular flag's or variable's meaning, beyond its fate.
const SHOWN_BY: &[(&str, &str, &str)] = &[
    (
        "ecr",
        "AWS_USE_FIPS_ENDPOINT",
        "tests/ecr/drop_in.rs upstream_a_fips_or_dual_stack_host_asks_the_regions_standard_api_endpoint",
    ),
    (
        "ecr",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "tests/ecr/drop_in.rs upstream_a_fips_or_dual_stack_host_asks_the_regions_standard_api_endpoint",
    ),
    (
        "ecr",
        "HTTPS_PROXY",
        "tests/ecr/drop_in.rs upstream_a_fips_or_dual_stack_host_asks_the_regions_standard_api_endpoint",
    ),
    (
        "ecr",
        "AWS_ECR_ROLE_ARN",
        "tests/ecr/drop_in.rs upstream_an_empty_role_annotation_means_the_nodes_credentials",
    ),
    (
        "ecr",
        "AWS_REGION",
        "tests/ecr/drop_in.rs upstream_a_pods_role_for_ecr_public_is_assumed_in_the_default_region",
    ),
    (
        "ecr",
        "AWS_CONFIG_FILE",
        "tests/ecr/credentials.rs upstream_a_credential_process_slower_than_ten_seconds_still_answers",
    ),
    (
        "ecr",
        "AWS_CONFIG_FILE",
        "tests/ecr/credentials.rs upstream_an_sso_profile_gives_the_credentials",
    ),
    (
        "ecr",
        "AWS_DEFAULT_PROFILE",
        "tests/ecr/credentials.rs upstream_the_go_sdks_other_names_for_the_keys_and_the_profile_are_read",
    ),
    (
        "ecr",
        "AWS_ACCESS_KEY",
        "tests/ecr/credentials.rs upstream_the_go_sdks_other_names_for_the_keys_and_the_profile_are_read",
    ),
    (
        "ecr",
        "AWS_SECRET_KEY",
        "tests/ecr/credentials.rs upstream_the_go_sdks_other_names_for_the_keys_and_the_profile_are_read",
    ),
    (
        "ecr",
        "ALL_PROXY",
        "tests/ecr/drop_in.rs upstream_all_proxy_is_no_proxy_as_for_upstreams_go_client",
    ),
    (
        "acr",
        "IDENTITY_ENDPOINT",
        "tests/upstream_acr/azure_arc.rs azure_arc_managed_identity_answers_through_the_agents_key_file_challenge",
    ),
    (
        "acr",
        "IDENTITY_HEADER",
        "tests/upstream_acr/azure_arc.rs azure_arc_without_the_identity_echo_and_app_service_are_refused",
    ),
    (
        "acr",
        "--ib-default-tenant-id",
        "tests/upstream_acr/identity_binding.rs the_identity_binding_tenant_is_sent_nowhere_as_upstream",
    ),
    (
        "acr",
        "azure.json resourceManagerEndpoint",
        "tests/upstream_acr/cloud_config.rs resource_manager_endpoint_and_cloud_config_type",
    ),
    (
        "acr",
        "azure.json cloudConfigType",
        "tests/upstream_acr/cloud_config.rs resource_manager_endpoint_and_cloud_config_type",
    ),
    (
        "acr",
        "AZURE_CLIENT_ID",
        "tests/upstream_acr/fates.rs azure_variables_do_not_change_the_identity_under_the_upstream_name",
    ),
    (
        "acr",
        "AZURE_TENANT_ID",
        "tests/upstream_acr/fates.rs azure_variables_do_not_change_the_identity_under_the_upstream_name",
    ),
    (
        "acr",
        "AZURE_CLIENT_SECRET",
        "tests/upstream_acr/fates.rs azure_variables_do_not_change_the_identity_under_the_upstream_name",
    ),
    (
        "acr",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "tests/upstream_acr/fates.rs azure_variables_do_not_change_the_identity_under_the_upstream_name",
    ),
    (
        "acr",
        "AZURE_FEDERATED_TOKEN_FILE",
        "tests/upstream_acr/fates.rs azure_variables_do_not_change_the_identity_under_the_upstream_name",
    ),
    (
        "acr",
        "AZURE_AUTHORITY_HOST",
        "tests/upstream_acr/fates.rs azure_variables_do_not_change_the_identity_under_the_upstream_name",
    ),
    (
        "acr",
        "AZURE_FEDERATED_TOKEN_FILE",
        "tests/upstream_acr/fates.rs an_azure_json_federated_token_file_authenticates_aad_client_id_under_the_upstream_name",
    ),
    (
        "acr",
        "azure.json aadClientCertPath",
        "tests/upstream_acr/fates.rs an_azure_json_aad_client_cert_path_authenticates_aad_client_id_under_the_upstream_name",
    ),
    (
        "acr",
        "azure.json useFederatedWorkloadIdentityExtension",
        "tests/upstream_acr/fates.rs an_azure_json_federated_token_file_authenticates_aad_client_id_under_the_upstream_name",
    ),
    (
        "gcp",
        "KUBE_SIDECAR_CACHE_TYPE",
        "tests/gcp/drop_in.rs upstream_the_answer_is_cached_per_image_unless_kube_sidecar_cache_type_says_otherwise",
    ),
    (
        "gcp",
        "KUBE_SIDECAR_CACHE_TYPE",
        "tests/gcp/drop_in_dockercfg.rs upstream_an_unset_dockercfg_attribute_answers_empty_as_upstream_with_the_sidecar_variables",
    ),
    (
        "gcp",
        "KUBE_SIDECAR_CACHE_DURATION",
        "tests/gcp/drop_in_dockercfg.rs upstream_the_sidecar_variables_apply_to_the_docker_config_flows_too",
    ),
    (
        "gcp",
        "KUBE_SIDECAR_CACHE_DURATION",
        "tests/gcp/drop_in_dockercfg.rs upstream_an_unset_dockercfg_attribute_answers_empty_as_upstream_with_the_sidecar_variables",
    ),
    (
        "gcp",
        "KUBE_SIDECAR_CACHE_DURATION",
        "tests/gcp/drop_in_dockercfg.rs upstream_a_dockercfg_document_lives_five_minutes_where_upstream_sends_0s_unless_told_0s",
    ),
    (
        "gcp",
        "--project-id",
        "tests/gcp/drop_in.rs upstream_project_id_alone_is_accepted_and_changes_nothing",
    ),
    (
        "gcp",
        "--identity-provider",
        "tests/gcp/drop_in.rs upstream_an_opted_in_service_account_without_identity_provider_pulls_as_the_node",
    ),
    (
        "gcp",
        "--identity-provider",
        "tests/gcp/drop_in.rs upstream_never_impersonates_unless_the_plugin_config_says_impersonate",
    ),
    (
        "gcp",
        "--authFlow",
        "tests/gcp/drop_in_dockercfg.rs upstream_dockercfg_flows_read_one_attribute_and_answer_the_whole_document_never_a_token",
    ),
    (
        "gcp",
        "--authFlow",
        "tests/gcp/drop_in_dockercfg.rs upstream_a_google_dockercfg_url_redirect_is_not_followed",
    ),
    (
        "gcp",
        "--log_dir",
        "tests/gcp/drop_in.rs upstream_klog_flags_are_klogs_own_and_the_others_are_accepted_as_extras",
    ),
    (
        "ecr",
        "AWS_ECR_ROLE_ARN",
        "tests/ecr/service_accounts.rs the_configured_default_role_and_aws_ecr_role_arn",
    ),
    (
        "ecr",
        "AWS_REGION",
        "tests/ecr/shipped_configs.rs upstream_every_shipped_ecr_entry_gets_a_token",
    ),
    (
        "ecr",
        "AWS_PROFILE",
        "tests/ecr/shipped_configs.rs upstream_every_shipped_ecr_entry_gets_a_token",
    ),
    (
        "ecr",
        "AWS_ENDPOINT_URL",
        "tests/ecr/registries.rs every_partition_fips_and_dual_stack_host_reaches_the_configured_endpoint",
    ),
    (
        "ecr",
        "AWS_CA_BUNDLE",
        "tests/ecr/failures.rs an_unusable_ca_bundle_is_named",
    ),
    ("ecr", "--help", "tests/cli.rs upstream_help_and_version"),
    ("ecr", "--version", "tests/cli.rs upstream_help_and_version"),
    ("gcp", "--help", "tests/cli.rs upstream_help_and_version"),
    ("acr", "--help", "tests/cli.rs upstream_help_and_version"),
    ("acr", "--version", "tests/cli.rs upstream_help_and_version"),
    (
        "gcp",
        "--v",
        "tests/gcp/drop_in.rs upstream_every_shipped_gcp_entry_gets_the_metadata_token",
    ),
    ("gcp", "--authFlow", "tests/gcp/dockercfg.rs dockercfg_attribute"),
    (
        "gcp",
        "GCE_METADATA_HOST",
        "tests/gcp/metadata.rs metadata_token_for_artifact_registry",
    ),
    (
        "gcp",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "tests/gcp/drop_in.rs upstream_the_node_token_comes_from_the_metadata_server_unless_the_config_lists_credential_files",
    ),
    (
        "gcp",
        "HTTPS_PROXY",
        "tests/gcp/workload_identity.rs google_apis_are_reached_through_https_proxy_and_the_metadata_server_directly",
    ),
];

/// The fates table of docs/migrating.md, rendered from the plugins' own tables: per plugin
/// its own flags, then klog's (upstream's where the Go program registers them, else
/// extras), then its variables.
fn fates_table() -> String {
    let generic = "tests/upstream.rs fates_of_every_flag_and_variable";
    let mut out = String::from(
        "| plugin | flag or variable | upstream source | fate | what kubelet-keyring does | shown by |\n\
         |---|---|---|---|---|---|\n",
    );
    let cell = |source: Option<String>, what: &str| match source {
        Some(files) => files
            .split("; ")
            .map(|f| match f.split_once(" (") {
                Some((file, how)) => format!("`{file}` ({how}"),
                None => format!("`{f}`"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        None => format!("extra: {what}"),
    };
    for plugin in plugins() {
        let mut rows: Vec<(String, String, Fate, &str)> = Vec::new();
        for f in plugin.flags.iter().chain(KLOG_FLAGS) {
            let source = plugin.flag_source(f);
            // A shorthand only where upstream has it (ecr's -v is its --version, not klog's).
            let name = match f.short {
                Some(c) if source.is_some() => format!("`--{}` / `-{c}`", f.long),
                _ => format!("`--{}`", f.long),
            };
            let source = cell(source, "not an upstream flag (upstream exits 1 on it)");
            rows.push((name, source, f.fate, f.note));
        }
        for v in plugin.env {
            let source = (!v.source.is_empty()).then(|| v.source.to_string());
            rows.push((
                format!("`{}`", v.name),
                cell(source, "upstream never reads it"),
                v.fate,
                v.note,
            ));
        }
        for (name, source, fate, note) in rows {
            let bare = name.trim_matches('`').split('`').next().unwrap_or_default();
            let mut shown: Vec<&str> = SHOWN_BY
                .iter()
                .filter(|(b, n, _)| *b == plugin.backend && *n == bare)
                .map(|(_, _, t)| *t)
                .collect();
            if !matches!(bare, "--help" | "--version") {
                shown.push(generic);
            }
            out.push_str(&format!(
                "| {} | {name} | {source} | {} | {} | {} |\n",
                plugin.names[0],
                fate.as_str(),
                note.replace('|', "\\|"),
                shown.join("; ")
            ));
        }
    }
    out
}

/// Every row names where upstream reads it, or is marked an extra: klog's flags per plugin
/// (ecr-credential-provider registers none, so `--v` is an extra there; acr-credential-
/// provider component-base's three; auth-provider-gcp klog's fifteen), variables only where
/// upstream never reads them.
#[test]
fn every_row_has_its_upstream_source_or_is_an_extra() {
    let registered = |backend: &str| -> Vec<&'static str> {
        let plugin = plugins()
            .into_iter()
            .find(|p| p.backend == backend)
            .expect("plugin");
        KLOG_FLAGS
            .iter()
            .filter(|f| plugin.flag_source(f).is_some())
            .map(|f| f.long)
            .collect()
    };
    #[cfg(feature = "ecr")]
    assert_eq!(registered("ecr"), Vec::<&str>::new());
    #[cfg(feature = "acr")]
    assert_eq!(registered("acr"), ["v", "vmodule", "log-flush-frequency"]);
    #[cfg(feature = "gcp")]
    {
        let gcp = registered("gcp");
        assert_eq!(gcp.len(), 15, "{gcp:?}");
        assert!(!gcp.contains(&"log-flush-frequency") && !gcp.contains(&"logging-format"));
    }
    for plugin in plugins() {
        for f in plugin.flags {
            assert!(
                !f.source.is_empty(),
                "{} --{}: an upstream flag without its source",
                plugin.names[0],
                f.long
            );
        }
        for v in plugin.env {
            let extra = matches!(
                (plugin.backend, v.name),
                (
                    "gcp",
                    "GOOGLE_APPLICATION_CREDENTIALS" | "GCE_METADATA_HOST"
                ) | (
                    "ecr",
                    "AWS_DISABLE_CLOCK_SKEW_CORRECTION"
                        | "AWS_AUTH_SCHEME_PREFERENCE"
                        | "AWS_SIGV4A_SIGNING_REGION_SET"
                )
            );
            assert_eq!(
                v.source.is_empty(),
                extra,
                "{} {}: source {:?}",
                plugin.names[0],
                v.name,
                v.source
            );
        }
    }
    // The guide says so: ecr's --v is an extra, not something that keeps working.
    let table = fates_table();
    #[cfg(feature = "ecr")]
    assert!(
        table.contains(
            "| ecr-credential-provider | `--v` | extra: not an upstream flag (upstream exits 1 on it) |"
        ),
        "{table}"
    );
    #[cfg(feature = "gcp")]
    assert!(
        table.contains("| auth-provider-gcp | `--log-flush-frequency` | extra: not an upstream flag (upstream exits 1 on it) |"),
        "{table}"
    );
}

/// docs/migrating.md holds the table between its markers; `KEYRING_UPDATE_DOCS=1` rewrites it.
#[test]
fn the_migration_guide_has_the_tables_own_fates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/migrating.md");
    let doc = std::fs::read_to_string(&path).expect("docs/migrating.md");
    let (begin, end) = ("<!-- fates:begin -->\n", "<!-- fates:end -->");
    let (Some(b), Some(e)) = (doc.find(begin), doc.find(end)) else {
        panic!("docs/migrating.md lacks the {begin:?} .. {end:?} markers");
    };
    for (_, _, test) in SHOWN_BY {
        let (file, name) = test.split_once(' ').unwrap();
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            text.contains(&format!("fn {name}()")),
            "{test} does not exist"
        );
    }
    let table = fates_table();
    let current = &doc[b + begin.len()..e];
    if current != table {
        if std::env::var_os("KEYRING_UPDATE_DOCS").is_some() {
            let new = format!("{}{table}{}", &doc[..b + begin.len()], &doc[e..]);
            std::fs::write(&path, new).expect("write docs/migrating.md");
        } else {
            panic!("docs/migrating.md's fates table is stale: run KEYRING_UPDATE_DOCS=1 cargo test --test tests upstream::");
        }
    }
}
