//! Black-box tests of the ECR backend: the real binary against a real ECR API (`moto_server`
//! on 127.0.0.1, started per test on a free port and killed on drop), with fake AWS
//! credentials and IMDS disabled.
//!
//! moto 5.2 has no ECR Public and cannot be told to throttle, so those cases use a small
//! in-process fake speaking the same AWS JSON protocol. moto's ECR tokens carry a fixed
//! expiry, 2015-01-01T00:00:00Z; instead of patching moto, every run of the binary here
//! stands its clock ([`TEST_NOW`], a debug build's `KUBELET_KEYRING_TEST_NOW`) 12 h before
//! that, so moto's tokens are fresh 12 h tokens, and the fakes date theirs from it too.
//!
//! The moto tests are peer tests (`#[ignore = "needs moto_server"]`, see `crate::common`): run
//! with `--include-ignored`, a missing `moto_server` fails them; the in-process fakes always run.
//!
//! One file per topic: `registries`, `public`, `failures`, `cache`, `service_accounts`
//! (KEP-4412), `shipped_configs`, `drop_in` and `credentials` (under upstream's name); this one
//! holds their shared helpers.

mod cache;
mod credentials;
mod drop_in;
mod failures;
mod public;
mod registries;
mod service_accounts;
mod shipped_configs;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::http::{silent, Fake, Reply, Req};
use crate::common::moto::Moto;
use crate::common::proxy;
use crate::common::*;
use base64::Engine as _;
use keyring_api::clock::TEST_NOW_ENV;

const ACCOUNT: &str = "123456789012";
/// The fake credentials; the secret parts are canaries that must never show up on stderr.
const ACCESS_KEY: &str = "testing";
const SECRET_KEY: &str = "secret-canary-3f9a1c";
const SESSION_TOKEN: &str = "session-canary-b7e204";
/// moto's fixed token expiry (2015-01-01T00:00:00Z, moto_server run with TZ=UTC).
const MOTO_EXPIRES: u64 = 1_420_070_400;
/// The binary's clock in every run here: 12 h before [`MOTO_EXPIRES`].
const TEST_NOW: u64 = MOTO_EXPIRES - 12 * 3600;
/// What the kubelet is told for a fresh 12 h token: the one rule (expiry less 5 min), less
/// up to 10 % refresh jitter from the cache layer.
const LIFETIME_12H: std::ops::RangeInclusive<u64> = ((12 * 3600 - 300) * 9 / 10)..=12 * 3600 - 300;
/// The invocation's budget, which one ECR call may take whole; the kubelet's is 60 s.
const DEADLINE: Duration = Duration::from_secs(50);

// ---------------------------------------------------------------------------------------
// moto_server.

/// What the ECR tests read from moto (see `crate::common::moto`).
impl Moto {
    /// The Authorization headers of the GetAuthorizationToken calls moto has seen.
    fn token_calls(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.path().join("recording.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| {
                header(r, "x-amz-target").is_some_and(|t| t.ends_with(".GetAuthorizationToken"))
            })
            .map(|r| header(&r, "authorization").unwrap_or_default())
            .collect()
    }

    /// The AssumeRoleWithWebIdentity calls moto has seen, as their form parameters.
    fn assume_role_calls(&self) -> Vec<BTreeMap<String, String>> {
        let text =
            std::fs::read_to_string(self.dir.path().join("recording.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|r| {
                let body = r["body"].as_str()?;
                let body = if r["body_encoded"].as_bool() == Some(true) {
                    String::from_utf8(
                        base64::engine::general_purpose::STANDARD
                            .decode(body)
                            .ok()?,
                    )
                    .ok()?
                } else {
                    body.to_string()
                };
                let form = crate::common::form(&body);
                (form.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity"))
                    .then_some(form)
            })
            .collect()
    }

    /// GetAuthorizationToken straight from moto, decoded here: (user, password, expiresAt).
    fn direct_token(&self, region: &str) -> (String, String, f64) {
        let (status, body) = crate::common::http::call(
            self.port,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"),
                (
                    "Authorization",
                    &format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/{region}/ecr/aws4_request, SignedHeaders=host, Signature=0"),
                ),
            ],
            "{}",
        )
        .expect("direct call to moto");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("moto JSON");
        let data = &v["authorizationData"][0];
        let token = data["authorizationToken"].as_str().expect("token");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .expect("base64");
        let decoded = String::from_utf8(decoded).expect("utf-8");
        let (user, password) = decoded.split_once(':').expect("user:password");
        let expires = data["expiresAt"].as_f64().expect("expiresAt");
        (user.to_string(), password.to_string(), expires)
    }
}

