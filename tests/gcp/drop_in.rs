//! Drop-in: the binary under auth-provider-gcp's names, with every shipped GCP config; and
//! drop-in fidelity (issue 22): under those names it answers as upstream does
//! (cmd/auth-provider-gcp, pkg/gcpcredential), or keeps a documented difference, pinned here.
//! The docker config flows (`--authFlow=dockercfg|dockercfg-url`) are in `drop_in_dockercfg`.

use super::*;

/// Every GCP provider entry that node images ship (GKE, GKE Windows, kops, OpenShift, the
/// kubelet's node e2e, Workload Identity flags), run by the kubelet's rules under its own
/// name with its exact args and env, for an image of each of its `matchImages`: the metadata
/// token, accepted by the kubelet's strict decoding.
#[test]
fn upstream_every_shipped_gcp_entry_gets_the_metadata_token() {
    use crate::common::upstream::{entries, host_for};
    let md = metadata_server("ya29.dropin-token", 3599);
    let node = [("GCE_METADATA_HOST", md.host())];
    let node: Vec<(&str, &str)> = node.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let all = entries(&[
        "auth-provider-gcp",
        "gcr-credential-provider",
        "gcp-credential-provider",
    ]);
    assert!(all.len() >= 7, "{}", all.len());
    for entry in &all {
        let s = Sandbox::new();
        for pattern in &entry.provider.match_images {
            let host = host_for(pattern, "us", "us");
            let image = format!("{host}/proj/app:1");
            let (key, cred) = s.first_try(entry, &node, &image);
            assert_eq!(key, host, "{}", entry.label());
            assert_eq!(cred.password, "ya29.dropin-token", "{}", entry.label());
        }
    }
}

/// Under the upstream name, a host the kubelet matched that is not Google's gets the token,
/// as auth-provider-gcp gives it (`gcp.otherHosts: accessToken`); under our own name it gets
/// nothing unless the config says so.
#[test]
fn upstream_other_hosts_get_the_token_only_under_the_upstream_name() {
    use crate::common::upstream::entries;
    let md = metadata_server("ya29.other-host", 3599);
    let entry = entries(&["auth-provider-gcp"])
        .into_iter()
        .find(|e| e.file == "gke-auth-provider-gcp.yaml")
        .expect("the GKE entry");
    let s = Sandbox::new();
    let node = [("GCE_METADATA_HOST", md.host())];
    let node: Vec<(&str, &str)> = node.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run_with(
        s.upstream_command(&entry, &node),
        request(V1, "mirror.example.com/app").as_bytes(),
    );
    let resp = stdout_json(&out);
    assert_eq!(
        creds(&resp, "mirror.example.com").1,
        "ya29.other-host",
        "{resp}"
    );
    // Our own name, same args: no Google token for a host that is not Google's.
    let mut cmd = s.command(&["get-credentials", "--v=3"]);
    cmd.env("GCE_METADATA_HOST", md.host());
    let out = run_with(cmd, request(V1, "mirror.example.com/app").as_bytes());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("ya29.other-host"), "{text}");
}

/// Point 7: upstream's `getCacheKeyType` answers `Image` when `KUBE_SIDECAR_CACHE_TYPE` is
/// unset, else the word it names. Under our own name the answer keeps its own scope
/// (`Registry`), and the variable may narrow it, never widen it past the one host it holds.
#[test]
fn upstream_the_answer_is_cached_per_image_unless_kube_sidecar_cache_type_says_otherwise() {
    let s = Sandbox::new();
    let md = metadata_server("ya29.keytype", 3599);
    let host = md.host();
    let req = request(V1, "gcr.io/proj/app");
    let key_type = |args: &[&str], kind: Option<&str>| {
        let mut env = vec![("GCE_METADATA_HOST", host.as_str())];
        env.extend(kind.map(|k| ("KUBE_SIDECAR_CACHE_TYPE", k)));
        let out = as_upstream(&s, args, &env, &req);
        stdout_json(&out)["cacheKeyType"].clone()
    };
    assert_eq!(key_type(&["get-credentials", "--v=3"], None), "Image");
    assert_eq!(key_type(&["get-credentials"], Some("image")), "Image");
    assert_eq!(key_type(&["get-credentials"], Some("registry")), "Registry");
    assert_eq!(key_type(&["get-credentials"], Some("global")), "Global");

    // Our own name: Registry; `global` cannot widen a one-host answer, `image` narrows it.
    let own = |kind: Option<&str>| {
        let mut env = vec![("GCE_METADATA_HOST", host.as_str())];
        env.extend(kind.map(|k| ("KUBE_SIDECAR_CACHE_TYPE", k)));
        let (out, _) = get(&s, "gcr.io/proj/app", &env, &["get-credentials", "--v=3"]);
        stdout_json(&out)["cacheKeyType"].clone()
    };
    assert_eq!(own(None), "Registry");
    assert_eq!(own(Some("global")), "Registry");
    assert_eq!(own(Some("image")), "Image");
}

