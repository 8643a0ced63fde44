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
//!
//! One file per topic: `metadata`, `key_files`, `dockercfg`, `workload_identity` (KEP-4412),
//! `external_account`, `drop_in` and `drop_in_dockercfg` (under auth-provider-gcp's names);
//! this one holds their shared helpers.
#![cfg(feature = "gcp")]

mod dockercfg;
mod drop_in;
mod drop_in_dockercfg;
mod external_account;
mod key_files;
mod metadata;
mod workload_identity;

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
// A fake Google STS and IAM credentials API, for service-account tokens (workload_identity,
// drop_in) and external account files.

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

// ---------------------------------------------------------------------------------------
// Helpers that more than one file of this module needs.

/// Standard base64 of `s`.
fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
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
