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
// Private registries.

#[test]
#[ignore = "needs moto_server"]
fn private_registry_gets_motos_token() {
    let moto = Moto::start();
    // Known moto behaviour, checked straight against moto: user AWS, password
    // "<account>-auth-token", expiry 2015-01-01.
    let (user, password, expires) = moto.direct_token("us-east-1");
    assert_eq!(
        (user.as_str(), password.as_str()),
        ("AWS", "123456789012-auth-token")
    );
    assert_eq!(expires, MOTO_EXPIRES as f64, "moto's token expiry");
    let before = moto.token_calls().len();

    let s = Sandbox::new();
    let host = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com");
    for version in VERSIONS {
        let mut cmd = s.command(&["--no-cache"]);
        cmd.env(TEST_NOW_ENV, TEST_NOW.to_string())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_ENDPOINT_URL_ECR", moto.url());
        let out = run_with(cmd, request(version, &format!("{host}/app")).as_bytes());
        let resp = stdout_json(&out);
        assert_eq!(resp["apiVersion"], version);
        assert_eq!(resp["cacheKeyType"], "Registry");
        assert_eq!(resp["auth"].as_object().map(|a| a.len()), Some(1), "{resp}");
        assert_eq!(creds(&resp, &host), (user.clone(), password.clone()));
        // A fresh 12 h token: the one rule (expiry less 5 minutes), less the refresh jitter.
        let d = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
        assert!(LIFETIME_12H.contains(&d), "{resp}");
        assert_eq!(stderr(&out), "");
        assert_no_secret(&out, &[&password]);
    }
    // At the real time, moto's token expired in 2015: answered for this pull only
    // (cacheDuration 0s), with a warning naming the clock, never a negative lifetime.
    let (out, _) = get(
        &s,
        &format!("{host}/app"),
        &[
            (TEST_NOW_ENV, &unix_now().to_string()),
            ("AWS_ENDPOINT_URL_ECR", &moto.url()),
        ],
        &["--no-cache"],
    );
    let resp = stdout_json(&out);
    assert_eq!(creds(&resp, &host), (user.clone(), password.clone()));
    assert_eq!(resp["cacheDuration"], "0s", "{resp}");
    let err = stderr(&out);
    assert!(
        err.contains("s ago by this node's clock") && err.contains("NTP"),
        "{err}"
    );
    assert_no_secret(&out, &[&password]);
    let calls = moto.token_calls();
    assert_eq!(calls.len(), before + 4, "{calls:?}");
    // Signed for the host's region and for ECR.
    assert!(
        calls[before].contains("/us-east-1/ecr/aws4_request"),
        "{}",
        calls[before]
    );
}

#[test]
#[ignore = "needs moto_server"]
fn every_partition_fips_and_dual_stack_host_reaches_the_configured_endpoint() {
    let moto = Moto::start();
    let s = Sandbox::new();
    // With an endpoint override the host's FIPS / dual-stack wish is not forced on the SDK
    // (which refuses FIPS with a custom endpoint); the region still comes from the host.
    let cases = [
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            "us-gov-west-1",
        ),
        ("123456789012.dkr-ecr.eu-west-1.on.aws", "eu-west-1"),
        ("123456789012.dkr-ecr-fips.us-east-2.on.aws", "us-east-2"),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "cn-north-1",
        ),
        (
            "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            "eusc-de-east-1",
        ),
        (
            "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
            "us-iso-east-1",
        ),
        (
            "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            "us-isob-east-1",
        ),
        (
            "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            "eu-isoe-west-1",
        ),
        (
            "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
            "us-isof-south-1",
        ),
        // The port is ignored for recognition and kept in the key.
        (
            "123456789012.dkr.ecr.ap-south-1.amazonaws.com:443",
            "ap-south-1",
        ),
    ];
    for (host, region) in cases {
        let before = moto.token_calls().len();
        let (out, _) = get(
            &s,
            &format!("{host}/team/app"),
            &[("AWS_ENDPOINT_URL_ECR", &moto.url())],
            &["--no-cache"],
        );
        let resp = stdout_json(&out);
        assert_eq!(creds(&resp, host).0, "AWS", "{host}");
        let calls = moto.token_calls();
        assert_eq!(calls.len(), before + 1, "{host}");
        assert!(
            calls[before].contains(&format!("/{region}/ecr/aws4_request")),
            "{host}: {}",
            calls[before]
        );
    }
    // The global AWS_ENDPOINT_URL works too.
    let (out, _) = get(
        &s,
        "123456789012.dkr.ecr.us-west-1.amazonaws.com/x",
        &[("AWS_ENDPOINT_URL", &moto.url())],
        &["--no-cache"],
    );
    assert_eq!(
        creds(
            &stdout_json(&out),
            "123456789012.dkr.ecr.us-west-1.amazonaws.com"
        )
        .0,
        "AWS"
    );
}

// ---------------------------------------------------------------------------------------
// ECR Public (moto has no ECR Public: an in-process fake of its JSON API).

