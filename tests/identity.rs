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
#![cfg(feature = "identity")]

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::Arc;
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

fn pod_rule(audience: &str, method: &str) -> String {
    format!("    - hosts: [{HOST}]\n      identity: pod\n      pod: {{audience: {audience}}}\n      method:\n        {method}\n")
}

#[test]
fn pass_through_hands_the_pods_token_to_the_registry_and_nobody_caches_it() {
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let cfg = config(&s, &pod_rule(HOST, "passThrough: {username: robot$harbor}"));
    let token = issuer.sa_token(HOST, "team", "puller", "uid-1", 1, 3600);
    for _ in 0..2 {
        let out = run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, &[]),
            &[],
            &["-vvvvvvvvv"],
        );
        let resp = stdout_json(&out);
        assert_eq!(creds(&resp, HOST), ("robot$harbor".into(), token.clone()));
        assert_eq!(resp["cacheDuration"], "0s", "the kubelet must not keep it");
        assert_eq!(resp["cacheKeyType"], "Registry");
        assert!(
            !stderr(&out).contains(&token[token.len() - 20..]),
            "stderr: {}",
            stderr(&out)
        );
        // Nothing on disk holds the token.
        assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
    }
}

#[test]
fn pass_through_of_a_node_token_file_answers_every_api_version_for_its_lifetime() {
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let file = s.tmp.path().join("node-token");
    let token = registry_token(&issuer, "node-1", 7200);
    write(&file, &format!("{token}\n"));
    let cfg = config(
        &s,
        &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {{tokenFile: {}}}\n      method: {{passThrough: {{username: node}}}}\n", file.display()),
    );
    for v in VERSIONS {
        let resp = stdout_json(&run(&s, &cfg, &request(v, IMAGE), &[], &["--no-cache"]));
        assert_eq!(resp["apiVersion"], v);
        assert_eq!(creds(&resp, HOST), ("node".into(), token.clone()));
        lifetime_ok(cache_secs(&resp), 7200);
    }
    // Images of other hosts are not the backend's: an empty answer.
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &request(VERSIONS[0], "other.example.com/x"),
        &[],
        &["--no-cache"],
    ));
    assert_eq!(resp["auth"], json!({}));
}

