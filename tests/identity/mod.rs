//! Black-box tests of the identity backend: the real binary, rules in its `--config`, and
//! fake vendor endpoints on 127.0.0.1 that check every request field by field as the
//! vendor's documentation gives it (cited at each fake) and verify the tokens they receive
//! against the test issuer's key, as a real server checks them against the issuer's JWKS.
//!
//! Service-account tokens are real RS256 JWTs of a test issuer (`common::issuer`), with the
//! audience, expiry and claims the kubelet's TokenRequest gives them. Plain `http://` fakes
//! are reached under the explicit test setting (`KUBELET_KEYRING_TEST_PLAIN_HTTP=1`, honoured
//! by debug builds only); the tests about TLS put a real TLS front (`common::tls`) before the
//! fake and trust its CA through `SSL_CERT_FILE`.
//!
//! Vendor documentation the fakes follow:
//! * RFC 8693 §2.1-2.2 (token exchange request and response), RFC 6749 §2.3.1 (client
//!   authentication) and §5.2 (errors);
//! * Red Hat Quay API reference, "Auth Federated Robot Token":
//!   `GET /oauth2/federation/robot/token` → `{"token": ...}`;
//! * JFrog Platform REST API, "Exchange OIDC token" (`POST /access/api/v1/oidc/token`) and the
//!   AWS IAM role token (`POST /access/api/v1/aws/token` with the signed STS headers), as
//!   jfrog-credentials-provider sends them;
//! * Cloudsmith API, "Openid Create": `POST /openid/{owner}/` `{oidc_token, service_slug}` →
//!   `{"token": ...}`;
//! * Vault API: JWT/OIDC and Kubernetes auth "Login" (`POST /v1/auth/<mount>/login` `{role,
//!   jwt}` → `{"auth": {"client_token"}}`), KV v2 "Read secret version"
//!   (`GET /v1/<mount>/data/<path>`, `X-Vault-Token` → `{"data": {"data": {...}}}`);
//! * Kubernetes API: read a Secret (`GET /api/v1/namespaces/<ns>/secrets/<name>`), type
//!   `kubernetes.io/dockerconfigjson`;
//! * GCE metadata `instance/service-accounts/default/identity?audience=&format=full`
//!   (`Metadata-Flavor: Google`), Azure IMDS `metadata/identity/oauth2/token` (`Metadata:
//!   true`).
//!
//! One module per topic; this one holds what they share (the config writer, the runner, the
//! JSON fake, the lifetime check):
//!
//! | module | what |
//! |---|---|
//! | [`pass_through`] | the token as the password |
//! | [`exchange`] | RFC 8693, TLS, refusals, cache, deadline, a real oidc-provider |
//! | [`vendors`] | Quay, Artifactory (OIDC, AWS), Cloudsmith |
//! | [`vault_secret`] | Vault KV, a namespace Secret, each against a real registry too |
//! | [`node`] | `podWhenAnnotated`, GCE metadata, Azure IMDS |
//! | [`operators`] | `explain`, `validate-config`, examples, metrics, README |
//! | [`matrix`] | every method with every identity source, end to end, or refused |
#![cfg(feature = "identity")]

mod exchange;
mod matrix;
mod node;
mod operators;
mod pass_through;
mod vault_secret;
mod vendors;

pub use vault_secret::{api_server, secret_rule};

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::http::{json, Fake, Reply, Req};
use crate::common::issuer::{now, Issuer};
use crate::common::*;

pub const HOST: &str = "reg.example.com";
pub const IMAGE: &str = "reg.example.com/team/app";
pub const PLAIN_HTTP: (&str, &str) = ("KUBELET_KEYRING_TEST_PLAIN_HTTP", "1");

/// Writes the plugin config with these rules (YAML list items, indented by four).
pub fn config(s: &Sandbox, rules: &str) -> String {
    let p = s.tmp.path().join("keyring.yaml");
    write(&p, &format!("identity:\n  rules:\n{rules}"));
    p.display().to_string()
}

/// One run with the config, the environment `env` and the flags `args`.
pub fn run(s: &Sandbox, cfg: &str, req: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = s.command(&[&["--config", cfg][..], args].concat());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with(cmd, req.as_bytes())
}

/// One run of the pod's `token` for [`IMAGE`], the fakes reached over plain `http://`, with
/// the flags `args`.
pub fn run_pod(s: &Sandbox, cfg: &str, token: &str, args: &[&str]) -> Output {
    run(s, cfg, &sa_request(IMAGE, token, &[]), &[PLAIN_HTTP], args)
}

