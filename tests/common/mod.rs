//! Shared helpers for the black-box tests: a sandbox of temp directories (HOME, the kubelet
//! root dir, the working directory, the cache) so the machine's own files never play a part,
//! a runner for the built binary, and [`peer`] for tests that need real tools.
//!
//! # Peer tests
//!
//! A test that drives a real tool (moto_server, docker-registry, skopeo, the Go ECR helper,
//! node_exporter, promtool, the package tools) is `#[ignore = "needs <tool>"]`, so plain
//! `cargo test` lists it as ignored, with its reason, and never reports it as passed.
//! `scripts/test.sh` (and so CI) runs them with `-- --include-ignored`. Such a test asks
//! [`peer`] for each tool before it does anything: the tool's path, or a panic naming the
//! tool and its package, so a missing peer is a failure, never a skip.
#![allow(dead_code)]

pub mod azure;
pub mod flood;
pub mod google;
pub mod http;
pub mod issuer;
pub mod moto;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod tls;
pub mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kubelet-keyring");

/// The three request versions, newest first.
pub const VERSIONS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];

/// A request as the kubelet writes it.
pub fn request(version: &str, image: &str) -> String {
    format!("{{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"{version}\",\"image\":\"{image}\"}}\n")
}

/// `tool` on `PATH` (an executable file), for a peer test (see the module docs); panics
/// naming `package`, where the tool comes from, when it is not installed.
pub fn peer(tool: &str, package: &str) -> PathBuf {
    on_path(tool).unwrap_or_else(|| {
        panic!("{tool} is not on PATH: install {package} (bash scripts/install-test-deps.sh)")
    })
}

/// The first executable file named `tool` in a `PATH` directory.
pub fn on_path(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Temp dirs for one test.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub root: PathBuf,
    pub cwd: PathBuf,
    pub cache: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = tmp.path().to_path_buf();
        let (home, root, cwd) = (p.join("home"), p.join("root"), p.join("cwd"));
        for d in [&home, &root, &cwd] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        Sandbox {
            cache: p.join("cache"),
            tmp,
            home,
            root,
            cwd,
        }
    }

    /// Writes `$HOME/.docker/config.json`.
    pub fn docker_config(&self, json: &str) -> PathBuf {
        let p = self.home.join(".docker/config.json");
        write(&p, json);
        p
    }

    /// A command for the binary with the sandbox's environment: HOME, cwd, --root-dir and
    /// --cache-dir set, cloud environment cleared.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        self.isolate(&mut c)
            .arg("--root-dir")
            .arg(&self.root)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args);
        c
    }

    /// `c` in the sandbox: its cwd and HOME, an environment cleared but for `PATH`, IMDS
    /// off, and every stream piped.
    pub fn isolate<'c>(&self, c: &'c mut Command) -> &'c mut Command {
        c.current_dir(&self.cwd)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
    }

    /// Runs the binary with `stdin` and returns its output.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_with(self.command(args), stdin.as_bytes())
    }

    /// Runs the binary with `args` and the environment `env` on a v1 request for `image`, as
    /// the kubelet would: its output and how long it took.
    pub fn get(&self, image: &str, env: &[(&str, &str)], args: &[&str]) -> (Output, Duration) {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let started = std::time::Instant::now();
        let out = run_with(cmd, request(VERSIONS[0], image).as_bytes());
        (out, started.elapsed())
    }
}

/// How long [`run_with`] lets a child run: well past the 55 s every invocation must end in.
pub const CHILD_LIMIT: Duration = Duration::from_secs(90);

/// Spawns `cmd`, writes `stdin`, waits; panics when it runs past [`CHILD_LIMIT`] (and kills
/// it), so a hang is a failure, never a stuck test run.
pub fn run_with(cmd: Command, stdin: &[u8]) -> Output {
    let what = format!("{:?}", cmd.get_program());
    run_bounded(cmd, stdin, CHILD_LIMIT)
        .unwrap_or_else(|| panic!("{what} ran past {CHILD_LIMIT:?} and was killed"))
}

/// Spawns `cmd` with piped stdin, stdout and stderr, writes `stdin` and reads both outputs
/// on their own threads (a chatty child never blocks), and waits at most `limit`: `None`
/// when it had to be killed then.
pub fn run_within(
    cmd: impl std::borrow::BorrowMut<Command>,
    stdin: impl AsRef<[u8]>,
    limit: Duration,
) -> Option<Output> {
    run_bounded(cmd, stdin.as_ref(), limit)
}

fn run_bounded(
    mut cmd: impl std::borrow::BorrowMut<Command>,
    stdin: &[u8],
    limit: Duration,
) -> Option<Output> {
    let cmd = cmd.borrow_mut();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let mut sin = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    // The child may exit before reading everything (oversized input): ignore EPIPE.
    std::thread::spawn(move || sin.write_all(&input));
    let pid = rustix::process::Pid::from_child(&child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => Some(out.expect("wait")),
        Err(_) => {
            // Not reaped yet (the waiting thread holds it), so the pid is still the child's.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            None
        }
    }
}

/// An RSA key (PKCS#8 PEM) and its public half, made with the openssl CLI.
pub fn rsa_key(dir: &Path) -> (String, PathBuf) {
    tls::openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
        dir,
    );
    tls::openssl(
        &["pkey", "-pubout", "-in", "key.pem", "-out", "pub.pem"],
        dir,
    );
    let key = std::fs::read_to_string(dir.join("key.pem")).expect("key");
    (key, dir.join("pub.pem"))
}

