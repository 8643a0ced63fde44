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
//!   one-minute guess;
//! * an Azure Arc agent (or whatever answers at `IDENTITY_ENDPOINT`) whose challenge names a
//!   key file outside `/var/opt/azcmagent/tokens`, not a `.key`, too large, a FIFO, or not
//!   one line of text: refused with one line, the file's content never sent nor shown, no
//!   hang; an `IDENTITY_ENDPOINT` over plain `http://` to another host: refused before the
//!   key is read. (The old code ignored `IDENTITY_ENDPOINT` under this program's name and
//!   answered through IMDS: these tests failed there with exit 0.)
#![cfg(feature = "acr")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::azure::{
    arc_key_file, arc_token_dir, jwt, refresh_token, Fake, Script, ARC_PATH, CLIENT, LOGIN, TENANT,
};
use crate::common::{assert_one_line_exit, free_port, run_with, Sandbox};

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

/// A fake Arc agent whose challenge names `realm` and which takes `key`; the machine's files
/// under `root`.
fn arc_fake(realm: &str, key: &str) -> Fake {
    let mut script = Script::ok(&refresh_token(3 * 3600));
    script.arc.realm = realm.into();
    script.arc.key = key.into();
    Fake::start(script)
}

/// Runs an ACR image on an Arc machine (`root`) whose agent is `fake`, under this program's
/// name with IMDS at the fake too (where the old code went).
fn run_arc(fake: &Fake, root: &Path) -> Output {
    let env = fake.arc_env(root);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run(
        &imds_and_registry(fake),
        &crate::common::request(V1, "myacr.azurecr.io/app"),
        &env,
    )
}

/// The agent was asked once, without a key, and nothing else happened.
fn assert_only_the_challenge(fake: &Fake) {
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, ARC_PATH);
    assert!(!seen[0].headers.contains_key("authorization"));
}

#[test]
fn an_arc_challenge_naming_a_file_outside_the_token_dir_or_not_a_key_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let tokens = arc_token_dir(root.path());
    let key = arc_key_file(root.path(), "good.key", "GOOD-KEY");
    assert!(key.ends_with("good.key"));
    // Files a hostile challenge may name, each holding a canary.
    let outside = root.path().join("var/opt/azcmagent/outside.key");
    crate::common::write(&outside, "OUTSIDE-CANARY");
    std::fs::create_dir_all(tokens.join("sub")).expect("mkdir");
    crate::common::write(&tokens.join("sub/nested.key"), "NESTED-CANARY");
    crate::common::write(&tokens.join("plain.txt"), "TXT-CANARY");
    let t = tokens.display();
    for realm in [
        format!("{t}/../outside.key"),
        format!("{t}/sub/nested.key"),
        format!("{t}/plain.txt"),
        format!("\"{t}/good.key\""),
        "/etc/passwd".to_string(),
        format!("{}/outside.key", outside.parent().expect("dir").display()),
    ] {
        let fake = arc_fake(&realm, "GOOD-KEY");
        let out = run_arc(&fake, root.path());
        let err = assert_one_line_exit(
            &out,
            1,
            &["OUTSIDE-CANARY", "NESTED-CANARY", "TXT-CANARY", "GOOD-KEY"],
        );
        assert!(
            err.contains("Azure Arc") && err.contains("refusing to read it"),
            "{realm}: {err}"
        );
        assert_only_the_challenge(&fake);
    }
}

