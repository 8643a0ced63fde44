//! Docker config from metadata: the `google-dockercfg` attribute and the document
//! `google-dockercfg-url` names.

use super::*;

#[test]
fn dockercfg_attribute() {
    let s = Sandbox::new();
    let cfg_body = serde_json::json!({
        "registry.example.com": {"auth": b64("robot:s3cret-robot"), "email": "x@example.com"},
        "gcr.io": {"username": "_json_key", "password": "json-key-password"},
    })
    .to_string();
    let md = google::fake(move |r| {
        if r.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return json(403, "");
        }
        match r.path.as_str() {
            DOCKERCFG_PATH => json(200, &cfg_body),
            TOKEN_PATH => json(200, r#"{"access_token":"ya29.t","expires_in":3599}"#),
            _ => json(404, ""),
        }
    });
    let cfg = config(
        &s,
        "backends: [gcp, docker-config]\ngcp:\n  dockercfg: true\n",
    );
    let env = [("GCE_METADATA_HOST", md.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Any registry the attribute names, Google's or not; five minutes.
    let (out, _) = get(
        &s,
        "registry.example.com/app/x:1",
        &env,
        &["--config", &cfg],
    );
    let resp = stdout_json(&out);
    assert_eq!(
        creds(&resp, "registry.example.com"),
        ("robot".into(), "s3cret-robot".into())
    );
    assert_eq!(resp["cacheDuration"], "5m0s");
    assert_eq!(resp["cacheKeyType"], "Registry");
    // An entry for a Google host wins over the token.
    let (out, _) = get(&s, "gcr.io/p/i", &env, &["--config", &cfg]);
    assert_eq!(
        creds(&stdout_json(&out), "gcr.io"),
        ("_json_key".into(), "json-key-password".into())
    );
    // No entry: a Google host gets the token, anything else falls through to docker-config.
    let (out, _) = get(&s, "us-docker.pkg.dev/p/r/i", &env, &["--config", &cfg]);
    assert_eq!(creds(&stdout_json(&out), "us-docker.pkg.dev").1, "ya29.t");
    let (out, _) = get(&s, "quay.io/org/img", &env, &["--config", &cfg]);
    assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}));

    let paths: Vec<String> = md.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            DOCKERCFG_PATH,
            DOCKERCFG_PATH,
            DOCKERCFG_PATH,
            TOKEN_PATH,
            DOCKERCFG_PATH
        ]
    );
}

#[test]
fn dockercfg_url_is_fetched_without_the_metadata_header() {
    let s = Sandbox::new();
    let store = google::fake(|r| {
        if r.path.starts_with("/cfg.json") {
            json(
                200,
                &format!(
                    r#"{{"reg.example.com:5000": {{"auth": "{}"}}}}"#,
                    b64("u:from-url")
                ),
            )
        } else {
            json(500, r#"{"detail":"SECRET-STORE-BODY"}"#)
        }
    });
    let good = store.url("/cfg.json?X-Goog-Signature=SECRETSIG");
    let bad = store.url("/broken?X-Goog-Signature=SECRETSIG");
    let value = Arc::new(Mutex::new(good));
    let md = {
        let value = value.clone();
        google::fake(move |r| match r.path.as_str() {
            DOCKERCFG_URL_PATH => json(200, &format!("{}\n", value.lock().expect("lock"))),
            _ => json(404, ""),
        })
    };
    let cfg = config(&s, "gcp:\n  dockercfg: true\n");
    let env = [("GCE_METADATA_HOST", md.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let (out, _) = get(&s, "reg.example.com:5000/app", &env, &["--config", &cfg]);
    assert_eq!(
        creds(&stdout_json(&out), "reg.example.com:5000"),
        ("u".into(), "from-url".into())
    );
    let fetched = store.requests();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].path, "/cfg.json?X-Goog-Signature=SECRETSIG");
    assert!(
        !fetched[0].headers.contains_key("metadata-flavor"),
        "{fetched:?}"
    );
    let asked: Vec<String> = md.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(asked, [DOCKERCFG_PATH, DOCKERCFG_URL_PATH]);
    assert!(md
        .requests()
        .iter()
        .all(|r| r.headers.get("metadata-flavor").map(String::as_str) == Some("Google")));

    // The URL answers 500: one line, the URL without its query, no body.
    *value.lock().expect("lock") = bad;
    let (out, _) = get(&s, "reg.example.com:5000/app", &env, &["--config", &cfg]);
    let err = assert_one_line_failure(&out, &["SECRETSIG", "SECRET-STORE-BODY"]);
    assert!(
        err.contains(&format!(
            "google-dockercfg-url {}: answered 500",
            store.url("/broken")
        )),
        "{err}"
    );

    // Not http(s).
    *value.lock().expect("lock") = "gs://bucket/cfg.json".into();
    let (out, _) = get(&s, "reg.example.com:5000/app", &env, &["--config", &cfg]);
    let err = assert_one_line_failure(&out, &[]);
    assert!(
        err.contains("only http:// and https:// URLs are supported"),
        "{err}"
    );
}

#[test]
fn dockercfg_needs_the_metadata_server() {
    let s = Sandbox::new();
    let cfg = config(&s, "gcp:\n  dockercfg: true\n");
    let (out, took) = get(
        &s,
        "registry.example.com/x",
        &[("GCE_METADATA_HOST", &closed_port())],
        &["--config", &cfg],
    );
    let err = assert_one_line_failure(&out, &[]);
    assert!(err.contains("google-dockercfg"), "{err}");
    assert!(
        err.contains("gcp.dockercfg: true needs the metadata server"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}
