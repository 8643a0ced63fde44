//! Key files and application default credentials: a service account key (its JWT checked
//! with openssl), gcloud's `authorized_user` credentials, the token endpoint reached directly
//! or through `HTTPS_PROXY`.

use super::*;

const EMAIL: &str = "puller@proj.iam.gserviceaccount.com";

fn key_json(pem: &str, token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "abc",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string()
}

/// Checks the JWT bearer assertion: header, claims, and the RS256 signature (with openssl).
fn verify_assertion(jwt: &str, public: &Path, token_uri: &str, dir: &Path) {
    let b64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["alg"], "RS256");
    let claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).expect("b64")).expect("json");
    assert_eq!(claims["iss"], EMAIL);
    assert_eq!(claims["aud"], token_uri);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    let (signed, sig) = (dir.join("signed"), dir.join("sig"));
    std::fs::write(&signed, format!("{}.{}", parts[0], parts[1])).expect("write");
    std::fs::write(&sig, b64.decode(parts[2]).expect("b64")).expect("write");
    let v = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&sig)
        .arg(&signed)
        .output()
        .expect("openssl dgst");
    assert!(
        v.status.success(),
        "signature: {}",
        String::from_utf8_lossy(&v.stdout)
    );
}

#[test]
fn key_file_from_google_application_credentials() {
    let s = Sandbox::new();
    let (pem, public) = rsa_key(s.tmp.path());
    let oauth = token_endpoint(
        200,
        r#"{"access_token":"ya29.from-key-file","expires_in":1800,"token_type":"Bearer"}"#,
    );
    let md = metadata_server("ya29.metadata-must-not-be-used", 3599);
    let token_uri = oauth.url("/token");
    let key_path = s.tmp.path().join("sa.json");
    write(&key_path, &key_json(&pem, &token_uri));

    let (out, _) = get(
        &s,
        "asia.gcr.io/proj/img",
        &[
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", &md.host()),
        ],
        &[],
    );
    let resp = stdout_json(&out);
    assert_eq!(stderr(&out), "");
    assert_eq!(
        creds(&resp, "asia.gcr.io"),
        ("oauth2accesstoken".into(), "ya29.from-key-file".into())
    );
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(lifetime_range(1800).contains(&secs), "{resp}");
    assert!(md.requests().is_empty(), "the metadata server was asked");

    let reqs = oauth.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    let f = form(&reqs[0].body);
    assert_eq!(
        f.get("grant_type").map(String::as_str),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    verify_assertion(
        f.get("assertion").expect("assertion"),
        &public,
        &token_uri,
        s.tmp.path(),
    );
}

#[test]
fn service_account_key_as_application_default_credentials() {
    let s = Sandbox::new();
    let (pem, public) = rsa_key(s.tmp.path());
    let oauth = token_endpoint(200, r#"{"access_token":"ya29.from-adc","expires_in":3600}"#);
    let token_uri = oauth.url("/token");
    write(
        &s.home
            .join(".config/gcloud/application_default_credentials.json"),
        &key_json(&pem, &token_uri),
    );
    let (out, _) = get(
        &s,
        "gcr.io/proj/img",
        &[("GCE_METADATA_HOST", &closed_port())],
        &[],
    );
    let resp = stdout_json(&out);
    assert_eq!(creds(&resp, "gcr.io").1, "ya29.from-adc");
    let f = form(&oauth.requests()[0].body);
    verify_assertion(
        f.get("assertion").expect("assertion"),
        &public,
        &token_uri,
        s.tmp.path(),
    );
}

#[test]
fn refused_key_fails_in_one_line_without_the_body() {
    let s = Sandbox::new();
    let (pem, _) = rsa_key(s.tmp.path());
    let oauth = token_endpoint(
        400,
        r#"{"error":"invalid_grant","error_description":"SECRET-DESCRIPTION"}"#,
    );
    let key_path = s.tmp.path().join("sa.json");
    write(&key_path, &key_json(&pem, &oauth.url("/token")));
    let (out, took) = get(
        &s,
        "gcr.io/proj/img",
        &[
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", &closed_port()),
        ],
        &[],
    );
    let err = assert_one_line_failure(
        &out,
        &["SECRET-DESCRIPTION", "invalid_grant", "PRIVATE KEY"],
    );
    assert!(
        err.contains(&format!("GOOGLE_APPLICATION_CREDENTIALS {} ({EMAIL}): token request failed: HTTP 400; check that the key is not deleted or disabled", key_path.display())),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!oauth.requests().is_empty());
}

#[test]
fn broken_key_file_is_named() {
    let s = Sandbox::new();
    let key_path = s.tmp.path().join("sa.json");
    write(
        &key_path,
        r#"{"type":"service_account","client_email":"a@b","token_uri":"http://127.0.0.1:1/t","private_key":"-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----\n"}"#,
    );
    let (out, _) = get(
        &s,
        "gcr.io/proj/img",
        &[
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", &closed_port()),
        ],
        &[],
    );
    // A key that cannot sign is the operator's to fix: a configuration error, exit 2.
    let err = assert_one_line_exit(&out, 2, &["U0VDUkVU"]);
    assert!(
        err.contains(&format!(
            "GOOGLE_APPLICATION_CREDENTIALS {} (a@b)",
            key_path.display()
        )),
        "{err}"
    );
    assert!(err.contains("the private key is unusable"), "{err}");
}

/// A key file's token is fetched through the proxy `HTTPS_PROXY` names, and only it: the
/// token endpoint's host does not resolve, so the answer can only come through the tunnel,
/// and TLS inside the tunnel is checked against the test CA (`SSL_CERT_FILE`).
#[test]
fn key_file_token_through_an_https_proxy() {
    const HOST: &str = "oauth2.keyring-test.invalid";
    let s = Sandbox::new();
    let dir = s.tmp.path();
    crate::common::tls::ca(dir, "ca");
    crate::common::tls::server_cert(dir, "ca", &format!("DNS:{HOST}"));
    let oauth = token_endpoint(
        200,
        r#"{"access_token":"ya29.via-proxy","expires_in":3600,"token_type":"Bearer"}"#,
    );
    let front =
        crate::common::tls::tls_front(&dir.join("srv.pem"), &dir.join("srv.key"), oauth.host());
    let (proxy, seen) = crate::common::proxy::tunnelling(front);
    let (pem, public) = rsa_key(dir);
    let token_uri = format!("https://{HOST}/token");
    let key_path = dir.join("sa.json");
    write(&key_path, &key_json(&pem, &token_uri));
    let ca = dir.join("ca.pem");
    let run = |extra: &[(&str, &str)]| {
        let mut env = vec![
            (
                "GOOGLE_APPLICATION_CREDENTIALS",
                key_path.to_str().expect("utf-8"),
            ),
            ("GCE_METADATA_HOST", "127.0.0.1:9"),
            ("SSL_CERT_FILE", ca.to_str().expect("utf-8")),
        ];
        env.extend_from_slice(extra);
        get(&s, "gcr.io/proj/img", &env, &[]).0
    };
    let proxy_url = format!("http://127.0.0.1:{proxy}");

    let out = run(&[("HTTPS_PROXY", &proxy_url)]);
    assert_eq!(
        creds(&stdout_json(&out), "gcr.io"),
        ("oauth2accesstoken".into(), "ya29.via-proxy".into()),
        "{}",
        stderr(&out)
    );
    crate::common::proxy::first_connect(&seen, &format!("{HOST}:443"));
    let reqs = oauth.requests();
    assert_eq!(reqs.len(), 1);
    let f = form(&reqs[0].body);
    verify_assertion(
        f.get("assertion").expect("assertion"),
        &public,
        &token_uri,
        dir,
    );

    // Lower case works the same.
    let out = run(&[("https_proxy", &proxy_url)]);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.via-proxy");
    assert!(seen.recv_timeout(Duration::from_secs(5)).is_ok());

    // NO_PROXY names the host: dialled directly, where it does not resolve; the proxy sees
    // nothing.
    let out = run(&[("HTTPS_PROXY", &proxy_url), ("NO_PROXY", HOST)]);
    let line = assert_one_line_failure(&out, &["ya29"]);
    assert!(
        line.contains(&format!("token request to https://{HOST}/token failed")),
        "{line}"
    );
    assert!(
        seen.try_recv().is_err(),
        "the proxy was used despite NO_PROXY"
    );
    assert_eq!(oauth.requests().len(), 2);
}

/// gcloud's `authorized_user` credentials: the refresh token is redeemed at the file's
/// `token_uri` (Google's endpoint when it names none), and never shown.
#[test]
fn gcloud_user_credentials_are_redeemed() {
    let s = Sandbox::new();
    let oauth = token_endpoint(200, r#"{"access_token":"ya29.user","expires_in":3599}"#);
    google::write_gcloud_user(&s.home, &oauth.url("/token"), "1//refresh-SECRET");
    let (out, _) = get(
        &s,
        "gcr.io/proj/img",
        &[("GCE_METADATA_HOST", &closed_port())],
        &[],
    );
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.user");
    assert!(!stderr(&out).contains("SECRET"));
    let f = form(&oauth.requests()[0].body);
    assert_eq!(
        f.get("grant_type").map(String::as_str),
        Some("refresh_token")
    );
    assert_eq!(
        f.get("refresh_token").map(String::as_str),
        Some("1//refresh-SECRET")
    );
    assert_eq!(f.get("client_secret").map(String::as_str), Some("csecret"));
}