#[test]
fn ecr_public_token_comes_from_us_east_1() {
    let token = base64::engine::general_purpose::STANDARD.encode("AWS:public-canary-password");
    let expires = TEST_NOW + 12 * 3600;
    let fake = aws_fake(move |r| {
        if r.headers.get("x-amz-target").map(String::as_str)
            != Some("SpencerFrontendService.GetAuthorizationToken")
        {
            return (400, r#"{"__type":"UnknownOperationException"}"#.into());
        }
        (
            200,
            format!(
                r#"{{"authorizationData":{{"authorizationToken":"{token}","expiresAt":{expires}}}}}"#
            ),
        )
    });
    let s = Sandbox::new();
    for host in ["public.ecr.aws", "ecr-public.aws.com"] {
        // The region of the environment does not matter: ECR Public lives in us-east-1.
        let (out, _) = get(
            &s,
            &format!("{host}/nginx/nginx:1.27"),
            &[
                ("AWS_ENDPOINT_URL_ECR_PUBLIC", fake.base()),
                ("AWS_REGION", "eu-west-1"),
            ],
            &["--no-cache"],
        );
        let resp = stdout_json(&out);
        assert_eq!(
            creds(&resp, host),
            ("AWS".into(), "public-canary-password".into())
        );
        assert_eq!(resp["cacheKeyType"], "Registry");
        let d = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
        assert!(LIFETIME_12H.contains(&d), "{resp}");
        assert_no_secret(&out, &["public-canary-password"]);
    }
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    for r in reqs {
        let auth = r.headers.get("authorization").cloned().unwrap_or_default();
        assert!(
            auth.contains("/us-east-1/ecr-public/aws4_request"),
            "{auth}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Mirrors from the plugin config file.

#[test]
#[ignore = "needs moto_server"]
fn mirror_from_the_example_config_gets_a_token_for_its_region() {
    let moto = Moto::start();
    let (_, password, _) = moto.direct_token("us-west-2");
    let s = Sandbox::new();
    let config = repo_file("config/keyring-ecr-mirrors.yaml");
    let config = config.to_str().expect("utf-8 path");
    let env = [("AWS_ENDPOINT_URL_ECR", moto.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let before = moto.token_calls().len();
    let (out, _) = get(
        &s,
        "mirror.example.com:5000/team/app:v1",
        &env,
        &["--no-cache", "--config", config],
    );
    let resp = stdout_json(&out);
    // Keyed by the mirror host as in the image, port included.
    assert_eq!(
        creds(&resp, "mirror.example.com:5000"),
        ("AWS".into(), password.clone())
    );
    assert_eq!(resp["auth"].as_object().map(|a| a.len()), Some(1));
    let calls = moto.token_calls();
    assert_eq!(calls.len(), before + 1);
    assert!(
        calls[before].contains("/us-west-2/ecr/aws4_request"),
        "{}",
        calls[before]
    );

    // A glob entry, FIPS asked for, overridden by the endpoint variable.
    let (out, _) = get(
        &s,
        "eu.cache.example.com/x",
        &env,
        &["--no-cache", "--config", config],
    );
    assert_eq!(creds(&stdout_json(&out), "eu.cache.example.com").0, "AWS");
    let calls = moto.token_calls();
    assert!(
        calls
            .last()
            .is_some_and(|c| c.contains("/us-gov-west-1/ecr/")),
        "{calls:?}"
    );

    // Not the mirror: another port, no port, a longer host. No ECR call, no credentials.
    let before = moto.token_calls().len();
    for image in [
        "mirror.example.com/team/app",
        "mirror.example.com:5001/team/app",
        "mirror.example.com.evil.io:5000/team/app",
        "a.b.cache.example.com/x",
    ] {
        let (out, _) = get(&s, image, &env, &["--no-cache", "--config", config]);
        assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}), "{image}");
    }
    assert_eq!(moto.token_calls().len(), before);
}

#[test]
fn a_bad_mirror_entry_is_a_config_error_naming_it() {
    let s = Sandbox::new();
    let path = s.tmp.path().join("keyring.yaml");
    write(
        &path,
        "ecr:\n  mirrors:\n    - {host: mirror.example.com, region: us-west-2}\n    - {host: 'https://other.example.com', region: us-west-2}\n",
    );
    let (out, _) = get(
        &s,
        "mirror.example.com/x",
        &[],
        &["--no-cache", "--config", path.to_str().expect("utf-8")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ecr.mirrors[1]")
            && err.contains("other.example.com")
            && err.contains("keyring.yaml"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Failures: one line, the cause and the fix, no secret, within the deadline.

#[test]
fn an_unreachable_endpoint_fails_in_one_line_within_the_deadline() {
    let s = Sandbox::new();
    let url = closed_port_url();
    let (out, took) = get(
        &s,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &["--no-cache"],
    );
    let line = assert_one_line_failure(&out, &[]);
    assert!(line.starts_with("kubelet-keyring: error: ecr: 123456789012.dkr.ecr.us-east-1.amazonaws.com: cannot reach"), "{line}");
    assert!(
        line.contains(&url) && line.contains("AWS_ENDPOINT_URL_ECR"),
        "{line}"
    );
    assert!(
        line.contains("Connection refused") && line.contains("check the region"),
        "{line}"
    );
    assert!(took < DEADLINE, "{took:?}");
}

#[test]
fn an_unusable_ca_bundle_is_named() {
    let s = Sandbox::new();
    // The SDK's TLS set-up panics on a bundle it cannot parse: each of these must be a
    // configuration error in one line instead.
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("no-such-ca.pem", None, "cannot read AWS_CA_BUNDLE"),
        ("empty.pem", Some(""), "no PEM certificate"),
        (
            "bad-base64.pem",
            Some("-----BEGIN CERTIFICATE-----\n%%%not base64%%%\n-----END CERTIFICATE-----\n"),
            "certificate 1 is not valid PEM",
        ),
        (
            "not-a-cert.pem",
            Some("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"),
            "certificate 1 does not parse",
        ),
    ];
    for (name, content, expected) in cases {
        let bundle = s.tmp.path().join(name);
        if let Some(c) = content {
            std::fs::write(&bundle, c).unwrap();
        }
        let (out, _) = get(
            &s,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
            &[
                ("AWS_CA_BUNDLE", bundle.to_str().expect("utf-8")),
                ("AWS_ENDPOINT_URL_ECR", &closed_port_url()),
            ],
            &["--no-cache"],
        );
        let line = assert_misconfigured(&out, &[]);
        assert!(
            line.contains(expected) && line.contains(name),
            "{name}: {line}"
        );
    }
}

#[test]
fn files_the_sdk_would_read_without_end_are_refused_in_time() {
    // The SDK reads these whole on the runtime's one thread, where no deadline reaches it:
    // /dev/zero hung the call until the kubelet killed it, or memory ran out.
    let s = Sandbox::new();
    for var in [
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_CA_BUNDLE",
    ] {
        for path in ["/dev/zero", "/"] {
            let started = Instant::now();
            let (out, _) = get(
                &s,
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
                &[
                    (var, path),
                    ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
                    ("AWS_ENDPOINT_URL_ECR", &closed_port_url()),
                ],
                &["--no-cache"],
            );
            let line = assert_misconfigured(&out, &[]);
            assert!(
                line.contains(var) && line.contains(path) && line.contains("not a regular file"),
                "{var}={path}: {line}"
            );
            assert!(started.elapsed() < Duration::from_secs(10), "{var}={path}");
        }
    }
}

#[test]
fn missing_credentials_name_the_fix() {
    let s = Sandbox::new();
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_ECR", closed_port_url());
    let started = Instant::now();
    let out = run_with(
        cmd,
        request(
            VERSIONS[0],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        )
        .as_bytes(),
    );
    let line = assert_misconfigured(&out, &[]);
    assert!(
        line.contains("no AWS credentials") && line.contains("hop limit"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_silent_instance_metadata_service_fails_fast() {
    let imds = silent();
    let s = Sandbox::new();
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("AWS_EC2_METADATA_DISABLED", "false")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.base())
        .env("AWS_ENDPOINT_URL_ECR", closed_port_url());
    let started = Instant::now();
    let out = run_with(
        cmd,
        request(
            VERSIONS[0],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        )
        .as_bytes(),
    );
    let took = started.elapsed();
    let line = assert_misconfigured(&out, &[]);
    assert!(
        line.contains("no AWS credentials") && line.contains("hop limit"),
        "{line}"
    );
    // IMDS gets 1 s timeouts, not the SDK's default of several seconds per attempt.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn throttling_is_retried_a_bounded_number_of_times() {
    let fake = aws_fake(|_| {
        (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded body-canary-51c"}"#.into(),
        )
    });
    let s = Sandbox::new();
    let (out, took) = get(
        &s,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        &[("AWS_ENDPOINT_URL_ECR", fake.base())],
        &["--no-cache"],
    );
    let line = assert_one_line_failure(&out, &["body-canary-51c"]);
    assert!(
        line.contains("ThrottlingException") && line.contains("throttled after 3 attempts"),
        "{line}"
    );
    assert_eq!(fake.requests().len(), 3, "{line}");
    assert!(took < DEADLINE, "{took:?}");
}

#[test]
fn access_denied_names_the_permission_and_is_not_retried() {
    let fake = aws_fake(|_| {
        (
            400,
            r#"{"__type":"AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/x body-canary-0d2 is not authorized"}"#.into(),
        )
    });
    let s = Sandbox::new();
    let (out, _) = get(
        &s,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        &[("AWS_ENDPOINT_URL_ECR", fake.base())],
        &["--no-cache"],
    );
    let line = assert_one_line_failure(&out, &["body-canary-0d2"]);
    assert!(
        line.contains("AccessDeniedException") && line.contains("ecr:GetAuthorizationToken"),
        "{line}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn other_images_never_reach_aws() {
    let fake = aws_fake(|_| (500, "{}".into()));
    let s = Sandbox::new();
    for image in [
        "quay.io/team/app",
        "nginx:1.27",
        "evil.io/123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io/app",
        "public.ecr.aws.evil.io/x",
    ] {
        let (out, took) = get(
            &s,
            image,
            &[
                ("AWS_ENDPOINT_URL_ECR", fake.base()),
                ("AWS_ENDPOINT_URL_ECR_PUBLIC", fake.base()),
            ],
            &["--no-cache"],
        );
        assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}), "{image}");
        assert!(took < Duration::from_secs(5), "{image}: {took:?}");
    }
    assert_eq!(fake.requests().len(), 0);
}

// ---------------------------------------------------------------------------------------
// The shared cache in front of the backend.

#[test]
#[ignore = "needs moto_server"]
fn a_second_request_within_the_lifetime_does_not_reach_moto() {
    let moto = Moto::start();
    let (_, password, expires) = moto.direct_token("us-east-1");
    assert_eq!(expires, MOTO_EXPIRES as f64);
    let s = Sandbox::new();
    let env = [("AWS_ENDPOINT_URL_ECR", moto.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    let before = moto.token_calls().len();
    let (first, _) = get(&s, &format!("{host}/app"), &env, &[]);
    let first = stdout_json(&first);
    assert_eq!(creds(&first, host), ("AWS".into(), password.clone()));
    let d = go_secs(first["cacheDuration"].as_str().unwrap_or_default());
    assert!(LIFETIME_12H.contains(&d), "{first}");
    assert_eq!(moto.token_calls().len(), before + 1);

    // Another repository of the registry, later: served from the cache, moto not asked.
    let (second, _) = get(&s, &format!("{host}/other/repo"), &env, &[]);
    let second = stdout_json(&second);
    assert_eq!(second["auth"], first["auth"]);
    assert!(go_secs(second["cacheDuration"].as_str().unwrap_or_default()) <= d);
    assert_eq!(
        moto.token_calls().len(),
        before + 1,
        "the cache hit reached moto"
    );

    // The counter does count: without the cache, moto is asked again.
    let (third, _) = get(&s, &format!("{host}/app"), &env, &["--no-cache"]);
    assert_eq!(stdout_json(&third)["auth"], first["auth"]);
    assert_eq!(moto.token_calls().len(), before + 2);
}

#[test]
#[ignore = "needs moto_server"]
fn a_valid_cache_entry_answers_when_moto_is_gone() {
    let moto = Moto::start();
    let url = moto.url();
    let s = Sandbox::new();
    let host = "123456789012.dkr.ecr.eu-central-1.amazonaws.com";
    let (first, _) = get(
        &s,
        &format!("{host}/app"),
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &[],
    );
    let first = stdout_json(&first);
    assert_eq!(creds(&first, host).0, "AWS");
    drop(moto);

    // moto is really gone: without the cache the backend fails.
    let (direct, _) = get(
        &s,
        &format!("{host}/app"),
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &["--no-cache"],
    );
    assert_one_line_failure(&direct, &[]);
    // With it, the entry answers.
    let (cached, _) = get(
        &s,
        &format!("{host}/app"),
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &[],
    );
    assert_eq!(stdout_json(&cached)["auth"], first["auth"]);
}

/// Stale-if-error: an entry past its refresh time whose token still works is served when the
/// backend fails, with a warning and a short `cacheDuration` so the kubelet asks again soon.
#[test]
#[ignore = "needs moto_server"]
fn a_stale_but_valid_entry_is_served_when_the_backend_fails() {
    let moto = Moto::start();
    let url = moto.url();
    let s = Sandbox::new();
    let host = "123456789012.dkr.ecr.ap-south-1.amazonaws.com";
    let env = [("AWS_ENDPOINT_URL_ECR", url.as_str())];
    let (first, _) = get(&s, &format!("{host}/app"), &env, &[]);
    let first = stdout_json(&first);
    drop(moto);

    // 11 h 57 min later: past the entry's refresh time, 3 min before the token expires.
    let later = (TEST_NOW + 12 * 3600 - 180).to_string();
    let env = [
        ("AWS_ENDPOINT_URL_ECR", url.as_str()),
        (TEST_NOW_ENV, &later),
    ];
    let (stale, _) = get(&s, &format!("{host}/app"), &env, &[]);
    let err = stderr(&stale);
    let stale = stdout_json(&stale);
    assert_eq!(stale["auth"], first["auth"]);
    assert!(
        err.contains("serving a cached credential that is still valid"),
        "{err}"
    );
    let d = go_secs(stale["cacheDuration"].as_str().unwrap_or_default());
    assert!((1..=60).contains(&d), "{stale}");
    assert!(
        !err.contains(SECRET_KEY) && !err.contains(SESSION_TOKEN),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// KEP-4412: service-account tokens. moto implements AssumeRoleWithWebIdentity (without
// checking the token) and answers ECR calls signed with the assumed role's credentials in
// the role's own account, so the password (`<account>-auth-token`) says whose credentials
// signed the call.

const ROLE_ANNOTATION: &str = "eks.amazonaws.com/ecr-role-arn";
const SA_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// Runs one token-mode request against moto, with no node credentials unless `node_creds`,
/// extra `env` and `args` (global flags), and the cache in the sandbox.
fn sa_get(
    s: &Sandbox,
    moto: &Moto,
    request: &str,
    node_creds: bool,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut cmd = s.command(args);
    cmd.env(TEST_NOW_ENV, TEST_NOW.to_string())
        .env("AWS_ENDPOINT_URL_ECR", moto.url())
        .env("AWS_ENDPOINT_URL_STS", moto.url());
    if node_creds {
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with(cmd, request.as_bytes())
}

/// The access key ID a recorded ECR call was signed with.
fn signing_key(authorization: &str) -> String {
    authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "needs moto_server"]
fn the_annotated_role_is_assumed_with_the_service_account_token() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let role = "arn:aws:iam::111111111111:role/team-pull";
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(
        &format!("{SA_HOST}/app"),
        &token,
        &[(ROLE_ANNOTATION, role)],
    );
    // No node credentials at all: the role's must be the ones used. Trace logging on.
    let out = sa_get(&s, &moto, &req, false, &[], &["-vvv"]);
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheKeyType"], "Registry");
    assert_eq!(
        creds(&resp, SA_HOST),
        ("AWS".into(), "111111111111-auth-token".into()),
        "the ECR call was not signed by the assumed role"
    );
    let calls = moto.assume_role_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["RoleArn"], role);
    assert_eq!(calls[0]["RoleSessionName"], "kubelet-keyring");
    assert_eq!(calls[0]["WebIdentityToken"], token);
    let ecr = moto.token_calls();
    assert_eq!(ecr.len(), 1);
    let key = signing_key(&ecr[0]);
    assert!(key.starts_with("ASIA") && key != ACCESS_KEY, "{}", ecr[0]);
    assert!(ecr[0].contains("/us-east-1/ecr/aws4_request"), "{}", ecr[0]);
    // The token reaches moto and nothing else: not stderr (at trace level), not the
    // response, not the cache.
    crate::common::assert_token_not_shown(&token, &out, Some(&s.cache));
    assert_no_secret(&out, &[]);
}

#[test]
#[ignore = "needs moto_server"]
fn the_configured_default_role_and_aws_ecr_role_arn() {
    let moto = Moto::start();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(&format!("{SA_HOST}/app"), &token, &[]);
    // The config's role.
    let s = Sandbox::new();
    let config = s.tmp.path().join("keyring.yaml");
    write(
        &config,
        "ecr:\n  serviceAccountRoleArn: arn:aws:iam::222222222222:role/default-pull\n",
    );
    let cfg = config.to_str().expect("utf-8");
    let out = sa_get(
        &s,
        &moto,
        &req,
        false,
        &[("AWS_ECR_ROLE_ARN", "arn:aws:iam::333333333333:role/env")],
        &["--config", cfg],
    );
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "222222222222-auth-token",
        "{}",
        stderr(&out)
    );
    // Upstream's variable, when the config names none.
    let s = Sandbox::new();
    let out = sa_get(
        &s,
        &moto,
        &req,
        false,
        &[("AWS_ECR_ROLE_ARN", "arn:aws:iam::333333333333:role/env")],
        &[],
    );
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "333333333333-auth-token"
    );
    let roles: Vec<String> = moto
        .assume_role_calls()
        .iter()
        .map(|c| c["RoleArn"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            "arn:aws:iam::222222222222:role/default-pull",
            "arn:aws:iam::333333333333:role/env"
        ]
    );
    // A role that is not an ARN fails in one line naming where it came from, without STS.
    let s = Sandbox::new();
    let bad = sa_request(
        &format!("{SA_HOST}/app"),
        &token,
        &[(ROLE_ANNOTATION, "team-pull")],
    );
    let line = assert_misconfigured(&sa_get(&s, &moto, &bad, true, &[], &[]), &[&token]);
    assert!(
        line.contains("annotation eks.amazonaws.com/ecr-role-arn")
            && line.contains("\"team-pull\" is not an IAM role ARN"),
        "{line}"
    );
    assert_eq!(moto.assume_role_calls().len(), 2);
}

#[test]
#[ignore = "needs moto_server"]
fn no_role_falls_back_to_the_node_only_when_configured() {
    let moto = Moto::start();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(&format!("{SA_HOST}/app"), &token, &[]);
    // Default: the node's credentials.
    let s = Sandbox::new();
    let out = sa_get(&s, &moto, &req, true, &[], &["--no-cache"]);
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "123456789012-auth-token"
    );
    assert_eq!(signing_key(&moto.token_calls()[0]), ACCESS_KEY);
    assert!(moto.assume_role_calls().is_empty());
    // nodeIdentityFallback: false: a one-line error saying how to name a role; no AWS call.
    let config = s.tmp.path().join("strict.yaml");
    write(&config, "ecr:\n  nodeIdentityFallback: false\n");
    let out = sa_get(
        &s,
        &moto,
        &req,
        true,
        &[],
        &["--config", config.to_str().expect("utf-8")],
    );
    let line = assert_misconfigured(&out, &[&token]);
    assert!(
        line.contains(ROLE_ANNOTATION)
            && line.contains("ecr.serviceAccountRoleArn")
            && line.contains("AWS_ECR_ROLE_ARN")
            && line.contains("nodeIdentityFallback"),
        "{line}"
    );
    assert_eq!(moto.token_calls().len(), 1);
    assert!(moto.assume_role_calls().is_empty());
    crate::common::assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
}

#[test]
#[ignore = "needs moto_server"]
fn an_assume_role_failure_is_one_line_without_the_token() {
    // A fake STS refusing the role, as AWS does when the trust policy does not match.
    let sts = aws_fake(|_| {
        (
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>".into(),
        )
    });
    let moto = Moto::start();
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(
        &format!("{SA_HOST}/app"),
        &token,
        &[(ROLE_ANNOTATION, "arn:aws:iam::111111111111:role/team-pull")],
    );
    let out = sa_get(
        &s,
        &moto,
        &req,
        true,
        &[("AWS_ENDPOINT_URL_STS", sts.base())],
        &["-vv"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("role arn:aws:iam::111111111111:role/team-pull")
            && last.contains("AccessDenied")
            && last.contains("trust policy"),
        "{err}"
    );
    assert!(
        !err.contains("Not authorized"),
        "the AWS message is not quoted: {err}"
    );
    assert_eq!(sts.requests().len(), 1, "not retried");
    assert!(moto.token_calls().is_empty(), "no fallback to the node");
    crate::common::assert_token_not_shown(&token, &out, Some(&s.cache));
}

#[test]
#[ignore = "needs moto_server"]
fn service_accounts_have_their_own_cache_entries() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let image = format!("{SA_HOST}/app");
    let a_role = [(ROLE_ANNOTATION, "arn:aws:iam::111111111111:role/a")];
    let b_role = [(ROLE_ANNOTATION, "arn:aws:iam::222222222222:role/b")];
    let run = |token: &str, ann: &[(&str, &str)]| {
        let out = sa_get(&s, &moto, &sa_request(&image, token, ann), false, &[], &[]);
        let resp = stdout_json(&out);
        crate::common::assert_token_nowhere(
            token,
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
            Some(&s.cache),
        );
        creds(&resp, SA_HOST).1
    };
    let calls = || (moto.assume_role_calls().len(), moto.token_calls().len());

    let a1 = sa_token("sts.amazonaws.com", "team", "a", "uid-a", 1);
    assert_eq!(run(&a1, &a_role), "111111111111-auth-token");
    assert_eq!(calls(), (1, 1));
    // Another service account, same registry: its own STS and ECR calls, its own answer.
    let b1 = sa_token("sts.amazonaws.com", "team", "b", "uid-b", 2);
    assert_eq!(run(&b1, &b_role), "222222222222-auth-token");
    assert_eq!(calls(), (2, 2));
    // The same service accounts with fresh tokens (another pod, later): from the cache.
    let a2 = sa_token("sts.amazonaws.com", "team", "a", "uid-a", 3);
    let b2 = sa_token("sts.amazonaws.com", "team", "b", "uid-b", 4);
    assert_eq!(run(&a2, &a_role), "111111111111-auth-token");
    assert_eq!(run(&b2, &b_role), "222222222222-auth-token");
    assert_eq!(
        calls(),
        (2, 2),
        "a fresh token of a known service account missed"
    );
    // Same name, new UID (deleted and re-created): not the old one's entry.
    let a_new = sa_token("sts.amazonaws.com", "team", "a", "uid-a2", 5);
    assert_eq!(run(&a_new, &a_role), "111111111111-auth-token");
    assert_eq!(calls(), (3, 3));
    // And a request without a token never sees a service account's entry.
    let out = sa_get(&s, &moto, &request(VERSIONS[0], &image), true, &[], &[]);
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "123456789012-auth-token"
    );
    assert_eq!(calls(), (3, 4));
    // cache list names the service accounts, never a token.
    let list = s.run(&["cache", "list"], "");
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        text.contains("(sa team/a)") && text.contains("(sa team/b)"),
        "{text}"
    );
    for t in [&a1, &a2, &b1, &b2, &a_new] {
        crate::common::assert_token_nowhere(t, &[("cache list", list.stdout.as_slice())], None);
    }
}

#[test]
#[ignore = "needs moto_server"]
fn an_unreadable_token_bypasses_the_cache() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let req = sa_request(
        &format!("{SA_HOST}/app"),
        "opaque-token-canary-71c",
        &[(ROLE_ANNOTATION, "arn:aws:iam::111111111111:role/a")],
    );
    for n in 1..=2 {
        let out = sa_get(&s, &moto, &req, false, &[], &["-v"]);
        assert_eq!(
            creds(&stdout_json(&out), SA_HOST).1,
            "111111111111-auth-token"
        );
        assert!(
            stderr(&out).contains(
                "not using the cache for this request: the service-account token is not a JWT"
            ),
            "{}",
            stderr(&out)
        );
        assert_eq!(moto.assume_role_calls().len(), n);
        crate::common::assert_token_nowhere(
            "opaque-token-canary-71c",
            &[("stderr", &out.stderr)],
            Some(&s.cache),
        );
    }
    assert!(
        std::fs::read_dir(&s.cache).map(|d| d.count()).unwrap_or(0) == 0,
        "nothing written"
    );
}

// ---------------------------------------------------------------------------------------
// Drop-in: the binary as ecr-credential-provider, with every shipped ECR config.

/// The region an ECR host pattern of the shipped configs stands for, by its partition.
fn region_of_pattern(pattern: &str) -> &'static str {
    let p = pattern.trim_end_matches(".cn");
    if pattern.ends_with(".cn") {
        "cn-north-1"
    } else if p.ends_with("sc2s.sgov.gov") {
        "us-isob-east-1"
    } else if p.ends_with("c2s.ic.gov") {
        "us-iso-east-1"
    } else if p.ends_with("csp.hci.ic.gov") {
        "us-isof-south-1"
    } else if p.ends_with("cloud.adc-e.uk") {
        "eu-isoe-west-1"
    } else if p.ends_with("amazonaws.eu") {
        "eusc-de-east-1"
    } else if p.contains("fips") {
        "us-gov-west-1"
    } else {
        "us-west-2"
    }
}

/// Every ECR provider entry that node images ship (EKS AL2 and AL2023, EKS Hybrid,
/// Bottlerocket, EKS Anywhere, kops incl. its mirrors, Cluster API, OpenShift, Talos, the
/// kubernetes.io example), run by the kubelet's rules under its own name with its exact args
/// and env, for an image of each of its `matchImages`: moto's token (ECR Public's from a fake,
/// moto has none), accepted by the kubelet's strict decoding. Hosts that are not ECR's
/// (kops's `docker.io`, `registry.k8s.io` pull-through mirrors) get a token for the default
/// region, as upstream does.
#[test]
#[ignore = "needs moto_server"]
fn upstream_every_shipped_ecr_entry_gets_a_token() {
    use crate::common::upstream::{entries, host_for};
    let moto = Moto::start();
    let (_, password, _) = moto.direct_token("us-west-2");
    let public = base64::engine::general_purpose::STANDARD.encode("AWS:public-dropin-password");
    let expires = unix_now() as f64 + 12.0 * 3600.0;
    let public_fake = aws_fake(move |_| {
        (
            200,
            format!(
                r#"{{"authorizationData":{{"authorizationToken":"{public}","expiresAt":{expires}}}}}"#
            ),
        )
    });
    let node = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_ENDPOINT_URL_ECR", moto.url()),
        ("AWS_ENDPOINT_URL_ECR_PUBLIC", public_fake.url("")),
        // The node's region, as IMDS would tell it; entries may set their own.
        ("AWS_REGION", "us-west-2".to_string()),
        (TEST_NOW_ENV, TEST_NOW.to_string()),
    ];
    let node: Vec<(&str, &str)> = node.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let all = entries(&["ecr-credential-provider"]);
    assert!(all.len() >= 15, "{}", all.len());
    // Many configs share patterns: each (pattern, args, env, apiVersion) is run once.
    let mut seen = std::collections::BTreeSet::new();
    for entry in &all {
        let s = Sandbox::new();
        let region_env = entry
            .provider
            .env
            .iter()
            .find(|e| e.name == "AWS_REGION")
            .map_or("us-west-2", |e| e.value.as_str());
        for pattern in &entry.provider.match_images {
            let p = &entry.provider;
            let env: Vec<_> = p.env.iter().map(|e| (&e.name, &e.value)).collect();
            if !seen.insert(format!("{pattern} {:?} {env:?} {}", p.args, p.api_version)) {
                continue;
            }
            let region = region_of_pattern(pattern);
            let host = host_for(pattern, ACCOUNT, region);
            let image = format!("{host}/team/app:1");
            let before = moto.token_calls().len();
            let (key, cred) = s.first_try(entry, &node, &image);
            assert_eq!(key, host, "{} {image}", entry.label());
            assert_eq!(cred.username, "AWS", "{} {image}", entry.label());
            let calls = moto.token_calls();
            if host == "public.ecr.aws" || host == "ecr-public.aws.com" {
                assert_eq!(cred.password, "public-dropin-password", "{image}");
                assert_eq!(calls.len(), before, "{image}");
                continue;
            }
            assert_eq!(cred.password, password, "{} {image}", entry.label());
            assert_eq!(calls.len(), before + 1, "{} {image}", entry.label());
            // Signed for the host's region, or the default region for a mirror host.
            // ECR's own domains; `amazonaws.cn` (one AL2 config has it) is none of them.
            let ecr_domain = [
                ".amazonaws.com",
                ".amazonaws.com.cn",
                ".amazonaws.eu",
                ".sc2s.sgov.gov",
                ".c2s.ic.gov",
                ".cloud.adc-e.uk",
                ".csp.hci.ic.gov",
                ".on.aws",
                ".on.amazonwebservices.com.cn",
            ]
            .iter()
            .any(|d| host.ends_with(d));
            let labels: Vec<&str> = host.split('.').collect();
            let want = match labels.iter().position(|l| l.starts_with("dkr")) {
                Some(_) if !ecr_domain => region_env,
                Some(i) if labels[i].starts_with("dkr-ecr") => labels[i + 1],
                Some(i) => labels[i + 2],
                None => region_env,
            };
            assert!(
                calls[before].contains(&format!("/{want}/ecr/aws4_request")),
                "{} {image}: {}",
                entry.label(),
                calls[before]
            );
        }
    }
}

/// The kubelet's argument to ecr-credential-provider in EKS AL2 and kops configs,
/// `get-credentials`, and klog's `--v=N` are taken.
#[test]
#[ignore = "needs moto_server"]
fn upstream_the_kubelets_args_and_klog_verbosity_are_taken() {
    use crate::common::upstream::entries;
    let moto = Moto::start();
    let entry = entries(&["ecr-credential-provider"])
        .into_iter()
        .find(|e| e.file == "kops-aws.yaml")
        .expect("the kops entry");
    let s = Sandbox::new();
    let node = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
        ("AWS_ENDPOINT_URL_ECR", moto.url()),
        (TEST_NOW_ENV, TEST_NOW.to_string()),
    ];
    let node: Vec<(&str, &str)> = node.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let image = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app");
    for extra in [&["--v=4"][..], &["--v", "2"], &["--logtostderr"]] {
        let mut cmd = s.upstream_command(&entry, &node);
        cmd.args(extra);
        let out = run_with(cmd, request(VERSIONS[0], &image).as_bytes());
        assert_eq!(
            creds(
                &stdout_json(&out),
                &format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
            )
            .0,
            "AWS",
            "{extra:?}"
        );
    }
}

