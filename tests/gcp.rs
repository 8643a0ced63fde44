//! Black-box tests of the gcp backend: the real binary against a fake GCE metadata server and
//! a fake OAuth token endpoint, both plain HTTP servers on 127.0.0.1 inside the test.
//!
//! Every run sets GCE_METADATA_HOST (to a fake, or to a closed port), HOME (a temp dir, for
//! the application-default-credentials lookup) and GOOGLE_APPLICATION_CREDENTIALS only when
//! the test means it: the environment is cleared first, so the machine's own Google
//! credentials and metadata server never take part.
//!
//! The key-file tests generate an RSA key with the `openssl` CLI (installed by
//! scripts/install-test-deps.sh) and verify the JWT's signature with it; without openssl they
//! fail.
#![cfg(feature = "gcp")]

mod external_account;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::google::{self, DOCKERCFG_PATH, TOKEN_PATH};
use crate::common::http::{json, Fake, Reply, Req};
use crate::common::*;
use base64::Engine as _;

const DOCKERCFG_URL_PATH: &str = "/computeMetadata/v1/instance/attributes/google-dockercfg-url";
const V1: &str = "credentialprovider.kubelet.k8s.io/v1";

/// A metadata server that hands out `token` to requests with the metadata header, and
/// answers `attrs` (path → reply) for the rest; 404 for anything else.
fn metadata_server(token: &'static str, expires_in: u64) -> Fake {
    google::fake(move |r| {
        if r.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return json(403, "missing Metadata-Flavor header");
        }
        if r.path == TOKEN_PATH {
            json(
                200,
                &format!(
                    r#"{{"access_token":"{token}","expires_in":{expires_in},"token_type":"Bearer"}}"#
                ),
            )
        } else {
            json(404, "not found")
        }
    })
}

/// An address where nothing listens.
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a.to_string()
}

// ---------------------------------------------------------------------------------------
// Running the binary.

/// Runs the binary on `image` with the sandbox's environment plus `env`, without the cache.
fn get(s: &Sandbox, image: &str, env: &[(&str, &str)], args: &[&str]) -> (Output, Duration) {
    s.get(image, env, &[&["--no-cache"][..], args].concat())
}

/// Writes a plugin config into the sandbox and returns its path.
fn config(s: &Sandbox, text: &str) -> String {
    let p = s.tmp.path().join("keyring.yaml");
    write(&p, text);
    p.display().to_string()
}

/// The `cacheDuration` seconds allowed for a token that lives `expires_in` more: the backend
/// takes off five minutes (keyring_api::lifetime; never jitter); the cache layer takes off up
/// to 10% to spread refreshes (src/cache/entry.rs), and the run itself takes a little.
fn lifetime_range(expires_in: u64) -> std::ops::RangeInclusive<u64> {
    (expires_in - 300) * 89 / 100..=expires_in - 300
}

// ---------------------------------------------------------------------------------------
// The metadata flow.

#[test]
fn metadata_token_for_artifact_registry() {
    let s = Sandbox::new();
    let md = metadata_server("ya29.metadata-token", 3599);
    let (out, _) = get(
        &s,
        "us-docker.pkg.dev/proj/repo/img:1.0",
        &[("GCE_METADATA_HOST", &md.host())],
        &[],
    );
    let resp = stdout_json(&out);
    assert_eq!(stderr(&out), "");
    assert_eq!(resp["apiVersion"], V1);
    assert_eq!(resp["cacheKeyType"], "Registry");
    assert_eq!(
        creds(&resp, "us-docker.pkg.dev"),
        ("oauth2accesstoken".into(), "ya29.metadata-token".into())
    );
    assert_eq!(resp["auth"].as_object().map(|a| a.len()), Some(1));
    // From the token's real expiry: 3599 s less five minutes and jitter.
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(lifetime_range(3599).contains(&secs), "{resp}");

    let reqs = md.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, TOKEN_PATH);
    assert_eq!(
        reqs[0].headers.get("metadata-flavor").map(String::as_str),
        Some("Google")
    );
    assert!(
        reqs[0]
            .headers
            .get("user-agent")
            .is_some_and(|ua| ua.starts_with("kubelet-keyring/")),
        "{reqs:?}"
    );
}

