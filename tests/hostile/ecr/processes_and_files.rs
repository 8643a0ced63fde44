//! What the node's own set-up names: a `credential_process` that hangs or fails, the CA
//! certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR`, the files a profile names.

use super::*;

// ---------------------------------------------------------------------------------------
// #12: a credential_process that hangs is killed with its children when its time is up.

/// The pids listed in `file` (one a line) that are still running: not gone and not a zombie
/// waiting for a reaper that is not ours.
fn alive(file: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        })
        .map(str::to_string)
        .collect()
}

/// Kills what is left of the pids in its file when dropped, so a failing run leaves no
/// `sleep 1000` behind.
struct Reap(std::path::PathBuf);

impl Drop for Reap {
    fn drop(&mut self) {
        for pid in alive(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
        }
    }
}

/// A `credential_process` that never answers and starts a child that never ends either:
/// the invocation ends in one line within its (shortened) deadline, and neither the process
/// nor its children outlive it. The old code (the SDK's provider, dropped at its timeout)
/// left all three running, one more set per pull.
#[test]
fn a_hanging_credential_process_is_killed_with_its_children_when_its_time_is_up() {
    let s = Sandbox::new();
    let pids = s.tmp.path().join("pids");
    let _reap = Reap(pids.clone());
    let script = s.tmp.path().join("hang.sh");
    let p = pids.display();
    write(
        &script,
        &format!(
            "#!/bin/sh\necho $$ >> '{p}'\nsleep 1000 &\necho $! >> '{p}'\nsleep 1000 &\necho $! >> '{p}'\nwait\n"
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let config = s.tmp.path().join("aws-config");
    write(
        &config,
        &format!("[default]\ncredential_process = {}\n", script.display()),
    );
    let ecr = closed_port_url();
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("AWS_CONFIG_FILE", &config)
        .env("AWS_ENDPOINT_URL_ECR", &ecr)
        .env("KUBELET_KEYRING_TEST_DEADLINE", "4s");
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request(VERSIONS[0], &format!("{HOST}/app")).as_bytes())
        .expect("write");
    let (out, took) = crate::common::process::wait_within(child, Duration::from_secs(30))
        .expect("still running after 30s");
    let line = assert_one_line_exit(&out, 1, &[]);
    assert!(line.contains("credential_process"), "{line}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {line}");
    let started = std::fs::read_to_string(&pids).unwrap_or_default();
    assert_eq!(started.lines().count(), 3, "{started:?}: {line}");
    // SIGKILL lands at once; a moment for the kernel all the same.
    let until = Instant::now() + Duration::from_secs(2);
    while !alive(&pids).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alive(&pids), Vec::<String>::new(), "still running: {line}");
}

