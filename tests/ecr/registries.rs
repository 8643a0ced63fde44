//! Private registries (moto's token; every partition's, FIPS and dual-stack host reaches the
//! configured endpoint) and mirrors from the plugin config file.

use super::*;

#[test]
#[ignore = "needs moto_server"]
fn private_registry_gets_motos_token() {
    let moto = Moto::start();
    // Known moto behaviour, checked straight against moto: user AWS, password
    // "<account>-auth-token", expiry 2015-01-01.
    let (user, password, expires) = moto.direct_token("us-east-1");
    assert_eq!(
        (user.as_str(), password.as_str()),
        ("AWS", "123456789012-auth-token")
    );
    assert_eq!(expires, MOTO_EXPIRES as f64, "moto's token expiry");
    let before = moto.token_calls().len();

    let s = Sandbox::new();
    let host = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com");
    for version in VERSIONS {
        let mut cmd = s.command(&["--no-cache"]);
        cmd.env(TEST_NOW_ENV, TEST_NOW.to_string())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_ENDPOINT_URL_ECR", moto.url());
        let out = run_with(cmd, request(version, &format!("{host}/app")).as_bytes());
        let resp = stdout_json(&out);
        assert_eq!(resp["apiVersion"], version);
        assert_eq!(resp["cacheKeyType"], "Registry");
        assert_eq!(resp["auth"].as_object().map(|a| a.len()), Some(1), "{resp}");
        assert_eq!(creds(&resp, &host), (user.clone(), password.clone()));
        // A fresh 12 h token: the one rule (expiry less 5 minutes), less the refresh jitter.
        let d = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
        assert!(LIFETIME_12H.contains(&d), "{resp}");
        assert_eq!(stderr(&out), "");
        assert_no_secret(&out, &[&password]);
    }
    // At the real time, moto's token expired in 2015: answered for this pull only
    // (cacheDuration 0s), with a warning naming the clock, never a negative lifetime.
    let (out, _) = get(
        &s,
        &format!("{host}/app"),
        &[
            (TEST_NOW_ENV, &unix_now().to_string()),
            ("AWS_ENDPOINT_URL_ECR", &moto.url()),
        ],
        &["--no-cache"],
    );
    let resp = stdout_json(&out);
    assert_eq!(creds(&resp, &host), (user.clone(), password.clone()));
    assert_eq!(resp["cacheDuration"], "0s", "{resp}");
    let err = stderr(&out);
    assert!(
        err.contains("s ago by this node's clock") && err.contains("NTP"),
        "{err}"
    );
    assert_no_secret(&out, &[&password]);
    let calls = moto.token_calls();
    assert_eq!(calls.len(), before + 4, "{calls:?}");
    // Signed for the host's region and for ECR.
    assert!(
        calls[before].contains("/us-east-1/ecr/aws4_request"),
        "{}",
        calls[before]
    );
}

