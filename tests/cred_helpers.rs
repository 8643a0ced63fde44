//! Black-box tests of docker credential helpers (`credHelpers` / `credsStore` in config.json):
//! the built binary runs `docker-credential-<name> get` as the docker CLI does.
//!
//! Two kinds of helper: small shell scripts written by each test into a bin directory put
//! first on `PATH` (they record what they were given and answer as told), and Debian's real
//! `docker-credential-ecr-login` against `moto_server`.
//!
//! ecr-login 0.6.0 has no endpoint override (its aws-sdk-go-v2 predates `AWS_ENDPOINT_URL`),
//! but it honours `HTTPS_PROXY` and `AWS_CA_BUNDLE`. So moto_server serves TLS with a
//! certificate for `api.ecr.us-east-1.amazonaws.com` made here with `openssl`, and a CONNECT
//! relay in this process (127.0.0.1 only) forwards the helper's tunnel to it: the helper
//! verifies that certificate against the bundle and talks the real ECR API to moto. Those two
//! are peer tests (`#[ignore = "needs ..."]`, see `crate::common`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::moto::Moto;
use crate::common::proxy;
use crate::common::*;

const CANARY: &str = "canary-Helper-S3cret-9c1d";
const HELPER: &str = "docker-credential-testhelper";

/// A sandbox with a bin directory for helper scripts, first on `PATH`.
struct HelperSandbox {
    s: Sandbox,
    bin: PathBuf,
    /// Where helper scripts record their argv, stdin and parent.
    record: PathBuf,
}

impl HelperSandbox {
    fn new() -> Self {
        let s = Sandbox::new();
        let bin = s.tmp.path().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        let record = s.tmp.path().join("record");
        HelperSandbox { s, bin, record }
    }

    /// Installs `docker-credential-<name>` as a shell script whose body is `body`. Before the
    /// body runs, the script has recorded its argument count, arguments, its parent's command
    /// name and its stdin into `self.record` (as `argc=`, `arg=`, `parent=`, `stdin=` lines);
    /// the body can use `$rec` (that file) and `$input` (what stdin said).
    fn helper(&self, name: &str, body: &str) {
        let path = self.bin.join(format!("docker-credential-{name}"));
        let script = format!(
            "#!/bin/sh\nrec='{rec}'\n{{ echo \"argc=$#\"; for a in \"$@\"; do echo \"arg=$a\"; done; echo \"parent=$(cat /proc/$PPID/comm)\"; }} > \"$rec\"\ninput=$(cat)\nprintf 'stdin=%s\\n' \"$input\" >> \"$rec\"\n{body}\n",
            rec = self.record.display()
        );
        std::fs::write(&path, script).expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// What the helper recorded, or "" if it never ran.
    fn recorded(&self) -> String {
        std::fs::read_to_string(&self.record).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = self.s.command(args);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.bin.clone()];
        dirs.extend(std::env::split_paths(&path));
        c.env("PATH", std::env::join_paths(dirs).expect("PATH"));
        c
    }

    fn run(&self, args: &[&str], image: &str) -> Output {
        run_with(self.command(args), request(VERSIONS[0], image).as_bytes())
    }
}