/// An RFC 8693 server: checks the client, the form and the subject token's signature and
/// audience (`expect_aud`); issues a registry token for the subject's `sub`.
fn sts(issuer: Arc<Issuer>, expect_aud: &'static str, secret: &'static str) -> Fake {
    fake(move |r| {
        let form = form(std::str::from_utf8(&r.body).unwrap_or_default());
        if (r.method.as_str(), r.path.as_str()) != ("POST", "/oauth2/token")
            || r.headers.get("content-type").map(String::as_str)
                != Some("application/x-www-form-urlencoded")
        {
            return json(400, r#"{"error":"invalid_request"}"#);
        }
        if client_basic(r) != Some(("registry-client".into(), secret.into())) {
            return json(401, r#"{"error":"invalid_client"}"#);
        }
        let want = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("audience", "registry"),
            ("scope", "repository:team/app:pull"),
        ];
        if want
            .iter()
            .any(|(k, v)| form.get(*k).map(String::as_str) != Some(*v))
            || form.contains_key("client_secret")
        {
            return json(400, r#"{"error":"invalid_request"}"#);
        }
        let Some(claims) = issuer.valid_for(
            form.get("subject_token")
                .map(String::as_str)
                .unwrap_or_default(),
            expect_aud,
        ) else {
            return json(
                400,
                r#"{"error":"invalid_grant","error_description":"subject token rejected"}"#,
            );
        };
        let token = registry_token(&issuer, claims["sub"].as_str().unwrap_or_default(), 3600);
        json(
            200,
            &json!({"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 3600}).to_string(),
        )
    })
}

fn exchange_rule(s: &Sandbox, endpoint: &str) -> String {
    let secret = s.tmp.path().join("client-secret");
    write(&secret, "s3cret:/+%\n");
    pod_rule(
        "registry.example.com",
        &format!("tokenExchange: {{endpoint: \"{endpoint}\", audience: registry, scope: \"repository:team/app:pull\", clientId: registry-client, clientSecretFile: {}, username: oauth2}}", secret.display()),
    )
}

#[test]
fn rfc8693_exchange_sends_the_documented_form_and_answers_with_the_issued_token() {
    let issuer = Arc::new(Issuer::new());
    let server = sts(issuer.clone(), "registry.example.com", "s3cret:/+%");
    let s = Sandbox::new();
    let cfg = config(&s, &exchange_rule(&s, &server.url("/oauth2/token")));
    let token = issuer.sa_token("registry.example.com", "team", "puller", "uid-1", 1, 3600);
    let out = run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &["-vvvvvvvvv"],
    );
    let resp = stdout_json(&out);
    let (user, password) = creds(&resp, HOST);
    assert_eq!(user, "oauth2");
    let claims = issuer
        .verify(&password)
        .expect("the password is the issued token");
    assert_eq!(claims["sub"], "system:serviceaccount:team:puller");
    lifetime_ok(cache_secs(&resp), 3600);
    let err = stderr(&out);
    for secret in ["s3cret", &password[password.len() - 20..]] {
        assert!(!err.contains(secret), "{secret} in stderr: {err}");
    }
    assert_token_nowhere(
        &token,
        &[("stderr", &out.stderr), ("stdout", &out.stdout)],
        Some(&s.cache),
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_cold_exchange_is_one_https_round_trip_and_the_warm_one_none() {
    let issuer = Arc::new(Issuer::new());
    let server = sts(issuer.clone(), "registry.example.com", "s3cret:/+%");
    let s = Sandbox::new();
    let dir = s.tmp.path();
    crate::common::tls::ca(dir, "ca");
    crate::common::tls::server_cert(dir, "ca", "IP:127.0.0.1");
    let port =
        crate::common::tls::tls_front(&dir.join("srv.pem"), &dir.join("srv.key"), server.host());
    let cfg = config(
        &s,
        &exchange_rule(&s, &format!("https://127.0.0.1:{port}/oauth2/token")),
    );
    let ca = dir.join("ca.pem");
    let env = [("SSL_CERT_FILE", ca.to_str().expect("utf-8"))];
    let ask = |nonce| {
        let token = issuer.sa_token(
            "registry.example.com",
            "team",
            "puller",
            "uid-1",
            nonce,
            3600,
        );
        stdout_json(&run(&s, &cfg, &sa_request(IMAGE, &token, &[]), &env, &[]))
    };
    let first = ask(1);
    // The TLS front forwards one request per connection: one request is one TLS connection,
    // one handshake and one round trip, with no discovery or retry around it.
    assert_eq!(server.requests().len(), 1);
    // Another pod of the same service account: served from the cache, no request at all.
    let second = ask(2);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(creds(&first, HOST), creds(&second, HOST));
    // Without the test CA the server's certificate is refused and nothing is sent.
    let token = issuer.sa_token("registry.example.com", "team", "other", "uid-9", 3, 3600);
    let out = run(&s, &cfg, &sa_request(IMAGE, &token, &[]), &[], &[]);
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(
        line.contains("certificate") || line.contains("UnknownIssuer"),
        "{line}"
    );
    assert_eq!(
        line.matches("invalid peer certificate").count(),
        1,
        "said twice: {line}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_pod_token_for_another_audience_is_refused_and_never_sent() {
    let issuer = Arc::new(Issuer::new());
    let server = sts(issuer.clone(), "registry.example.com", "s3cret:/+%");
    let s = Sandbox::new();
    let cfg = config(&s, &exchange_rule(&s, &server.url("/oauth2/token")));
    let token = issuer.sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1, 3600);
    let out = run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    );
    let line = assert_one_line_exit(&out, 2, &[&token]);
    assert!(
        line.contains("audience")
            && line.contains("registry.example.com")
            && line.contains("refused, not sent"),
        "{line}"
    );
    assert!(server.requests().is_empty(), "the token was sent");
}

#[test]
fn plain_http_is_refused_without_the_test_setting() {
    let issuer = Arc::new(Issuer::new());
    let server = sts(issuer.clone(), "registry.example.com", "s3cret:/+%");
    let s = Sandbox::new();
    let cfg = config(&s, &exchange_rule(&s, &server.url("/oauth2/token")));
    let token = issuer.sa_token("registry.example.com", "team", "puller", "uid-1", 1, 3600);
    let out = run(&s, &cfg, &sa_request(IMAGE, &token, &[]), &[], &[]);
    let line = assert_one_line_exit(&out, 2, &[&token]);
    assert!(line.contains("go only over https://"), "{line}");
    assert!(server.requests().is_empty());
    // And a non-loopback http:// endpoint is refused when the config is loaded.
    let cfg = config(
        &s,
        &exchange_rule(&s, "http://sts.example.com/oauth2/token"),
    );
    let line = assert_one_line_exit(
        &run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, &[]),
            &[PLAIN_HTTP],
            &[],
        ),
        2,
        &[],
    );
    assert!(line.contains("is not https://"), "{line}");
}

#[test]
fn a_refused_exchange_is_denied_in_one_line_with_the_oauth_code_only() {
    let issuer = Arc::new(Issuer::new());
    let server = sts(issuer.clone(), "registry.example.com", "wrong-secret");
    let s = Sandbox::new();
    let cfg = config(&s, &exchange_rule(&s, &server.url("/oauth2/token")));
    let token = issuer.sa_token("registry.example.com", "team", "puller", "uid-1", 1, 3600);
    let out = run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    );
    let line = assert_one_line_failure(&out, &[&token, "s3cret"]);
    assert!(line.contains("answered 401 (invalid_client)"), "{line}");
}

/// Quay: `GET /oauth2/federation/robot/token`, Basic `<robot>:<service-account JWT>`.
#[test]
fn quay_robot_federation_follows_the_documented_request() {
    let issuer = Arc::new(Issuer::new());
    let i = issuer.clone();
    let server = fake(move |r| {
        match (r.method.as_str(), r.path.as_str(), basic(r)) {
        ("GET", "/oauth2/federation/robot/token", Some((robot, jwt))) if robot == "team+puller" => {
            match i.valid_for(&jwt, "quay") {
                Some(c) => json(200, &json!({"token": registry_token(&i, c["sub"].as_str().unwrap_or_default(), 3600)}).to_string()),
                None => json(401, r#"{"error":"invalid federation token"}"#),
            }
        }
        _ => json(401, r#"{"error":"unauthorized"}"#),
    }
    });
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &pod_rule(
            "quay",
            &format!("quay: {{url: \"{}\", robot: team+puller}}", server.base()),
        ),
    );
    let token = issuer.sa_token("quay", "team", "puller", "uid-1", 1, 3600);
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    ));
    let (user, password) = creds(&resp, HOST);
    assert_eq!(user, "team+puller");
    assert!(issuer.verify(&password).is_some());
    lifetime_ok(cache_secs(&resp), 3600);
}

