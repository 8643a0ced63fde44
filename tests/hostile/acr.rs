//! Hostile input: acr. What a careless operator or a hostile peer can put in front of the ACR
//! backend, against the fake IMDS, Entra ID and ACR of `tests/common/azure.rs`:
//!
//! * an Entra ID authority or an ACR endpoint over plain `http://`, from the environment
//!   (`AZURE_AUTHORITY_HOST`), the cloud's environment file (`AZURE_ENVIRONMENT_FILEPATH`) or
//!   the `acr:` section: refused with one line and exit 2 before a client secret or assertion
//!   is sent in clear; only `acr.endpoints` may name plain `http://`, and only on a loopback
//!   address (how the tests' fakes are reached);
//! * peer expiries no clock can hold (2^63, 1e300, i64::MAX) in IMDS's `expires_in` /
//!   `expires_on`, Entra ID's `expires_in` and the ACR refresh token's `exp`: no panic, and
//!   the answer lives as long as any far-future credential (the 12-hour ceiling), not a
//!   one-minute guess.
#![cfg(feature = "acr")]

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::azure::{jwt, refresh_token, Fake, Script, CLIENT, LOGIN, TENANT};
use crate::common::{assert_one_line_exit, run_with, Sandbox};

const SECRET: &str = "sp-secret-hostile-Zq9~canary";
const V1: &str = "credentialprovider.kubelet.k8s.io/v1";

/// A sandbox with a plugin config whose `acr:` section is `acr` (its lines, indented).
fn plugin_config(sb: &Sandbox, acr: &str) -> PathBuf {
    let path = sb.tmp.path().join("keyring.yaml");
    crate::common::write(
        &path,
        &format!("apiVersion: kubelet-keyring/v1alpha1\nkind: KeyringConfig\nbackends: [acr]\nacr:\n{acr}"),
    );
    path
}

/// `kubelet-keyring --no-cache --config <acr section> get-credentials` for `request`.
fn run(acr: &str, request: &str, env: &[(&str, &str)]) -> Output {
    let sb = Sandbox::new();
    let config = plugin_config(&sb, acr);
    let mut cmd = sb.command(&[
        "--no-cache",
        "--config",
        config.to_str().expect("utf-8"),
        "get-credentials",
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with(cmd, request.as_bytes())
}

/// A service principal with a client secret, from the environment.
fn service_principal() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_SECRET", SECRET),
    ]
}

/// The fake's IMDS and registry (never its authority) as `acr.endpoints`.
fn imds_and_registry(fake: &Fake) -> String {
    fake.endpoints_but_binding(false)
}

#[test]
fn an_http_authority_host_in_the_environment_is_refused_before_the_secret_is_sent() {
    let fake = Fake::start(Script::ok(&refresh_token(3 * 3600)));
    let request = crate::common::request(V1, "myacr.azurecr.io/app");
    // The fake Entra ID on loopback, and a remote host: neither gets a secret in clear.
    for authority in [fake.url("/"), "http://login.example.invalid/".to_string()] {
        let mut env = service_principal();
        env.push(("AZURE_AUTHORITY_HOST", &authority));
        let out = run(&imds_and_registry(&fake), &request, &env);
        let err = assert_one_line_exit(&out, 2, &[SECRET]);
        assert!(
            err.contains("AZURE_AUTHORITY_HOST") && err.contains("https://"),
            "{authority}: {err}"
        );
    }
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
}

#[test]
fn an_http_endpoint_in_the_acr_section_is_refused_unless_it_is_loopback() {
    let refresh = refresh_token(3 * 3600);
    let fake = Fake::start(Script::ok(&refresh));
    let request = crate::common::request(V1, "myacr.azurecr.io/app");
    let imds = format!(
        "    imds: {}\n",
        fake.url("/metadata/identity/oauth2/token")
    );
    let registry = format!("    registry: {}\n", fake.url(""));
    let authority = format!("    authorityHost: {}\n", fake.url("/"));
    for (field, section) in [
        (
            "acr.endpoints.authorityHost",
            format!("  endpoints:\n{imds}{registry}    authorityHost: http://login.example.invalid/\n"),
        ),
        (
            "acr.endpoints.registry",
            format!("  endpoints:\n{imds}{authority}    registry: http://myacr.example.invalid\n"),
        ),
        (
            "acr.endpoints.identityBinding",
            format!("  identityBinding:\n    sniName: ib.example.invalid\n    apiServer: 127.0.0.1\n    defaultClientId: {CLIENT}\n  endpoints:\n{imds}{registry}{authority}    identityBinding: http://ib.example.invalid/\n"),
        ),
        // 0.0.0.0 reaches this host on Linux but is not a loopback address.
        (
            "acr.endpoints.authorityHost",
            format!(
                "  endpoints:\n{imds}{registry}    authorityHost: http://0.0.0.0:{}/\n",
                fake.host().rsplit_once(':').expect("port").1
            ),
        ),
    ] {
        let token = crate::common::sa_token("api://AzureADTokenExchange", "team", "puller", "u", 1);
        let request = crate::common::sa_request("myacr.azurecr.io/app", &token, &[]);
        let out = run(&section, &request, &service_principal());
        let err = assert_one_line_exit(&out, 2, &[SECRET, &token]);
        assert!(
            err.contains(field) && err.contains("https://"),
            "{field}: {err}"
        );
    }
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
    // The fakes themselves, on loopback, are what acr.endpoints is for.
    let out = run(
        &format!("  endpoints:\n{imds}{registry}{authority}"),
        &request,
        &service_principal(),
    );
    let v = crate::common::stdout_json(&out);
    assert_eq!(v["auth"][LOGIN]["password"], refresh.as_str());
}

