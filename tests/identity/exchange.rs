//! `tokenExchange` (RFC 8693): the documented form against a fake and a real
//! authorization server (oidc-provider), TLS, refusals, the cache and single flight, the
//! deadline, and which rule's endpoint a token goes to.

use super::*;

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
    let out = run_pod(&s, &cfg, &token, &["-vvvvvvvvv"]);
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
    let out = run_pod(&s, &cfg, &token, &[]);
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
    let line = assert_one_line_exit(&run_pod(&s, &cfg, &token, &[]), 2, &[]);
    assert!(line.contains("is not https://"), "{line}");
}

#[test]
fn a_refused_exchange_is_denied_in_one_line_with_the_oauth_code_only() {
    let issuer = Arc::new(Issuer::new());
    let server = sts(issuer.clone(), "registry.example.com", "wrong-secret");
    let s = Sandbox::new();
    let cfg = config(&s, &exchange_rule(&s, &server.url("/oauth2/token")));
    let token = issuer.sa_token("registry.example.com", "team", "puller", "uid-1", 1, 3600);
    let out = run_pod(&s, &cfg, &token, &[]);
    let line = assert_one_line_failure(&out, &[&token, "s3cret"]);
    assert!(line.contains("answered 401 (invalid_client)"), "{line}");
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
                let out = run_pod(&s, &cfg, &token, &[]);
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
    let out = run_pod(&s, &cfg, &token, &[]);
    let took = started.elapsed();
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(took < Duration::from_secs(55), "{took:?}");
    assert!(
        line.contains("exchange")
            && (line.contains("no answer within") || line.contains("out of time")),
        "{line}"
    );
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
    let out = run_pod(&s, &cfg, &token, &[]);
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
    let line = assert_one_line_failure(&run_pod(&s, &cfg, &token, &[]), &[&token, "wrong"]);
    assert!(line.contains("answered 401 (invalid_client)"), "{line}");
    let s = Sandbox::new();
    let cfg = config(&s, &exchange_rule(&s, &endpoint));
    // Signed by another key than the cluster's: the server's JWKS check refuses it.
    let forged = Issuer::new().sa_token("registry.example.com", "team", "puller", "uid-1", 2, 3600);
    let line = assert_one_line_failure(&run_pod(&s, &cfg, &forged, &[]), &[&forged]);
    assert!(line.contains("answered 400 (invalid_grant)"), "{line}");
}