/// A flag upstream does not have is refused with exit 2 and a line naming it, before any
/// call to AWS.
#[test]
fn upstream_an_unknown_flag_is_refused_with_exit_2_naming_it() {
    use crate::common::upstream::entries;
    let entry = entries(&["ecr-credential-provider"])
        .into_iter()
        .find(|e| e.file == "kops-aws.yaml")
        .expect("the kops entry");
    let s = Sandbox::new();
    let endpoint = closed_port_url();
    let node = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_ENDPOINT_URL_ECR", endpoint.as_str()),
    ];
    let image = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/app");
    let mut cmd = s.upstream_command(&entry, &node);
    cmd.arg("--no-such-flag=secret-value");
    let out = run_with(cmd, request(VERSIONS[0], &image).as_bytes());
    let line = assert_misconfigured(&out, &["secret-value"]);
    assert!(line.contains("--no-such-flag"), "{line}");
}

/// Under the upstream name, the service-account session is named as upstream names it
/// (`ecr-credential-provider`: CloudTrail and `sts:RoleSessionName` conditions see what they
/// saw); the IRSA annotation `eks.amazonaws.com/role-arn` is a further role source only when
/// the plugin config opts in (`ecr.irsaRoleAnnotation: true`).
#[test]
#[ignore = "needs moto_server"]
fn upstream_session_name_and_the_opt_in_irsa_annotation() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let name = "ecr-credential-provider";
    let bin = s.bin_dir_with(name).join(name);
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let run = |annotations: &[(&str, &str)], config: Option<&str>| {
        let mut cmd = Command::new(&bin);
        cmd.env_clear()
            .env("HOME", &s.home)
            .env("KUBELET_KEYRING_ROOT_DIR", &s.root)
            .env("KUBELET_KEYRING_NO_CACHE", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_ECR", moto.url())
            .env("AWS_ENDPOINT_URL_STS", moto.url())
            .env("AWS_REGION", "us-east-1")
            .env(TEST_NOW_ENV, TEST_NOW.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(c) = config {
            let path = s.tmp.path().join("keyring.yaml");
            write(&path, c);
            cmd.env("KUBELET_KEYRING_CONFIG", &path);
        }
        let req = sa_request(&format!("{SA_HOST}/app"), &token, annotations);
        run_with(cmd, req.as_bytes())
    };
    let role = "arn:aws:iam::111111111111:role/team-pull";
    let out = run(&[(ROLE_ANNOTATION, role)], None);
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "111111111111-auth-token"
    );
    let calls = moto.assume_role_calls();
    assert_eq!(calls[0]["RoleSessionName"], "ecr-credential-provider");

    // Only the IRSA annotation, no node credentials: no role unless opted in.
    let irsa = [("eks.amazonaws.com/role-arn", role)];
    let out = run(&irsa, None);
    assert_misconfigured(&out, &[&token]);
    assert_eq!(moto.assume_role_calls().len(), 1);
    let out = run(&irsa, Some("ecr:\n  irsaRoleAnnotation: true\n"));
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "111111111111-auth-token"
    );
    let calls = moto.assume_role_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1]["RoleArn"], role);
    crate::common::assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
}