/// Artifactory OIDC: JSON `{grant_type, subject_token_type: id_token, subject_token,
/// provider_name, project_key}` → `{access_token, expires_in, username, ...}`.
#[test]
fn artifactory_oidc_exchange_follows_the_documented_request() {
    let issuer = Arc::new(Issuer::new());
    let i = issuer.clone();
    let server = fake(move |r| {
        let b = body_json(r);
        let ok = r.method == "POST"
            && r.path == "/access/api/v1/oidc/token"
            && r.headers.get("content-type").map(String::as_str) == Some("application/json")
            && b["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
            && b["subject_token_type"] == "urn:ietf:params:oauth:token-type:id_token"
            && b["provider_name"] == "k8s-prod"
            && b["project_key"] == "team";
        match (ok, i.valid_for(b["subject_token"].as_str().unwrap_or_default(), "jfrog")) {
            (true, Some(_)) => json(200, &json!({"access_token": "jfrog-access-token-xyz", "token_type": "Bearer", "expires_in": 1800, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "username": "k8s-team-puller"}).to_string()),
            _ => json(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#),
        }
    });
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &pod_rule(
            "jfrog",
            &format!(
                "artifactoryOidc: {{url: \"{}\", providerName: k8s-prod, projectKey: team}}",
                server.base()
            ),
        ),
    );
    let token = issuer.sa_token("jfrog", "team", "puller", "uid-1", 1, 3600);
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    ));
    assert_eq!(
        creds(&resp, HOST),
        ("k8s-team-puller".into(), "jfrog-access-token-xyz".into())
    );
    lifetime_ok(cache_secs(&resp), 1800);
}

/// Artifactory AWS IAM: the signed STS GetCallerIdentity headers, body `{"expires_in": N}`.
#[test]
fn artifactory_aws_sends_the_signed_get_caller_identity_headers() {
    let server = fake(|r| {
        let h = |k: &str| r.headers.get(k).cloned().unwrap_or_default();
        let ok = r.method == "POST"
            && r.path == "/access/api/v1/aws/token"
            && h("authorization").starts_with("AWS4-HMAC-SHA256 Credential=AKIAIDENTITYTEST/")
            && h("authorization").contains("/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=")
            && h("x-amz-date").len() == 16
            && h("x-amz-security-token") == "session-token-value"
            && body_json(r) == json!({"expires_in": 900});
        if ok {
            json(
                200,
                r#"{"token_id":"t1","access_token":"jfrog-aws-token","scope":"applied-permissions/user","token_type":"Bearer","expires_in":900,"username":"aws-node-role"}"#,
            )
        } else {
            json(403, r#"{"errors":[{"code":"FORBIDDEN"}]}"#)
        }
    });
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {{aws: {{}}}}\n      method: {{artifactoryAws: {{url: \"{}\", expiresIn: 900}}}}\n", server.base()),
    );
    let env = [
        PLAIN_HTTP,
        ("AWS_ACCESS_KEY_ID", "AKIAIDENTITYTEST"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-key-never-shown"),
        ("AWS_SESSION_TOKEN", "session-token-value"),
    ];
    let out = run(
        &s,
        &cfg,
        &request(VERSIONS[1], IMAGE),
        &env,
        &["-vvvvvvvvv"],
    );
    let resp = stdout_json(&out);
    assert_eq!(
        creds(&resp, HOST),
        ("aws-node-role".into(), "jfrog-aws-token".into())
    );
    lifetime_ok(cache_secs(&resp), 900);
    let err = stderr(&out);
    for secret in [
        "aws-secret-key-never-shown",
        "session-token-value",
        "jfrog-aws-token",
    ] {
        assert!(!err.contains(secret), "{secret}: {err}");
    }
}

/// Cloudsmith: `POST /openid/<org>/` `{oidc_token, service_slug}` → `{"token"}`.
#[test]
fn cloudsmith_oidc_follows_the_documented_request() {
    let issuer = Arc::new(Issuer::new());
    let i = issuer.clone();
    let server = fake(move |r| {
        let b = body_json(r);
        match (
            r.method.as_str(),
            r.path.as_str(),
            i.valid_for(b["oidc_token"].as_str().unwrap_or_default(), "cloudsmith"),
        ) {
            ("POST", "/openid/acme/", Some(_)) if b["service_slug"] == "k8s-puller" => json(
                200,
                &json!({"token": registry_token(&i, "k8s-puller", 5400)}).to_string(),
            ),
            _ => json(401, r#"{"detail":"OIDC token cannot be authenticated."}"#),
        }
    });
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &pod_rule(
            "cloudsmith",
            &format!(
                "cloudsmith: {{apiUrl: \"{}\", org: acme, service: k8s-puller}}",
                server.base()
            ),
        ),
    );
    let token = issuer.sa_token("cloudsmith", "team", "puller", "uid-1", 1, 3600);
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    ));
    let (user, password) = creds(&resp, HOST);
    assert_eq!(user, "token");
    assert!(issuer.verify(&password).is_some());
    lifetime_ok(cache_secs(&resp), 5400);
}

/// A fake Vault: the `kubernetes` auth method at `auth/k8s/login` with role `puller`, and a
/// KV v2 mount `kv` holding `registry/harbor` with `user` and `pass`.
pub fn vault(issuer: Arc<Issuer>, user: String, pass: String) -> Fake {
    fake(move |r| {
        match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/auth/k8s/login") => {
            let b = body_json(r);
            let ns_ok = r.headers.get("x-vault-namespace").map(String::as_str) == Some("team-ns");
            match issuer.valid_for(b["jwt"].as_str().unwrap_or_default(), "vault") {
                Some(c) if b["role"] == "puller" && ns_ok && c["kubernetes.io"]["namespace"] == "team" => {
                    json(200, r#"{"auth":{"client_token":"hvs.vault-client-token","lease_duration":3600,"renewable":true,"policies":["registry"]}}"#)
                }
                _ => json(403, r#"{"errors":["permission denied"]}"#),
            }
        }
        ("GET", "/v1/kv/data/registry/harbor") if r.headers.get("x-vault-token").map(String::as_str) == Some("hvs.vault-client-token") => json(
            200,
            &json!({"data": {"data": {"user": user, "pass": pass}, "metadata": {"version": 3, "created_time": "2026-01-01T00:00:00Z"}}, "lease_duration": 0}).to_string(),
        ),
        _ => json(403, r#"{"errors":["permission denied"]}"#),
    }
    })
}

pub fn vault_rule(base: &str) -> String {
    vault_rule_for(base, HOST)
}

/// The Vault rule for `host`.
pub fn vault_rule_for(base: &str, host: &str) -> String {
    format!(
        "    - hosts: [\"{host}\"]\n      identity: pod\n      pod: {{audience: vault}}\n      method:\n        vault: {{address: \"{base}\", namespace: team-ns, auth: kubernetes, authMount: k8s, role: puller, kvMount: kv, path: registry/harbor, usernameField: user, passwordField: pass}}\n"
    )
}

#[test]
fn vault_login_then_kv_read_answers_the_stored_credential_for_five_minutes() {
    let issuer = Arc::new(Issuer::new());
    let server = vault(
        issuer.clone(),
        "harbor-robot".into(),
        "stored-password".into(),
    );
    let s = Sandbox::new();
    let cfg = config(&s, &vault_rule(server.base()));
    let token = issuer.sa_token("vault", "team", "puller", "uid-1", 1, 3600);
    let out = run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &["-vvvvvvvvv"],
    );
    let resp = stdout_json(&out);
    assert_eq!(
        creds(&resp, HOST),
        ("harbor-robot".into(), "stored-password".into())
    );
    let secs = cache_secs(&resp);
    assert!((270..=300).contains(&secs), "{secs}");
    assert!(!stderr(&out).contains("hvs.vault-client-token"));
    assert_eq!(server.requests().len(), 2, "login, read");
    // A role the server refuses: denied, one line.
    let cfg = config(
        &s,
        &vault_rule(server.base()).replace("role: puller", "role: other"),
    );
    let token = issuer.sa_token("vault", "team", "b", "uid-2", 2, 3600);
    let line = assert_one_line_failure(
        &run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, &[]),
            &[PLAIN_HTTP],
            &[],
        ),
        &[&token],
    );
    assert!(
        line.contains("Vault login") && line.contains("answered 403"),
        "{line}"
    );
}

