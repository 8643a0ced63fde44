//! Hostile input: ecr. What a hostile or broken AWS peer (the ECR API behind
//! `AWS_ENDPOINT_URL_ECR`, STS, the EKS Pod Identity / ECS container credentials endpoint,
//! the instance metadata service) can send, and what must still hold: every answer the AWS
//! SDK reads stops at keyring-net's cap, an answer that does not parse is a protocol error
//! naming the endpoint, never a refusal pointing at the role, and a peer's expiry becomes a
//! time only through `keyring_api::lifetime` (clamped, never overflowing).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::http::{Fake, Reply};
use crate::common::tls::{assert_ca_refused, hostile_ca_settings};
use crate::common::*;

const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ROLE_ANNOTATION: &str = "eks.amazonaws.com/ecr-role-arn";
const ROLE: &str = "arn:aws:iam::111111111111:role/team-pull";
/// The invocation's budget, which one ECR call may take whole.
const DEADLINE: Duration = Duration::from_secs(50);

/// What a flooding peer offers in one answer: far past any cap.
const FLOOD: usize = 64 << 20;
/// The most one connection may have taken of it: the 1 MiB cap plus what the kernel's socket
/// buffers accept before the reader hangs up.
const MOST_TAKEN: u64 = 16 << 20;

// ---------------------------------------------------------------------------------------
// A peer that answers every request with 200 and a body of FLOOD bytes.