// ---------------------------------------------------------------------------------------
// Drop-in fidelity (issue 22): under upstream's name, what upstream does, or the difference
// docs/migrating.md states. In-process fakes and a recording proxy: no moto needed.

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

/// Point 1. Upstream asks the region's standard ECR API endpoint whatever the registry host
/// (its host regex captures `-fips` and drops it); a FIPS or dual-stack host must not lead
/// elsewhere, or a VPC endpoint with private DNS for the standard name only is left. Under
/// our own name the host still chooses (`ecr.endpointVariantsFromHost`, on by default), and
/// the SDK's own `AWS_USE_FIPS_ENDPOINT` works under both. The endpoint asked is the host of
/// the proxy's CONNECT (no override, so the SDK's own endpoint rules choose it); the proxy
/// refuses, so each run fails in one line naming that endpoint.
#[test]
fn upstream_a_fips_or_dual_stack_host_asks_the_regions_standard_api_endpoint() {
    let (port, rx) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let s = Sandbox::new();
    /// (image host, extra env, endpoint as upstream, endpoint under our own name)
    type Case = (
        &'static str,
        Option<(&'static str, &'static str)>,
        &'static str,
        &'static str,
    );
    let cases: [Case; 5] = [
        (
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
            None,
            "api.ecr.us-east-1.amazonaws.com",
            "api.ecr-fips.us-east-1.amazonaws.com",
        ),
        (
            "123456789012.dkr-ecr.eu-west-1.on.aws",
            None,
            "api.ecr.eu-west-1.amazonaws.com",
            "ecr.eu-west-1.api.aws",
        ),
        (
            "123456789012.dkr-ecr-fips.us-east-2.on.aws",
            None,
            "api.ecr.us-east-2.amazonaws.com",
            "ecr-fips.us-east-2.api.aws",
        ),
        (
            "ecr-public.aws.com",
            None,
            "api.ecr-public.us-east-1.amazonaws.com",
            "ecr-public.us-east-1.api.aws",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            Some(("AWS_USE_FIPS_ENDPOINT", "true")),
            "api.ecr-fips.us-east-1.amazonaws.com",
            "api.ecr-fips.us-east-1.amazonaws.com",
        ),
    ];
    for (host, extra, upstream, own) in cases {
        for (as_upstream, want) in [(true, upstream), (false, own)] {
            let mut cmd = if as_upstream {
                upstream_command(&s, true)
            } else {
                let mut c = s.command(&["--no-cache"]);
                c.env(TEST_NOW_ENV, TEST_NOW.to_string())
                    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
                c
            };
            cmd.env("HTTPS_PROXY", &proxy)
                .env("KUBELET_KEYRING_NO_CACHE", "1");
            if let Some((k, v)) = extra {
                cmd.env(k, v);
            }
            let out = run_with(
                cmd,
                request(VERSIONS[0], &format!("{host}/x/app")).as_bytes(),
            );
            let who = format!("{host} {extra:?} as upstream: {as_upstream}");
            let line = assert_one_line_failure(&out, &[]);
            assert!(line.contains(&format!("https://{want} (")), "{who}: {line}");
            let who = format!("{who}: {line}");
            proxy::assert_connects_only_to(&rx, &format!("{want}:443"), &who);
        }
    }
}