/// A fake API server holding `team/registry-pull` (dockerconfigjson with `auths`) that only
/// the service account `team/puller` may read.
pub fn api_server(issuer: Arc<Issuer>, auths: Value) -> Fake {
    fake(move |r| {
        let bearer = r
            .headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default();
        let Some(c) = issuer.valid_for(bearer, "https://kubernetes.default.svc") else {
            return json(
                401,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#,
            );
        };
        if c["sub"] != "system:serviceaccount:team:puller" {
            return json(
                403,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}"#,
            );
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v1/namespaces/team/secrets/registry-pull") => {
                let cfg = base64::engine::general_purpose::STANDARD
                    .encode(json!({"auths": auths}).to_string());
                json(200, &json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "registry-pull", "namespace": "team"}, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": cfg}}).to_string())
            }
            _ => json(
                404,
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#,
            ),
        }
    })
}

pub fn secret_rule(base: &str, host: &str) -> String {
    format!(
        "    - hosts: [\"{host}\"]\n      identity: pod\n      pod: {{audience: \"https://kubernetes.default.svc\"}}\n      method:\n        kubernetesSecret: {{apiServer: \"{base}\", secret: registry-pull}}\n"
    )
}

#[test]
fn a_namespace_secret_is_read_with_the_pods_own_token_and_matched_by_the_kubelets_rules() {
    let issuer = Arc::new(Issuer::new());
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let server = api_server(
        issuer.clone(),
        json!({
            "reg.example.com": {"auth": b64("wide:wide-pw")},
            "reg.example.com/team": {"username": "team", "password": "team-pw"},
            "reg.example.com:5000": {"username": "port", "password": "port-pw"},
        }),
    );
    let s = Sandbox::new();
    let cfg = config(&s, &secret_rule(server.base(), HOST));
    let token = issuer.sa_token(
        "https://kubernetes.default.svc",
        "team",
        "puller",
        "uid-1",
        1,
        3600,
    );
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &["--no-cache"],
    ));
    assert_eq!(
        creds(&resp, HOST),
        ("team".into(), "team-pw".into()),
        "the most specific key wins"
    );
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request("reg.example.com/other/app", &token, &[]),
        &[PLAIN_HTTP],
        &["--no-cache"],
    ));
    assert_eq!(creds(&resp, HOST), ("wide".into(), "wide-pw".into()));
    // Another service account is refused by RBAC: denied, its token nowhere.
    let other = issuer.sa_token(
        "https://kubernetes.default.svc",
        "team",
        "intruder",
        "uid-2",
        2,
        3600,
    );
    let out = run(
        &s,
        &cfg,
        &sa_request(IMAGE, &other, &[]),
        &[PLAIN_HTTP],
        &[],
    );
    let line = assert_one_line_failure(&out, &[&other]);
    assert!(
        line.contains("answered 403") && line.contains("team/intruder get on secret registry-pull"),
        "{line}"
    );
}