#[test]
fn an_arc_key_file_too_large_a_fifo_or_not_one_line_is_refused_without_hanging() {
    let root = tempfile::tempdir().expect("tempdir");
    let tokens = arc_token_dir(root.path());
    std::fs::create_dir_all(&tokens).expect("mkdir");
    let fifo = tokens.join("fifo.key");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.expect("mkfifo (coreutils)").success());
    std::fs::create_dir_all(tokens.join("dir.key")).expect("mkdir");
    let big = "B".repeat(4097);
    for (name, content, needle) in [
        ("big.key", Some(big.as_str()), "larger than 4096 bytes"),
        (
            "lines.key",
            Some("LINE-ONE\nLINE-TWO"),
            "one line of printable text",
        ),
        ("empty.key", Some(""), "one line of printable text"),
        ("fifo.key", None, "not a regular file"),
        ("dir.key", None, "Azure Arc key file"),
    ] {
        let realm = match content {
            Some(c) => arc_key_file(root.path(), name, c),
            None => tokens.join(name).display().to_string(),
        };
        let fake = arc_fake(&realm, content.unwrap_or("x"));
        let started = Instant::now();
        let out = run_arc(&fake, root.path());
        assert!(started.elapsed() < Duration::from_secs(20), "{name}: hung");
        let err = assert_one_line_exit(&out, 2, &["BBBBBBBB", "LINE-ONE", "LINE-TWO"]);
        assert!(err.contains(needle), "{name}: {err}");
        assert_only_the_challenge(&fake);
    }
    // 4096 bytes is still a key.
    let key = "K".repeat(4096);
    let fake = arc_fake(&arc_key_file(root.path(), "max.key", &key), &key);
    let out = run_arc(&fake, root.path());
    let v = crate::common::stdout_json(&out);
    assert_eq!(v["auth"][LOGIN]["username"], crate::common::azure::USERNAME);
    assert!(!crate::common::stderr(&out).contains(&key[..64]));
}

#[test]
fn a_remote_plain_http_arc_endpoint_is_refused_before_the_key_is_read() {
    let root = tempfile::tempdir().expect("tempdir");
    let realm = arc_key_file(root.path(), "k.key", "REMOTE-CANARY");
    let fake = arc_fake(&realm, "REMOTE-CANARY");
    let root_s = root.path().display().to_string();
    let env = [
        (
            "IDENTITY_ENDPOINT",
            "http://arc.example.invalid:40342/metadata/identity/oauth2/token",
        ),
        ("IMDS_ENDPOINT", "http://arc.example.invalid:40342"),
        (crate::common::azure::ARC_ROOT_ENV, root_s.as_str()),
    ];
    let out = run(
        &imds_and_registry(&fake),
        &crate::common::request(V1, "myacr.azurecr.io/app"),
        &env,
    );
    let err = assert_one_line_exit(&out, 2, &["REMOTE-CANARY"]);
    assert!(
        err.contains("IDENTITY_ENDPOINT") && err.contains("in clear"),
        "{err}"
    );
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
}

/// The CA certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR` are files named by others: a
/// FIFO, `/dev/zero` or files holding no certificate are one line at once, before a client
/// secret goes anywhere (keyring-net's client).
#[test]
fn ca_certificates_that_block_never_end_or_hold_none_are_one_line_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let authority = format!("https://127.0.0.1:{}/", free_port());
    for (var, value) in crate::common::tls::hostile_ca_settings(dir.path()) {
        let mut env = service_principal();
        env.extend([
            ("AZURE_AUTHORITY_HOST", authority.as_str()),
            (var, value.as_str()),
            ("KUBELET_KEYRING_TEST_DEADLINE", "4s"),
        ]);
        let started = std::time::Instant::now();
        let out = run(
            "",
            &crate::common::request(V1, "myacr.azurecr.io/app"),
            &env,
        );
        crate::common::tls::assert_ca_refused(&out, started.elapsed(), var, &value);
    }
}

/// A CA setting that holds no certificate is the node's configuration, said so with exit 2,
/// not an Entra ID authority that could not be reached (the old line: "failed after 0
/// attempt(s) (can the node reach the Entra ID authority host ...?)", exit 1).
#[test]
fn a_ca_setting_without_a_certificate_is_a_configuration_error_naming_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("ca.pem");
    std::fs::write(&text, "not a certificate\n").expect("write");
    let authority = format!("https://127.0.0.1:{}/", free_port());
    let mut env = service_principal();
    env.extend([
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
        ("SSL_CERT_FILE", text.to_str().expect("utf-8")),
    ]);
    let out = run(
        "",
        &crate::common::request(V1, "myacr.azurecr.io/app"),
        &env,
    );
    let line = assert_one_line_exit(&out, 2, &[SECRET]);
    assert!(
        line.contains("cannot set up TLS") && line.contains("CA certificate"),
        "{line}"
    );
    assert!(!line.contains("can the node reach"), "{line}");
}