/// Point 2. Upstream reads the role from `eks.amazonaws.com/ecr-role-arn` when the service
/// account has the annotation at all, and an empty value means the node's credentials: not
/// `AWS_ECR_ROLE_ARN`'s role. A blank value counts as empty here (upstream would send it to
/// STS, which refuses it: a documented difference).
#[test]
fn upstream_an_empty_role_annotation_means_the_nodes_credentials() {
    let ecr = ecr_fake("node-password", Some(TEST_NOW + 12 * 3600));
    let sts = aws_fake(|_| (500, "{}".into()));
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let image = format!("{SA_HOST}/app");
    let run = |annotations: &[(&str, &str)]| {
        let mut cmd = upstream_command(&s, true);
        cmd.env("KUBELET_KEYRING_NO_CACHE", "1")
            .env("AWS_ENDPOINT_URL_ECR", ecr.base())
            .env("AWS_ENDPOINT_URL_STS", sts.base())
            .env("AWS_ECR_ROLE_ARN", "arn:aws:iam::333333333333:role/env");
        run_with(cmd, sa_request(&image, &token, annotations).as_bytes())
    };
    for empty in ["", " "] {
        let out = run(&[(ROLE_ANNOTATION, empty)]);
        assert_eq!(
            creds(&stdout_json(&out), SA_HOST).1,
            "node-password",
            "{empty:?}: {}",
            stderr(&out)
        );
        let last = ecr.requests().pop().expect("ECR asked");
        assert_eq!(signer(&last), ACCESS_KEY, "{empty:?}: not the node's keys");
        assert!(sts.requests().is_empty(), "{empty:?}: STS was asked");
    }
    // Without the annotation, AWS_ECR_ROLE_ARN's role is assumed (and this STS fails).
    let out = run(&[]);
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(line.contains("role/env"), "{line}");
    assert!(!sts.requests().is_empty());
}

