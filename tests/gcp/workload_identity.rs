//! KEP-4412: service-account tokens exchanged at (fake) Google STS, optionally impersonating
//! a Google service account at a (fake) IAM credentials API, both on one fake server.

use super::*;

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