/// Point 8: upstream's `populateConfig` keys the token by the image's registry and
/// `container.cloud.google.com`, `gcr.io`, `*.gcr.io`, `*.pkg.dev`, as user `_token`, so one
/// kubelet cache entry of `cacheKeyType` Registry or Global covers every Google registry;
/// for a host that is not Google's too (gcp.otherHosts under this name). Under our own name:
/// the one host, as `oauth2accesstoken`.
#[test]
fn upstream_the_token_is_keyed_for_every_google_registry_as_user_token() {
    let s = Sandbox::new();
    let md = metadata_server("ya29.every-registry", 3599);
    let host = md.host();
    let env = [("GCE_METADATA_HOST", host.as_str())];
    let google = [
        "*.gcr.io",
        "*.pkg.dev",
        "container.cloud.google.com",
        "gcr.io",
    ];
    for (image, registry) in [
        ("europe-docker.pkg.dev/p/r/i", "europe-docker.pkg.dev"),
        ("gcr.io/p/i", "gcr.io"),
        ("mirror.example.com:5000/p/i", "mirror.example.com:5000"),
    ] {
        let out = as_upstream(
            &s,
            &["get-credentials", "--v=3"],
            &[(env[0].0, env[0].1), ("KUBE_SIDECAR_CACHE_TYPE", "global")],
            &request(V1, image),
        );
        let resp = stdout_json(&out);
        let mut want: Vec<String> = google.iter().map(|k| k.to_string()).collect();
        if !want.contains(&registry.to_string()) {
            want.push(registry.to_string());
            want.sort();
        }
        assert_eq!(auth_keys(&resp), want, "{image}: {resp}");
        for key in &want {
            assert_eq!(
                creds(&resp, key),
                ("_token".into(), "ya29.every-registry".into()),
                "{image} {key}"
            );
        }
        assert_eq!(resp["cacheKeyType"], "Global");
    }
    // Our own name: one key, our user name.
    let (out, _) = get(&s, "europe-docker.pkg.dev/p/r/i", &env, &[]);
    let resp = stdout_json(&out);
    assert_eq!(auth_keys(&resp), ["europe-docker.pkg.dev"]);
    assert_eq!(creds(&resp, "europe-docker.pkg.dev").0, "oauth2accesstoken");
}

/// Point 10: upstream's `validateFlags` only refuses `--identity-provider` without
/// `--project-id`; `--project-id` alone is accepted and used nowhere. Under our own name it
/// is a configuration error (it would do nothing).
#[test]
fn upstream_project_id_alone_is_accepted_and_changes_nothing() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    let host = fake.host();
    let env = [("GCE_METADATA_HOST", host.as_str())];
    let args = ["get-credentials", "--project-id=my-project"];
    let out = as_upstream(&s, &args, &env, &request(V1, "gcr.io/p/i"));
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.node");
    assert_eq!(stderr(&out), "");
    // An opted-in service account: still the node, no exchange.
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = sa_request("gcr.io/p/i", &token, &[(OPT_IN, "true")]);
    let out = as_upstream(&s, &args, &env, &req);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.node");
    assert!(requests_to(&fake, STS_PATH).is_empty());
    // Our own name.
    let (out, _) = get(&s, "gcr.io/p/i", &env, &args);
    let line = assert_misconfigured(&out, &[]);
    assert!(
        line.contains("--project-id is only used with --identity-provider"),
        "{line}"
    );
}

