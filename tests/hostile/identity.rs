//! Hostile input: identity. What a forged token, a hostile or broken vendor endpoint, or a
//! careless operator can put in front of the identity backend, and what must still hold: the
//! token goes nowhere but the matched rule's endpoint and path, nothing secret reaches
//! stderr (a body is never quoted, not even through a JSON error message), no hang, no panic.
#![cfg(feature = "identity")]

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::flood::{Flood, FLOOD, MOST_TAKEN};
use crate::common::http::{json, Fake, Reply};
use crate::common::issuer::{now, Issuer};
use crate::common::*;
use crate::identity::{
    api_server, config, fake, run, run_pod, secret_rule, HOST, IMAGE, PLAIN_HTTP,
};

/// The node's AWS identity, from the SDK's default credentials chain (no AWS_* keys in the
/// environment), with a flooding container credentials endpoint or instance metadata
/// service: one line, within the chain's bound, under `ulimit -v` 1 GiB, and no connection
/// took more than the cap and the socket buffers of the 64 MiB offered. The old code built
/// its own smithy client for the chain without the cap every other AWS call has, and read
/// the whole flood (a longer one: gigabytes).
#[test]
fn every_answer_the_node_aws_identitys_credentials_chain_reads_stops_at_the_cap() {
    let artifactory = fake(|_| json(200, r#"{"access_token":"x","expires_in":900}"#));
    let cases = [
        (
            "container credentials",
            "application/json",
            r#"{"AccessKeyId":""#,
        ),
        ("IMDS", "text/plain", ""),
    ];
    for (peer, content_type, prefix) in cases {
        let flood = Flood::start(content_type, prefix);
        let s = Sandbox::new();
        let cfg = config(
            &s,
            &format!(
                "    - hosts: [{HOST}]\n      identity: node\n      node: {{aws: {{}}}}\n      method: {{artifactoryAws: {{url: \"{}\", expiresIn: 900}}}}\n",
                artifactory.base()
            ),
        );
        let creds = format!("{}/creds", flood.base);
        let env: Vec<(&str, &str)> = match peer {
            "IMDS" => vec![
                ("AWS_EC2_METADATA_DISABLED", "false"),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &flood.base),
            ],
            _ => vec![("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds)],
        };
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg("ulimit -v 1048576; exec \"$0\" \"$@\"")
            .arg(crate::common::BIN)
            .args(["--no-cache", "--root-dir"])
            .arg(&s.root)
            .args(["--config", &cfg]);
        s.isolate(&mut cmd)
            .env(PLAIN_HTTP.0, PLAIN_HTTP.1)
            .envs(env);
        let started = Instant::now();
        let out = run_with(cmd, request(VERSIONS[0], IMAGE).as_bytes());
        let took = started.elapsed();
        let taken = flood.taken();
        let line = assert_one_line_failure(&out, &[]);
        assert!(took < Duration::from_secs(20), "{peer}: {took:?}: {line}");
        assert!(
            !taken.is_empty(),
            "{peer}: the peer was never asked: {line}"
        );
        assert!(
            taken.iter().all(|&n| n < MOST_TAKEN),
            "{peer}: a connection took {taken:?} bytes of {FLOOD}: {line}"
        );
        if peer != "IMDS" {
            assert!(line.contains("larger than 1 MiB"), "{peer}: {line}");
        }
    }
    assert!(artifactory.requests().is_empty());
}

fn exchange(s: &Sandbox, server: &Fake) -> String {
    config(
        s,
        &format!(
            "    - hosts: [{HOST}]\n      identity: pod\n      pod: {{audience: registry}}\n      method: {{tokenExchange: {{endpoint: \"{}\", username: u}}}}\n",
            server.url("/token")
        ),
    )
}

#[test]
fn a_forged_namespace_claim_cannot_steer_the_secret_read_to_another_path() {
    let issuer = Arc::new(Issuer::new());
    let server = api_server(issuer.clone(), json!({}));
    let s = Sandbox::new();
    let cfg = config(&s, &secret_rule(server.base(), HOST));
    for ns in [
        "../../../api/v1/namespaces/kube-system",
        "team/secrets/other?x=",
        "Team",
        "",
    ] {
        let token = issuer.sign(&json!({
            "aud": ["https://kubernetes.default.svc"], "exp": now() + 3600, "iss": "https://x",
            "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": "puller", "uid": "u"}},
            "sub": format!("system:serviceaccount:{ns}:puller"),
        }));
        let out = run_pod(&s, &cfg, &token, &[]);
        assert_one_line_exit(&out, 2, &[&token]);
    }
    assert!(
        server.requests().is_empty(),
        "{:?}",
        server
            .requests()
            .iter()
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_answer_of_the_wrong_shape_is_named_without_quoting_any_of_it() {
    // serde's own message would quote the string ("invalid type: string \"...\"").
    let server = fake(|r| match r.path.as_str() {
        "/v1/auth/kubernetes/login" => json(200, r#"{"auth":"quoted-secret-2"}"#),
        _ => json(404, "{}"),
    });
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &format!(
            "    - hosts: [{HOST}]\n      identity: pod\n      pod: {{audience: registry}}\n      method: {{vault: {{address: \"{}\", auth: kubernetes, role: r, path: p}}}}\n",
            server.base()
        ),
    );
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let out = run_pod(&s, &cfg, &token, &[]);
    let line = assert_one_line_failure(&out, &["quoted-secret-2", &token]);
    assert!(line.contains("not the documented JSON"), "{line}");
    // And a numeric string, as some servers send it, is a lifetime, not an error.
    let server = fake(|_| json(200, r#"{"access_token":"issued","expires_in":"3600"}"#));
    let cfg = exchange(&s, &server);
    let resp = stdout_json(&run_pod(&s, &cfg, &token, &["--no-cache"]));
    // 3600 s less the 5 min margin, less up to the cache's 10% jitter.
    assert!(
        go_secs(resp["cacheDuration"].as_str().unwrap_or_default()) >= 2970,
        "{resp}"
    );
}

#[test]
fn hostile_lifetimes_neither_panic_nor_outlive_the_ceiling() {
    let issuer = Issuer::new();
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    for (expires_in, want) in [
        ("1e308", Some(43200)),
        ("18446744073709551616", Some(43200)),
        ("-5", None),
        ("0", None),
    ] {
        let server = fake(move |_| {
            json(
                200,
                &format!(r#"{{"access_token":"issued","expires_in":{expires_in}}}"#),
            )
        });
        let s = Sandbox::new();
        let cfg = exchange(&s, &server);
        let out = run_pod(&s, &cfg, &token, &["--no-cache"]);
        assert_ne!(
            out.status.code(),
            Some(101),
            "{expires_in}: {}",
            stderr(&out)
        );
        if let Some(max) = want {
            let resp = stdout_json(&out);
            let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
            assert!(secs <= max && secs > 0, "{expires_in}: {secs}");
        } else if out.status.success() {
            // No usable expiry stated: the short lifetime of a token of unknown expiry.
            let resp = stdout_json(&out);
            assert!(
                go_secs(resp["cacheDuration"].as_str().unwrap_or_default()) <= 60,
                "{expires_in}: {resp}"
            );
        } else {
            assert_one_line_failure(&out, &["issued"]);
        }
    }
}

#[test]
fn an_error_body_that_echoes_the_token_never_reaches_stderr() {
    let server = fake(|r| {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        json(
            400,
            &json!({"error": "invalid_grant", "error_description": body}).to_string(),
        )
    });
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let cfg = exchange(&s, &server);
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let out = run_pod(&s, &cfg, &token, &[]);
    let line = assert_one_line_failure(&out, &[]);
    assert!(line.contains("answered 400 (invalid_grant)"), "{line}");
    assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
    let out = run_pod(&s, &cfg, &token, &["-vvvvvvvvv"]);
    assert_eq!(out.status.code(), Some(1));
    assert_token_nowhere(&token, &[("stderr at -v 9", &out.stderr)], Some(&s.cache));
}

#[test]
fn a_redirect_is_not_followed_so_the_token_stays_with_the_rules_endpoint() {
    let elsewhere = fake(|_| json(200, r#"{"access_token":"stolen","expires_in":3600}"#));
    let target = elsewhere.url("/steal");
    let server = Fake::start("", move |_| {
        Reply::WithHeaders(307, vec![("Location".into(), target.clone())], Vec::new())
    });
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let cfg = exchange(&s, &server);
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let out = run_pod(&s, &cfg, &token, &[]);
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(line.contains("answered 307"), "{line}");
    assert!(elsewhere.requests().is_empty());
}

#[test]
fn an_expired_unsigned_or_opaque_pod_token_is_refused_before_it_is_sent() {
    let server = fake(|_| json(200, r#"{"access_token":"x","expires_in":3600}"#));
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let cfg = exchange(&s, &server);
    let expired = issuer.sa_token("registry", "team", "puller", "uid-1", 1, -60);
    for token in [expired.as_str(), "opaque-token-value", "a.b.c", ""] {
        let out = run_pod(&s, &cfg, token, &[]);
        let code = out.status.code();
        assert!(
            code == Some(2) || code == Some(1),
            "{token:?}: {}",
            stderr(&out)
        );
        if !token.is_empty() {
            assert!(!stderr(&out).contains(token), "{}", stderr(&out));
        }
    }
    assert!(server.requests().is_empty());
}

#[test]
fn a_huge_answer_is_a_one_line_failure() {
    let server = fake(|_| Reply::With(200, vec![b'x'; 2 << 20]));
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let cfg = exchange(&s, &server);
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let line = assert_one_line_failure(&run_pod(&s, &cfg, &token, &[]), &[&token]);
    assert!(line.contains("larger than"), "{line}");
}

#[test]
fn a_token_or_secret_file_that_is_a_fifo_or_a_device_is_one_line_not_a_hang() {
    let s = Sandbox::new();
    let fifo = s.tmp.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let server = fake(|_| json(200, r#"{"access_token":"x","expires_in":3600}"#));
    let issuer = Issuer::new();
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    for path in [fifo.display().to_string(), "/dev/zero".into()] {
        let node = config(&s, &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {{tokenFile: {path}}}\n      method: {{passThrough: {{}}}}\n"));
        let secret = config(
            &s,
            &format!(
                "    - hosts: [{HOST}]\n      identity: pod\n      pod: {{audience: registry}}\n      method: {{tokenExchange: {{endpoint: \"{}\", clientId: c, clientSecretFile: {path}, username: u}}}}\n",
                server.url("/token")
            ),
        );
        for cfg in [node, secret] {
            let started = Instant::now();
            let out = run_pod(&s, &cfg, &token, &[]);
            assert!(started.elapsed() < Duration::from_secs(10));
            let line = assert_one_line_exit(&out, 2, &[&token]);
            assert!(line.contains("not a regular file"), "{line}");
        }
    }
    assert!(server.requests().is_empty());
}

/// The CA certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR` are files named by others: a
/// FIFO, `/dev/zero` or files holding no certificate are one line at once, exit 2 (the
/// node's configuration, not an endpoint that could not be reached), before the pod's token
/// goes anywhere (keyring-net's client). The old code hung on the FIFO until the deadline,
/// then answered exit 1.
#[test]
fn ca_certificates_that_block_never_end_or_hold_none_are_a_configuration_error_at_once() {
    let s = Sandbox::new();
    let issuer = Issuer::new();
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let endpoint = format!("https://127.0.0.1:{}/token", free_port());
    let cfg = config(
        &s,
        &format!(
            "    - hosts: [{HOST}]\n      identity: pod\n      pod: {{audience: registry}}\n      method: {{tokenExchange: {{endpoint: \"{endpoint}\", username: u}}}}\n"
        ),
    );
    for (var, value) in crate::common::tls::hostile_ca_settings(s.tmp.path()) {
        let started = Instant::now();
        let out = run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, &[]),
            &[
                (var, value.as_str()),
                ("KUBELET_KEYRING_TEST_DEADLINE", "4s"),
            ],
            &[],
        );
        assert!(!stderr(&out).contains(&token), "{var}={value}");
        crate::common::tls::assert_ca_refused(&out, started.elapsed(), var, &value);
    }
}

/// `AWS_CA_BUNDLE`, as for ECR's calls: a FIFO, a device or a file holding no certificate is
/// one line naming it at once, exit 2, before the credentials chain asks anyone. The old code
/// ignored the variable (its own client): exit 1, "no credentials".
#[test]
fn an_aws_ca_bundle_that_blocks_or_holds_no_certificate_is_a_configuration_error_at_once() {
    let s = Sandbox::new();
    let fifo = s.tmp.path().join("bundle-fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    let empty = s.tmp.path().join("bundle.pem");
    write(&empty, "no certificate here\n");
    let cfg = config(
        &s,
        &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {{aws: {{}}}}\n      method: {{artifactoryAws: {{url: \"http://127.0.0.1:{}\", expiresIn: 900}}}}\n", free_port()),
    );
    for bundle in [
        fifo.display().to_string(),
        "/dev/zero".into(),
        empty.display().to_string(),
    ] {
        let started = Instant::now();
        let out = run(
            &s,
            &cfg,
            &request(VERSIONS[0], IMAGE),
            &[PLAIN_HTTP, ("AWS_CA_BUNDLE", bundle.as_str())],
            &[],
        );
        let line = assert_one_line_exit(&out, 2, &[]);
        assert!(
            line.contains("AWS_CA_BUNDLE") && line.contains(&bundle),
            "{bundle}: {line}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{bundle}");
    }
}

/// One run of a node AWS identity rule (`artifactoryAws` at `artifactory`) with no AWS keys
/// in the environment but `env`, under `ulimit -v` 1 GiB (a file read without end fails
/// there, not on the machine) and a 4 s deadline (a blocked read ends at the watchdog, not
/// the test's limit): its output and how long it took.
fn node_aws_run(s: &Sandbox, artifactory: &Fake, env: &[(&str, &str)]) -> (Output, Duration) {
    let cfg = config(
        s,
        &format!(
            "    - hosts: [{HOST}]\n      identity: node\n      node: {{aws: {{}}}}\n      method: {{artifactoryAws: {{url: \"{}\", expiresIn: 900}}}}\n",
            artifactory.base()
        ),
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 1048576; exec \"$0\" \"$@\"")
        .arg(crate::common::BIN)
        .args(["--no-cache", "--root-dir"])
        .arg(&s.root)
        .args(["--config", &cfg]);
    s.isolate(&mut cmd)
        .env(PLAIN_HTTP.0, PLAIN_HTTP.1)
        .env("KUBELET_KEYRING_TEST_DEADLINE", "4s")
        .envs(env.iter().copied());
    let started = Instant::now();
    let out = run_with(cmd, request(VERSIONS[0], IMAGE).as_bytes());
    (out, started.elapsed())
}

/// The files the AWS SDK reads whole for the node's AWS identity, named by the environment:
/// the profile files and the web identity token. A FIFO, `/dev/zero` or a directory there is
/// one line naming the file and its variable, exit 2, at once, and nothing is sent, as for
/// ECR's calls. The old code let the SDK read them on the runtime's one thread: the FIFO
/// blocked until the watchdog (exit 1 at the 4 s test deadline), /dev/zero ran out of memory,
/// a directory was "no credentials" (exit 1).
#[test]
fn aws_files_named_by_the_environment_that_block_or_never_end_are_one_line_at_once() {
    let artifactory = fake(|_| json(200, r#"{"access_token":"x","expires_in":900}"#));
    let s = Sandbox::new();
    let fifo = s.tmp.path().join("aws-fifo");
    mkfifo(&fifo);
    let dir = s.tmp.path().join("aws-dir");
    std::fs::create_dir(&dir).expect("mkdir");
    let role = ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r");
    for var in [
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        for file in [&fifo, Path::new("/dev/zero"), &dir] {
            let shown = file.display().to_string();
            let mut env = vec![(var, shown.as_str())];
            if var == "AWS_WEB_IDENTITY_TOKEN_FILE" {
                env.push(role);
            }
            let (out, took) = node_aws_run(&s, &artifactory, &env);
            let what = format!("{var}={shown}");
            assert_ne!(out.status.code(), Some(101), "{what}: panicked");
            let line = assert_one_line_exit(&out, 2, &[]);
            assert!(
                line.contains(var) && line.contains(&shown) && line.contains("not a regular file"),
                "{what}: {line}"
            );
            assert!(
                took < Duration::from_secs(2),
                "{what}: took {took:?}: {line}"
            );
        }
    }
    assert!(artifactory.requests().is_empty());
}

/// A profile's `web_identity_token_file` is read whole by the SDK too: a FIFO or a link to
/// `/dev/zero` there is one line naming it, exit 2, at once, nothing sent. The old code
/// blocked on the FIFO until the watchdog (exit 1) and read /dev/zero until memory ran out.
#[test]
fn a_web_identity_token_file_a_profile_names_that_blocks_or_never_ends_is_one_line_at_once() {
    let artifactory = fake(|_| json(200, r#"{"access_token":"x","expires_in":900}"#));
    let s = Sandbox::new();
    let token = s.tmp.path().join("token");
    std::fs::create_dir_all(s.home.join(".aws")).expect("mkdir");
    write(
        &s.home.join(".aws/config"),
        &format!(
            "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nweb_identity_token_file = {}\nregion = us-east-1\n",
            token.display()
        ),
    );
    let shown = token.display().to_string();
    for planted in ["fifo", "/dev/zero"] {
        let _ = std::fs::remove_file(&token);
        match planted {
            "fifo" => mkfifo(&token),
            target => std::os::unix::fs::symlink(target, &token).expect("symlink"),
        }
        let (out, took) = node_aws_run(&s, &artifactory, &[]);
        assert_ne!(out.status.code(), Some(101), "{planted}: panicked");
        let line = assert_one_line_exit(&out, 2, &[]);
        assert!(
            line.contains(&shown) && line.contains("not a regular file"),
            "{planted}: {line}"
        );
        assert!(
            took < Duration::from_secs(2),
            "{planted}: took {took:?}: {line}"
        );
    }
    assert!(artifactory.requests().is_empty());
}