/// A JSON fake.
pub fn fake(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Fake {
    Fake::start("Content-Type: application/json\r\n", handler)
}

/// HTTP Basic credentials, as sent (Quay: the robot name and the JWT).
fn basic(req: &Req) -> Option<(String, String)> {
    let v = req.headers.get("authorization")?.strip_prefix("Basic ")?;
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).ok()?).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// OAuth client credentials in HTTP Basic: each half form-urlencoded (RFC 6749 §2.3.1).
fn client_basic(req: &Req) -> Option<(String, String)> {
    let (u, p) = basic(req)?;
    let pairs = form(format!("u={u}&p={p}"));
    Some((pairs.get("u")?.clone(), pairs.get("p")?.clone()))
}

fn body_json(req: &Req) -> Value {
    serde_json::from_slice(&req.body).unwrap_or(Value::Null)
}

/// A registry access token the fakes issue (an RFC 9068 `at+jwt`) expiring in `ttl` seconds.
fn registry_token(issuer: &Issuer, subject: &str, ttl: u64) -> String {
    issuer.sign_as("at+jwt", &json!({"iss": "https://registry-auth.example.com", "sub": subject, "aud": "registry", "exp": now() + ttl}))
}

/// The cacheDuration seconds of a response.
fn cache_secs(resp: &Value) -> u64 {
    go_secs(resp["cacheDuration"].as_str().expect("cacheDuration"))
}

/// What a token's lifetime becomes: expiry less five minutes, less up to 10% jitter.
fn lifetime_ok(secs: u64, ttl: u64) {
    let max = ttl - 300;
    assert!(
        secs <= max && secs >= max * 9 / 10 - 2,
        "{secs} for a {ttl} s token"
    );
}

/// A fake of both node metadata servers on one port: GCE metadata (at `GCE_METADATA_HOST`)
/// answers `instance/service-accounts/default/identity?audience=<aud>&format=full` with
/// `Metadata-Flavor: Google`, Azure IMDS (at [`Metadata::imds`]) answers
/// `metadata/identity/oauth2/token?api-version=2018-02-01&resource=<r>` with `Metadata: true`;
/// each with the issuer's JWT for that audience (subject `gce-sa`, `azure-mi`), valid for an
/// hour (IMDS: `expires_in` "3599"). [`Metadata::issued`] lists the tokens it gave.
pub struct Metadata {
    fake: Fake,
    issued: Arc<Mutex<Vec<String>>>,
}

impl Metadata {
    pub fn start(issuer: Arc<Issuer>) -> Metadata {
        let issued = Arc::new(Mutex::new(Vec::new()));
        let given = issued.clone();
        let fake = fake(move |r| {
            let q: BTreeMap<String, String> =
                form(r.path.split_once('?').map(|x| x.1).unwrap_or_default());
            let path = r.path.split('?').next().unwrap_or_default();
            let give = |aud: &str, sub: &str| {
                let token = issuer.sign(&json!({"aud": aud, "sub": sub, "exp": now() + 3600}));
                given.lock().expect("lock").push(token.clone());
                token
            };
            match (
                path,
                r.headers.get("metadata-flavor").map(String::as_str),
                r.headers.get("metadata").map(String::as_str),
            ) {
                (
                    "/computeMetadata/v1/instance/service-accounts/default/identity",
                    Some("Google"),
                    _,
                ) if q.get("format").map(String::as_str) == Some("full") => {
                    let aud = q.get("audience").cloned().unwrap_or_default();
                    Reply::With(200, give(&aud, "gce-sa").into_bytes())
                }
                ("/metadata/identity/oauth2/token", _, Some("true"))
                    if q.get("api-version").map(String::as_str) == Some("2018-02-01") =>
                {
                    let res = q.get("resource").cloned().unwrap_or_default();
                    json(200, &json!({"access_token": give(&res, "azure-mi"), "expires_in": "3599", "resource": res, "token_type": "Bearer"}).to_string())
                }
                _ => json(404, "{}"),
            }
        });
        Metadata { fake, issued }
    }

    /// `127.0.0.1:PORT`, for `GCE_METADATA_HOST`.
    pub fn host(&self) -> String {
        self.fake.host()
    }

    /// The IMDS token URL, for `node.azure.imds`.
    pub fn imds(&self) -> String {
        self.fake.url("/metadata/identity/oauth2/token")
    }

    /// Every token given so far, in order.
    pub fn issued(&self) -> Vec<String> {
        self.issued.lock().expect("lock").clone()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Req> {
        self.fake.requests()
    }
}

fn pod_rule(audience: &str, method: &str) -> String {
    format!("    - hosts: [{HOST}]\n      identity: pod\n      pod: {{audience: {audience}}}\n      method:\n        {method}\n")
}