/// Point 11: upstream exchanges a service account's token only with `--identity-provider`;
/// without it, an account annotated `iam.gke.io/enable-wi-image-pull: "true"` pulls as the
/// node. Under our own name that annotation without workload identity settings is an error
/// (tests/gcp/workload_identity.rs an_opted_in_failure_exits_1_without_the_token_or_a_fallback).
#[test]
fn upstream_an_opted_in_service_account_without_identity_provider_pulls_as_the_node() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    let host = fake.host();
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = sa_request("us-docker.pkg.dev/p/r/i", &token, &[(OPT_IN, "true")]);
    let out = as_upstream(
        &s,
        &["get-credentials", "--v=3"],
        &[("GCE_METADATA_HOST", host.as_str())],
        &req,
    );
    let resp = stdout_json(&out);
    assert_eq!(creds(&resp, "us-docker.pkg.dev").1, "ya29.node");
    assert!(requests_to(&fake, STS_PATH).is_empty());
    crate::common::assert_token_not_shown(&token, &out, None);
    // Our own name, no settings: exit 2, naming them.
    let out = sa_run(
        &s,
        &fake,
        &config(&s, "gcp:\n  mirrors: []\n"),
        &req,
        &["--no-cache"],
    );
    let line = assert_misconfigured(&out, &[&token]);
    assert!(
        line.contains("gcp.workloadIdentity is not configured"),
        "{line}"
    );
}

/// Point 12: upstream answers with the STS token itself and never reads
/// `iam.gke.io/gcp-service-account`; under its name so do we, unless the plugin config says
/// `workloadIdentity.impersonate: true`. (Our own name impersonates by default:
/// a_google_service_account_is_impersonated_when_annotated.)
#[test]
fn upstream_never_impersonates_unless_the_plugin_config_says_impersonate() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    let host = fake.host();
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let email = "puller@my-project.iam.gserviceaccount.com";
    let req = sa_request("gcr.io/p/i", &token, &[(OPT_IN, "true"), (GSA, email)]);
    let run = |extra: &str| {
        let cfg = wi_config(&s, &fake, &format!("{}{extra}", gke(true)), "");
        as_upstream(
            &s,
            &[
                "get-credentials",
                &format!("--identity-provider={PROVIDER}"),
                "--project-id=my-project",
            ],
            &[
                ("GCE_METADATA_HOST", host.as_str()),
                ("KUBELET_KEYRING_CONFIG", cfg.as_str()),
            ],
            &req,
        )
    };
    let out = run("");
    assert_eq!(
        creds(&stdout_json(&out), "gcr.io"),
        ("_token".into(), "fed-team/puller".into())
    );
    assert_eq!(requests_to(&fake, STS_PATH).len(), 1);
    assert!(requests_to(&fake, ":generateAccessToken").is_empty());
    // A malformed name is not even read.
    let bad = sa_request("gcr.io/p/i", &token, &[(OPT_IN, "true"), (GSA, "x/../y")]);
    let cfg = wi_config(&s, &fake, &gke(true), "");
    let out = as_upstream(
        &s,
        &["get-credentials"],
        &[
            ("GCE_METADATA_HOST", host.as_str()),
            ("KUBELET_KEYRING_CONFIG", cfg.as_str()),
        ],
        &bad,
    );
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "fed-team/puller");
    // The operator asks for it.
    let out = run("    impersonate: true\n");
    assert_eq!(
        creds(&stdout_json(&out), "gcr.io").1,
        format!("gsa-{email}")
    );
    assert_eq!(requests_to(&fake, ":generateAccessToken").len(), 1);
}

/// Point 13: upstream's node token comes from the metadata server only; a
/// `GOOGLE_APPLICATION_CREDENTIALS` in the kubelet's environment or gcloud credentials under
/// its HOME do not change whom a drop-in pulls as (the variable is named in one warning
/// line), unless the plugin config lists them in `gcp.credentialFiles`. Under our own name
/// both are read (here: the variable names a missing file, an error).
#[test]
fn upstream_the_node_token_comes_from_the_metadata_server_unless_the_config_lists_credential_files()
{
    let s = Sandbox::new();
    let md = metadata_server("ya29.metadata-only", 3599);
    let oauth = token_endpoint(
        200,
        r#"{"access_token":"ya29.gcloud-user","expires_in":3599}"#,
    );
    google::write_gcloud_user(&s.home, &oauth.url("/token"), "1//refresh-SECRET");
    let host = md.host();
    let missing = s.tmp.path().join("no-such-key.json");
    let missing = missing.to_str().expect("utf-8");
    let env = [
        ("GCE_METADATA_HOST", host.as_str()),
        ("GOOGLE_APPLICATION_CREDENTIALS", missing),
    ];
    let req = request(V1, "gcr.io/p/i");
    let out = as_upstream(&s, &["get-credentials"], &env, &req);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.metadata-only");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("GOOGLE_APPLICATION_CREDENTIALS is set and ignored"),
        "{err}"
    );
    assert!(oauth.requests().is_empty());
    // The plugin config turns the gcloud file on.
    let cfg = config(&s, "gcp:\n  credentialFiles: [gcloud]\n");
    let mut with = env.to_vec();
    with.push(("KUBELET_KEYRING_CONFIG", cfg.as_str()));
    let out = as_upstream(&s, &["get-credentials"], &with, &req);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.gcloud-user");
    assert_eq!(oauth.requests().len(), 1);
    // Our own name reads the variable: a missing file is an error.
    let (out, _) = get(&s, "gcr.io/p/i", &env, &[]);
    let line = assert_misconfigured(&out, &[]);
    assert!(
        line.contains("GOOGLE_APPLICATION_CREDENTIALS") && line.contains("no such file"),
        "{line}"
    );
}