#[test]
fn google_hosts_and_listed_mirrors_only() {
    let s = Sandbox::new();
    let md = metadata_server("ya29.t", 3599);
    // The example config shipped in config/ (mirrors gcr-mirror.example.com,
    // reg.example.com:5000, *.mirror.example.com/gcr).
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/gcp.yaml");
    let env = [("GCE_METADATA_HOST", md.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (image, key, scope) in [
        ("gcr.io/proj/img", "gcr.io", "Registry"),
        ("eu.gcr.io/proj/img", "eu.gcr.io", "Registry"),
        (
            "container.cloud.google.com/x/y",
            "container.cloud.google.com",
            "Registry",
        ),
        (
            "europe-west1-docker.pkg.dev/p/r/i",
            "europe-west1-docker.pkg.dev",
            "Registry",
        ),
        (
            "gcr-mirror.example.com/proj/img",
            "gcr-mirror.example.com",
            "Registry",
        ),
        (
            "reg.example.com:5000/proj/img",
            "reg.example.com:5000",
            "Registry",
        ),
        (
            "eu.mirror.example.com/gcr/proj/img",
            "eu.mirror.example.com/gcr",
            "Image",
        ),
    ] {
        let (out, _) = get(&s, image, &env, &["--config", example]);
        let resp = stdout_json(&out);
        assert_eq!(
            creds(&resp, key),
            ("oauth2accesstoken".into(), "ya29.t".into()),
            "{image}"
        );
        assert_eq!(resp["cacheKeyType"], scope, "{image}");
    }
    let asked = md.requests().len();
    assert_eq!(asked, 7);

    // Hosts that are neither Google's nor listed never see the token, and cost no request.
    for image in [
        "reg.example.com/proj/img",
        "eu.mirror.example.com/other/img",
        "gcr.io.evil.example/x",
        "nginx:latest",
        "quay.io/org/img",
    ] {
        let (out, _) = get(&s, image, &env, &["--config", example]);
        let resp = stdout_json(&out);
        assert_eq!(resp["auth"], serde_json::json!({}), "{image}: {resp}");
    }
    assert_eq!(
        md.requests().len(),
        asked,
        "metadata asked for a foreign image"
    );
}

#[test]
fn bad_mirror_is_a_config_error_naming_the_entry() {
    let s = Sandbox::new();
    let cfg = config(
        &s,
        "gcp:\n  mirrors:\n    - reg.example.com\n    - \"*.com\"\n",
    );
    let (out, _) = get(
        &s,
        "gcr.io/p/i",
        &[("GCE_METADATA_HOST", &closed_port())],
        &["--config", &cfg],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("mirror \"*.com\": too broad"), "{err}");
}

#[test]
fn metadata_500_fails_in_one_line_without_the_body() {
    let s = Sandbox::new();
    let md = google::fake(|_| json(500, r#"{"access_token":"ya29.LEAKED","error":"boom"}"#));
    let (out, took) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &["ya29", "LEAKED", "boom"]);
    assert!(
        err.starts_with(
            "kubelet-keyring: error: gcp: no access token for gcr.io: metadata server 127.0.0.1:"
        ),
        "{err}"
    );
    assert!(
        err.contains("answered 500 Internal Server Error for the access token (after 3 attempts)"),
        "{err}"
    );
    assert!(
        err.contains("retry later, or set GOOGLE_APPLICATION_CREDENTIALS"),
        "{err}"
    );
    assert_eq!(md.requests().len(), 3);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn metadata_down_fails_fast() {
    let s = Sandbox::new();
    let (out, took) = get(
        &s,
        "us-docker.pkg.dev/p/r/i",
        &[("GCE_METADATA_HOST", &closed_port())],
        &[],
    );
    let err = assert_one_line_failure(&out, &[]);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        err.contains("off Google Cloud set GOOGLE_APPLICATION_CREDENTIALS"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn metadata_that_never_answers_hits_the_request_timeout() {
    let s = Sandbox::new();
    let md = google::fake(|_| Reply::Hang);
    let (out, took) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &[]);
    assert!(
        err.contains("no answer within 3s asking for the access token"),
        "{err}"
    );
    // One 3 s attempt (timeouts are not retried), far under the kubelet's 60 s.
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(md.requests().len(), 1);
}

#[test]
fn a_metadata_server_without_a_service_account_answers_404_and_the_fix_is_named() {
    let s = Sandbox::new();
    let md = google::fake(|_| json(404, "not found"));
    let (out, _) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &[]);
    assert!(
        err.contains(
            "answered 404 Not Found for the access token; the instance has no service account"
        ),
        "{err}"
    );
    assert_eq!(md.requests().len(), 1, "a 404 is not retried");
}

#[test]
fn a_bad_token_answer_and_a_bad_metadata_host_are_one_line_errors() {
    let s = Sandbox::new();
    let md = google::fake(|_| json(200, r#"{"access_token":"ya29.SECRET","expires_in":"soon"}"#));
    let (out, _) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &["SECRET", "soon"]);
    assert!(err.contains("sent an access token that is not JSON with a string access_token and a numeric expires_in"), "{err}");

    let (out, _) = get(
        &s,
        "gcr.io/p/i",
        &[("GCE_METADATA_HOST", "http://127.0.0.1:1/")],
        &[],
    );
    let err = assert_misconfigured(&out, &[]);
    assert!(
        err.contains("GCE_METADATA_HOST=\"http://127.0.0.1:1/\" is not host[:port]"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Key files and application default credentials.

const EMAIL: &str = "puller@proj.iam.gserviceaccount.com";

fn key_json(pem: &str, token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "abc",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string()
}

/// Checks the JWT bearer assertion: header, claims, and the RS256 signature (with openssl).
fn verify_assertion(jwt: &str, public: &Path, token_uri: &str, dir: &Path) {
    let b64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["alg"], "RS256");
    let claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("json");
    assert_eq!(claims["iss"], EMAIL);
    assert_eq!(claims["aud"], token_uri);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    let (signed, sig) = (dir.join("signed"), dir.join("sig"));
    std::fs::write(&signed, format!("{}.{}", parts[0], parts[1])).expect("write");
    std::fs::write(&sig, b64.decode(parts[2]).expect("b64")).expect("write");
    let v = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&sig)
        .arg(&signed)
        .output()
        .expect("openssl dgst");
    assert!(
        v.status.success(),
        "signature: {}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// A token endpoint answering `reply` to POST /token.
fn token_endpoint(status: u16, reply: &'static str) -> Fake {
    google::fake(move |r| {
        if r.method == "POST" && r.path == "/token" {
            json(status, reply)
        } else {
            json(404, "{}")
        }
    })
}

#[test]
fn key_file_from_google_application_credentials() {
    let s = Sandbox::new();
    let (pem, public) = rsa_key(s.tmp.path());
    let oauth = token_endpoint(
        200,
        r#"{"access_token":"ya29.from-key-file","expires_in":1800,"token_type":"Bearer"}"#,
    );
    let md = metadata_server("ya29.metadata-must-not-be-used", 3599);
    let token_uri = oauth.url("/token");
    let key_path = s.tmp.path().join("sa.json");
    write(&key_path, &key_json(&pem, &token_uri));

    let (out, _) = get(
        &s,
        "asia.gcr.io/proj/img",
        &[
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", &md.host()),
        ],
        &[],
    );
    let resp = stdout_json(&out);
    assert_eq!(stderr(&out), "");
    assert_eq!(
        creds(&resp, "asia.gcr.io"),
        ("oauth2accesstoken".into(), "ya29.from-key-file".into())
    );
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(lifetime_range(1800).contains(&secs), "{resp}");
    assert!(md.requests().is_empty(), "the metadata server was asked");

    let reqs = oauth.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    let f = form(&reqs[0].body);
    assert_eq!(
        f.get("grant_type").map(String::as_str),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    verify_assertion(
        f.get("assertion").expect("assertion"),
        &public,
        &token_uri,
        s.tmp.path(),
    );
}

#[test]
fn service_account_key_as_application_default_credentials() {
    let s = Sandbox::new();
    let (pem, public) = rsa_key(s.tmp.path());
    let oauth = token_endpoint(200, r#"{"access_token":"ya29.from-adc","expires_in":3600}"#);
    let token_uri = oauth.url("/token");
    write(
        &s.home
            .join(".config/gcloud/application_default_credentials.json"),
        &key_json(&pem, &token_uri),
    );
    let (out, _) = get(
        &s,
        "gcr.io/proj/img",
        &[("GCE_METADATA_HOST", &closed_port())],
        &[],
    );
    let resp = stdout_json(&out);
    assert_eq!(creds(&resp, "gcr.io").1, "ya29.from-adc");
    let f = form(&oauth.requests()[0].body);
    verify_assertion(
        f.get("assertion").expect("assertion"),
        &public,
        &token_uri,
        s.tmp.path(),
    );
}

#[test]
fn refused_key_fails_in_one_line_without_the_body() {
    let s = Sandbox::new();
    let (pem, _) = rsa_key(s.tmp.path());
    let oauth = token_endpoint(
        400,
        r#"{"error":"invalid_grant","error_description":"SECRET-DESCRIPTION"}"#,
    );
    let key_path = s.tmp.path().join("sa.json");
    write(&key_path, &key_json(&pem, &oauth.url("/token")));
    let (out, took) = get(
        &s,
        "gcr.io/proj/img",
        &[
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", &closed_port()),
        ],
        &[],
    );
    let err = assert_one_line_failure(
        &out,
        &["SECRET-DESCRIPTION", "invalid_grant", "PRIVATE KEY"],
    );
    assert!(
        err.contains(&format!("GOOGLE_APPLICATION_CREDENTIALS {} ({EMAIL}): token request failed: HTTP 400; check that the key is not deleted or disabled", key_path.display())),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!oauth.requests().is_empty());
}

#[test]
fn broken_key_file_is_named() {
    let s = Sandbox::new();
    let key_path = s.tmp.path().join("sa.json");
    write(
        &key_path,
        r#"{"type":"service_account","client_email":"a@b","token_uri":"http://127.0.0.1:1/t","private_key":"-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----\n"}"#,
    );
    let (out, _) = get(
        &s,
        "gcr.io/proj/img",
        &[
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", &closed_port()),
        ],
        &[],
    );
    // A key that cannot sign is the operator's to fix: a configuration error, exit 2.
    let err = assert_one_line_exit(&out, 2, &["U0VDUkVU"]);
    assert!(
        err.contains(&format!(
            "GOOGLE_APPLICATION_CREDENTIALS {} (a@b)",
            key_path.display()
        )),
        "{err}"
    );
    assert!(err.contains("the private key is unusable"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Docker config from metadata.

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn dockercfg_attribute() {
    let s = Sandbox::new();
    let cfg_body = serde_json::json!({
        "registry.example.com": {"auth": b64("robot:s3cret-robot"), "email": "x@example.com"},
        "gcr.io": {"username": "_json_key", "password": "json-key-password"},
    })
    .to_string();
    let md = google::fake(move |r| {
        if r.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return json(403, "");
        }
        match r.path.as_str() {
            DOCKERCFG_PATH => json(200, &cfg_body),
            TOKEN_PATH => json(200, r#"{"access_token":"ya29.t","expires_in":3599}"#),
            _ => json(404, ""),
        }
    });
    let cfg = config(
        &s,
        "backends: [gcp, docker-config]\ngcp:\n  dockercfg: true\n",
    );
    let env = [("GCE_METADATA_HOST", md.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Any registry the attribute names, Google's or not; five minutes.
    let (out, _) = get(
        &s,
        "registry.example.com/app/x:1",
        &env,
        &["--config", &cfg],
    );
    let resp = stdout_json(&out);
    assert_eq!(
        creds(&resp, "registry.example.com"),
        ("robot".into(), "s3cret-robot".into())
    );
    assert_eq!(resp["cacheDuration"], "5m0s");
    assert_eq!(resp["cacheKeyType"], "Registry");
    // An entry for a Google host wins over the token.
    let (out, _) = get(&s, "gcr.io/p/i", &env, &["--config", &cfg]);
    assert_eq!(
        creds(&stdout_json(&out), "gcr.io"),
        ("_json_key".into(), "json-key-password".into())
    );
    // No entry: a Google host gets the token, anything else falls through to docker-config.
    let (out, _) = get(&s, "us-docker.pkg.dev/p/r/i", &env, &["--config", &cfg]);
    assert_eq!(creds(&stdout_json(&out), "us-docker.pkg.dev").1, "ya29.t");
    let (out, _) = get(&s, "quay.io/org/img", &env, &["--config", &cfg]);
    assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}));

    let paths: Vec<String> = md.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            DOCKERCFG_PATH,
            DOCKERCFG_PATH,
            DOCKERCFG_PATH,
            TOKEN_PATH,
            DOCKERCFG_PATH
        ]
    );
}

#[test]
fn dockercfg_url_is_fetched_without_the_metadata_header() {
    let s = Sandbox::new();
    let store = google::fake(|r| {
        if r.path.starts_with("/cfg.json") {
            json(
                200,
                &format!(
                    r#"{{"reg.example.com:5000": {{"auth": "{}"}}}}"#,
                    b64("u:from-url")
                ),
            )
        } else {
            json(500, r#"{"detail":"SECRET-STORE-BODY"}"#)
        }
    });
    let good = store.url("/cfg.json?X-Goog-Signature=SECRETSIG");
    let bad = store.url("/broken?X-Goog-Signature=SECRETSIG");
    let value = Arc::new(Mutex::new(good));
    let md = {
        let value = value.clone();
        google::fake(move |r| match r.path.as_str() {
            DOCKERCFG_URL_PATH => json(200, &format!("{}\n", value.lock().expect("lock"))),
            _ => json(404, ""),
        })
    };
    let cfg = config(&s, "gcp:\n  dockercfg: true\n");
    let env = [("GCE_METADATA_HOST", md.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let (out, _) = get(&s, "reg.example.com:5000/app", &env, &["--config", &cfg]);
    assert_eq!(
        creds(&stdout_json(&out), "reg.example.com:5000"),
        ("u".into(), "from-url".into())
    );
    let fetched = store.requests();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].path, "/cfg.json?X-Goog-Signature=SECRETSIG");
    assert!(
        !fetched[0].headers.contains_key("metadata-flavor"),
        "{fetched:?}"
    );
    let asked: Vec<String> = md.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(asked, [DOCKERCFG_PATH, DOCKERCFG_URL_PATH]);
    assert!(md
        .requests()
        .iter()
        .all(|r| r.headers.get("metadata-flavor").map(String::as_str) == Some("Google")));

    // The URL answers 500: one line, the URL without its query, no body.
    *value.lock().expect("lock") = bad;
    let (out, _) = get(&s, "reg.example.com:5000/app", &env, &["--config", &cfg]);
    let err = assert_one_line_failure(&out, &["SECRETSIG", "SECRET-STORE-BODY"]);
    assert!(
        err.contains(&format!(
            "google-dockercfg-url {}: answered 500",
            store.url("/broken")
        )),
        "{err}"
    );

    // Not http(s).
    *value.lock().expect("lock") = "gs://bucket/cfg.json".into();
    let (out, _) = get(&s, "reg.example.com:5000/app", &env, &["--config", &cfg]);
    let err = assert_one_line_failure(&out, &[]);
    assert!(
        err.contains("only http:// and https:// URLs are supported"),
        "{err}"
    );
}

#[test]
fn dockercfg_needs_the_metadata_server() {
    let s = Sandbox::new();
    let cfg = config(&s, "gcp:\n  dockercfg: true\n");
    let (out, took) = get(
        &s,
        "registry.example.com/x",
        &[("GCE_METADATA_HOST", &closed_port())],
        &["--config", &cfg],
    );
    let err = assert_one_line_failure(&out, &[]);
    assert!(err.contains("google-dockercfg"), "{err}");
    assert!(
        err.contains("gcp.dockercfg: true needs the metadata server"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

// ---------------------------------------------------------------------------------------
// KEP-4412: service-account tokens exchanged at (fake) Google STS, optionally impersonating
// a Google service account at a (fake) IAM credentials API, both on one fake server.

const STS_PATH: &str = "/v1/token";
const OPT_IN: &str = "iam.gke.io/enable-wi-image-pull";
const GSA: &str = "iam.gke.io/gcp-service-account";
const PROVIDER: &str =
    "https://container.googleapis.com/v1/projects/my-project/locations/us-central1/clusters/c1";
const AUDIENCE: &str = "my-project.svc.id.goog";

/// `namespace/name` of the service account a token was minted for (its `sub`).
fn token_subject(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    claims["sub"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("system:serviceaccount:")
        .replace(':', "/")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time.
fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil from days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A fake Google: STS hands out `fed-<namespace>/<name>` for a subject token (after
/// `delay`), IAM credentials `gsa-<email>` to a bearer `fed-...` token, the metadata server
/// its project ID and a node token `ya29.node`.
fn fake_google(delay: Duration) -> Fake {
    google::fake(move |r| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", STS_PATH) => {
                std::thread::sleep(delay);
                let subject = token_subject(body["subject_token"].as_str().unwrap_or_default());
                json(
                    200,
                    &format!(
                        r#"{{"access_token":"fed-{subject}","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3599}}"#
                    ),
                )
            }
            ("POST", p) if p.ends_with(":generateAccessToken") => {
                let bearer = r.headers.get("authorization").cloned().unwrap_or_default();
                if !bearer.starts_with("Bearer fed-") {
                    return json(401, r#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#);
                }
                let email = p
                    .trim_start_matches("/v1/projects/-/serviceAccounts/")
                    .trim_end_matches(":generateAccessToken");
                json(
                    200,
                    &format!(
                        r#"{{"accessToken":"gsa-{email}","expireTime":"{}"}}"#,
                        rfc3339(unix_now() + 3599)
                    ),
                )
            }
            ("GET", "/computeMetadata/v1/project/project-id") => json(200, "meta-project"),
            ("GET", TOKEN_PATH) => json(
                200,
                r#"{"access_token":"ya29.node","expires_in":3599,"token_type":"Bearer"}"#,
            ),
            _ => json(404, "{}"),
        }
    })
}

/// A plugin config whose workload identity endpoints point at `fake`; `extra` is added to the
/// `workloadIdentity` section, `top` to the `gcp` one.
fn wi_config(s: &Sandbox, fake: &Fake, workload: &str, top: &str) -> String {
    config(
        s,
        &format!(
            "gcp:\n{top}  workloadIdentity:\n    stsEndpoint: {}\n    iamCredentialsEndpoint: {}\n{workload}",
            fake.url(STS_PATH),
            fake.url("")
        ),
    )
}

fn gke(project: bool) -> String {
    let project = if project {
        "    projectId: my-project\n"
    } else {
        ""
    };
    format!("{project}    identityProvider: {PROVIDER}\n")
}

/// One token-mode run, with the cache in the sandbox unless `args` says otherwise.
fn sa_run(s: &Sandbox, fake: &Fake, cfg: &str, req: &str, args: &[&str]) -> Output {
    let mut cmd = s.command(&[&["--config", cfg][..], args].concat());
    cmd.env("GCE_METADATA_HOST", fake.host());
    run_with(cmd, req.as_bytes())
}

fn requests_to(fake: &Fake, path_end: &str) -> Vec<Req> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.ends_with(path_end))
        .collect()
}

#[test]
fn an_opted_in_token_is_exchanged_at_sts_with_the_right_audience() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    let cfg = wi_config(&s, &fake, &gke(true), "");
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = sa_request("us-docker.pkg.dev/p/r/i", &token, &[(OPT_IN, "true")]);
    let out = sa_run(&s, &fake, &cfg, &req, &["-vvv"]);
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheKeyType"], "Registry");
    assert_eq!(
        creds(&resp, "us-docker.pkg.dev"),
        ("oauth2accesstoken".into(), "fed-team/puller".into())
    );
    assert!(
        lifetime_range(3599).contains(&go_secs(resp["cacheDuration"].as_str().unwrap_or_default())),
        "{resp}"
    );
    let sts = requests_to(&fake, STS_PATH);
    assert_eq!(sts.len(), 1, "{:?}", fake.requests());
    assert_eq!(sts[0].method, "POST");
    assert_eq!(sts[0].headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&sts[0].body).expect("JSON body");
    assert_eq!(body["subject_token"], token.as_str());
    assert_eq!(
        body["audience"],
        format!("identitynamespace:my-project.svc.id.goog:{PROVIDER}")
    );
    assert_eq!(
        body["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(
        body["subject_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(
        body["requested_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(
        body["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    // Neither the node's token nor impersonation.
    assert!(requests_to(&fake, TOKEN_PATH).is_empty());
    assert!(requests_to(&fake, ":generateAccessToken").is_empty());
    crate::common::assert_token_not_shown(&token, &out, Some(&s.cache));
}

#[test]
fn a_google_service_account_is_impersonated_when_annotated() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    // No projectId: the metadata server's project.
    let cfg = wi_config(&s, &fake, &gke(false), "");
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let email = "puller@my-project.iam.gserviceaccount.com";
    let req = sa_request("gcr.io/p/i", &token, &[(OPT_IN, "true"), (GSA, email)]);
    let out = sa_run(&s, &fake, &cfg, &req, &["-vvv"]);
    let resp = stdout_json(&out);
    assert_eq!(creds(&resp, "gcr.io").1, format!("gsa-{email}"));
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(lifetime_range(3599).contains(&secs), "{resp}");
    let body: serde_json::Value =
        serde_json::from_slice(&requests_to(&fake, STS_PATH)[0].body).expect("JSON");
    assert_eq!(
        body["audience"],
        format!("identitynamespace:meta-project.svc.id.goog:{PROVIDER}")
    );
    let iam = requests_to(&fake, ":generateAccessToken");
    assert_eq!(iam.len(), 1);
    assert_eq!(
        iam[0].path,
        format!("/v1/projects/-/serviceAccounts/{email}:generateAccessToken")
    );
    assert_eq!(iam[0].headers["authorization"], "Bearer fed-team/puller");
    let body: serde_json::Value = serde_json::from_slice(&iam[0].body).expect("JSON");
    assert_eq!(
        body["scope"][0],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    crate::common::assert_token_not_shown(&token, &out, Some(&s.cache));
    // The federated token is an intermediate: not in the answer, the logs or the cache.
    crate::common::assert_token_nowhere(
        "fed-team/puller",
        &[("stderr", &out.stderr), ("stdout", &out.stdout)],
        Some(&s.cache),
    );
}

#[test]
fn an_opted_in_failure_exits_1_without_the_token_or_a_fallback() {
    let s = Sandbox::new();
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = sa_request("us-docker.pkg.dev/p/r/i", &token, &[(OPT_IN, "true")]);
    // STS refuses, with a description that must not be quoted.
    let refusing = google::fake(|r| match r.path.as_str() {
        STS_PATH => json(
            400,
            r#"{"error":"invalid_grant","error_description":"description-canary: claim aud"}"#,
        ),
        _ => json(
            200,
            r#"{"access_token":"ya29.node","expires_in":3599,"token_type":"Bearer"}"#,
        ),
    });
    let cfg = wi_config(&s, &refusing, &gke(true), "");
    let traced = sa_run(&s, &refusing, &cfg, &req, &["-vvv"]);
    assert_eq!(traced.status.code(), Some(1));
    crate::common::assert_token_nowhere(&token, &[("stderr", &traced.stderr)], Some(&s.cache));
    assert!(!stderr(&traced).contains("description-canary"));
    let out = sa_run(&s, &refusing, &cfg, &req, &[]);
    let line = assert_one_line_failure(&out, &[&token, "description-canary"]);
    assert!(
        line.contains("no access token for us-docker.pkg.dev: STS token exchange at http://")
            && line.contains("refused with HTTP 400 invalid_grant")
            && line.contains("serviceAccountTokenAudience"),
        "{line}"
    );
    assert!(
        requests_to(&refusing, TOKEN_PATH).is_empty(),
        "fell back to the node"
    );
    crate::common::assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
    // STS unreachable.
    let fake = fake_google(Duration::ZERO);
    let cfg = config(
        &s,
        &format!(
            "gcp:\n  workloadIdentity:\n    audience: //iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k\n    stsEndpoint: http://{}/v1/token\n",
            closed_port()
        ),
    );
    let out = sa_run(&s, &fake, &cfg, &req, &[]);
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(
        line.contains("STS token exchange")
            && line.contains("check that the node reaches Google APIs"),
        "{line}"
    );
    assert!(fake.requests().is_empty(), "fell back to the node");
    // Opted in, but the plugin has no workload identity settings.
    let cfg = config(&s, "gcp:\n  mirrors: []\n");
    let out = sa_run(&s, &fake, &cfg, &req, &[]);
    let line = assert_misconfigured(&out, &[&token]);
    assert!(
        line.contains("gcp.workloadIdentity is not configured"),
        "{line}"
    );
    // A malformed Google service account annotation.
    let cfg = wi_config(&s, &fake, &gke(true), "");
    let bad = sa_request(
        "gcr.io/p/i",
        &token,
        &[(OPT_IN, "true"), (GSA, "puller/../x")],
    );
    let line = assert_misconfigured(&sa_run(&s, &fake, &cfg, &bad, &[]), &[&token]);
    assert!(
        line.contains("is not a Google service account e-mail"),
        "{line}"
    );
    assert!(fake.requests().is_empty());
    // Impersonation refused: named, no fallback to the federated token.
    let denying = google::fake(|r| match r.path.as_str() {
        STS_PATH => json(200, r#"{"access_token":"fed-x","expires_in":3599}"#),
        _ => json(
            403,
            r#"{"error":{"code":403,"message":"iam-canary","status":"PERMISSION_DENIED"}}"#,
        ),
    });
    let cfg = wi_config(&s, &denying, &gke(true), "");
    let req = sa_request(
        "gcr.io/p/i",
        &token,
        &[(OPT_IN, "true"), (GSA, "a@p.iam.gserviceaccount.com")],
    );
    let line = assert_one_line_failure(
        &sa_run(&s, &denying, &cfg, &req, &[]),
        &[&token, "iam-canary", "fed-x"],
    );
    assert!(
        line.contains("impersonation of a@p.iam.gserviceaccount.com")
            && line.contains("HTTP 403 PERMISSION_DENIED")
            && line.contains("roles/iam.workloadIdentityUser"),
        "{line}"
    );
}

#[test]
fn a_token_without_opt_in_uses_the_node_unless_told_not_to() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = sa_request(
        "gcr.io/p/i",
        &token,
        &[(GSA, "a@p.iam.gserviceaccount.com")],
    );
    let cfg = wi_config(&s, &fake, &gke(true), "");
    let out = sa_run(&s, &fake, &cfg, &req, &["--no-cache"]);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.node");
    assert!(requests_to(&fake, STS_PATH).is_empty());
    // The same without any workload identity settings.
    let out = sa_run(&s, &fake, &config(&s, ""), &req, &["--no-cache"]);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.node");
    // optIn: all exchanges it anyway.
    let cfg = wi_config(&s, &fake, &format!("{}    optIn: all\n", gke(true)), "");
    let out = sa_run(&s, &fake, &cfg, &req, &["--no-cache"]);
    assert_eq!(
        creds(&stdout_json(&out), "gcr.io").1,
        "gsa-a@p.iam.gserviceaccount.com"
    );
    // nodeIdentityFallback: false fails, saying how to opt in.
    let cfg = wi_config(&s, &fake, &gke(true), "  nodeIdentityFallback: false\n");
    let before = fake.requests().len();
    let line = assert_misconfigured(&sa_run(&s, &fake, &cfg, &req, &[]), &[&token]);
    assert!(
        line.contains(OPT_IN) && line.contains("nodeIdentityFallback"),
        "{line}"
    );
    assert_eq!(fake.requests().len(), before);
}

#[test]
fn service_accounts_have_their_own_cache_entries() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    let cfg = wi_config(&s, &fake, &gke(true), "");
    let run = |token: &str| {
        let req = sa_request("us-docker.pkg.dev/p/r/i", token, &[(OPT_IN, "true")]);
        let out = sa_run(&s, &fake, &cfg, &req, &[]);
        crate::common::assert_token_nowhere(
            token,
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
            Some(&s.cache),
        );
        creds(&stdout_json(&out), "us-docker.pkg.dev").1
    };
    let sts = || requests_to(&fake, STS_PATH).len();
    assert_eq!(
        run(&sa_token(AUDIENCE, "team", "a", "uid-a", 1)),
        "fed-team/a"
    );
    assert_eq!(sts(), 1);
    assert_eq!(
        run(&sa_token(AUDIENCE, "team", "b", "uid-b", 2)),
        "fed-team/b"
    );
    assert_eq!(sts(), 2, "another service account needs its own exchange");
    // Fresh tokens of the same service accounts: served from the cache.
    assert_eq!(
        run(&sa_token(AUDIENCE, "team", "a", "uid-a", 3)),
        "fed-team/a"
    );
    assert_eq!(
        run(&sa_token(AUDIENCE, "team", "b", "uid-b", 4)),
        "fed-team/b"
    );
    assert_eq!(sts(), 2, "a fresh token of a known service account missed");
    // Another namespace, same name: its own.
    assert_eq!(
        run(&sa_token(AUDIENCE, "other", "a", "uid-c", 5)),
        "fed-other/a"
    );
    assert_eq!(sts(), 3);
}

/// Many processes at once for two service accounts (the kubelet's per-image single-flight
/// lets them through): one exchange per service account, each gets its own credential.
#[test]
fn concurrent_requests_make_one_exchange_per_service_account() {
    let fake = fake_google(Duration::from_millis(400));
    let s = Sandbox::new();
    let cfg = wi_config(&s, &fake, &gke(true), "");
    let children: Vec<(&str, std::process::Child)> = (0..64u32)
        .map(|i| {
            let name = if i % 2 == 0 { "a" } else { "b" };
            let token = sa_token(AUDIENCE, "team", name, &format!("uid-{name}"), 100 + i);
            let req = sa_request(
                &format!("us-docker.pkg.dev/p/r/img{i}"),
                &token,
                &[(OPT_IN, "true")],
            );
            let mut cmd = s.command(&["--config", cfg.as_str()]);
            cmd.env("GCE_METADATA_HOST", fake.host());
            let mut c = cmd.spawn().expect("spawn");
            c.stdin
                .take()
                .expect("stdin")
                .write_all(req.as_bytes())
                .expect("write");
            (name, c)
        })
        .collect();
    for (name, c) in children {
        let out = c.wait_with_output().expect("wait");
        assert_eq!(
            creds(&stdout_json(&out), "us-docker.pkg.dev").1,
            format!("fed-team/{name}"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        requests_to(&fake, STS_PATH).len(),
        2,
        "one exchange per service account"
    );
}

#[test]
fn google_apis_are_reached_through_https_proxy_and_the_metadata_server_directly() {
    let fake = fake_google(Duration::ZERO);
    let (port, seen) = crate::common::proxy::refusing();
    let s = Sandbox::new();
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = sa_request("us-docker.pkg.dev/p/r/i", &token, &[(OPT_IN, "true")]);
    // One token-mode run against `sts`, with `proxy_env` set; its one-line failure.
    let sts_run = |sts: &str, proxy_env: &[(&str, String)]| {
        let cfg = config(
            &s,
            &format!("gcp:\n  workloadIdentity:\n    projectId: my-project\n    identityProvider: {PROVIDER}\n    stsEndpoint: {sts}\n"),
        );
        let mut cmd = s.command(&["--config", &cfg]);
        cmd.env("GCE_METADATA_HOST", fake.host());
        for (k, v) in proxy_env {
            cmd.env(k, v);
        }
        assert_one_line_failure(
            &run_with(cmd, req.as_bytes()),
            &[&token, "pa ss", "pa%20ss"],
        )
    };

    // An STS endpoint under .invalid, which never resolves: if the proxy were skipped the
    // request would fail at DNS instead of leaving the machine. The proxy refuses. Its
    // credentials go in Proxy-Authorization and nowhere else (checked on stderr above).
    let line = sts_run(
        "https://sts.example.invalid/v1/token",
        &[
            (
                "HTTPS_PROXY",
                format!("http://user:pa%20ss@127.0.0.1:{port}"),
            ),
            ("NO_PROXY", "metadata.google.internal".into()),
        ],
    );
    assert!(
        line.contains("STS token exchange at https://sts.example.invalid/v1/token"),
        "{line}"
    );
    let head = crate::common::proxy::first_connect(&seen, "sts.example.invalid:443");
    // base64("user:pa ss")
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic dxnlcjpwysbzcw=="),
        "{head}"
    );
    assert!(
        !head.contains(&token),
        "the token went to the proxy in clear"
    );
    while seen.recv_timeout(Duration::from_millis(300)).is_ok() {} // the retry's CONNECT

    // A host NO_PROXY names, and plain http (loopback endpoints), are dialled directly:
    // nothing listens there, and the proxy sees nothing.
    let closed = closed_port(); // 127.0.0.1:port
    let closed_port_only = closed.rsplit(':').next().unwrap_or_default();
    let proxies = || {
        vec![
            ("HTTPS_PROXY", format!("http://127.0.0.1:{port}")),
            ("HTTP_PROXY", format!("http://127.0.0.1:{port}")),
            ("NO_PROXY", "localhost".into()),
        ]
    };
    for sts in [
        format!("https://localhost:{closed_port_only}/v1/token"),
        format!("http://{closed}/v1/token"),
    ] {
        let line = sts_run(&sts, &proxies());
        assert!(line.contains("refused"), "{sts}: {line}");
    }

    // A node-identity answer (metadata server, plain HTTP) does not go through the proxy.
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("GCE_METADATA_HOST", fake.host());
    for (k, v) in proxies() {
        cmd.env(k, v);
    }
    let out = run_with(
        cmd,
        request(
            "credentialprovider.kubelet.k8s.io/v1",
            "us-docker.pkg.dev/p/r/i",
        )
        .as_bytes(),
    );
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev"),
        ("oauth2accesstoken".into(), "ya29.node".into())
    );
    assert!(seen.try_recv().is_err(), "the proxy was used");
}

#[test]
fn workload_identity_over_real_tls() {
    let fake = fake_google(Duration::ZERO);
    let s = Sandbox::new();
    let dir = s.tmp.path();
    let ca = |name: &str| crate::common::tls::ca(dir, name);
    ca("ca");
    crate::common::tls::server_cert(dir, "ca", "IP:127.0.0.1");
    let port =
        crate::common::tls::tls_front(&dir.join("srv.pem"), &dir.join("srv.key"), fake.host());
    let cfg = config(
        &s,
        &format!(
            "gcp:\n  workloadIdentity:\n    stsEndpoint: https://127.0.0.1:{port}{STS_PATH}\n    iamCredentialsEndpoint: https://127.0.0.1:{port}\n{}",
            gke(true)
        ),
    );
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    let req = sa_request(
        "us-docker.pkg.dev/p/r/i",
        &token,
        &[(OPT_IN, "true"), (GSA, "puller@p.iam.gserviceaccount.com")],
    );
    let run = |ca: Option<&Path>| {
        let mut cmd = s.command(&["--config", &cfg, "--no-cache"]);
        cmd.env("GCE_METADATA_HOST", fake.host());
        if let Some(ca) = ca {
            cmd.env("SSL_CERT_FILE", ca);
        }
        run_with(cmd, req.as_bytes())
    };
    // Trusting the test CA: STS, then IAM impersonation, both over TLS.
    let out = run(Some(&dir.join("ca.pem")));
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev"),
        (
            "oauth2accesstoken".into(),
            "gsa-puller@p.iam.gserviceaccount.com".into()
        )
    );
    assert_eq!(requests_to(&fake, STS_PATH).len(), 1);
    assert_eq!(requests_to(&fake, ":generateAccessToken").len(), 1);
    // Not trusting it: refused at the handshake, nothing reaches the fake.
    let before = fake.requests().len();
    ca("other");
    let out = run(Some(&dir.join("other.pem")));
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(
        line.contains("STS token exchange")
            && line.contains("UnknownIssuer")
            && line.contains("SSL_CERT_FILE"),
        "{line}"
    );
    assert_eq!(
        fake.requests().len(),
        before,
        "a request went through an untrusted TLS"
    );
}

// ---------------------------------------------------------------------------------------
// Drop-in: the binary under auth-provider-gcp's names, with every shipped GCP config.

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

/// A key file's token is fetched through the proxy `HTTPS_PROXY` names, and only it: the
/// token endpoint's host does not resolve, so the answer can only come through the tunnel,
/// and TLS inside the tunnel is checked against the test CA (`SSL_CERT_FILE`).
#[test]
fn key_file_token_through_an_https_proxy() {
    const HOST: &str = "oauth2.keyring-test.invalid";
    let s = Sandbox::new();
    let dir = s.tmp.path();
    crate::common::tls::ca(dir, "ca");
    crate::common::tls::server_cert(dir, "ca", &format!("DNS:{HOST}"));
    let oauth = token_endpoint(
        200,
        r#"{"access_token":"ya29.via-proxy","expires_in":3600,"token_type":"Bearer"}"#,
    );
    let front =
        crate::common::tls::tls_front(&dir.join("srv.pem"), &dir.join("srv.key"), oauth.host());
    let (proxy, seen) = crate::common::proxy::tunnelling(front);
    let (pem, public) = rsa_key(dir);
    let token_uri = format!("https://{HOST}/token");
    let key_path = dir.join("sa.json");
    write(&key_path, &key_json(&pem, &token_uri));
    let ca = dir.join("ca.pem");
    let run = |extra: &[(&str, &str)]| {
        let mut env = vec![
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", "127.0.0.1:9"),
            ("SSL_CERT_FILE", ca.to_str().expect("utf-8")),
        ];
        env.extend_from_slice(extra);
        get(&s, "gcr.io/proj/img", &env, &[]).0
    };
    let proxy_url = format!("http://127.0.0.1:{proxy}");

    let out = run(&[("HTTPS_PROXY", &proxy_url)]);
    assert_eq!(
        creds(&stdout_json(&out), "gcr.io"),
        ("oauth2accesstoken".into(), "ya29.via-proxy".into()),
        "{}",
        stderr(&out)
    );
    crate::common::proxy::first_connect(&seen, &format!("{HOST}:443"));
    let reqs = oauth.requests();
    assert_eq!(reqs.len(), 1);
    let f = form(&reqs[0].body);
    verify_assertion(
        f.get("assertion").expect("assertion"),
        &public,
        &token_uri,
        dir,
    );

    // Lower case works the same.
    let out = run(&[("https_proxy", &proxy_url)]);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.via-proxy");
    assert!(seen.recv_timeout(Duration::from_secs(5)).is_ok());

    // NO_PROXY names the host: dialled directly, where it does not resolve; the proxy sees
    // nothing.
    let out = run(&[("HTTPS_PROXY", &proxy_url), ("NO_PROXY", HOST)]);
    let line = assert_one_line_failure(&out, &["ya29"]);
    assert!(
        line.contains(&format!("token request to https://{HOST}/token failed")),
        "{line}"
    );
    assert!(
        seen.try_recv().is_err(),
        "the proxy was used despite NO_PROXY"
    );
    assert_eq!(oauth.requests().len(), 2);
}

/// gcloud's `authorized_user` credentials: the refresh token is redeemed at the file's
/// `token_uri` (Google's endpoint when it names none), and never shown.
#[test]
fn gcloud_user_credentials_are_redeemed() {
    let s = Sandbox::new();
    let oauth = token_endpoint(200, r#"{"access_token":"ya29.user","expires_in":3599}"#);
    google::write_gcloud_user(&s.home, &oauth.url("/token"), "1//refresh-SECRET");
    let (out, _) = get(
        &s,
        "gcr.io/proj/img",
        &[("GCE_METADATA_HOST", &closed_port())],
        &[],
    );
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.user");
    assert!(!stderr(&out).contains("SECRET"));
    let f = form(&oauth.requests()[0].body);
    assert_eq!(
        f.get("grant_type").map(String::as_str),
        Some("refresh_token")
    );
    assert_eq!(
        f.get("refresh_token").map(String::as_str),
        Some("1//refresh-SECRET")
    );
    assert_eq!(f.get("client_secret").map(String::as_str), Some("csecret"));
}

// ---------------------------------------------------------------------------------------
// Drop-in fidelity (issue 22): under auth-provider-gcp's names the binary answers as
// upstream does (cmd/auth-provider-gcp, pkg/gcpcredential), or keeps a documented
// difference, pinned here.

/// The binary installed as `auth-provider-gcp` (a symlink, as the packages do), run the
/// kubelet's way: `args` only (no flag of ours), the sandbox's environment with our
/// directories by their variables, plus `env`.
fn as_upstream(s: &Sandbox, args: &[&str], env: &[(&str, &str)], req: &str) -> Output {
    let bin = s
        .bin_dir_with("auth-provider-gcp")
        .join("auth-provider-gcp");
    let mut cmd = Command::new(bin);
    cmd.current_dir(&s.cwd)
        .env_clear()
        .env("HOME", &s.home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBELET_KEYRING_ROOT_DIR", &s.root)
        .env("KUBELET_KEYRING_CACHE_DIR", &s.cache)
        .env("KUBELET_KEYRING_NO_CACHE", "1")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with(cmd, req.as_bytes())
}

/// The `auth` keys of a response, sorted.
fn auth_keys(resp: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = resp["auth"]
        .as_object()
        .map(|a| a.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
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

/// A metadata server with the `google-dockercfg` attribute, the `google-dockercfg-url`
/// attribute (pointing at `url`, when given) and a token, each only as `serve` lists them.
fn dockercfg_metadata(attribute: Option<String>, url: Option<String>) -> Fake {
    google::fake(move |r| {
        if r.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return json(403, "");
        }
        match (r.path.as_str(), &attribute, &url) {
            (DOCKERCFG_PATH, Some(body), _) => json(200, body),
            (DOCKERCFG_URL_PATH, _, Some(u)) => json(200, u),
            (TOKEN_PATH, _, _) => json(200, r#"{"access_token":"ya29.t","expires_in":3599}"#),
            _ => json(404, ""),
        }
    })
}

/// Point 9: `--authFlow=dockercfg` reads the `google-dockercfg` attribute and nothing else,
/// `dockercfg-url` the document `google-dockercfg-url` names and nothing else; either
/// answers every entry of it for any image (the kubelet matches), never a token, even for a
/// Google registry no entry names; an attribute that is not set is an empty answer.
#[test]
fn upstream_dockercfg_flows_read_one_attribute_and_answer_the_whole_document_never_a_token() {
    let s = Sandbox::new();
    let doc = serde_json::json!({
        "registry.example.com": {"auth": b64("robot:s3cret-robot")},
        "gcr.io/team": {"username": "_json_key", "password": "json-key-password"},
    })
    .to_string();
    let store = {
        let doc = doc.clone();
        google::fake(move |r| match r.path.as_str() {
            "/cfg.json" => json(200, &doc),
            _ => json(404, ""),
        })
    };
    let both = dockercfg_metadata(Some(doc.clone()), Some(store.url("/cfg.json")));
    let host = both.host();
    let env = [("GCE_METADATA_HOST", host.as_str())];
    for (flow, asked) in [
        ("dockercfg", DOCKERCFG_PATH),
        ("dockercfg-url", DOCKERCFG_URL_PATH),
    ] {
        for image in ["quay.io/org/img", "us-docker.pkg.dev/p/r/i"] {
            let before = both.requests().len();
            let out = as_upstream(
                &s,
                &["get-credentials", "--authFlow", flow],
                &env,
                &request(V1, image),
            );
            let resp = stdout_json(&out);
            assert_eq!(
                auth_keys(&resp),
                ["gcr.io/team", "registry.example.com"],
                "{flow} {image}: {resp}"
            );
            assert_eq!(
                creds(&resp, "registry.example.com"),
                ("robot".into(), "s3cret-robot".into())
            );
            assert_eq!(resp["cacheKeyType"], "Image", "{flow}");
            let paths: Vec<String> = both.requests()[before..]
                .iter()
                .map(|r| r.path.clone())
                .collect();
            assert_eq!(paths, [asked], "{flow} {image}");
        }
    }
    // Not set: an empty answer (exit 0), and still no token for a Google registry.
    let bare = dockercfg_metadata(None, None);
    let bare_host = bare.host();
    for flow in ["dockercfg", "dockercfg-url"] {
        let out = as_upstream(
            &s,
            &["get-credentials", "-a", flow],
            &[("GCE_METADATA_HOST", bare_host.as_str())],
            &request(V1, "gcr.io/p/i"),
        );
        assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}), "{flow}");
    }
    assert!(
        bare.requests().iter().all(|r| r.path != TOKEN_PATH),
        "{:?}",
        bare.requests()
    );
    // Our own name, same flag: the matching entry only, and the token where none matches.
    let (out, _) = get(
        &s,
        "us-docker.pkg.dev/p/r/i",
        &env,
        &["get-credentials", "--authFlow=dockercfg"],
    );
    assert_eq!(auth_keys(&stdout_json(&out)), ["us-docker.pkg.dev"]);
}

/// Point 8, the other flows: `KUBE_SIDECAR_CACHE_DURATION` and `KUBE_SIDECAR_CACHE_TYPE`
/// apply to the docker config answers as to the token (upstream's `GetResponse` applies both
/// to every flow).
#[test]
fn upstream_the_sidecar_variables_apply_to_the_docker_config_flows_too() {
    let s = Sandbox::new();
    let doc = serde_json::json!({"registry.example.com": {"auth": b64("u:p")}}).to_string();
    let md = dockercfg_metadata(Some(doc), None);
    let host = md.host();
    let out = as_upstream(
        &s,
        &["get-credentials", "--authFlow=dockercfg"],
        &[
            ("GCE_METADATA_HOST", host.as_str()),
            ("KUBE_SIDECAR_CACHE_DURATION", "1m"),
            ("KUBE_SIDECAR_CACHE_TYPE", "global"),
        ],
        &request(V1, "registry.example.com/app"),
    );
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheKeyType"], "Global");
    // One minute, less at most 10% of the cache's refresh jitter.
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!((54..=60).contains(&secs), "{resp}");
    // The token flow: capped the same way.
    let out = as_upstream(
        &s,
        &["get-credentials"],
        &[
            ("GCE_METADATA_HOST", host.as_str()),
            ("KUBE_SIDECAR_CACHE_DURATION", "1m"),
        ],
        &request(V1, "gcr.io/p/i"),
    );
    let secs = go_secs(
        stdout_json(&out)["cacheDuration"]
            .as_str()
            .unwrap_or_default(),
    );
    assert!((54..=60).contains(&secs), "{secs}");
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
/// (tests/gcp.rs an_opted_in_failure_exits_1_without_the_token_or_a_fallback).
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
