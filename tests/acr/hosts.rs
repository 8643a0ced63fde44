//! Hosts, mirrors, expiry, and the proxy the registry is reached through.

use super::*;

#[test]
fn login_server_forms_and_mirrors_get_the_refresh_token_and_look_alikes_nothing() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(
        "  mirrors:\n    - source: mcr.microsoft.com\n      registry: myacr.azurecr.io\n    - source: mirror.local:5000\n      registry: myacr.azurecr.io\n",
    ));
    // DNL and regional endpoints are login servers of their own.
    for host in [
        "myacr-b5a3fdd8e8cbh0hc.azurecr.io",
        "myacr.eastus2.geo.azurecr.io",
    ] {
        let out = run.image(&format!("{host}/app"), &[]);
        assert_eq!(
            auth(&out),
            BTreeMap::from([(host.to_string(), (USERNAME.to_string(), refresh.clone()))])
        );
    }
    // A mirror: both the mirror host and the login server get the credential; the exchange
    // names the ACR.
    let before = fake.seen().len();
    let out = run.image("mcr.microsoft.com/oss/nginx/nginx", &[]);
    assert_eq!(
        auth(&out),
        BTreeMap::from([
            (
                "mcr.microsoft.com".to_string(),
                (USERNAME.to_string(), refresh.clone())
            ),
            (LOGIN.to_string(), (USERNAME.to_string(), refresh.clone())),
        ])
    );
    let ex = fake.seen()[before..]
        .iter()
        .find(|s| s.path == "/oauth2/exchange")
        .cloned()
        .expect("exchange");
    assert_eq!(ex.form["service"], LOGIN);
    let out = run.image("mirror.local:5000/team/app", &[]);
    assert!(auth(&out).contains_key("mirror.local:5000"));

    // Look-alikes get nothing, and cause no request at all.
    let before = fake.seen().len();
    for image in [
        "mcr.microsoft.com.evil.com/x",
        "evil.com/myacr.azurecr.io",
        "myacr.azurecr.io.evil.com/app",
        "mirror.local/app",
        "myacr.eastus.data.azurecr.io/app",
    ] {
        let out = run.image(image, &[]);
        assert!(auth(&out).is_empty(), "{image}");
    }
    assert_eq!(fake.seen().len(), before);
}

#[test]
fn lifetime_follows_the_refresh_token_exp() {
    // The provider reports exp - 5 min - up to 1 min of jitter; the binary's cache then takes
    // up to 10 % more off at random (src/cache/entry.rs), and that is what the kubelet gets.
    let expect = |remaining: u64| {
        let high = remaining - 300;
        let low = (remaining - 360) * 9 / 10 - 5;
        low..=high
    };
    // 75 minutes (reported for service-principal refresh tokens).
    let refresh = refresh_token(75 * 60);
    let fake = Fake::start(Script::ok(&refresh));
    let run = Run::new(&fake.acr_section(""));
    let secs = cache_seconds(&run.image("myacr.azurecr.io/app", &[]));
    assert!(expect(75 * 60).contains(&secs), "{secs}");

    // 3 hours.
    let fake = Fake::start(Script::ok(&refresh_token(3 * 3600)));
    let run = Run::new(&fake.acr_section(""));
    let secs = cache_seconds(&run.image("myacr.azurecr.io/app", &[]));
    assert!(expect(3 * 3600).contains(&secs), "{secs}");

    // No exp, or an opaque token: the one-minute floor, never a made-up long life.
    for refresh in [jwt(r#"{"sub":"x"}"#), "opaque-refresh-token".to_string()] {
        let fake = Fake::start(Script::ok(&refresh));
        let run = Run::new(&fake.acr_section(""));
        let out = run.image("myacr.azurecr.io/app", &[]);
        assert_eq!(cache_seconds(&out), 60);
        assert_eq!(auth(&out)[LOGIN].1, refresh);
        assert_no_secrets(&crate::common::stderr(&out), &[&refresh]);
    }
}

/// Registry and Entra ID calls go through `HTTPS_PROXY`; IMDS never does, even with
/// `HTTP_PROXY` set (it is link-local plain HTTP).
#[test]
fn the_registry_is_reached_through_https_proxy_and_imds_directly() {
    let fake = Fake::start(Script::ok(&refresh_token(3600)));
    // Only IMDS is faked: the registry is the real name, which only the proxy may dial.
    let run = Run::new(&format!(
        "acr:\n  endpoints:\n    imds: {}\n",
        fake.url("/metadata/identity/oauth2/token")
    ));
    let (port, seen) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let out = run.image(
        "myacr.azurecr.io/app",
        &[("HTTPS_PROXY", &proxy), ("http_proxy", &proxy)],
    );
    assert_failure(
        &out,
        &["/v2/ challenge", "https://myacr.azurecr.io/v2/"],
        &[&aad_token("imds")],
    );
    let head = crate::common::proxy::first_connect(&seen, "myacr.azurecr.io:443");
    assert!(!head.contains("/metadata"), "{head}");
    assert_imds(&fake, None);
}