/// Writes `body` to `path`, making its directory first.
pub fn write(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, body).expect("write");
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::str::from_utf8(&out.stdout).expect("utf-8 stdout");
    // Exactly one JSON document, newline-terminated, nothing else.
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "stdout: {text:?}"
    );
    serde_json::from_str(text).expect("stdout is one JSON document")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run failed the way a backend failure must: exit 1, nothing on stdout, exactly one
/// line on stderr, and none of `secrets` in it. Returns that line.
pub fn assert_one_line_failure(out: &Output, secrets: &[&str]) -> String {
    assert_one_line_exit(out, 1, secrets)
}

/// Local set-up that is wrong (config, files, credentials): exit 2 with one line, as every
/// backend's config error, and none of `secrets` in it. Returns that line.
pub fn assert_misconfigured(out: &Output, secrets: &[&str]) -> String {
    assert_one_line_exit(out, 2, secrets)
}

/// [`assert_one_line_failure`] with exit `code` (2 for bad input or config).
pub fn assert_one_line_exit(out: &Output, code: i32, secrets: &[&str]) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    for s in secrets {
        assert!(!err.contains(s), "{s:?} leaked: {err}");
    }
    err.trim_end().to_string()
}

/// `(username, password)` for `key` in the response's `auth`.
pub fn creds(resp: &serde_json::Value, key: &str) -> (String, String) {
    let a = &resp["auth"][key];
    assert!(a.is_object(), "no auth entry {key:?} in {resp}");
    (
        a["username"].as_str().unwrap_or_default().into(),
        a["password"].as_str().unwrap_or_default().into(),
    )
}

/// The `application/x-www-form-urlencoded` pairs of a query or a form body (a repeated key
/// keeps its last value).
pub fn form(text: impl AsRef<[u8]>) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(text.as_ref())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A Go duration like `54m13s`, `1h2m3s` or `4m59.5s` (a `cacheDuration`), in whole seconds;
/// panics on anything else, or a negative one.
pub fn go_secs(d: &str) -> u64 {
    let nanos =
        keyring_api::duration::parse(d).unwrap_or_else(|e| panic!("not a Go duration: {d:?}: {e}"));
    u64::try_from(nanos).unwrap_or_else(|_| panic!("a negative duration: {d:?}")) / 1_000_000_000
}

/// Seconds since the Unix epoch, now (the tests' clock for fake expiries).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A service-account token shaped as the kubelet's TokenRequest returns it (unsigned: the
/// plugin never verifies it). `nonce` makes a rotated token of the same service account:
/// another pod, issue time, token ID and signature. The signature segment carries a canary
/// (`sig-canary-<nonce>`) that must never show up anywhere but in a request to a backend.
pub fn sa_token(audience: &str, ns: &str, name: &str, uid: &str, nonce: u32) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let iat = 1_700_000_000 + u64::from(nonce);
    let claims = format!(
        r#"{{"aud":["{audience}"],"exp":{},"iat":{iat},"iss":"https://oidc.example.test/cluster","jti":"jti-{nonce}","kubernetes.io":{{"namespace":"{ns}","node":{{"name":"node-1","uid":"node-uid"}},"pod":{{"name":"pod-{nonce}","uid":"pod-uid-{nonce}"}},"serviceaccount":{{"name":"{name}","uid":"{uid}"}}}},"nbf":{iat},"sub":"system:serviceaccount:{ns}:{name}"}}"#,
        iat + 3600
    );
    format!(
        "{}.{}.sig-canary-{nonce}-Zm9vYmFy",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"test"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// A v1 request in token mode, as the kubelet writes it.
pub fn sa_request(image: &str, token: &str, annotations: &[(&str, &str)]) -> String {
    let mut req = serde_json::json!({
        "kind": "CredentialProviderRequest",
        "apiVersion": VERSIONS[0],
        "image": image,
        "serviceAccountToken": token,
    });
    if !annotations.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        req["serviceAccountAnnotations"] = serde_json::Value::Object(map);
    }
    format!("{req}\n")
}

/// [`assert_token_nowhere`] in a run's stdout and stderr (and the files under `dir`).
pub fn assert_token_not_shown(token: &str, out: &Output, dir: Option<&Path>) {
    assert_token_nowhere(
        token,
        &[("stderr", &out.stderr), ("stdout", &out.stdout)],
        dir,
    );
}

/// The token and its parts long enough to identify it (payload, signature) appear in none of
/// `texts` (stderr, stdout, each file under `dir`), and no `password` of the response (if
/// `stdout` is one) equals it.
pub fn assert_token_nowhere(token: &str, texts: &[(&str, &[u8])], dir: Option<&Path>) {
    let parts: Vec<&str> = std::iter::once(token)
        .chain(token.split('.').filter(|p| p.len() >= 16))
        .collect();
    let mut all: Vec<(String, Vec<u8>)> = texts
        .iter()
        .map(|(what, t)| (what.to_string(), t.to_vec()))
        .collect();
    if let Some(dir) = dir {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    all.push((
                        p.display().to_string(),
                        std::fs::read(&p).unwrap_or_default(),
                    ));
                }
            }
        }
    }
    for (what, bytes) in &all {
        let text = String::from_utf8_lossy(bytes);
        for p in &parts {
            assert!(
                !text.contains(p),
                "the service-account token leaked into {what}: {text}"
            );
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
            for (key, a) in v["auth"].as_object().into_iter().flatten() {
                assert_ne!(
                    a["password"].as_str(),
                    Some(token),
                    "{what}: the password for {key} is the service-account token"
                );
            }
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago, for a peer to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Makes a FIFO at `path` (coreutils' mkfifo).
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success(), "mkfifo {}", path.display());
}
