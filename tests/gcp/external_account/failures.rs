//! Failures of an external account file: one line naming the file and the step, also when
//! its calls go through a (refusing) `HTTPS_PROXY`.

use super::*;

#[test]
fn external_account_failures_are_one_line_naming_the_file_and_step() {
    let s = Sandbox::new();
    let refusing = google::fake(|r| match r.path.as_str() {
        STS_PATH => json(
            400,
            r#"{"error":"invalid_grant","error_description":"description-canary: the subject"}"#,
        ),
        _ => json(404, "{}"),
    });
    let token_file = s.tmp.path().join("token");
    write(&token_file, SUBJECT);
    let fields = |token_url: String, source: serde_json::Value| {
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": token_url,
            "credential_source": source,
        })
    };
    // STS refuses: exit 1, its code, never its description or the subject token.
    let file = ea_file(
        &s,
        fields(
            refusing.url(STS_PATH),
            serde_json::json!({"file": token_file}),
        ),
    );
    let line = assert_one_line_failure(&run(&s, &file, &[]), &[SUBJECT, "description-canary"]);
    assert!(
        line.contains(&format!("no access token for us-docker.pkg.dev: GOOGLE_APPLICATION_CREDENTIALS {file} (external_account): STS token exchange at {}: refused with HTTP 400 invalid_grant; Google STS does not accept the subject token", refusing.url(STS_PATH))),
        "{line}"
    );
    // The token file is missing: exit 2.
    let gone = s.tmp.path().join("gone");
    let file = ea_file(
        &s,
        fields(refusing.url(STS_PATH), serde_json::json!({"file": gone})),
    );
    let line = assert_misconfigured(&run(&s, &file, &[]), &[]);
    assert!(
        line.contains(&format!(
            "credential_source.file {}: no such file",
            gone.display()
        )),
        "{line}"
    );
    // A token URL in clear to another host is refused before anything is sent.
    let file = ea_file(
        &s,
        fields(
            "http://sts.example.com/v1/token".into(),
            serde_json::json!({"file": token_file}),
        ),
    );
    let line = assert_misconfigured(&run(&s, &file, &[]), &[SUBJECT]);
    assert!(
        line.contains("token_url \"http://sts.example.com/v1/token\" must be https://"),
        "{line}"
    );
    assert_eq!(requests_to(&refusing, STS_PATH).len(), 1);
}

#[test]
fn external_account_calls_go_through_https_proxy() {
    let (port, seen) = crate::common::proxy::refusing();
    let s = Sandbox::new();
    let file = file_sourced(&s, "https://sts.example.invalid/v1/token");
    let proxy = format!("http://127.0.0.1:{port}");
    let line = assert_one_line_failure(&run(&s, &file, &[("HTTPS_PROXY", &proxy)]), &[SUBJECT]);
    assert!(
        line.contains("STS token exchange at https://sts.example.invalid/v1/token"),
        "{line}"
    );
    let head = crate::common::proxy::first_connect(&seen, "sts.example.invalid:443");
    assert!(!head.contains(SUBJECT));
}