#[test]
fn pod_when_annotated_uses_the_pod_only_when_its_service_account_asks() {
    let issuer = Arc::new(Issuer::new());
    let i = issuer.clone();
    // Pass-through would hide which token went where: an exchange that echoes the subject.
    let server = fake(move |r| {
        let form = form(std::str::from_utf8(&r.body).unwrap_or_default());
        let subject = form.get("subject_token").cloned().unwrap_or_default();
        let who = match i.verify(&subject) {
            Some(c) => c["sub"].as_str().unwrap_or_default().to_string(),
            None => "unverified".into(),
        };
        json(200, &json!({"access_token": format!("for:{who}"), "expires_in": 3600, "token_type": "Bearer", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}).to_string())
    });
    let s = Sandbox::new();
    let file = s.tmp.path().join("node-token");
    write(
        &file,
        &issuer.sign(&json!({"sub": "node-1", "aud": "registry", "exp": now() + 7200})),
    );
    let cfg = config(
        &s,
        &format!(
            "    - hosts: [{HOST}]\n      identity: podWhenAnnotated\n      pod: {{audience: registry, annotation: example.com/registry-identity}}\n      node: {{tokenFile: {}}}\n      method: {{tokenExchange: {{endpoint: \"{}\", username: u}}}}\n",
            file.display(),
            server.url("/token")
        ),
    );
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let ask = |annotations: &[(&str, &str)]| {
        let resp = stdout_json(&run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, annotations),
            &[PLAIN_HTTP],
            &["--no-cache"],
        ));
        creds(&resp, HOST).1
    };
    assert_eq!(
        ask(&[("example.com/registry-identity", "true")]),
        "for:system:serviceaccount:team:puller"
    );
    assert_eq!(ask(&[]), "for:node-1");
    assert_eq!(
        ask(&[("example.com/registry-identity", "false")]),
        "for:node-1"
    );
    // A v1beta1 request has no token: the node's identity.
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &request(VERSIONS[1], IMAGE),
        &[PLAIN_HTTP],
        &["--no-cache"],
    ));
    assert_eq!(creds(&resp, HOST).1, "for:node-1");
}

#[test]
fn node_identity_tokens_come_from_gce_metadata_and_azure_imds_for_the_configured_audience() {
    let issuer = Arc::new(Issuer::new());
    let i = issuer.clone();
    let metadata = fake(move |r| {
        let q: BTreeMap<String, String> =
            form(r.path.split_once('?').map(|x| x.1).unwrap_or_default());
        let path = r.path.split('?').next().unwrap_or_default();
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
                Reply::With(
                    200,
                    i.sign(&json!({"aud": aud, "sub": "gce-sa", "exp": now() + 3600}))
                        .into_bytes(),
                )
            }
            ("/metadata/identity/oauth2/token", _, Some("true"))
                if q.get("api-version").map(String::as_str) == Some("2018-02-01") =>
            {
                let res = q.get("resource").cloned().unwrap_or_default();
                json(200, &json!({"access_token": i.sign(&json!({"aud": res, "sub": "azure-mi", "exp": now() + 3600})), "expires_in": "3599", "resource": res, "token_type": "Bearer"}).to_string())
            }
            _ => json(404, "{}"),
        }
    });
    let i = issuer.clone();
    let server = fake(move |r| {
        let form = form(std::str::from_utf8(&r.body).unwrap_or_default());
        let c = i
            .verify(
                form.get("subject_token")
                    .map(String::as_str)
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
        json(200, &json!({"access_token": format!("for:{}:{}", c["sub"].as_str().unwrap_or("?"), c["aud"].as_str().unwrap_or("?")), "expires_in": 3600}).to_string())
    });
    let s = Sandbox::new();
    let rule = |node: &str| {
        config(&s, &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {node}\n      method: {{tokenExchange: {{endpoint: \"{}\", username: u}}}}\n", server.url("/token")))
    };
    let gce = rule("{gcp: {audience: \"https://registry.example.com\"}}");
    let env = [PLAIN_HTTP, ("GCE_METADATA_HOST", &metadata.host())];
    let resp = stdout_json(&run(
        &s,
        &gce,
        &request(VERSIONS[2], IMAGE),
        &env,
        &["--no-cache"],
    ));
    assert_eq!(
        creds(&resp, HOST).1,
        "for:gce-sa:https://registry.example.com"
    );
    let azure = rule(&format!(
        "{{azure: {{resource: \"api://registry\", imds: \"{}\"}}}}",
        metadata.url("/metadata/identity/oauth2/token")
    ));
    let resp = stdout_json(&run(
        &s,
        &azure,
        &request(VERSIONS[0], IMAGE),
        &[PLAIN_HTTP],
        &["--no-cache"],
    ));
    assert_eq!(creds(&resp, HOST).1, "for:azure-mi:api://registry");
}

#[test]
fn service_accounts_never_share_an_answer_and_concurrent_pods_of_one_make_one_exchange() {
    let issuer = Arc::new(Issuer::new());
    let i = issuer.clone();
    let server = fake(move |r| {
        std::thread::sleep(Duration::from_millis(400));
        let form = form(std::str::from_utf8(&r.body).unwrap_or_default());
        let c = i
            .verify(
                form.get("subject_token")
                    .map(String::as_str)
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
        json(200, &json!({"access_token": format!("for:{}", c["sub"].as_str().unwrap_or("?")), "expires_in": 3600}).to_string())
    });
    let s = Arc::new(Sandbox::new());
    let cfg = config(
        &s,
        &pod_rule(
            "registry",
            &format!(
                "tokenExchange: {{endpoint: \"{}\", username: u}}",
                server.url("/token")
            ),
        ),
    );
    let started = Instant::now();
    let runs: Vec<_> = (0..6u32)
        .map(|n| {
            let (s, cfg) = (s.clone(), cfg.clone());
            // Pods 0..3 run as team/a, pods 4..5 as team/b: each pod its own token.
            let name = if n < 4 { "a" } else { "b" };
            let token = issuer.sa_token("registry", "team", name, &format!("uid-{name}"), n, 3600);
            std::thread::spawn(move || {
                let out = run(
                    &s,
                    &cfg,
                    &sa_request(IMAGE, &token, &[]),
                    &[PLAIN_HTTP],
                    &[],
                );
                (name, creds(&stdout_json(&out), HOST).1)
            })
        })
        .collect();
    for r in runs {
        let (name, password) = r.join().expect("run");
        assert_eq!(password, format!("for:system:serviceaccount:team:{name}"));
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        server.requests().len(),
        2,
        "one exchange per service account"
    );
}

#[test]
fn a_silent_endpoint_is_a_one_line_failure_inside_the_deadline() {
    let issuer = Issuer::new();
    let server = fake(|_| Reply::Hang);
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &pod_rule(
            "registry",
            &format!(
                "tokenExchange: {{endpoint: \"{}\", username: u}}",
                server.url("/token")
            ),
        ),
    );
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let started = Instant::now();
    let out = run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    );
    let took = started.elapsed();
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(took < Duration::from_secs(55), "{took:?}");
    assert!(
        line.contains("exchange")
            && (line.contains("no answer within") || line.contains("out of time")),
        "{line}"
    );
}

#[test]
fn explain_names_the_rule_the_identity_and_the_method_without_io() {
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &format!(
            "{}    - hosts: [\"*.example.com\"]\n      identity: node\n      node: {{tokenFile: /nonexistent}}\n      method: {{passThrough: {{}}}}\n",
            pod_rule("registry", "tokenExchange: {endpoint: \"https://sts.example.com/token\", username: u}")
        ),
    );
    let out = s.run(
        &["--config", &cfg, "explain", IMAGE, "other.example.com/x"],
        "",
    );
    let text = stderr(&out) + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "identity.rules[0] matches through \"reg.example.com\"",
        "method: tokenExchange at https://sts.example.com/token",
        "identity.rules[1] matches through \"*.example.com\"",
        "identity: the node's (tokenFile)",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
}

/// Vault's stored credential opens a real registry (Debian's docker-registry with htpasswd),
/// checked with `skopeo inspect`: the Vault server is the fake above, the registry is real.
#[test]
#[ignore = "needs docker-registry, skopeo, htpasswd"]
fn vault_credentials_open_a_real_registry() {
    use crate::common::registry::{Served, Tools, REPO, USER};
    let served = Served::start(Tools::required());
    let issuer = Arc::new(Issuer::new());
    let server = vault(issuer.clone(), USER.into(), served.password.clone());
    let s = Sandbox::new();
    let host = served.host();
    let cfg = config(&s, &vault_rule_for(server.base(), &host));
    let token = issuer.sa_token("vault", "team", "puller", "uid-1", 1, 3600);
    let image = format!("{host}/{REPO}");
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request(&image, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    ));
    let (user, password) = creds(&resp, &host);
    served.assert_opens(&user, &password);
}

