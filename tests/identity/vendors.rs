//! The vendors' own exchanges: Quay robot federation, Artifactory (OIDC, AWS IAM), Cloudsmith.

use super::*;

/// The answer to a pod whose token is for `audience`, under one rule of `method`.
fn pod_answer(issuer: &Issuer, audience: &str, method: &str) -> Value {
    let s = Sandbox::new();
    let cfg = config(&s, &pod_rule(audience, method));
    let token = issuer.sa_token(audience, "team", "puller", "uid-1", 1, 3600);
    stdout_json(&run_pod(&s, &cfg, &token, &[]))
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
    let resp = pod_answer(
        &issuer,
        "quay",
        &format!("quay: {{url: \"{}\", robot: team+puller}}", server.base()),
    );
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
    let resp = pod_answer(
        &issuer,
        "jfrog",
        &format!(
            "artifactoryOidc: {{url: \"{}\", providerName: k8s-prod, projectKey: team}}",
            server.base()
        ),
    );
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
    let resp = pod_answer(
        &issuer,
        "cloudsmith",
        &format!(
            "cloudsmith: {{apiUrl: \"{}\", org: acme, service: k8s-puller}}",
            server.base()
        ),
    );
    let (user, password) = creds(&resp, HOST);
    assert_eq!(user, "token");
    assert!(issuer.verify(&password).is_some());
    lifetime_ok(cache_secs(&resp), 5400);
}
