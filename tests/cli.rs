//! Black-box tests of the protocol as the kubelet drives it: the built binary, a request on
//! stdin, docker config files in a sandbox.

use crate::common::*;

const CANARY: &str = "canary-Pa55w0rd-7f3a";

fn config_with_canary() -> String {
    format!(
        r#"{{"auths":{{
            "registry.example.com":{{"username":"robot","password":"{CANARY}"}},
            "https://index.docker.io/v1/":{{"auth":"aHViOmh1YnBhc3M="}},
            "registry.example.com:5000":{{"username":"decoy","password":"decoy"}},
            "other.example.org":{{"username":"decoy","password":"decoy"}}}}}}"#
    )
}

#[test]
fn answers_in_the_requests_version_with_exactly_the_known_fields() {
    let s = Sandbox::new();
    s.docker_config(&config_with_canary());
    for v in VERSIONS {
        let out = s.run(
            &["--no-cache"],
            &request(v, "registry.example.com/team/app"),
        );
        let json = stdout_json(&out);
        let obj = json.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "auth",
                "cacheDuration",
                "cacheKeyType",
                "kind"
            ]
        );
        assert_eq!(json["kind"], "CredentialProviderResponse");
        assert_eq!(json["apiVersion"], v);
        assert_eq!(json["cacheKeyType"], "Registry");
        assert_eq!(json["cacheDuration"], "5m0s");
        let auth = json["auth"].as_object().unwrap();
        assert_eq!(auth.len(), 1, "only the matching entry: {auth:?}");
        let cred = auth["registry.example.com"].as_object().unwrap();
        assert_eq!(cred.len(), 2, "AuthConfig has username and password only");
        assert_eq!(cred["username"], "robot");
        assert_eq!(cred["password"], CANARY);
    }
}

#[test]
fn hand_typed_references_are_normalized_like_the_kubelet() {
    let s = Sandbox::new();
    s.docker_config(&config_with_canary());
    for image in ["nginx:1.25", "library/nginx", "docker.io/library/nginx", "index.docker.io/nginx@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"] {
        let json = stdout_json(&s.run(&["--no-cache"], &request(VERSIONS[0], image)));
        let auth = json["auth"].as_object().unwrap();
        assert_eq!(auth.len(), 1, "{image}: {auth:?}");
        assert_eq!(auth["https://index.docker.io/v1/"]["username"], "hub", "{image}");
    }
    let json = stdout_json(&s.run(
        &["--no-cache"],
        &request(VERSIONS[0], "registry.example.com:5000/x:tag"),
    ));
    assert_eq!(
        json["auth"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["registry.example.com:5000"]
    );
}

#[test]
fn unknown_request_fields_and_token_fields_are_accepted() {
    let s = Sandbox::new();
    s.docker_config(&config_with_canary());
    let req = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"registry.example.com/a","serviceAccountToken":"sa-token-value","serviceAccountAnnotations":{"a/b":"c"},"someFutureField":{"x":[1,2]}}"#;
    let out = s.run(&["-vvv"], req);
    let json = stdout_json(&out);
    assert_eq!(json["auth"]["registry.example.com"]["username"], "robot");
    assert!(!stderr(&out).contains("sa-token-value"));
}