/// The namespace Secret's entry opens a real registry, checked with `skopeo inspect`.
#[test]
#[ignore = "needs docker-registry, skopeo, htpasswd"]
fn a_namespace_secrets_credentials_open_a_real_registry() {
    use crate::common::registry::{Served, Tools, REPO, USER};
    let served = Served::start(Tools::required());
    let issuer = Arc::new(Issuer::new());
    let host = served.host();
    let server = api_server(
        issuer.clone(),
        json!({ host.clone(): {"username": USER, "password": served.password}, "127.0.0.1": {"username": "decoy", "password": "wrong"} }),
    );
    let s = Sandbox::new();
    let cfg = config(&s, &secret_rule(server.base(), &host));
    let token = issuer.sa_token(
        "https://kubernetes.default.svc",
        "team",
        "puller",
        "uid-1",
        1,
        3600,
    );
    let image = format!("{host}/{REPO}");
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request(&image, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    ));
    let (user, password) = creds(&resp, &host);
    served.assert_opens(&user, &password);
}

/// Where scripts/install-test-deps.sh installs oidc-provider (npm).
const OIDC_PROVIDER_DIR: &str = "/opt/kubelet-keyring-test/oidc-provider";

/// A running oidc-provider (tests/data/oidc-provider/token-exchange.mjs); killed on drop.
struct RealServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts oidc-provider trusting `issuer`'s tokens for the audience `registry.example.com`,
/// with client `registry-client` / `secret`; waits (bounded) until it listens.
fn oidc_provider(issuer: &Issuer, secret: &str) -> RealServer {
    use std::io::BufRead as _;
    let node = peer("node", "the Debian package nodejs");
    assert!(
        std::path::Path::new(OIDC_PROVIDER_DIR)
            .join("node_modules/oidc-provider")
            .is_dir(),
        "oidc-provider is not installed in {OIDC_PROVIDER_DIR}: run scripts/install-test-deps.sh"
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/oidc-provider/token-exchange.mjs");
    let port = free_port();
    let mut child = std::process::Command::new(node)
        .arg(script)
        .env_clear()
        .env("OIDC_PROVIDER_DIR", OIDC_PROVIDER_DIR)
        .env("PORT", port.to_string())
        .env("CLIENT_SECRET", secret)
        .env("CLUSTER_JWKS", issuer.jwks().to_string())
        .env("CLUSTER_ISSUER", crate::common::issuer::ISS)
        .env("SUBJECT_AUDIENCE", "registry.example.com")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let line = std::io::BufReader::new(stdout).lines().next();
        let _ = tx.send(line.and_then(Result::ok).unwrap_or_default());
    });
    let server = RealServer { child, port };
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    assert_eq!(line, "listening", "oidc-provider did not start");
    server
}