/// Point 3. Upstream assumes a pod's role for an ECR Public image in the SDK's default region
/// (`AWS_REGION`...), not in us-east-1 where ECR Public's API is; for a private registry, in
/// the registry's region. Which STS endpoint is asked is the host of the proxy's CONNECT.
/// Without any default region upstream fails; here STS is then asked in us-east-1 (a
/// documented extra).
#[test]
fn upstream_a_pods_role_for_ecr_public_is_assumed_in_the_default_region() {
    let (port, rx) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let role = "arn:aws:iam::111111111111:role/team-pull";
    let cases = [
        ("public.ecr.aws/nginx/nginx", Some("eu-west-1"), "eu-west-1"),
        (
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/app",
            Some("eu-west-1"),
            "us-west-2",
        ),
        ("public.ecr.aws/nginx/nginx", None, "us-east-1"),
    ];
    for (image, region, want) in cases {
        let mut cmd = upstream_command(&s, false);
        cmd.env("KUBELET_KEYRING_NO_CACHE", "1")
            .env("HTTPS_PROXY", &proxy);
        if let Some(r) = region {
            cmd.env("AWS_REGION", r);
        }
        let out = run_with(
            cmd,
            sa_request(image, &token, &[(ROLE_ANNOTATION, role)]).as_bytes(),
        );
        let line = assert_one_line_failure(&out, &[&token]);
        assert!(
            line.contains(&format!("cannot assume role {role} at STS in {want}")),
            "{image} {region:?}: {line}"
        );
        let (sts, who) = (
            format!("sts.{want}.amazonaws.com:443"),
            format!("{image} {region:?}"),
        );
        proxy::assert_connects_only_to(&rx, &sts, &format!("{who}: {line}"));
    }
}