/// Answers every request on 127.0.0.1 with `200`, its content type, a `Content-Length` of
/// [`FLOOD`] and that many bytes (`prefix`, then `A`s), written in 64 KiB pieces until the
/// reader hangs up; records how many bytes each connection took. Stops when dropped.
struct Flood {
    base: String,
    taken: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    fn start(content_type: &'static str, prefix: &'static str) -> Flood {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (taken, stop) = (taken.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut workers = Vec::new();
                while !stop.load(Ordering::SeqCst)
                    && workers.len() < 20
                    && started.elapsed() < Duration::from_secs(60)
                {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let taken = taken.clone();
                            workers.push(std::thread::spawn(move || {
                                let n = flood(conn, content_type, prefix);
                                taken.lock().expect("lock").push(n);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Flood {
            base,
            taken,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops serving and returns what each connection took.
    fn taken(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.taken.lock().expect("lock").clone()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request and answers it with the flood; the bytes the reader took.
fn flood(conn: TcpStream, content_type: &str, prefix: &str) -> u64 {
    conn.set_nonblocking(false).expect("blocking");
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    // A reader that stops reading but holds the connection must not hold the test forever.
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return 0;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let mut conn = conn;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {FLOOD}\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(head.as_bytes()).is_err() || conn.write_all(prefix.as_bytes()).is_err() {
        return 0;
    }
    let mut sent = prefix.len();
    let piece = vec![b'A'; 64 << 10];
    while sent < FLOOD {
        let n = piece.len().min(FLOOD - sent);
        match conn.write(&piece[..n]) {
            Ok(0) | Err(_) => break,
            Ok(k) => sent += k,
        }
    }
    sent as u64
}

// ---------------------------------------------------------------------------------------
// Running the binary.

/// Runs `get-credentials` on `request` with the sandbox's environment (no AWS credentials,
/// IMDS off) plus `env`; the output and how long it took.
fn run(s: &Sandbox, request: &str, env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = s.command(&["--no-cache"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = run_with(cmd, request.as_bytes());
    (out, started.elapsed())
}

/// Static node credentials, as a hostile endpoint's tests need them to get as far as the call.
const KEYS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "secret-canary-51e2"),
];

/// An address where nothing listens.
fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Answers every request with `status` and the JSON (or XML) `body`.
fn fake(status: u16, body: &'static str) -> Fake {
    Fake::start("Content-Type: application/x-amz-json-1.1\r\n", move |_| {
        Reply::With(status, body.as_bytes().to_vec())
    })
}

/// `explain --json --fetch` for `image`: the fetch report of its one image.
fn fetch_report(s: &Sandbox, image: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = s.command(&["explain", "--json", "--fetch", image]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with(cmd, b"");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("explain --json: {e}: {text} / {}", stderr(&out)));
    let fetch = report
        .pointer("/0/fetch")
        .or_else(|| report.pointer("/images/0/fetch"))
        .unwrap_or_else(|| panic!("no fetch report in {report}"));
    fetch.clone()
}

// ---------------------------------------------------------------------------------------
// #13: every answer the AWS SDK reads stops at the cap.

/// Each AWS peer the SDK reads, flooding: the run ends in one line within the deadline, and
/// no connection took more than the cap and the socket buffers of the 64 MiB offered (the
/// old code read it all: 2.3 GB of memory for a longer flood).
#[test]
fn every_answer_the_aws_sdk_reads_stops_at_the_cap() {
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let ecr_request = request(VERSIONS[0], &format!("{HOST}/app"));
    let sa_req = sa_request(&format!("{HOST}/app"), &token, &[(ROLE_ANNOTATION, ROLE)]);
    type Case = (&'static str, &'static str, &'static str);
    let cases: [Case; 4] = [
        (
            "ECR",
            "application/x-amz-json-1.1",
            r#"{"authorizationData":[{"authorizationToken":""#,
        ),
        (
            "STS",
            "text/xml",
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>",
        ),
        ("container credentials", "application/json", r#"{"AccessKeyId":""#),
        ("IMDS", "text/plain", ""),
    ];
    for (peer, content_type, prefix) in cases {
        let flood = Flood::start(content_type, prefix);
        let s = Sandbox::new();
        let url = flood.base.clone();
        let creds_url = format!("{url}/creds");
        let ecr_url = closed_port_url();
        let (url, creds_url, ecr_url) = (url.as_str(), creds_url.as_str(), ecr_url.as_str());
        let (req, env): (&str, Vec<(&str, &str)>) = match peer {
            "ECR" => (
                &ecr_request,
                [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", url)].to_vec(),
            ),
            "STS" => (
                &sa_req,
                vec![
                    ("AWS_ENDPOINT_URL_STS", url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
            "container credentials" => (
                &ecr_request,
                vec![
                    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
            _ => (
                &ecr_request,
                vec![
                    ("AWS_EC2_METADATA_DISABLED", "false"),
                    ("AWS_EC2_METADATA_SERVICE_ENDPOINT", url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
        };
        let (out, took) = run(&s, req, &env);
        let taken = flood.taken();
        let err = stderr(&out);
        assert!(
            matches!(out.status.code(), Some(1 | 2)) && err.lines().count() == 1,
            "{peer}: exit {:?}: {err}",
            out.status.code()
        );
        assert!(!err.contains("secret-canary"), "{peer}: {err}");
        assert!(took < DEADLINE, "{peer}: {took:?}");
        assert!(!taken.is_empty(), "{peer}: the peer was never asked: {err}");
        assert!(
            taken.iter().all(|&n| n < MOST_TAKEN),
            "{peer}: a connection took {taken:?} bytes of {FLOOD}: {err}"
        );
        if peer != "IMDS" {
            // IMDS failures end the node's chain as "no credentials", which says so.
            assert!(err.contains("larger than 1 MiB"), "{peer}: {err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// #17: a 200 whose body does not parse is an unreadable answer, not a refusal.

#[test]
fn an_ecr_200_that_does_not_parse_is_an_unreadable_answer_not_a_refusal() {
    for body in [
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":"NaN"}]}"#,
        "<html>captive portal</html>",
    ] {
        let ecr = fake(200, body);
        let s = Sandbox::new();
        let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", ecr.base())];
        let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
        let line = assert_one_line_failure(&out, &["secret-canary-51e2"]);
        assert!(
            line.contains("unreadable answer from") && line.contains(ecr.base()),
            "{body}: {line}"
        );
        assert!(!line.contains("refused"), "{body}: {line}");
        let report = fetch_report(&s, &format!("{HOST}/app"), &env);
        assert_eq!(report["error_kind"], "protocol", "{body}: {report}");
    }
}

#[test]
fn an_sts_200_that_does_not_parse_is_an_unreadable_answer_not_a_refusal() {
    let sts = fake(200, "<html>not STS</html>");
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(&format!("{HOST}/app"), &token, &[(ROLE_ANNOTATION, ROLE)]);
    let ecr = closed_port_url();
    let env = [
        ("AWS_ENDPOINT_URL_STS", sts.base()),
        ("AWS_ENDPOINT_URL_ECR", ecr.as_str()),
    ];
    let (out, _) = run(&s, &req, &env);
    let line = assert_one_line_failure(&out, &["sig-canary"]);
    assert!(
        line.contains("unreadable answer from") && line.contains(sts.base()),
        "{line}"
    );
    assert!(line.contains(ROLE), "{line}");
    assert!(
        !line.contains("refused") && !line.contains("check the role ARN"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------
// A peer's expiry becomes a time only through keyring_api::lifetime.

#[test]
fn an_ecr_expiry_beyond_any_clock_is_clamped_and_one_before_the_epoch_is_expired() {
    let s = Sandbox::new();
    // AWS:pw, expiring 1e300 seconds after the epoch: the SDK makes that i64::MAX seconds,
    // which the old code took as the token's expiry (the year 292 billion); it is clamped to
    // keyring_api::lifetime's ten-year horizon, and the lifetime is the usual 12 h cap.
    let far = fake(
        200,
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":1e300}]}"#,
    );
    let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", far.base())];
    let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
    let resp = stdout_json(&out);
    let secs = go_secs(resp["cacheDuration"].as_str().expect("cacheDuration"));
    assert!(
        ((12 * 3600 * 9 / 10)..=12 * 3600).contains(&secs),
        "{resp}: {}",
        stderr(&out)
    );
    let report = fetch_report(&s, &format!("{HOST}/app"), &env);
    let horizon = 10 * 365 * 24 * 3600;
    let expires_in = report["expires_in_secs"].as_i64().expect("expires_in_secs");
    assert!((horizon - 60..=horizon).contains(&expires_in), "{report}");
    // Before the epoch by as much: expired when it arrived (the epoch, by the clamp), so for
    // this pull only: cacheDuration 0s, a warning naming the clock, never a negative or
    // overflowing lifetime.
    let past = fake(
        200,
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":-1e300}]}"#,
    );
    let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", past.base())];
    let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheDuration"], "0s", "{resp}");
    let err = stderr(&out);
    assert!(err.contains("s ago by this node's clock"), "{err}");
}

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