/// A `credential_process` that fails is one line saying how much it wrote on stderr, never
/// what: its diagnostics may quote a secret. The old code (the SDK's provider) put its
/// stderr in the line.
#[test]
fn a_failing_credential_processs_stderr_is_never_quoted() {
    let s = Sandbox::new();
    let config = s.tmp.path().join("aws-config");
    write(
        &config,
        "[default]\ncredential_process = echo 'login refused: password hunter2-canary' >&2; exit 1\n",
    );
    let ecr = closed_port_url();
    let env = [
        ("AWS_CONFIG_FILE", config.to_str().expect("utf-8")),
        ("AWS_ENDPOINT_URL_ECR", ecr.as_str()),
    ];
    let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
    let line = assert_one_line_exit(&out, 1, &["hunter2-canary", "login refused"]);
    assert!(
        line.contains("external process exited with code exit status: 1")
            && line.contains("Stderr: 39 bytes, not shown"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------
// The CA certificates of SSL_CERT_FILE / SSL_CERT_DIR are files named by others.

#[test]
fn ca_certificates_that_block_never_end_or_hold_none_are_one_line_at_once() {
    let s = Sandbox::new();
    for (var, value) in hostile_ca_settings(s.tmp.path()) {
        let env = [
            KEYS[0],
            KEYS[1],
            (
                "AWS_ENDPOINT_URL_ECR",
                &closed_port_url().replace("http:", "https:"),
            ),
            (var, &value),
            // Old code: bounded by the watchdog, not by the test.
            ("KUBELET_KEYRING_TEST_DEADLINE", "4s"),
        ];
        let (out, took) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
        assert_ca_refused(&out, took, var, &value);
    }
}

#[test]
fn ca_certificates_from_ssl_cert_file_or_dir_are_trusted_as_before() {
    let s = Sandbox::new();
    let certs = s.tmp.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    crate::common::tls::ca(&certs, "ca");
    crate::common::tls::server_cert(&certs, "ca", "IP:127.0.0.1");
    let ecr = fake(
        200,
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":4102444800}]}"#,
    );
    let port =
        crate::common::tls::tls_front(&certs.join("srv.pem"), &certs.join("srv.key"), ecr.host());
    let endpoint = format!("https://127.0.0.1:{port}");
    // The directory also holds what is no certificate: a FIFO, the CA's key, a subdirectory.
    let dir = s.tmp.path().join("ssl-certs");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(certs.join("ca.pem"), dir.join("ca.pem")).expect("copy");
    std::fs::copy(certs.join("ca.key"), dir.join("ca.key")).expect("copy");
    mkfifo(&dir.join("fifo.pem"));
    std::fs::create_dir(dir.join("java")).expect("mkdir");
    let file = certs.join("ca.pem");
    for (var, value) in [("SSL_CERT_FILE", &file), ("SSL_CERT_DIR", &dir)] {
        let value = value.display().to_string();
        let env = [
            KEYS[0],
            KEYS[1],
            ("AWS_ENDPOINT_URL_ECR", &endpoint),
            (var, &value),
        ];
        let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
        assert_eq!(
            creds(&stdout_json(&out), HOST),
            ("AWS".into(), "pw".into()),
            "{var}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Files a profile names (its web identity token, its SSO token cache) are read whole by the
// SDK, like the profile files themselves.

/// The lower-case hex SHA-1 of `s`, as the SDK names an SSO token cache file.
fn sha1_hex(s: &str) -> String {
    let out = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha1sum (coreutils)");
    String::from_utf8_lossy(&out.stdout)[..40].to_string()
}

/// Profiles naming files the SDK reads whole: an SSO profile (`sso_session`, and the legacy
/// `sso_start_url` form) whose token cache file in `~/.aws/sso/cache` is planted, and a role
/// profile's `web_identity_token_file`. A FIFO or a link to `/dev/zero` there is one line
/// naming the file, exit 2, at once. The old code hung on the FIFO until the watchdog and
/// read /dev/zero until memory ran out (6.8 GB in 5 s in a debug build; here bounded to 1 GiB
/// of address space: "out of memory").
#[test]
fn files_a_profile_names_that_block_or_never_end_are_one_line_at_once() {
    let s = Sandbox::new();
    let cache = s.home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let session = "[default]\nsso_session = team\nsso_account_id = 123456789012\nsso_role_name = r\nregion = us-east-1\n[sso-session team]\nsso_start_url = https://team.awsapps.com/start\nsso_region = us-east-1\n".to_string();
    let legacy = "[default]\nsso_start_url = https://legacy.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 123456789012\nsso_role_name = r\nregion = us-east-1\n".to_string();
    let token = s.tmp.path().join("token");
    let web_identity = format!(
        "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nweb_identity_token_file = {}\nregion = us-east-1\n",
        token.display()
    );
    let cases = [
        (session, cache.join(format!("{}.json", sha1_hex("team")))),
        (
            legacy,
            cache.join(format!(
                "{}.json",
                sha1_hex("https://legacy.awsapps.com/start")
            )),
        ),
        (web_identity, token.clone()),
    ];
    for (config, file) in cases {
        write(&s.home.join(".aws/config"), &config);
        for planted in ["fifo", "/dev/zero"] {
            let _ = std::fs::remove_file(&file);
            match planted {
                "fifo" => mkfifo(&file),
                target => std::os::unix::fs::symlink(target, &file).expect("symlink"),
            }
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c")
                .arg("ulimit -v 1048576; exec \"$0\" \"$@\"")
                .arg(BIN)
                .args(["--no-cache", "--root-dir"])
                .arg(&s.root);
            s.isolate(&mut cmd)
                .env("AWS_ENDPOINT_URL_ECR", closed_port_url())
                .env("KUBELET_KEYRING_TEST_DEADLINE", "4s");
            let started = Instant::now();
            let out = run_with(cmd, request(VERSIONS[0], &format!("{HOST}/app")).as_bytes());
            let what = format!("{} / {planted}", file.display());
            assert_ne!(out.status.code(), Some(101), "{what}: panicked");
            let line = assert_misconfigured(&out, &[]);
            assert!(
                line.contains(&file.display().to_string()) && line.contains("not a regular file"),
                "{what}: {line}"
            );
            assert!(started.elapsed() < Duration::from_secs(3), "{what}: {line}");
        }
    }
}