/// The `auth` keys of a response (absent or null counts as none).
fn auth_keys(json: &serde_json::Value) -> Vec<String> {
    json["auth"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn answering_helper() -> String {
    format!(r#"printf '{{"ServerURL":"%s","Username":"robot","Secret":"{CANARY}"}}' "$input""#)
}

#[test]
fn cred_helper_is_run_directly_with_get_and_the_registry_on_stdin() {
    let h = HelperSandbox::new();
    h.helper("testhelper", &answering_helper());
    h.s.docker_config(
        r#"{"auths":{"reg.example.com:5000":{"username":"decoy","password":"decoy"},"other.example.com":{"username":"o","password":"o"}},
            "credHelpers":{"reg.example.com:5000":"testhelper"}}"#,
    );
    let out = h.run(&["--no-cache", "-v"], "reg.example.com:5000/team/app:1.0");
    let json = stdout_json(&out);
    // credHelpers wins over the auths entry for the same registry.
    assert_eq!(auth_keys(&json), ["reg.example.com:5000"]);
    assert_eq!(json["auth"]["reg.example.com:5000"]["username"], "robot");
    assert_eq!(json["auth"]["reg.example.com:5000"]["password"], CANARY);
    assert_eq!(json["cacheKeyType"], "Registry");
    assert_eq!(json["cacheDuration"], "5m0s");
    // One argument, `get`; the server address on stdin; spawned by the binary itself, no
    // shell in between.
    assert_eq!(
        h.recorded(),
        "argc=1\narg=get\nparent=kubelet-keyring\nstdin=reg.example.com:5000\n"
    );
    let err = stderr(&out);
    let config = h.s.home.join(".docker/config.json");
    assert!(
        err.contains(&format!(
            "credential helper {HELPER} (from {})",
            config.display()
        )),
        "the source names the helper and the file: {err}"
    );
    assert!(!err.contains(CANARY), "{err}");

    // Other registries are not the helper's.
    let json = stdout_json(&h.run(&["--no-cache"], "other.example.com/x"));
    assert_eq!(auth_keys(&json), ["other.example.com"]);
}

#[test]
fn docker_hub_images_give_the_helper_dockers_index_server() {
    let h = HelperSandbox::new();
    h.helper("testhelper", &answering_helper());
    h.s.docker_config(r#"{"credHelpers":{"https://index.docker.io/v1/":"testhelper"}}"#);
    for image in [
        "nginx:1.25",
        "docker.io/library/nginx",
        "index.docker.io/user/app",
    ] {
        let json = stdout_json(&h.run(&["--no-cache"], image));
        assert_eq!(auth_keys(&json), ["docker.io"], "{image}");
        assert_eq!(json["auth"]["docker.io"]["password"], CANARY);
        assert!(
            h.recorded()
                .ends_with("stdin=https://index.docker.io/v1/\n"),
            "{}",
            h.recorded()
        );
    }
}

#[test]
fn creds_store_answers_when_auths_have_no_credentials() {
    let h = HelperSandbox::new();
    h.helper("testhelper", &answering_helper());
    // What `docker login` writes with a credential store: an empty auths entry.
    h.s.docker_config(
        r#"{"auths":{"reg.example.com":{},"pinned.example.com":{"auth":"dTpw"}},"credsStore":"testhelper"}"#,
    );
    let json = stdout_json(&h.run(&["--no-cache"], "reg.example.com/app"));
    assert_eq!(auth_keys(&json), ["reg.example.com"]);
    assert_eq!(json["auth"]["reg.example.com"]["password"], CANARY);
    assert!(h.recorded().ends_with("stdin=reg.example.com\n"));
    // auths with credentials are used without running the store.
    std::fs::remove_file(&h.record).expect("rm record");
    let json = stdout_json(&h.run(&["--no-cache"], "pinned.example.com/app"));
    assert_eq!(json["auth"]["pinned.example.com"]["username"], "u");
    assert_eq!(h.recorded(), "", "the store must not run");
    // The answer goes through the cache like any other.
    let first = stdout_json(&h.run(&[], "reg.example.com/app"));
    std::fs::remove_file(&h.record).expect("rm record");
    let second = stdout_json(&h.run(&[], "reg.example.com/app"));
    assert_eq!(first["auth"], second["auth"]);
    assert_eq!(h.recorded(), "", "served from the cache");
}

#[test]
fn not_found_means_no_credentials_and_identity_tokens_are_skipped() {
    let h = HelperSandbox::new();
    h.helper(
        "testhelper",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    h.s.docker_config(r#"{"credHelpers":{"reg.example.com":"testhelper"}}"#);
    let out = h.run(&["--no-cache"], "reg.example.com/app");
    assert_eq!(auth_keys(&stdout_json(&out)), Vec::<String>::new());
    assert!(h.recorded().contains("arg=get"));

    h.helper(
        "testhelper",
        &format!(r#"echo '{{"ServerURL":"x","Username":"<token>","Secret":"{CANARY}"}}'"#),
    );
    let out = h.run(&["--no-cache"], "reg.example.com/app");
    assert_eq!(auth_keys(&stdout_json(&out)), Vec::<String>::new());
    let err = stderr(&out);
    assert!(err.contains("identity token"), "warned: {err}");
    assert!(!err.contains(CANARY), "{err}");
}

#[test]
fn a_failing_helper_is_exit_1_with_one_line_and_no_secret() {
    let h = HelperSandbox::new();
    h.helper(
        "testhelper",
        &format!(
            "echo '{CANARY}'; echo '' >&2; echo 'error: token for reg.example.com expired, run login' >&2; echo 'second line {CANARY}' >&2; exit 3"
        ),
    );
    h.s.docker_config(r#"{"credHelpers":{"reg.example.com":"testhelper"}}"#);
    let err = assert_one_line_failure(&h.run(&["--no-cache"], "reg.example.com/app"), &[]);
    assert!(err.contains(HELPER), "{err}");
    // Its stderr is counted, never quoted (tests/hostile/docker_config.rs).
    let stderr_len = "\nerror: token for reg.example.com expired, run login\n".len()
        + format!("second line {CANARY}\n").len();
    assert!(
        err.contains(&format!(
            "failed (exit status: 3); its stderr ({stderr_len} bytes) was withheld"
        )),
        "{err}"
    );
    assert!(
        err.contains("check the helper's own configuration"),
        "fix: {err}"
    );
    assert!(
        !err.contains(CANARY) && !err.contains("expired") && !err.contains("second line"),
        "{err}"
    );

    // Exit 0 with garbage is a failure too, and does not echo the garbage.
    h.helper("testhelper", &format!("echo 'Secret: {CANARY}'"));
    let err = assert_one_line_failure(&h.run(&["--no-cache"], "reg.example.com/app"), &[]);
    assert!(err.contains("not docker credential helper JSON"), "{err}");
    assert!(!err.contains(CANARY), "{err}");
}

#[test]
fn a_missing_or_misnamed_helper_is_a_config_error_naming_the_fix() {
    let h = HelperSandbox::new();
    h.s.docker_config(r#"{"credHelpers":{"reg.example.com":"not-installed-7f3a"}}"#);
    let err =
        crate::common::assert_one_line_exit(&h.run(&["--no-cache"], "reg.example.com/app"), 2, &[]);
    assert!(
        err.contains("docker-credential-not-installed-7f3a (credHelpers in ")
            && err.contains("is not on PATH; install it"),
        "{err}"
    );
    for (name, why) in [
        ("x; touch pwned", "contains whitespace"),
        ("../../../bin/sh", "contains '/'"),
    ] {
        h.s.docker_config(&format!(
            r#"{{"credHelpers":{{"reg.example.com":"{name}"}}}}"#
        ));
        let err = crate::common::assert_one_line_exit(
            &h.run(&["--no-cache"], "reg.example.com/app"),
            2,
            &[],
        );
        assert!(
            err.contains(why) && err.contains("docker-credential-<suffix>"),
            "{err}"
        );
    }
    assert!(!h.s.cwd.join("pwned").exists());
}

#[test]
fn a_hanging_helper_is_killed_at_the_timeout_with_its_children() {
    let h = HelperSandbox::new();
    let pids = h.s.tmp.path().join("pids");
    h.helper(
        "testhelper",
        &format!("sleep 30 & echo $! > '{}'; wait", pids.display()),
    );
    h.s.docker_config(r#"{"credHelpers":{"reg.example.com":"testhelper"}}"#);
    let mut cmd = h.command(&["--no-cache"]);
    cmd.env("KUBELET_KEYRING_HELPER_TIMEOUT", "1s");
    let started = Instant::now();
    let out = run_with(cmd, request(VERSIONS[0], "reg.example.com/app").as_bytes());
    let took = started.elapsed();
    let err = assert_one_line_failure(&out, &[]);
    assert!(err.contains("did not answer within 1s"), "{err}");
    assert!(err.contains("check the helper's network access"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The helper's own child (sleep) went with it: its process group was killed.
    let sleep_pid = std::fs::read_to_string(&pids).expect("pid file");
    let stat = PathBuf::from(format!("/proc/{}/stat", sleep_pid.trim()));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Gone, or a zombie waiting for a reaper that is not ours.
        match std::fs::read_to_string(&stat) {
            Err(_) => break,
            Ok(s)
                if s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                break
            }
            Ok(s) => assert!(Instant::now() < deadline, "sleep still running: {s}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_helper_printing_endlessly_is_cut_off_at_one_mebibyte() {
    let h = HelperSandbox::new();
    h.helper("testhelper", &format!("exec yes '{CANARY}'"));
    h.s.docker_config(r#"{"credHelpers":{"reg.example.com":"testhelper"}}"#);
    let started = Instant::now();
    let err = assert_one_line_failure(&h.run(&["--no-cache"], "reg.example.com/app"), &[]);
    assert!(err.contains("printed more than 1048576 bytes"), "{err}");
    assert!(!err.contains(CANARY), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Big stderr does not block the helper.
    h.helper(
        "testhelper",
        &format!("yes 'noise' | head -c 3000000 >&2; {}", answering_helper()),
    );
    let json = stdout_json(&h.run(&["--no-cache"], "reg.example.com/app"));
    assert_eq!(json["auth"]["reg.example.com"]["password"], CANARY);
}

#[test]
fn wrong_types_for_helper_settings_do_not_break_the_file() {
    let h = HelperSandbox::new();
    h.s.docker_config(
        r#"{"auths":{"reg.example.com":{"username":"u","password":"p"}},"credHelpers":["reg.example.com"],"credsStore":7}"#,
    );
    let out = h.run(&["--no-cache"], "reg.example.com/app");
    let json = stdout_json(&out);
    assert_eq!(json["auth"]["reg.example.com"]["username"], "u");
    let err = stderr(&out);
    assert!(err.contains("credHelpers is an array"), "{err}");
    assert!(err.contains("credsStore is a number"), "{err}");
}

// ---- Debian's docker-credential-ecr-login against moto_server ----

const ECR_REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ECR_API_HOST: &str = "api.ecr.us-east-1.amazonaws.com";

/// The Go helper of the ECR helper tests (see `crate::common::peer`).
fn ecr_login() -> PathBuf {
    peer(
        "docker-credential-ecr-login",
        "the Debian package amazon-ecr-credential-helper",
    )
}

/// A self-signed certificate for the ECR API host, made with openssl.
fn ecr_api_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let openssl =
        on_path("openssl").expect("openssl is not on PATH: install the Debian package openssl");
    let (cert, key) = (dir.join("ecr-api.pem"), dir.join("ecr-api.key"));
    let out = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
        ])
        .arg(format!("/CN={ECR_API_HOST}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{ECR_API_HOST}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The binary, set up to run ecr-login through `proxy_port` with `cert` trusted.
fn ecr_command(s: &Sandbox, proxy_port: u16, cert: &Path) -> Command {
    // An ECR host is owned by the native ecr backend when it is compiled in; these tests are
    // about the credential-helper path, so the chain is limited to docker-config.
    let config = s.tmp.path().join("keyring.yaml");
    std::fs::write(&config, "backends: [docker-config]\n").expect("write config");
    let mut c = s.command(&[
        "--no-cache",
        "-v",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    c.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ECR_DISABLE_CACHE", "true")
        .env("HTTPS_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        .env("AWS_CA_BUNDLE", cert);
    c
}

#[test]
#[ignore = "needs docker-credential-ecr-login and moto_server"]
fn debian_ecr_login_gets_a_token_from_moto() {
    ecr_login();
    let s = Sandbox::new();
    let (cert, key) = ecr_api_cert(s.tmp.path());
    let moto = Moto::start_tls(&cert, &key);
    let (relay, heads) = proxy::tunnelling_only(&format!("{ECR_API_HOST}:443"), moto.port);
    s.docker_config(&format!(
        r#"{{"credHelpers":{{"{ECR_REGISTRY}":"ecr-login"}}}}"#
    ));

    let out = run_with(
        ecr_command(&s, relay, &cert),
        request(VERSIONS[0], &format!("{ECR_REGISTRY}/team/app:1")).as_bytes(),
    );
    let json = stdout_json(&out);
    assert_eq!(auth_keys(&json), [ECR_REGISTRY]);
    let cred = &json["auth"][ECR_REGISTRY];
    assert_eq!(cred["username"], "AWS");
    let password = cred["password"].as_str().expect("password");
    assert!(!password.is_empty());
    assert_eq!(json["cacheKeyType"], "Registry");
    // The token came from moto, through the tunnel, over TLS checked against our bundle.
    assert_eq!(
        proxy::connect_targets(&heads),
        [format!("{ECR_API_HOST}:443")]
    );
    let err = stderr(&out);
    assert!(
        err.contains("credential helper docker-credential-ecr-login (from "),
        "{err}"
    );
    assert!(!err.contains(password), "{err}");
}

#[test]
#[ignore = "needs docker-credential-ecr-login"]
fn debian_ecr_login_reports_an_unreachable_ecr_as_no_credentials() {
    // ecr-login 0.6.0 turns every failure to get a token into the "credentials not found"
    // answer (the cause goes only to ~/.ecr/log), so an unreachable ECR is no credentials,
    // not an error, exactly as the docker CLI would see it.
    ecr_login();
    let s = Sandbox::new();
    let (cert, _key) = ecr_api_cert(s.tmp.path());
    let (relay, heads) = proxy::tunnelling_only(&format!("{ECR_API_HOST}:443"), free_port());
    s.docker_config(&format!(
        r#"{{"credHelpers":{{"{ECR_REGISTRY}":"ecr-login"}}}}"#
    ));
    let out = run_with(
        ecr_command(&s, relay, &cert),
        request(VERSIONS[0], &format!("{ECR_REGISTRY}/app")).as_bytes(),
    );
    assert_eq!(auth_keys(&stdout_json(&out)), Vec::<String>::new());
    let targets = proxy::connect_targets(&heads);
    assert!(
        targets.iter().all(|t| t == &format!("{ECR_API_HOST}:443")) && !targets.is_empty(),
        "the helper tried ECR through the relay: {targets:?}"
    );
    let log = std::fs::read_dir(s.home.join(".ecr/log"))
        .expect("ecr-login log dir")
        .filter_map(|e| e.ok())
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(log.contains("Error retrieving credentials"), "{log}");
}
