//! The metadata flow: the node's token from the (fake) GCE metadata server, for Google hosts
//! and the listed mirrors only, and each way the metadata server can fail.

use super::*;

#[test]
fn metadata_token_for_artifact_registry() {
    let s = Sandbox::new();
    let md = metadata_server("ya29.metadata-token", 3599);
    let (out, _) = get(
        &s,
        "us-docker.pkg.dev/proj/repo/img:1.0",
        &[("GCE_METADATA_HOST", &md.host())],
        &[],
    );
    let resp = stdout_json(&out);
    assert_eq!(stderr(&out), "");
    assert_eq!(resp["apiVersion"], V1);
    assert_eq!(resp["cacheKeyType"], "Registry");
    assert_eq!(
        creds(&resp, "us-docker.pkg.dev"),
        ("oauth2accesstoken".into(), "ya29.metadata-token".into())
    );
    assert_eq!(resp["auth"].as_object().map(|a| a.len()), Some(1));
    // From the token's real expiry: 3599 s less five minutes and jitter.
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(lifetime_range(3599).contains(&secs), "{resp}");

    let reqs = md.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, TOKEN_PATH);
    assert_eq!(
        reqs[0].headers.get("metadata-flavor").map(String::as_str),
        Some("Google")
    );
    assert!(
        reqs[0]
            .headers
            .get("user-agent")
            .is_some_and(|ua| ua.starts_with("kubelet-keyring/")),
        "{reqs:?}"
    );
}

#[test]
fn google_hosts_and_listed_mirrors_only() {
    let s = Sandbox::new();
    let md = metadata_server("ya29.t", 3599);
    // The example config shipped in config/ (mirrors gcr-mirror.example.com,
    // reg.example.com:5000, *.mirror.example.com/gcr).
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/gcp.yaml");
    let env = [("GCE_METADATA_HOST", md.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (image, key, scope) in [
        ("gcr.io/proj/img", "gcr.io", "Registry"),
        ("eu.gcr.io/proj/img", "eu.gcr.io", "Registry"),
        (
            "container.cloud.google.com/x/y",
            "container.cloud.google.com",
            "Registry",
        ),
        (
            "europe-west1-docker.pkg.dev/p/r/i",
            "europe-west1-docker.pkg.dev",
            "Registry",
        ),
        (
            "gcr-mirror.example.com/proj/img",
            "gcr-mirror.example.com",
            "Registry",
        ),
        (
            "reg.example.com:5000/proj/img",
            "reg.example.com:5000",
            "Registry",
        ),
        (
            "eu.mirror.example.com/gcr/proj/img",
            "eu.mirror.example.com/gcr",
            "Image",
        ),
    ] {
        let (out, _) = get(&s, image, &env, &["--config", example]);
        let resp = stdout_json(&out);
        assert_eq!(
            creds(&resp, key),
            ("oauth2accesstoken".into(), "ya29.t".into()),
            "{image}"
        );
        assert_eq!(resp["cacheKeyType"], scope, "{image}");
    }
    let asked = md.requests().len();
    assert_eq!(asked, 7);

    // Hosts that are neither Google's nor listed never see the token, and cost no request.
    for image in [
        "reg.example.com/proj/img",
        "eu.mirror.example.com/other/img",
        "gcr.io.evil.example/x",
        "nginx:latest",
        "quay.io/org/img",
    ] {
        let (out, _) = get(&s, image, &env, &["--config", example]);
        let resp = stdout_json(&out);
        assert_eq!(resp["auth"], serde_json::json!({}), "{image}: {resp}");
    }
    assert_eq!(
        md.requests().len(),
        asked,
        "metadata asked for a foreign image"
    );
}

#[test]
fn bad_mirror_is_a_config_error_naming_the_entry() {
    let s = Sandbox::new();
    let cfg = config(
        &s,
        "gcp:\n  mirrors:\n    - reg.example.com\n    - \"*.com\"\n",
    );
    let (out, _) = get(
        &s,
        "gcr.io/p/i",
        &[("GCE_METADATA_HOST", &closed_port())],
        &["--config", &cfg],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("mirror \"*.com\": too broad"), "{err}");
}

#[test]
fn metadata_500_fails_in_one_line_without_the_body() {
    let s = Sandbox::new();
    let md = google::fake(|_| json(500, r#"{"access_token":"ya29.LEAKED","error":"boom"}"#));
    let (out, took) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &["ya29", "LEAKED", "boom"]);
    assert!(
        err.starts_with(
            "kubelet-keyring: error: gcp: no access token for gcr.io: metadata server 127.0.0.1:"
        ),
        "{err}"
    );
    assert!(
        err.contains("answered 500 Internal Server Error for the access token (after 3 attempts)"),
        "{err}"
    );
    assert!(
        err.contains("retry later, or set GOOGLE_APPLICATION_CREDENTIALS"),
        "{err}"
    );
    assert_eq!(md.requests().len(), 3);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn metadata_down_fails_fast() {
    let s = Sandbox::new();
    let (out, took) = get(
        &s,
        "us-docker.pkg.dev/p/r/i",
        &[("GCE_METADATA_HOST", &closed_port())],
        &[],
    );
    let err = assert_one_line_failure(&out, &[]);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        err.contains("off Google Cloud set GOOGLE_APPLICATION_CREDENTIALS"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn metadata_that_never_answers_hits_the_request_timeout() {
    let s = Sandbox::new();
    let md = google::fake(|_| Reply::Hang);
    let (out, took) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &[]);
    assert!(
        err.contains("no answer within 3s asking for the access token"),
        "{err}"
    );
    // One 3 s attempt (timeouts are not retried), far under the kubelet's 60 s.
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(md.requests().len(), 1);
}

#[test]
fn a_metadata_server_without_a_service_account_answers_404_and_the_fix_is_named() {
    let s = Sandbox::new();
    let md = google::fake(|_| json(404, "not found"));
    let (out, _) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &[]);
    assert!(
        err.contains(
            "answered 404 Not Found for the access token; the instance has no service account"
        ),
        "{err}"
    );
    assert_eq!(md.requests().len(), 1, "a 404 is not retried");
}

#[test]
fn a_bad_token_answer_and_a_bad_metadata_host_are_one_line_errors() {
    let s = Sandbox::new();
    let md = google::fake(|_| json(200, r#"{"access_token":"ya29.SECRET","expires_in":"soon"}"#));
    let (out, _) = get(&s, "gcr.io/p/i", &[("GCE_METADATA_HOST", &md.host())], &[]);
    let err = assert_one_line_failure(&out, &["SECRET", "soon"]);
    assert!(err.contains("sent an access token that is not JSON with a string access_token and a numeric expires_in"), "{err}");

    let (out, _) = get(
        &s,
        "gcr.io/p/i",
        &[("GCE_METADATA_HOST", "http://127.0.0.1:1/")],
        &[],
    );
    let err = assert_misconfigured(&out, &[]);
    assert!(
        err.contains("GCE_METADATA_HOST=\"http://127.0.0.1:1/\" is not host[:port]"),
        "{err}"
    );
}