/// RFC 8693 against a real authorization server: oidc-provider checks the client's
/// `client_secret_basic` credentials, parses and checks the request, and mints the access
/// token; its grant handler verifies the pod's token against the test issuer's JWKS.
#[test]
#[ignore = "needs node and oidc-provider (npm), see scripts/install-test-deps.sh"]
fn a_real_oauth_server_exchanges_the_pods_token_rfc8693() {
    let issuer = Issuer::new();
    let server = oidc_provider(&issuer, "s3cret:/+%");
    let s = Sandbox::new();
    let endpoint = format!("http://127.0.0.1:{}/token", server.port);
    let cfg = config(&s, &exchange_rule(&s, &endpoint));
    let token = issuer.sa_token("registry.example.com", "team", "puller", "uid-1", 1, 3600);
    let out = run(
        &s,
        &cfg,
        &sa_request(IMAGE, &token, &[]),
        &[PLAIN_HTTP],
        &[],
    );
    let resp = stdout_json(&out);
    let (user, password) = creds(&resp, HOST);
    assert_eq!(user, "oauth2");
    let payload = password.split('.').nth(1).expect("a JWT access token");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON");
    assert_eq!(claims["aud"], "registry");
    assert_eq!(claims["sub"], "system:serviceaccount:team:puller");
    assert_eq!(claims["scope"], "repository:team/app:pull");
    assert_eq!(claims["iss"], format!("http://127.0.0.1:{}", server.port));
    lifetime_ok(cache_secs(&resp), 3600);
    assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));

    // The server's own refusals: a wrong client secret is its invalid_client, a token it
    // cannot verify its invalid_grant.
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &exchange_rule(&s, &endpoint).replace("client-secret", "other-secret"),
    );
    write(&s.tmp.path().join("other-secret"), "wrong");
    let line = assert_one_line_failure(
        &run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, &[]),
            &[PLAIN_HTTP],
            &[],
        ),
        &[&token, "wrong"],
    );
    assert!(line.contains("answered 401 (invalid_client)"), "{line}");
    let s = Sandbox::new();
    let cfg = config(&s, &exchange_rule(&s, &endpoint));
    // Signed by another key than the cluster's: the server's JWKS check refuses it.
    let forged = Issuer::new().sa_token("registry.example.com", "team", "puller", "uid-1", 2, 3600);
    let line = assert_one_line_failure(
        &run(
            &s,
            &cfg,
            &sa_request(IMAGE, &forged, &[]),
            &[PLAIN_HTTP],
            &[],
        ),
        &[&forged],
    );
    assert!(line.contains("answered 400 (invalid_grant)"), "{line}");
}

/// Two rules for one host: the narrow path rule first. Each image's token goes to its own
/// rule's endpoint and nowhere else, and the answers are scoped to the image, so neither the
/// kubelet nor our cache reuses one path's credential for the other.
#[test]
fn a_token_goes_only_to_the_endpoint_of_the_rule_that_matched() {
    let issuer = Issuer::new();
    let answer = |name: &'static str| {
        move |_: &Req| {
            json(
                200,
                &json!({"access_token": name, "expires_in": 3600}).to_string(),
            )
        }
    };
    let (team, rest) = (fake(answer("team-token")), fake(answer("rest-token")));
    let s = Sandbox::new();
    let rule = |hosts: &str, fake: &Fake| {
        format!(
            "    - hosts: [\"{hosts}\"]\n      identity: pod\n      pod: {{audience: registry}}\n      method: {{tokenExchange: {{endpoint: \"{}\", username: u}}}}\n",
            fake.url("/token")
        )
    };
    let cfg = config(
        &s,
        &(rule("reg.example.com/team", &team) + &rule("reg.example.com", &rest)),
    );
    let token = issuer.sa_token("registry", "team", "puller", "uid-1", 1, 3600);
    let ask = |image: &str| {
        stdout_json(&run(
            &s,
            &cfg,
            &sa_request(image, &token, &[]),
            &[PLAIN_HTTP],
            &[],
        ))
    };
    let resp = ask("reg.example.com/team/app");
    assert_eq!(resp["cacheKeyType"], "Image");
    assert_eq!(creds(&resp, "reg.example.com/team/app").1, "team-token");
    assert_eq!((team.requests().len(), rest.requests().len()), (1, 0));
    let resp = ask("reg.example.com/other/app");
    assert_eq!(resp["cacheKeyType"], "Image");
    assert_eq!(creds(&resp, "reg.example.com/other/app").1, "rest-token");
    assert_eq!((team.requests().len(), rest.requests().len()), (1, 1));
    // Only the path rule: another path of the host is "not mine" for that image only.
    let cfg = config(&s, &rule("reg.example.com/team", &team));
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &sa_request("reg.example.com/other/app", &token, &[]),
        &[PLAIN_HTTP],
        &[],
    ));
    assert_eq!(
        (resp["auth"].clone(), resp["cacheKeyType"].clone()),
        (json!({}), json!("Image"))
    );
    assert_eq!((team.requests().len(), rest.requests().len()), (1, 1));
}

/// The repository's `config/NAME`.
fn example(name: &str) -> String {
    format!("{}/config/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn validate_config_checks_each_rule_against_the_kubelet_entry_that_serves_it() {
    let s = Sandbox::new();
    // The example pair is clean.
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            &example("identity.yaml"),
            &example("credential-provider-identity.yaml"),
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.ends_with(", 0 warnings\n"),
        "{text}{}",
        stderr(&out)
    );
    // A wrong audience and cacheType for the Harbor entry, the zot host left out of every
    // matchImages, the annotation the zot rule reads not passed.
    let text = std::fs::read_to_string(example("credential-provider-identity.yaml")).unwrap();
    let bad = text
        .replace(
            "serviceAccountTokenAudience: harbor.example.com",
            "serviceAccountTokenAudience: harbor",
        )
        .replace("cacheType: Token", "cacheType: ServiceAccount")
        .replace("- registries.example.com/identity", "- example.com/other");
    let kubelet = s.tmp.path().join("kubelet.yaml");
    write(&kubelet, &bad);
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            &example("identity.yaml"),
            kubelet.to_str().unwrap(),
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "warnings only: {text}");
    for want in [
        "warning: providers[0] (name \"kubelet-keyring-harbor\"): plugin config ",
        "identity.rules[0] (passThrough): the kubelet requests tokens for audience \"harbor\" (tokenAttributes.serviceAccountTokenAudience), the rule accepts only \"harbor.example.com\"",
        "identity.rules[0] (passThrough): passes the pod's token through as the password: tokenAttributes.cacheType must be Token (is \"ServiceAccount\")",
        "identity.rules[6] (tokenExchange): reads the service-account annotation \"registries.example.com/identity\", which the kubelet does not pass",
        ", 3 warnings",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    write(
        &kubelet,
        &text_without_zot(
            &std::fs::read_to_string(example("credential-provider-identity.yaml")).unwrap(),
        ),
    );
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            &example("identity.yaml"),
            kubelet.to_str().unwrap(),
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("identity.rules[6].hosts[0] \"zot.example.com\": no matchImages entry of the providers that run kubelet-keyring with it admits it"),
        "{text}"
    );
    // Without --plugin-config, the file an entry names is checked when it exists here, and a
    // file that does not load is a warning: every pull would exit 2.
    let plugin = s.tmp.path().join("keyring.yaml");
    write(&plugin, "identity:\n  rules: [{hosts: [harbor.example.com], identity: pod, pod: {audience: other}, method: {passThrough: {}}}]\n");
    let named = bad.replace(
        "/etc/kubernetes/kubelet-keyring.yaml",
        plugin.to_str().unwrap(),
    );
    write(&kubelet, &named);
    let out = s.run(&["validate-config", kubelet.to_str().unwrap()], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("the rule accepts only \"other\""), "{text}");
    write(
        &plugin,
        "identity: {rules: [{hosts: [x], identity: sometimes}]}\n",
    );
    let out = s.run(&["validate-config", kubelet.to_str().unwrap()], "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("the plugin config is refused, so every pull exits 2"),
        "{text}"
    );
    // A --plugin-config that does not load is a usage error.
    let out = s.run(
        &[
            "validate-config",
            "--plugin-config",
            plugin.to_str().unwrap(),
            kubelet.to_str().unwrap(),
        ],
        "",
    );
    assert_one_line_exit(&out, 2, &[]);
}