/// Point 14, kept on purpose: upstream answers a failure with empty `auth` and exit 0 (the
/// kubelet then pulls anonymously, and caches that answer if `KUBE_SIDECAR_CACHE_DURATION`
/// is set); here it exits 1 with one line the kubelet logs, which names the cause, and
/// nothing is cached.
#[test]
fn upstream_a_failure_exits_1_with_one_line_where_upstream_answers_empty_auth() {
    let s = Sandbox::new();
    let md = google::fake(|_| json(500, r#"{"detail":"SECRET-BODY"}"#));
    let host = md.host();
    let out = as_upstream(
        &s,
        &["get-credentials", "--v=3"],
        &[
            ("GCE_METADATA_HOST", host.as_str()),
            ("KUBE_SIDECAR_CACHE_DURATION", "1h"),
        ],
        &request(V1, "gcr.io/p/i"),
    );
    let line = assert_one_line_failure(&out, &["SECRET-BODY"]);
    assert!(
        line.contains("no access token for gcr.io: metadata server"),
        "{line}"
    );
    // Under this name the hint never points at a key file this name does not read.
    assert!(!line.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{line}");
    let closed = closed_port();
    let out = as_upstream(
        &s,
        &["get-credentials", "-a", "dockercfg"],
        &[("GCE_METADATA_HOST", closed.as_str())],
        &request(V1, "gcr.io/p/i"),
    );
    let line = assert_one_line_failure(&out, &[]);
    assert!(line.contains("google-dockercfg"), "{line}");
}

/// Point 21: auth-provider-gcp registers klog's own fifteen flags (`klog.InitFlags`, with
/// underscores); its usage lists exactly those. `--log-flush-frequency`, `--logging-format`
/// and the dashed spellings are not upstream's (upstream exits 1 on them) but are accepted
/// here as extras, each with one warning line, so a config written for another plugin still
/// runs.
#[test]
fn upstream_klog_flags_are_klogs_own_and_the_others_are_accepted_as_extras() {
    let s = Sandbox::new();
    let bin = s
        .bin_dir_with("auth-provider-gcp")
        .join("auth-provider-gcp");
    let out = Command::new(&bin).arg("--help").output().expect("run");
    let usage = String::from_utf8_lossy(&out.stdout);
    for registered in [
        "--log_dir",
        "--v value",
        "--vmodule",
        "--one_output",
        "--log_backtrace_at",
    ] {
        assert!(usage.contains(registered), "{registered}: {usage}");
    }
    for extra in ["--log-flush-frequency", "--logging-format", "--log-dir"] {
        assert!(!usage.contains(extra), "{extra}: {usage}");
    }
    let md = metadata_server("ya29.klog", 3599);
    let host = md.host();
    let out = as_upstream(
        &s,
        &[
            "-v=3",
            "-logtostderr",
            "get-credentials",
            "--log_dir=/nonexistent",
            "--log-flush-frequency=5s",
            "--log-dir=/nonexistent",
        ],
        &[("GCE_METADATA_HOST", host.as_str())],
        &request(V1, "gcr.io/p/i"),
    );
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.klog");
    let err = stderr(&out);
    for warned in ["--logtostderr", "--log_dir", "--log-flush-frequency"] {
        assert_eq!(
            err.lines()
                .filter(|l| l.contains(&format!("{warned} is accepted and ignored")))
                .count(),
            1,
            "{warned}: {err}"
        );
    }
}