#[test]
fn an_http_authority_in_the_cloud_environment_file_is_refused_before_the_secret_is_sent() {
    let fake = Fake::start(Script::ok_for(
        "myacr.custom.registry.io",
        &refresh_token(3 * 3600),
    ));
    let sb = Sandbox::new();
    let azure = sb.tmp.path().join("azure.json");
    crate::common::write(
        &azure,
        &format!(
            r#"{{"cloud":"AzureStackCloud","tenantId":"{TENANT}","aadClientId":"{CLIENT}","aadClientSecret":"{SECRET}"}}"#
        ),
    );
    let env_file = sb.tmp.path().join("akscustom.json");
    crate::common::write(
        &env_file,
        &format!(
            r#"{{"name":"AzureStackCloud","activeDirectoryEndpoint":"{}","containerRegistryDNSSuffix":".custom.registry.io"}}"#,
            fake.url("/")
        ),
    );
    let config = plugin_config(&sb, &imds_and_registry(&fake));
    let bin = sb.bin_dir_with("acr-credential-provider");
    let mut cmd = Command::new(bin.join("acr-credential-provider"));
    cmd.arg(&azure)
        .current_dir(&sb.cwd)
        .env_clear()
        .env("HOME", &sb.home)
        .env("KUBELET_KEYRING_CONFIG", &config)
        .env("KUBELET_KEYRING_NO_CACHE", "1")
        .env("AZURE_ENVIRONMENT_FILEPATH", &env_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run_with(
        cmd,
        crate::common::request(V1, "myacr.custom.registry.io/app").as_bytes(),
    );
    let err = assert_one_line_exit(&out, 2, &[SECRET]);
    assert!(
        err.contains("AZURE_ENVIRONMENT_FILEPATH")
            && err.contains("activeDirectoryEndpoint")
            && err.contains("https://"),
        "{err}"
    );
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
}

#[test]
fn an_expiry_no_clock_can_hold_is_clamped_never_a_panic_nor_a_one_minute_guess() {
    // 2^63, 1e300 and i64::MAX, as IMDS / Entra ID lifetimes and as the refresh token's exp.
    for huge in ["9223372036854775808", "1e300", "9223372036854775807"] {
        let refresh = jwt(&format!(
            r#"{{"jti":"r","sub":"x","exp":{huge},"grant_type":"refresh_token"}}"#
        ));
        let mut script = Script::ok(&refresh);
        let aad = crate::common::azure::aad_token("imds");
        script.imds.1 = format!(
            r#"{{"access_token":"{aad}","expires_in":"{huge}","expires_on":"{huge}","resource":"https://containerregistry.azure.net","token_type":"Bearer"}}"#
        );
        script.aad.1 = format!(
            r#"{{"token_type":"Bearer","expires_in":{huge},"ext_expires_in":{huge},"access_token":"{aad}"}}"#
        );
        let fake = Fake::start(script);
        let request = crate::common::request(V1, "myacr.azurecr.io/app");
        // Managed identity (IMDS), then a service principal (Entra ID).
        for env in [vec![], service_principal()] {
            let out = run(&fake.endpoints(true), &request, &env);
            let v = crate::common::stdout_json(&out);
            assert_eq!(v["auth"][LOGIN]["password"], refresh.as_str(), "{huge}");
            let err = crate::common::stderr(&out);
            assert!(!err.contains("panicked"), "{huge}: {err}");
            // The 12-hour ceiling, less the cache's jitter (up to 10 %).
            let secs = crate::common::go_secs(v["cacheDuration"].as_str().expect("duration"));
            let ceiling = 12 * 3600;
            assert!(
                (ceiling * 9 / 10 - 5..=ceiling).contains(&secs),
                "{huge}: {secs} s; {err}"
            );
        }
    }
    // An exp in the past is an expired token (exit 1), whatever its size.
    for past in ["-9223372036854775808", "-1e300", "0"] {
        let refresh = jwt(&format!(r#"{{"sub":"x","exp":{past}}}"#));
        let fake = Fake::start(Script::ok(&refresh));
        let out = run(
            &fake.endpoints(true),
            &crate::common::request(V1, "myacr.azurecr.io/app"),
            &[],
        );
        let err = crate::common::assert_one_line_failure(&out, &[&refresh]);
        assert!(err.contains("expired"), "{past}: {err}");
    }
}