fn text_without_zot(kubelet: &str) -> String {
    kubelet.replace("      - zot.example.com\n", "")
}

#[test]
fn validate_config_prints_the_rbac_every_token_audience_needs() {
    let s = Sandbox::new();
    let out = s.run(
        &[
            "validate-config",
            "--rbac",
            &example("credential-provider-identity.yaml"),
        ],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .collect();
    assert_eq!(docs.len(), 2, "{text}");
    let (role, binding) = (&docs[0], &docs[1]);
    assert_eq!(role["kind"], "ClusterRole");
    assert_eq!(
        role["rules"][0]["verbs"],
        json!(["request-serviceaccounts-token-audience"])
    );
    assert_eq!(role["rules"][0]["apiGroups"], json!([""]));
    assert_eq!(
        role["rules"][0]["resources"],
        json!([
            "harbor.example.com",
            "https://kubernetes.default.svc",
            "registries.example.com"
        ])
    );
    assert_eq!(binding["kind"], "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}])
    );
    // No tokenAttributes anywhere: nothing to grant.
    let out = s.run(
        &[
            "validate-config",
            "--rbac",
            &example("credential-provider-config.yaml"),
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# No provider has tokenAttributes"));
}

#[test]
fn the_example_plugin_configs_load_and_explain_names_their_rules_and_mirrors() {
    let s = Sandbox::new();
    let out = s.run(
        &[
            "--config",
            &example("identity.yaml"),
            "explain",
            "harbor.example.com/team/app",
            "nginx",
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for want in [
        "harbor.example.com/team/app is served by identity.rules[0] (passThrough)",
        "mirrors (mirrors.registries[0]): example-aws.jfrog.io/docker-remote/library/nginx; credentials mirrorFirst",
        "mirror example-aws.jfrog.io/docker-remote (example-aws.jfrog.io/docker-remote/library/nginx): answered by identity",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let out = s.run(
        &[
            "--config",
            &example("mirrors.yaml"),
            "explain",
            "quay.io/team/app",
        ],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("credentials mirrorOnly"), "{text}");
}

#[test]
fn metrics_label_an_identity_answer_like_any_other_backend() {
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let file = s.tmp.path().join("node-token");
    let token = registry_token(&issuer, "node-1", 7200);
    write(&file, &token);
    let cfg = config(
        &s,
        &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {{tokenFile: {}}}\n      method: {{passThrough: {{}}}}\n", file.display()),
    );
    let metrics = s.tmp.path().join("metrics");
    let m = metrics.to_str().unwrap();
    for _ in 0..2 {
        stdout_json(&run(
            &s,
            &cfg,
            &request(VERSIONS[0], IMAGE),
            &[],
            &["--metrics-dir", m],
        ));
    }
    let out = run(&s, &cfg, "", &[], &["--metrics-dir", m, "metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(metrics.join("kubelet-keyring.prom")).unwrap();
    let labels = format!("backend=\"identity\",registry=\"{HOST}\"");
    for family in [
        "kubelet_keyring_fetches_total",
        "kubelet_keyring_cache_hits_total",
        "kubelet_keyring_token_seconds_left",
    ] {
        assert!(
            text.contains(&format!("{family}{{{labels}}} ")),
            "{family} missing:\n{text}"
        );
    }
    assert_token_nowhere(&token, &[("textfile", text.as_bytes())], Some(&metrics));
}

/// README's "Any registry" block is a plugin config that loads, and its rules answer their
/// hosts.
#[test]
fn the_readmes_any_registry_config_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Any registry").expect("the section")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let s = Sandbox::new();
    let path = s.tmp.path().join("readme.yaml");
    write(&path, block);
    let cfg = path.to_str().unwrap();
    let images = [
        "harbor.example.com/a/b",
        "quay.example.com/a/b",
        "example.jfrog.io/a/b",
        "example-aws.jfrog.io/a/b",
        "docker.cloudsmith.io/a/b",
        "registry.example.com/a/b",
        "private.example.com/a/b",
        "zot.example.com/a/b",
    ];
    let mut args = vec!["--config", cfg, "explain"];
    args.extend(images);
    let out = s.run(&args, "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for (i, image) in images.iter().enumerate() {
        assert!(
            text.contains(&format!("{image} is served by identity.rules[{i}]")),
            "{image}:\n{text}"
        );
    }
}