#[test]
fn bad_input_is_one_line_on_stderr_nothing_on_stdout_exit_2() {
    let s = Sandbox::new();
    let v1 = VERSIONS[0];
    let huge = format!("{{\"image\":\"{}\"}}", "a".repeat(2 << 20));
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty request"),
        ("not json".into(), "not valid JSON"),
        ("[1,2]".into(), "must be a JSON object"),
        (
            format!(r#"{{"kind":"CredentialProviderResponse","apiVersion":"{v1}","image":"a"}}"#),
            "kind must be",
        ),
        (
            format!(r#"{{"kind":"CredentialProviderRequest","apiVersion":"{v1}"}}"#),
            "`image` is missing",
        ),
        (
            format!(
                r#"{{"kind":"CredentialProviderRequest","apiVersion":"{v1}","image":"HTTP://x"}}"#
            ),
            "invalid image reference",
        ),
        (huge, "larger than"),
    ];
    for (input, want) in cases {
        let out = s.run(&[], &input);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{want}: {err}");
        assert!(out.stdout.is_empty(), "{want}: stdout must stay empty");
        assert!(err.contains(want), "{want}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"[":{"auth":"dTpw"},"*":{"auth":"dTpw"},"%zz":{},"a:b:c":{},"[::1]:5000":{"auth":"dTpw"}}}"#);
    let v1 = VERSIONS[0];
    let images = [
        "[::1]:5000/x",
        "a/b/c/d/e/f/g/h",
        "x.io:99999/a",
        "\\u0000",
        "é.io/x",
        "a..b/c",
        ":",
        "/",
        "@sha256:",
        "localhost",
    ];
    for image in images {
        let out = s.run(
            &["--no-cache"],
            &format!(
                r#"{{"kind":"CredentialProviderRequest","apiVersion":"{v1}","image":"{image}"}}"#
            ),
        );
        assert!(
            matches!(out.status.code(), Some(0) | Some(2)),
            "{image}: {:?} {}",
            out.status,
            stderr(&out)
        );
    }
    for junk in [
        "\u{feff}{}",
        "{\"kind\":1}",
        "{\"image\":[]}",
        "null",
        "\"x\"",
        "{\"a\":1e999999}",
    ] {
        let out = s.run(&[], junk);
        assert_eq!(out.status.code(), Some(2), "{junk:?}");
    }
}

#[test]
fn broken_files_are_reported_and_skipped_and_search_order_holds() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"reg.io":{"username":"home","password":"h"}}}"#);
    write(
        &s.cwd.join("config.json"),
        r#"{"auths":{"reg.io":{"auth":"not-base64!"}}}"#,
    );
    let out = s.run(&["--no-cache"], &request(VERSIONS[0], "reg.io/app"));
    let json = stdout_json(&out);
    assert_eq!(json["auth"]["reg.io"]["username"], "home");
    let err = stderr(&out);
    assert!(
        err.contains("skipping docker config") && err.contains("config.json"),
        "{err}"
    );
    assert!(!err.contains("not-base64"), "no values in errors: {err}");
    // The kubelet root dir wins over everything.
    write(
        &s.root.join("config.json"),
        r#"{"auths":{"reg.io":{"username":"root","password":"r"}}}"#,
    );
    let json = stdout_json(&s.run(&["--no-cache"], &request(VERSIONS[0], "reg.io/app")));
    assert_eq!(json["auth"]["reg.io"]["username"], "root");
    // Env var form of --root-dir.
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("KUBELET_KEYRING_ROOT_DIR", &s.root);
    let json = stdout_json(&run_with(
        cmd,
        request(VERSIONS[0], "reg.io/app").as_bytes(),
    ));
    assert_eq!(json["auth"]["reg.io"]["username"], "root");
}

#[test]
fn secrets_never_reach_stderr_at_any_verbosity() {
    let s = Sandbox::new();
    s.docker_config(&config_with_canary());
    for v in [&[][..], &["-v"], &["-vv"], &["-vvv"]] {
        for image in ["registry.example.com/app", "quay.io/x", "nginx"] {
            let out = s.run(v, &request(VERSIONS[0], image));
            assert!(out.status.success());
            let err = stderr(&out);
            assert!(
                !err.contains(CANARY) && !err.contains("hubpass"),
                "{v:?} {image}: {err}"
            );
        }
    }
}

#[test]
fn get_credentials_is_the_default_and_help_and_version_print_in_full() {
    let s = Sandbox::new();
    s.docker_config(&config_with_canary());
    let a = s.run(
        &["get-credentials"],
        &request(VERSIONS[0], "registry.example.com/a"),
    );
    let b = s.run(&[], &request(VERSIONS[0], "registry.example.com/a"));
    assert_eq!(stdout_json(&a)["auth"], stdout_json(&b)["auth"]);
    let out = s.run(&["--bogus-flag"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    // A usage error is one line (tests/hostile/cli.rs); --help is still the whole help.
    for help in [&["--help"][..], &["-h"], &["cache", "--help"]] {
        let out = s.run(help, "");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{help:?}");
        assert!(
            text.contains("Usage: kubelet-keyring") && text.lines().count() > 10,
            "{help:?}: {text}"
        );
    }
    let out = s.run(&["--version"], "");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(
        v.starts_with(&format!("kubelet-keyring {}", env!("CARGO_PKG_VERSION")))
            && v.contains("docker-config"),
        "{v}"
    );
}

/// Under an upstream name, `--help`/`-h` print that plugin's usage with every flag's fate and
/// `--version` its version line, on stdout, exit 0, as upstream's cobra does; ECR's `-v` is
/// `--version` there, as upstream.
#[test]
fn upstream_help_and_version() {
    let s = Sandbox::new();
    for (name, flag) in [
        ("ecr-credential-provider", "--help"),
        ("ecr-credential-provider", "-h"),
        ("auth-provider-gcp", "--help"),
        ("gcr-credential-provider", "-h"),
        ("acr-credential-provider", "--help"),
        ("acr-credential-provider", "-h"),
    ] {
        let bin = s.bin_dir_with(name).join(name);
        let out = std::process::Command::new(&bin).arg(flag).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name} {flag}");
        assert!(
            text.starts_with(&format!("{name} (kubelet-keyring ")),
            "{text}"
        );
        assert!(text.contains("[honoured]"), "{text}");
    }
    // ecr-credential-provider's -v is --version; acr-credential-provider's -v is klog's.
    for (name, flag) in [
        ("ecr-credential-provider", "--version"),
        ("ecr-credential-provider", "-v"),
        ("acr-credential-provider", "--version"),
    ] {
        let bin = s.bin_dir_with(name).join(name);
        let out = std::process::Command::new(&bin).arg(flag).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name} {flag}");
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    }
}