/// Point 4. A token without an expiry: upstream answers `cacheDuration: 0s` (the kubelet
/// caches nothing), and so do we, storing nothing either. A token already expired by the
/// node's clock (a clock running ahead): upstream answers it without `cacheDuration` (the
/// kubelet keeps it for its default, 12 h on EKS); here it is answered for this pull only,
/// `0s`, with a warning naming the skew, instead of failing every pull (the old code) or
/// pinning a token this node thinks expired.
#[test]
fn upstream_a_token_without_expiry_or_already_expired_is_answered_for_this_pull_only() {
    let cases = [
        (None, "came without an expiry"),
        (
            Some(TEST_NOW - 3600),
            "expired 3600s ago by this node's clock, which is probably ahead; check it (NTP)",
        ),
    ];
    for (expires, warning) in cases {
        let ecr = ecr_fake("once-password", expires);
        let s = Sandbox::new();
        for n in 1..=2 {
            let mut cmd = upstream_command(&s, true);
            cmd.env("AWS_ENDPOINT_URL_ECR", ecr.base());
            let out = run_with(
                cmd,
                request(VERSIONS[0], &format!("{SA_HOST}/app")).as_bytes(),
            );
            let resp = stdout_json(&out);
            assert_eq!(
                creds(&resp, SA_HOST),
                ("AWS".into(), "once-password".into())
            );
            assert_eq!(resp["cacheDuration"], "0s", "{resp}");
            let err = stderr(&out);
            assert!(err.contains(warning), "{expires:?}: {err}");
            assert_no_secret(&out, &["once-password"]);
            // Nothing cached: every pull asks ECR.
            assert_eq!(ecr.requests().len(), n, "{expires:?}");
        }
        let list = s.run(&["cache", "list"], "");
        let text = String::from_utf8_lossy(&list.stdout);
        assert!(!text.contains(SA_HOST), "{expires:?}: {text}");
    }
}

/// Point 5. Upstream gives each HTTP request 30 s and a `credential_process` a minute, all
/// inside the kubelet's 60 s; the old code gave the credentials 10 s. A process that takes
/// 12 s now answers: the credentials may take the invocation's 50 s but what the API call
/// keeps.
#[test]
fn upstream_a_credential_process_slower_than_ten_seconds_still_answers() {
    let ecr = ecr_fake("process-password", Some(TEST_NOW + 12 * 3600));
    let s = Sandbox::new();
    let script = s.tmp.path().join("slow-credentials.sh");
    write(
        &script,
        "#!/bin/sh\nsleep 12\nprintf '{\"Version\":1,\"AccessKeyId\":\"AKIDPROCESS\",\"SecretAccessKey\":\"process-secret-canary\"}'\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let config = s.tmp.path().join("aws-config");
    write(
        &config,
        &format!("[default]\ncredential_process = {}\n", script.display()),
    );
    let mut cmd = upstream_command(&s, false);
    cmd.env("AWS_CONFIG_FILE", &config)
        .env("AWS_ENDPOINT_URL_ECR", ecr.base())
        .env("KUBELET_KEYRING_NO_CACHE", "1");
    let started = Instant::now();
    let out = run_with(
        cmd,
        request(VERSIONS[0], &format!("{SA_HOST}/app")).as_bytes(),
    );
    let took = started.elapsed();
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "process-password",
        "{}",
        stderr(&out)
    );
    assert_eq!(signer(&ecr.requests()[0]), "AKIDPROCESS");
    assert!(
        took >= Duration::from_secs(12) && took < DEADLINE,
        "{took:?}"
    );
    assert_no_secret(&out, &["process-secret-canary"]);
}

/// A profile assuming a role on top of a `credential_process` profile (`source_profile`), as
/// the SDK's profile chain does it: the process's keys sign `sts:AssumeRole` (with the role's
/// `external_id` and `role_session_name`), the role's sign the ECR call. The process is run
/// by kubelet-keyring now, not by the SDK; the chain above it must not change.
#[test]
fn a_role_over_a_credential_process_profile_is_assumed_with_the_process_keys() {
    let ecr = ecr_fake("role-password", Some(TEST_NOW + 12 * 3600));
    let sts = aws_fake(|_| {
        (
            200,
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
             <Credentials><AccessKeyId>AKIDASSUMED</AccessKeyId><SecretAccessKey>assumed-secret-canary</SecretAccessKey>\
             <SessionToken>assumed-session-canary</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:pulls</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/pull/pulls</Arn></AssumedRoleUser>\
             </AssumeRoleResult></AssumeRoleResponse>"
                .into(),
        )
    });
    let s = Sandbox::new();
    let config = s.tmp.path().join("aws-config");
    write(
        &config,
        "[default]\nrole_arn = arn:aws:iam::111111111111:role/pull\nsource_profile = keys\n\
         external_id = ext-1\nrole_session_name = pulls\n\
         [profile keys]\ncredential_process = printf '{\"Version\":1,\"AccessKeyId\":\"AKIDPROCESS\",\"SecretAccessKey\":\"process-secret-canary\",\"SessionToken\":\"process-session-canary\",\"Expiration\":\"2030-01-01T00:00:00Z\"}'\n",
    );
    let mut cmd = upstream_command(&s, false);
    cmd.env("AWS_CONFIG_FILE", &config)
        .env("AWS_ENDPOINT_URL_ECR", ecr.base())
        .env("AWS_ENDPOINT_URL_STS", sts.base())
        .env("KUBELET_KEYRING_NO_CACHE", "1");
    let out = run_with(
        cmd,
        request(VERSIONS[0], &format!("{SA_HOST}/app")).as_bytes(),
    );
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "role-password",
        "{}",
        stderr(&out)
    );
    let assumed = sts.requests();
    assert_eq!(assumed.len(), 1, "{assumed:?}");
    assert_eq!(signer(&assumed[0]), "AKIDPROCESS");
    let form = form(&assumed[0].body);
    assert_eq!(form["Action"], "AssumeRole");
    assert_eq!(form["RoleArn"], "arn:aws:iam::111111111111:role/pull");
    assert_eq!(form["ExternalId"], "ext-1");
    assert_eq!(form["RoleSessionName"], "pulls");
    assert_eq!(signer(&ecr.requests()[0]), "AKIDASSUMED");
    assert_no_secret(
        &out,
        &[
            "process-secret-canary",
            "process-session-canary",
            "assumed-secret-canary",
            "assumed-session-canary",
        ],
    );
}