fn header(recorded: &serde_json::Value, name: &str) -> Option<String> {
    recorded["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str().map(str::to_string))
}

// ---------------------------------------------------------------------------------------
// An in-process AWS JSON endpoint, for what moto cannot do.

/// Headers of every fake AWS reply.
const AWS_JSON: &str = "Content-Type: application/x-amz-json-1.1\r\n";

/// Answers each request with `handler`'s (status, JSON body).
fn aws_fake(handler: impl Fn(&Req) -> (u16, String) + Send + Sync + 'static) -> Fake {
    Fake::start(AWS_JSON, move |r| {
        let (status, body) = handler(r);
        Reply::With(status, body.into_bytes())
    })
}

/// An address where nothing listens.
fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

// ---------------------------------------------------------------------------------------
// Running the binary.

/// Runs the binary on `image` at [`TEST_NOW`] with fake AWS credentials plus `env` (which
/// may move the clock), IMDS disabled.
fn get(s: &Sandbox, image: &str, env: &[(&str, &str)], args: &[&str]) -> (Output, Duration) {
    let now = TEST_NOW.to_string();
    let aws = [
        (TEST_NOW_ENV, now.as_str()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    s.get(image, &[&aws[..], env].concat(), args)
}

/// [`crate::common::assert_one_line_failure`], the test AWS keys counted among the secrets.
fn assert_one_line_failure(out: &Output, secrets: &[&str]) -> String {
    assert_exit(out, 1, secrets)
}

/// Local set-up that is wrong (credentials, roles, CA bundle): exit 2, as every backend's
/// config error.
fn assert_misconfigured(out: &Output, secrets: &[&str]) -> String {
    assert_exit(out, 2, secrets)
}

fn assert_exit(out: &Output, code: i32, secrets: &[&str]) -> String {
    let all: Vec<&str> = [SECRET_KEY, SESSION_TOKEN]
        .into_iter()
        .chain(secrets.iter().copied())
        .collect();
    crate::common::assert_one_line_exit(out, code, &all)
}

fn assert_no_secret(out: &Output, secrets: &[&str]) {
    let err = stderr(out);
    for s in [SECRET_KEY, SESSION_TOKEN].iter().chain(secrets) {
        assert!(!err.contains(s), "{s:?} leaked: {err}");
    }
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

// ---------------------------------------------------------------------------------------
// Service-account tokens and the binary under upstream's name, for more than one file here.

const ROLE_ANNOTATION: &str = "eks.amazonaws.com/ecr-role-arn";

const SA_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The access key ID a recorded ECR call was signed with.
fn signing_key(authorization: &str) -> String {
    authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_string()
}

const UPSTREAM: &str = "ecr-credential-provider";

/// The binary as `ecr-credential-provider`, as the kubelet runs it: the sandbox's HOME and
/// our root and cache dirs by their variables (no flag of ours), IMDS off, the clock at
/// [`TEST_NOW`], and the node's static keys when `keys`.
fn upstream_command(s: &Sandbox, keys: bool) -> Command {
    let mut cmd = Command::new(s.bin_dir_with(UPSTREAM).join(UPSTREAM));
    cmd.env_clear()
        .env("HOME", &s.home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBELET_KEYRING_ROOT_DIR", &s.root)
        .env("KUBELET_KEYRING_CACHE_DIR", &s.cache)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(TEST_NOW_ENV, TEST_NOW.to_string())
        .current_dir(&s.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if keys {
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    }
    cmd
}

/// A fake ECR API: every GetAuthorizationToken gets `AWS:<password>`, expiring at `expires`
/// (seconds after the epoch) or without `expiresAt`.
fn ecr_fake(password: &'static str, expires: Option<u64>) -> Fake {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
    let expires = expires.map_or(String::new(), |e| format!(r#","expiresAt":{e}"#));
    aws_fake(move |_| {
        (
            200,
            format!(r#"{{"authorizationData":[{{"authorizationToken":"{token}"{expires}}}]}}"#),
        )
    })
}

/// The access key ID that signed a request to a fake.
fn signer(r: &Req) -> String {
    signing_key(r.headers.get("authorization").map_or("", String::as_str))
}
