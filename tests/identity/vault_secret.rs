//! Stored credentials: Vault / OpenBao (login, then a KV v2 read) and a
//! `kubernetes.io/dockerconfigjson` Secret in the pod's namespace; each also opening a real
//! registry.

use super::*;

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
    let out = run_pod(&s, &cfg, &token, &["-vvvvvvvvv"]);
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
    let line = assert_one_line_failure(&run_pod(&s, &cfg, &token, &[]), &[&token]);
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
    let resp = stdout_json(&run_pod(&s, &cfg, &token, &["--no-cache"]));
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
    let out = run_pod(&s, &cfg, &other, &[]);
    let line = assert_one_line_failure(&out, &[&other]);
    assert!(
        line.contains("answered 403") && line.contains("team/intruder get on secret registry-pull"),
        "{line}"
    );
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

/// Vault's `aws` auth method, IAM type: the login carries the node's signed STS
/// `GetCallerIdentity` (POST, base64 URL, body and headers), which this fake Vault replays to
/// a real STS (moto_server), as Vault does, before it answers with a client token: the signed
/// request is one STS takes. The server ID header is signed in.
#[test]
#[ignore = "needs moto_server"]
fn vault_aws_login_is_a_signed_get_caller_identity_that_sts_answers() {
    let moto = crate::common::moto::Moto::start();
    let moto_url = moto.url();
    let port: u16 = moto_url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let replayed = Arc::new(Mutex::new(String::new()));
    let seen = replayed.clone();
    let sts = moto_url.trim_end_matches('/').to_string();
    let server = fake(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/auth/aws/login") => {
            let b = body_json(r);
            let b64 = |k: &str| {
                base64::engine::general_purpose::STANDARD
                    .decode(b[k].as_str().unwrap_or_default())
                    .unwrap_or_default()
            };
            let headers: Value =
                serde_json::from_slice(&b64("iam_request_headers")).unwrap_or_default();
            let url = String::from_utf8(b64("iam_request_url")).unwrap_or_default();
            let body = String::from_utf8(b64("iam_request_body")).unwrap_or_default();
            let server_id =
                headers["X-Vault-Aws-Iam-Server-Id"][0].as_str() == Some("vault.example.com");
            let signed_with_id = headers["Authorization"][0].as_str().is_some_and(|a| {
                a.contains("SignedHeaders=content-type;host;x-amz-date;x-vault-aws-iam-server-id,")
            });
            if b["role"] != "node-puller"
                || b["iam_http_request_method"] != "POST"
                || !server_id
                || !signed_with_id
                || url != format!("{sts}/")
            {
                return json(400, r#"{"errors":["bad login"]}"#);
            }
            // Replay to STS as Vault does: the same method, URL path, headers and body.
            let replay: Vec<(String, String)> = headers
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
                .map(|(k, v)| (k.clone(), v[0].as_str().unwrap_or_default().to_string()))
                .collect();
            let replay: Vec<(&str, &str)> = replay
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let (status, answer) = crate::common::http::call(port, "POST", "/", &replay, &body)
                .unwrap_or((0, String::new()));
            *seen.lock().unwrap() = answer.clone();
            if status == 200 && answer.contains("<Arn>") {
                json(
                    200,
                    r#"{"auth":{"client_token":"hvs.aws-client-token","lease_duration":600}}"#,
                )
            } else {
                json(403, r#"{"errors":["permission denied"]}"#)
            }
        }
        ("GET", "/v1/secret/data/registry/mirror")
            if r.headers.get("x-vault-token").map(String::as_str)
                == Some("hvs.aws-client-token") =>
        {
            json(
                200,
                r#"{"data":{"data":{"username":"mirror-robot","password":"mirror-password"},"metadata":{"version":1}}}"#,
            )
        }
        _ => json(403, r#"{"errors":["permission denied"]}"#),
    });
    let s = Sandbox::new();
    let cfg = config(
        &s,
        &format!(
            "    - hosts: [{HOST}]\n      identity: node\n      node: {{aws: {{stsEndpoint: \"{}\"}}}}\n      method:\n        vault: {{address: \"{}\", auth: aws, role: node-puller, iamServerId: vault.example.com, path: registry/mirror}}\n",
            moto_url.trim_end_matches('/'),
            server.base()
        ),
    );
    let env = [
        PLAIN_HTTP,
        ("AWS_ACCESS_KEY_ID", "AKIAIDENTITYTEST"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-key-never-shown"),
    ];
    let out = run(
        &s,
        &cfg,
        &request(VERSIONS[0], IMAGE),
        &env,
        &["-vvvvvvvvv"],
    );
    let replayed = replayed.lock().unwrap().clone();
    assert!(
        replayed.contains("GetCallerIdentityResponse"),
        "STS answered: {replayed}"
    );
    let resp = stdout_json(&out);
    assert_eq!(
        creds(&resp, HOST),
        ("mirror-robot".into(), "mirror-password".into())
    );
    let err = stderr(&out);
    for secret in [
        "aws-secret-key-never-shown",
        "hvs.aws-client-token",
        "mirror-password",
    ] {
        assert!(!err.contains(secret), "{secret}: {err}");
    }
}