/// Point 6. The Go SDK reads keys under two more names (`AWS_ACCESS_KEY`, `AWS_SECRET_KEY`)
/// and the profile from `AWS_DEFAULT_PROFILE` when `AWS_PROFILE` is not set; the Rust SDK
/// reads neither, so a node configured that way would change identity (or have none) after
/// the swap. Both are read here, with the Go SDK's order.
#[test]
fn upstream_the_go_sdks_other_names_for_the_keys_and_the_profile_are_read() {
    let ecr = ecr_fake("pw", Some(TEST_NOW + 12 * 3600));
    let s = Sandbox::new();
    let credentials = s.tmp.path().join("aws-credentials");
    write(
        &credentials,
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret-canary\n\
         [other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = other-secret-canary\n",
    );
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("AWS_ACCESS_KEY", "AKIDALIAS"),
                ("AWS_SECRET_KEY", "alias-secret-canary"),
            ],
            "AKIDALIAS",
        ),
        (&[("AWS_DEFAULT_PROFILE", "other")], "AKIDOTHER"),
        (
            &[("AWS_DEFAULT_PROFILE", "other"), ("AWS_PROFILE", "default")],
            "AKIDDEFAULT",
        ),
        (&[], "AKIDDEFAULT"),
    ];
    for (env, want) in cases {
        let mut cmd = upstream_command(&s, false);
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_ENDPOINT_URL_ECR", ecr.base())
            .env("KUBELET_KEYRING_NO_CACHE", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run_with(
            cmd,
            request(VERSIONS[0], &format!("{SA_HOST}/app")).as_bytes(),
        );
        assert_eq!(
            creds(&stdout_json(&out), SA_HOST).1,
            "pw",
            "{env:?}: {}",
            stderr(&out)
        );
        let last = ecr.requests().pop().expect("ECR asked");
        assert_eq!(signer(&last), want, "{env:?}");
        assert_no_secret(
            &out,
            &[
                "alias-secret-canary",
                "default-secret-canary",
                "other-secret-canary",
            ],
        );
    }
}

/// Point 6. Go's `net/http` never reads `ALL_PROXY`: under upstream's name a node whose
/// environment has only `ALL_PROXY` reaches AWS directly, as upstream does (one warning line
/// says it is ignored). Under our own name it is the proxy, as curl and every other backend
/// here read it.
#[test]
fn upstream_all_proxy_is_no_proxy_as_for_upstreams_go_client() {
    let ecr = ecr_fake("direct-password", Some(TEST_NOW + 12 * 3600));
    let (port, rx) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let s = Sandbox::new();
    let image = format!("{SA_HOST}/app");
    let mut cmd = upstream_command(&s, true);
    cmd.env("ALL_PROXY", &proxy)
        .env("AWS_ENDPOINT_URL_ECR", ecr.base())
        .env("KUBELET_KEYRING_NO_CACHE", "1");
    let out = run_with(cmd, request(VERSIONS[0], &image).as_bytes());
    assert_eq!(creds(&stdout_json(&out), SA_HOST).1, "direct-password");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ALL_PROXY is set and ignored"), "{err}");
    assert!(proxy::heads_until_quiet(&rx).is_empty());
    assert_eq!(ecr.requests().len(), 1);

    let (out, _) = get(
        &s,
        &image,
        &[("ALL_PROXY", &proxy), ("AWS_ENDPOINT_URL_ECR", ecr.base())],
        &["--no-cache"],
    );
    assert_one_line_failure(&out, &[]);
    let seen = proxy::heads_until_quiet(&rx);
    assert!(
        seen.first()
            .is_some_and(|h| h.starts_with(&format!("POST {}/ ", ecr.base()))),
        "{seen:?}"
    );
    assert_eq!(ecr.requests().len(), 1);
}

/// Point 5. An SSO profile works upstream; the old build had no SSO support at all (every
/// such profile failed with "feature sso not enabled"). A legacy SSO profile with its cached
/// access token: the SSO portal's GetRoleCredentials (a fake, `AWS_ENDPOINT_URL_SSO`) gives
/// the credentials that sign the ECR call.
#[test]
fn upstream_an_sso_profile_gives_the_credentials() {
    let ecr = ecr_fake("sso-password", Some(TEST_NOW + 12 * 3600));
    let portal = Fake::start("Content-Type: application/json\r\n", |r| {
        let ok = r.path.starts_with("/federation/credentials?")
            && r.path.contains("role_name=ecr-pull")
            && r.path.contains("account_id=123456789012")
            && r.headers.get("x-amz-sso_bearer_token").map(String::as_str)
                == Some("sso-access-canary");
        match ok {
            true => Reply::With(
                200,
                br#"{"roleCredentials":{"accessKeyId":"AKIDSSO","secretAccessKey":"sso-secret-canary","sessionToken":"sso-session-canary","expiration":4102444800000}}"#.to_vec(),
            ),
            false => Reply::With(403, br#"{"message":"no"}"#.to_vec()),
        }
    });
    let s = Sandbox::new();
    let start_url = "https://d-0123456789.awsapps.com/start";
    let config = s.tmp.path().join("aws-config");
    write(
        &config,
        &format!(
            "[default]\nsso_start_url = {start_url}\nsso_region = us-east-1\n\
             sso_account_id = 123456789012\nsso_role_name = ecr-pull\n"
        ),
    );
    // The SDK's cache of `aws sso login`: ~/.aws/sso/cache/<sha1 of the start URL>.json.
    let digest = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(start_url.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha1sum");
    let digest = String::from_utf8_lossy(&digest.stdout);
    let digest = digest.split_whitespace().next().expect("a digest");
    write(
        &s.home.join(format!(".aws/sso/cache/{digest}.json")),
        &format!(
            r#"{{"startUrl":"{start_url}","region":"us-east-1","accessToken":"sso-access-canary","expiresAt":"2099-12-31T00:00:00Z"}}"#
        ),
    );
    let mut cmd = upstream_command(&s, false);
    cmd.env("AWS_CONFIG_FILE", &config)
        .env("AWS_ENDPOINT_URL_SSO", portal.base())
        .env("AWS_ENDPOINT_URL_ECR", ecr.base())
        .env("KUBELET_KEYRING_NO_CACHE", "1");
    let out = run_with(
        cmd,
        request(VERSIONS[0], &format!("{SA_HOST}/app")).as_bytes(),
    );
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "sso-password",
        "{}",
        stderr(&out)
    );
    assert_eq!(portal.requests().len(), 1);
    assert_eq!(signer(&ecr.requests()[0]), "AKIDSSO");
    assert_no_secret(
        &out,
        &[
            "sso-access-canary",
            "sso-secret-canary",
            "sso-session-canary",
        ],
    );
}
