//! The shared cache in front of the backend.

use super::*;

#[test]
#[ignore = "needs moto_server"]
fn a_second_request_within_the_lifetime_does_not_reach_moto() {
    let moto = Moto::start();
    let (_, password, expires) = moto.direct_token("us-east-1");
    assert_eq!(expires, MOTO_EXPIRES as f64);
    let s = Sandbox::new();
    let env = [("AWS_ENDPOINT_URL_ECR", moto.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    let before = moto.token_calls().len();
    let (first, _) = get(&s, &format!("{host}/app"), &env, &[]);
    let first = stdout_json(&first);
    assert_eq!(creds(&first, host), ("AWS".into(), password.clone()));
    let d = go_secs(first["cacheDuration"].as_str().unwrap_or_default());
    assert!(LIFETIME_12H.contains(&d), "{first}");
    assert_eq!(moto.token_calls().len(), before + 1);

    // Another repository of the registry, later: served from the cache, moto not asked.
    let (second, _) = get(&s, &format!("{host}/other/repo"), &env, &[]);
    let second = stdout_json(&second);
    assert_eq!(second["auth"], first["auth"]);
    assert!(go_secs(second["cacheDuration"].as_str().unwrap_or_default()) <= d);
    assert_eq!(
        moto.token_calls().len(),
        before + 1,
        "the cache hit reached moto"
    );

    // The counter does count: without the cache, moto is asked again.
    let (third, _) = get(&s, &format!("{host}/app"), &env, &["--no-cache"]);
    assert_eq!(stdout_json(&third)["auth"], first["auth"]);
    assert_eq!(moto.token_calls().len(), before + 2);
}

#[test]
#[ignore = "needs moto_server"]
fn a_valid_cache_entry_answers_when_moto_is_gone() {
    let moto = Moto::start();
    let url = moto.url();
    let s = Sandbox::new();
    let host = "123456789012.dkr.ecr.eu-central-1.amazonaws.com";
    let (first, _) = get(
        &s,
        &format!("{host}/app"),
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &[],
    );
    let first = stdout_json(&first);
    assert_eq!(creds(&first, host).0, "AWS");
    drop(moto);

    // moto is really gone: without the cache the backend fails.
    let (direct, _) = get(
        &s,
        &format!("{host}/app"),
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &["--no-cache"],
    );
    assert_one_line_failure(&direct, &[]);
    // With it, the entry answers.
    let (cached, _) = get(
        &s,
        &format!("{host}/app"),
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &[],
    );
    assert_eq!(stdout_json(&cached)["auth"], first["auth"]);
}

/// Stale-if-error: an entry past its refresh time whose token still works is served when the
/// backend fails, with a warning and a short `cacheDuration` so the kubelet asks again soon.
#[test]
#[ignore = "needs moto_server"]
fn a_stale_but_valid_entry_is_served_when_the_backend_fails() {
    let moto = Moto::start();
    let url = moto.url();
    let s = Sandbox::new();
    let host = "123456789012.dkr.ecr.ap-south-1.amazonaws.com";
    let env = [("AWS_ENDPOINT_URL_ECR", url.as_str())];
    let (first, _) = get(&s, &format!("{host}/app"), &env, &[]);
    let first = stdout_json(&first);
    drop(moto);

    // 11 h 57 min later: past the entry's refresh time, 3 min before the token expires.
    let later = (TEST_NOW + 12 * 3600 - 180).to_string();
    let env = [
        ("AWS_ENDPOINT_URL_ECR", url.as_str()),
        (TEST_NOW_ENV, &later),
    ];
    let (stale, _) = get(&s, &format!("{host}/app"), &env, &[]);
    let err = stderr(&stale);
    let stale = stdout_json(&stale);
    assert_eq!(stale["auth"], first["auth"]);
    assert!(
        err.contains("serving a cached credential that is still valid"),
        "{err}"
    );
    let d = go_secs(stale["cacheDuration"].as_str().unwrap_or_default());
    assert!((1..=60).contains(&d), "{stale}");
    assert!(
        !err.contains(SECRET_KEY) && !err.contains(SESSION_TOKEN),
        "{err}"
    );
}
