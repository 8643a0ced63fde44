//! Hostile input: gcp. What the backend's peers (the metadata server, OAuth token endpoints,
//! Google STS, the IAM credentials API) and an operator's mirror list can put in front of
//! it: never a panic, never an answer cached wider than it holds.
#![cfg(feature = "gcp")]

use std::process::Output;

use crate::common::google::{self, DOCKERCFG_PATH, TOKEN_PATH};
use crate::common::http::{json, Fake, Reply};
use crate::common::*;

const V1: &str = "credentialprovider.kubelet.k8s.io/v1";
const STS_PATH: &str = "/v1/token";
const OPT_IN: &str = "iam.gke.io/enable-wi-image-pull";
const GSA: &str = "iam.gke.io/gcp-service-account";

/// `expires_in` values no peer should send: `u64::MAX`, `2^63 - 1` (each once panicked
/// `SystemTime + Duration`), a float far past any horizon, and a negative number.
const HUGE: [&str; 3] = ["18446744073709551615", "9223372036854775807", "1e300"];
const NEGATIVE: &str = "-1";

/// A token endpoint answer with `expires_in` written as given.
fn token_reply(token: &str, expires_in: &str) -> Reply {
    json(
        200,
        &format!(r#"{{"access_token":"{token}","expires_in":{expires_in},"token_type":"Bearer"}}"#),
    )
}

fn config(s: &Sandbox, text: &str) -> String {
    let p = s.tmp.path().join("keyring.yaml");
    write(&p, text);
    p.display().to_string()
}

/// A token that a peer says lives "forever" is answered, cached at most the longest lifetime
/// (12 h, less at most 10% of refresh jitter), never past it.
fn assert_capped_answer(out: &Output, key: &str, token: &str, what: &str) {
    assert_ne!(out.status.code(), Some(101), "{what}: panicked");
    let resp = stdout_json(out);
    assert_eq!(creds(&resp, key).1, token, "{what}: {resp}");
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(
        (12 * 3600 * 9 / 10..=12 * 3600).contains(&secs),
        "{what}: {resp}"
    );
}

/// A negative `expires_in` states no expiry: one line, exit 1, never a panic.
fn assert_refused_expiry(out: &Output, what: &str) {
    assert_ne!(out.status.code(), Some(101), "{what}: panicked");
    let line = assert_one_line_failure(out, &["ya29"]);
    assert!(line.contains("expires_in"), "{what}: {line}");
}

// ---------------------------------------------------------------------------------------
// Scope of "not mine".

/// `*.mirror.example.com/gcr` makes `/gcr` of those hosts the backend's, and only `/gcr`:
/// pulling another path of such a host gets the empty answer for that image alone. Cached for
/// the registry (as it once was, by us and by the kubelet), it was then served for the next
/// pull through `/gcr` for five minutes instead of the token.
#[test]
fn another_path_of_a_mirror_host_is_refused_for_that_image_only() {
    let md = google::fake(|r| match r.path.as_str() {
        TOKEN_PATH => token_reply("ya29.mirror-token", "3599"),
        _ => json(404, "{}"),
    });
    let s = Sandbox::new();
    let cfg = config(&s, "gcp:\n  mirrors: [\"*.mirror.example.com/gcr\"]\n");
    let run = |image: &str| {
        let mut cmd = s.command(&["--config", &cfg]);
        cmd.env("GCE_METADATA_HOST", md.host());
        run_with(cmd, request(V1, image).as_bytes())
    };

    let resp = stdout_json(&run("eu.mirror.example.com/other/x"));
    assert_eq!(resp["auth"], serde_json::json!({}), "{resp}");
    assert_eq!(resp["cacheKeyType"], "Image", "{resp}");
    assert!(md.requests().is_empty(), "the metadata server was asked");

    let resp = stdout_json(&run("eu.mirror.example.com/gcr/x"));
    assert_eq!(
        creds(&resp, "eu.mirror.example.com/gcr"),
        ("oauth2accesstoken".into(), "ya29.mirror-token".into()),
        "{resp}"
    );
    assert_eq!(resp["cacheKeyType"], "Image", "{resp}");

    // A host no rule of the backend covers at any path is still refused for the registry.
    let resp = stdout_json(&run("registry.example.com/other/x"));
    assert_eq!(resp["auth"], serde_json::json!({}), "{resp}");
    assert_eq!(resp["cacheKeyType"], "Registry", "{resp}");
}

/// The same for a docker config delivered by metadata (`gcp.dockercfg`): an entry for
/// `registry.example.com/team` means another path of the host has no entry, not the host.
#[test]
fn another_path_of_a_metadata_dockercfg_entry_is_refused_for_that_image_only() {
    let cfg_body = serde_json::json!({
        "registry.example.com/team": {"username": "robot", "password": "team-secret"},
    })
    .to_string();
    let md = google::fake(move |r| match r.path.as_str() {
        DOCKERCFG_PATH => json(200, &cfg_body),
        _ => json(404, "{}"),
    });
    let s = Sandbox::new();
    let cfg = config(&s, "gcp:\n  dockercfg: true\n");
    let run = |image: &str| {
        let mut cmd = s.command(&["--config", &cfg]);
        cmd.env("GCE_METADATA_HOST", md.host());
        run_with(cmd, request(V1, image).as_bytes())
    };

    let resp = stdout_json(&run("registry.example.com/other/x"));
    assert_eq!(resp["auth"], serde_json::json!({}), "{resp}");
    assert_eq!(resp["cacheKeyType"], "Image", "{resp}");

    let resp = stdout_json(&run("registry.example.com/team/x"));
    assert_eq!(
        creds(&resp, "registry.example.com/team"),
        ("robot".into(), "team-secret".into()),
        "{resp}"
    );
}

// ---------------------------------------------------------------------------------------
// Expiries from peers.

#[test]
fn a_metadata_token_that_never_expires_is_capped_and_a_negative_one_refused() {
    let s = Sandbox::new();
    for expires_in in HUGE.into_iter().chain([NEGATIVE]) {
        let md = google::fake(move |r| match r.path.as_str() {
            TOKEN_PATH => token_reply("ya29.forever", expires_in),
            _ => json(404, "{}"),
        });
        let mut cmd = s.command(&["--no-cache"]);
        cmd.env("GCE_METADATA_HOST", md.host());
        let out = run_with(cmd, request(V1, "gcr.io/p/i").as_bytes());
        let what = format!("metadata expires_in {expires_in}");
        if expires_in == NEGATIVE {
            assert_refused_expiry(&out, &what);
        } else {
            assert_capped_answer(&out, "gcr.io", "ya29.forever", &what);
        }
    }
}

#[test]
fn an_oauth_token_that_never_expires_is_capped_and_a_negative_one_refused() {
    let s = Sandbox::new();
    for expires_in in HUGE.into_iter().chain([NEGATIVE]) {
        let oauth = google::fake(move |r| match r.path.as_str() {
            "/token" => token_reply("ya29.forever-user", expires_in),
            _ => json(404, "{}"),
        });
        // gcloud's application default credentials: a refresh token redeemed at token_uri.
        google::write_gcloud_user(&s.home, &oauth.url("/token"), "1//refresh");
        let mut cmd = s.command(&["--no-cache"]);
        cmd.env("GCE_METADATA_HOST", "127.0.0.1:9");
        let out = run_with(cmd, request(V1, "us-docker.pkg.dev/p/r/i").as_bytes());
        let what = format!("OAuth expires_in {expires_in}");
        if expires_in == NEGATIVE {
            assert_refused_expiry(&out, &what);
        } else {
            assert_capped_answer(&out, "us-docker.pkg.dev", "ya29.forever-user", &what);
        }
        assert_eq!(oauth.requests().len(), 1, "{what}");
    }
}

/// A fake Google STS answering `expires_in`, and an IAM credentials API answering
/// `expire_time`, on one server.
fn fake_sts(expires_in: &'static str, expire_time: &'static str) -> Fake {
    google::fake(move |r| match r.path.as_str() {
        STS_PATH => token_reply("ya29.federated", expires_in),
        p if p.ends_with(":generateAccessToken") => json(
            200,
            &format!(r#"{{"accessToken":"ya29.impersonated","expireTime":"{expire_time}"}}"#),
        ),
        _ => json(404, "{}"),
    })
}

/// One opted-in token-mode run against `fake`, impersonating a Google service account when
/// `impersonate`.
fn exchange(s: &Sandbox, fake: &Fake, impersonate: bool) -> Output {
    let cfg = config(
        s,
        &format!(
            "gcp:\n  workloadIdentity:\n    audience: //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k\n    stsEndpoint: {}\n    iamCredentialsEndpoint: {}\n",
            fake.url(STS_PATH),
            fake.url("")
        ),
    );
    let token = sa_token("my-project.svc.id.goog", "team", "puller", "uid-1", 1);
    let mut annotations = vec![(OPT_IN, "true")];
    if impersonate {
        annotations.push((GSA, "puller@p.iam.gserviceaccount.com"));
    }
    let mut cmd = s.command(&["--config", &cfg, "--no-cache"]);
    cmd.env("GCE_METADATA_HOST", "127.0.0.1:9");
    run_with(
        cmd,
        sa_request("gcr.io/p/i", &token, &annotations).as_bytes(),
    )
}

#[test]
fn a_federated_token_that_never_expires_is_capped_and_a_negative_one_refused() {
    let s = Sandbox::new();
    for expires_in in HUGE.into_iter().chain([NEGATIVE]) {
        let fake = fake_sts(expires_in, "unused");
        let out = exchange(&s, &fake, false);
        let what = format!("STS expires_in {expires_in}");
        if expires_in == NEGATIVE {
            assert_refused_expiry(&out, &what);
        } else {
            assert_capped_answer(&out, "gcr.io", "ya29.federated", &what);
        }
    }
}

/// The IAM credentials API states an RFC 3339 time: the last one RFC 3339 can write is
/// capped like any other; one long past is an expired token (the node's clock is the likely
/// cause), not "not an RFC 3339 time".
#[test]
fn an_impersonated_token_at_the_end_of_time_is_capped_and_one_from_year_one_is_expired() {
    let s = Sandbox::new();
    let fake = fake_sts("3599", "9999-12-31T23:59:59.999999999Z");
    let out = exchange(&s, &fake, true);
    assert_capped_answer(&out, "gcr.io", "ya29.impersonated", "expireTime 9999-12-31");

    let fake = fake_sts("3599", "0001-01-01T00:00:00Z");
    let out = exchange(&s, &fake, true);
    assert_ne!(out.status.code(), Some(101), "panicked");
    let line = assert_one_line_failure(&out, &["ya29"]);
    assert!(
        line.contains("puller@p.iam.gserviceaccount.com") && line.contains("already expired"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------
// external_account files (workload identity federation for the node).

const POOL: &str =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k";

/// Writes an `external_account` file exchanging at `sts` with the credential `source`.
fn external_account(s: &Sandbox, sts: &str, source: serde_json::Value) -> String {
    let p = s.tmp.path().join("ea.json");
    let file = serde_json::json!({
        "type": "external_account",
        "audience": POOL,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": sts,
        "credential_source": source,
    });
    write(&p, &file.to_string());
    p.display().to_string()
}

/// One run for gcr.io with GOOGLE_APPLICATION_CREDENTIALS `file`.
fn with_credentials(s: &Sandbox, file: &str) -> Output {
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", file)
        .env("GCE_METADATA_HOST", "127.0.0.1:9");
    run_with(cmd, request(V1, "gcr.io/p/i").as_bytes())
}

/// A server that answers every request with a 200 announcing 1 GiB and streams it (or until
/// the client hangs up); returns its port and a count of the bytes it got out.
fn gibibyte_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    const GIB: u64 = 1 << 30;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4) {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {GIB}\r\n\r\n");
            if conn.write_all(head.as_bytes()).is_err() {
                continue;
            }
            let chunk = vec![b'a'; 64 << 10];
            let mut written = 0;
            while written < GIB && conn.write_all(&chunk).is_ok() {
                written += chunk.len() as u64;
                counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
    });
    (port, sent)
}

/// A credential source URL is the node's to choose but may answer anything: 1 GiB is cut at
/// the exchange client's 64 KiB cap, at once, and nothing reaches STS. (Google's Rust
/// library, google-cloud-auth 1.19, reads it all into memory and sends it on.)
#[test]
fn an_external_account_url_source_answering_a_gibibyte_fails_at_the_cap_without_reading_it() {
    let s = Sandbox::new();
    let sts = fake_sts("3599", "unused");
    let (port, sent) = gibibyte_server();
    let file = external_account(
        &s,
        &sts.url(STS_PATH),
        serde_json::json!({"url": format!("http://127.0.0.1:{port}/token")}),
    );
    let started = std::time::Instant::now();
    let out = with_credentials(&s, &file);
    assert_ne!(out.status.code(), Some(101), "panicked");
    let line = assert_one_line_failure(&out, &["aaaaaaaa"]);
    assert!(
        line.contains("subject token at http://127.0.0.1:")
            && line.contains("response body larger than 65536 bytes"),
        "{line}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(sts.requests().is_empty(), "a subject token reached STS");
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(sent < 256 << 20, "{sent} bytes were read");
}

/// STS's `expires_in` through an external_account file: 2^63 (and more) is capped at the
/// longest lifetime, never a panic (google-cloud-auth 1.19 panics at 2^63, adding it to an
/// `Instant`), and a negative one refused.
#[test]
fn an_external_account_token_that_never_expires_is_capped_and_a_negative_one_refused() {
    let s = Sandbox::new();
    let token = s.tmp.path().join("token");
    write(&token, "eyJ.subject.token");
    for expires_in in ["9223372036854775808"]
        .into_iter()
        .chain(HUGE)
        .chain([NEGATIVE])
    {
        let fake = fake_sts(expires_in, "unused");
        let file = external_account(&s, &fake.url(STS_PATH), serde_json::json!({"file": token}));
        let out = with_credentials(&s, &file);
        let what = format!("STS expires_in {expires_in}");
        if expires_in == NEGATIVE {
            assert_refused_expiry(&out, &what);
        } else {
            assert_capped_answer(&out, "gcr.io", "ya29.federated", &what);
        }
    }
}

/// Writes an executable shell script and returns its path.
fn script(s: &Sandbox, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = s.tmp.path().join(name);
    write(&p, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p.display().to_string()
}

/// An external_account file whose executable source runs `command` for at most 5 s.
fn executable_account(s: &Sandbox, sts: &str, command: &str) -> String {
    external_account(
        s,
        sts,
        serde_json::json!({"executable": {"command": command, "timeout_millis": 5000}}),
    )
}

fn allowed(s: &Sandbox, file: &str) -> Output {
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", file)
        .env("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
        .env("GCE_METADATA_HOST", "127.0.0.1:9");
    run_with(cmd, request(V1, "gcr.io/p/i").as_bytes())
}

/// A credential program that hangs, with a child of its own, is killed with its whole process
/// group at its `timeout_millis` (5 s): one line, and nothing of it left running. (Google's
/// Rust library leaves it running.)
#[test]
fn an_external_account_executable_that_hangs_is_killed_with_its_group_at_its_timeout() {
    let s = Sandbox::new();
    let sts = fake_sts("3599", "unused");
    let pid_file = s.tmp.path().join("sleeper.pid");
    let tool = script(
        &s,
        "hanging-tool",
        &format!("sleep 300 &\necho $! > {}\nwait", pid_file.display()),
    );
    let file = executable_account(&s, &sts.url(STS_PATH), &tool);
    let started = std::time::Instant::now();
    let out = allowed(&s, &file);
    let took = started.elapsed();
    assert_ne!(out.status.code(), Some(101), "panicked");
    let line = assert_one_line_failure(&out, &[]);
    assert!(line.contains("did not finish within"), "{line}");
    assert!(
        (std::time::Duration::from_secs(4)..std::time::Duration::from_secs(15)).contains(&took),
        "{took:?}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the script wrote its child's pid");
    let alive = std::path::Path::new("/proc").join(pid.trim());
    let gone = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !alive.exists()
            || std::fs::read_to_string(alive.join("stat")).is_ok_and(|st| st.contains(") Z "))
    });
    assert!(gone, "the program's child {pid} outlived it");
    assert!(sts.requests().is_empty());
}

/// A credential program that prints without end is killed at 1 MiB, at once.
#[test]
fn an_external_account_executable_flooding_stdout_is_cut_at_one_mebibyte() {
    let s = Sandbox::new();
    let sts = fake_sts("3599", "unused");
    let tool = script(&s, "flooding-tool", "exec yes flood-canary");
    let file = executable_account(&s, &sts.url(STS_PATH), &tool);
    let started = std::time::Instant::now();
    let out = allowed(&s, &file);
    assert_ne!(out.status.code(), Some(101), "panicked");
    let line = assert_one_line_failure(&out, &["flood-canary"]);
    assert!(line.contains("printed more than 1048576 bytes"), "{line}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(sts.requests().is_empty());
}

/// The CA certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR` are files named by others: a
/// FIFO, `/dev/zero` or files holding no certificate are one line at once, for a key file's
/// token endpoint as for every HTTPS call (keyring-net's client).
#[test]
fn ca_certificates_that_block_never_end_or_hold_none_are_one_line_at_once() {
    let s = Sandbox::new();
    let (key, _) = rsa_key(s.tmp.path());
    let key_file = s.tmp.path().join("key.json");
    let token_uri = format!("https://127.0.0.1:{}/token", free_port());
    write(
        &key_file,
        &serde_json::json!({
            "type": "service_account",
            "private_key": key,
            "client_email": "puller@proj.iam.gserviceaccount.com",
            "token_uri": token_uri,
        })
        .to_string(),
    );
    for (var, value) in crate::common::tls::hostile_ca_settings(s.tmp.path()) {
        let mut cmd = s.command(&["--no-cache"]);
        cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key_file)
            .env(var, &value)
            .env("KUBELET_KEYRING_TEST_DEADLINE", "4s");
        let started = std::time::Instant::now();
        let out = run_with(cmd, request(V1, "gcr.io/p/app").as_bytes());
        crate::common::tls::assert_ca_refused(&out, started.elapsed(), var, &value);
    }
}

/// The same for the document `google-dockercfg-url` names: CA settings that block, never end
/// or hold no certificate are the node's configuration (exit 2, naming the setting), not a
/// URL that could not be fetched (the old code: exit 1, "google-dockercfg-url ...: cannot
/// set up TLS ...").
#[test]
fn ca_certificates_that_hold_none_for_a_dockercfg_url_are_a_configuration_error_at_once() {
    let s = Sandbox::new();
    let url = format!("https://127.0.0.1:{}/cfg.json", free_port());
    let md = google::fake(move |r| match r.path.as_str() {
        "/computeMetadata/v1/instance/attributes/google-dockercfg-url" => json(200, &url),
        _ => json(404, ""),
    });
    let cfg = config(&s, "gcp:\n  dockercfg: true\n");
    for (var, value) in crate::common::tls::hostile_ca_settings(s.tmp.path()) {
        let started = std::time::Instant::now();
        let (out, _) = s.get(
            "reg.example.com:5000/app",
            &[
                ("GCE_METADATA_HOST", md.host().as_str()),
                (var, value.as_str()),
                ("KUBELET_KEYRING_TEST_DEADLINE", "4s"),
            ],
            &["--config", &cfg, "--no-cache"],
        );
        crate::common::tls::assert_ca_refused(&out, started.elapsed(), var, &value);
    }
}
