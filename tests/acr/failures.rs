//! Failures: exit 1, one line naming the stage, no secret.

use super::*;

#[test]
fn failures_name_the_stage_and_leak_nothing() {
    let refresh = refresh_token(3 * 3600);
    let imds_token = aad_token("imds");
    let aad_tok = aad_token("aad");
    let secrets = [&refresh[..], &imds_token, &aad_tok, SECRET];
    let sp_env = [
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_SECRET", SECRET),
    ];

    // IMDS: the identity is not assigned.
    let mut s = Script::ok(&refresh);
    s.imds = (
        400,
        r#"{"error":"invalid_request","error_description":"Identity not found"}"#.into(),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[("AZURE_CLIENT_ID", CLIENT)]),
        &[
            "acr: myacr.azurecr.io: IMDS",
            "HTTP 400 invalid_request",
            "assign",
        ],
        &secrets,
    );

    // AAD: a wrong secret; the error body even quotes it, the message must not.
    let mut s = Script::ok(&refresh);
    s.aad = (
        401,
        format!(
            r#"{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: {SECRET}","error_codes":[7000215]}}"#
        ),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &sp_env),
        &[
            "AAD token",
            "HTTP 401 invalid_client AADSTS7000215",
            "client secret",
        ],
        &secrets,
    );

    // /v2/ without a challenge.
    let mut s = Script::ok(&refresh);
    s.challenge = (200, None);
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["/v2/ challenge", "HTTP 200", "expected 401"],
        &secrets,
    );

    // A challenge whose realm points elsewhere: the token is not sent there.
    let mut s = Script::ok(&refresh);
    s.challenge = (
        401,
        Some(
            r#"Bearer realm="https://evil.example/oauth2/token",service="myacr.azurecr.io""#.into(),
        ),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["/v2/ challenge", "evil.example", "refusing"],
        &secrets,
    );
    assert!(fake.seen().iter().all(|r| r.path != "/oauth2/exchange"));

    // The exchange is refused (no AcrPull).
    let mut s = Script::ok(&refresh);
    s.exchange = (
        401,
        format!(
            r#"{{"errors":[{{"code":"UNAUTHORIZED","message":"token {aad_tok} lacks access"}}]}}"#
        ),
    );
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &sp_env),
        &["ACR token exchange", "HTTP 401 UNAUTHORIZED", "AcrPull"],
        &secrets,
    );

    // The exchange keeps failing with 503: retried, then reported.
    let mut s = Script::ok(&refresh);
    s.exchange = (503, "{}".into());
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    let started = Instant::now();
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["ACR token exchange", "HTTP 503"],
        &secrets,
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let exchanges = fake
        .seen()
        .iter()
        .filter(|r| r.path == "/oauth2/exchange")
        .count();
    assert_eq!(exchanges, 3, "three attempts");

    // A 200 exchange without a refresh token.
    let mut s = Script::ok(&refresh);
    s.exchange = (200, r#"{"access_token":"not-what-we-asked"}"#.into());
    let fake = Fake::start(s);
    let run = Run::new(&fake.acr_section(""));
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["ACR token exchange", "no refresh_token"],
        &["not-what-we-asked"],
    );

    // IMDS not there at all (nothing listens): retried, then a hint about IMDS.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let run = Run::new(&format!(
        "acr:\n  endpoints:\n    imds: http://127.0.0.1:{port}/metadata/identity/oauth2/token\n"
    ));
    let started = Instant::now();
    assert_failure(
        &run.image("myacr.azurecr.io/app", &[]),
        &["IMDS", "after 3 attempt(s)", "managed identity"],
        &secrets,
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // Local set-up: a missing azure.json, and one naming no credential.
    let run = Run::new("acr:\n  cloudConfig: /nonexistent/azure.json\n");
    assert_misconfigured(
        &run.image("myacr.azurecr.io/app", &[]),
        &[
            "cannot read azure.json /nonexistent/azure.json",
            "acr.cloudConfig",
        ],
        &secrets,
    );
    let azure = run.path("azure.json");
    crate::common::write(
        &azure,
        &format!(r#"{{"tenantId":"{TENANT}","aadClientId":"{CLIENT}"}}"#),
    );
    let run = Run::new(&format!("acr:\n  cloudConfig: {}\n", azure.display()));
    assert_misconfigured(
        &run.image("myacr.azurecr.io/app", &[]),
        &["azure.json", "names no credential"],
        &secrets,
    );
    // A half-set environment.
    let run = Run::new("");
    assert_misconfigured(
        &run.image(
            "myacr.azurecr.io/app",
            &[("AZURE_CLIENT_SECRET", SECRET), ("AZURE_CLIENT_ID", CLIENT)],
        ),
        &["AZURE_TENANT_ID"],
        &secrets,
    );
}