#[test]
#[ignore = "needs moto_server"]
fn every_partition_fips_and_dual_stack_host_reaches_the_configured_endpoint() {
    let moto = Moto::start();
    let s = Sandbox::new();
    // With an endpoint override the host's FIPS / dual-stack wish is not forced on the SDK
    // (which refuses FIPS with a custom endpoint); the region still comes from the host.
    let cases = [
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            "us-gov-west-1",
        ),
        ("123456789012.dkr-ecr.eu-west-1.on.aws", "eu-west-1"),
        ("123456789012.dkr-ecr-fips.us-east-2.on.aws", "us-east-2"),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "cn-north-1",
        ),
        (
            "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            "eusc-de-east-1",
        ),
        (
            "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
            "us-iso-east-1",
        ),
        (
            "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            "us-isob-east-1",
        ),
        (
            "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            "eu-isoe-west-1",
        ),
        (
            "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
            "us-isof-south-1",
        ),
        // The port is ignored for recognition and kept in the key.
        (
            "123456789012.dkr.ecr.ap-south-1.amazonaws.com:443",
            "ap-south-1",
        ),
    ];
    for (host, region) in cases {
        let before = moto.token_calls().len();
        let (out, _) = get(
            &s,
            &format!("{host}/team/app"),
            &[("AWS_ENDPOINT_URL_ECR", &moto.url())],
            &["--no-cache"],
        );
        let resp = stdout_json(&out);
        assert_eq!(creds(&resp, host).0, "AWS", "{host}");
        let calls = moto.token_calls();
        assert_eq!(calls.len(), before + 1, "{host}");
        assert!(
            calls[before].contains(&format!("/{region}/ecr/aws4_request")),
            "{host}: {}",
            calls[before]
        );
    }
    // The global AWS_ENDPOINT_URL works too.
    let (out, _) = get(
        &s,
        "123456789012.dkr.ecr.us-west-1.amazonaws.com/x",
        &[("AWS_ENDPOINT_URL", &moto.url())],
        &["--no-cache"],
    );
    assert_eq!(
        creds(
            &stdout_json(&out),
            "123456789012.dkr.ecr.us-west-1.amazonaws.com"
        )
        .0,
        "AWS"
    );
}

#[test]
#[ignore = "needs moto_server"]
fn mirror_from_the_example_config_gets_a_token_for_its_region() {
    let moto = Moto::start();
    let (_, password, _) = moto.direct_token("us-west-2");
    let s = Sandbox::new();
    let config = repo_file("config/keyring-ecr-mirrors.yaml");
    let config = config.to_str().expect("utf-8 path");
    let env = [("AWS_ENDPOINT_URL_ECR", moto.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let before = moto.token_calls().len();
    let (out, _) = get(
        &s,
        "mirror.example.com:5000/team/app:v1",
        &env,
        &["--no-cache", "--config", config],
    );
    let resp = stdout_json(&out);
    // Keyed by the mirror host as in the image, port included.
    assert_eq!(
        creds(&resp, "mirror.example.com:5000"),
        ("AWS".into(), password.clone())
    );
    assert_eq!(resp["auth"].as_object().map(|a| a.len()), Some(1));
    let calls = moto.token_calls();
    assert_eq!(calls.len(), before + 1);
    assert!(
        calls[before].contains("/us-west-2/ecr/aws4_request"),
        "{}",
        calls[before]
    );

    // A glob entry, FIPS asked for, overridden by the endpoint variable.
    let (out, _) = get(
        &s,
        "eu.cache.example.com/x",
        &env,
        &["--no-cache", "--config", config],
    );
    assert_eq!(creds(&stdout_json(&out), "eu.cache.example.com").0, "AWS");
    let calls = moto.token_calls();
    assert!(
        calls
            .last()
            .is_some_and(|c| c.contains("/us-gov-west-1/ecr/")),
        "{calls:?}"
    );

    // Not the mirror: another port, no port, a longer host. No ECR call, no credentials.
    let before = moto.token_calls().len();
    for image in [
        "mirror.example.com/team/app",
        "mirror.example.com:5001/team/app",
        "mirror.example.com.evil.io:5000/team/app",
        "a.b.cache.example.com/x",
    ] {
        let (out, _) = get(&s, image, &env, &["--no-cache", "--config", config]);
        assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}), "{image}");
    }
    assert_eq!(moto.token_calls().len(), before);
}

#[test]
fn a_bad_mirror_entry_is_a_config_error_naming_it() {
    let s = Sandbox::new();
    let path = s.tmp.path().join("keyring.yaml");
    write(
        &path,
        "ecr:\n  mirrors:\n    - {host: mirror.example.com, region: us-west-2}\n    - {host: 'https://other.example.com', region: us-west-2}\n",
    );
    let (out, _) = get(
        &s,
        "mirror.example.com/x",
        &[],
        &["--no-cache", "--config", path.to_str().expect("utf-8")],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ecr.mirrors[1]")
            && err.contains("other.example.com")
            && err.contains("keyring.yaml"),
        "{err}"
    );
}
