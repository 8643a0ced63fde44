//! Shared helpers for the black-box tests: a sandbox of temp directories (HOME, the kubelet
//! root dir, the working directory, the cache) so the machine's own files never play a part,
//! a runner for the built binary, and the one switch for tests that need real peers.
//!
//! # Peer tests
//!
//! Tests that drive a real tool (moto_server, docker-registry, skopeo, the Go ECR helper, the
//! package tools) run only with [`PEER_SWITCH`]`=1`, which `scripts/test.sh` (and so CI)
//! always sets. Each such test asks [`peer`] for every tool it needs before it does anything:
//!
//! * switch off: `None` and one line on stderr naming the switch; the test returns at once
//!   (`let Some(x) = peer(..) else { return };`), so plain `cargo test --workspace` passes on
//!   a machine with only the Rust toolchain;
//! * switch on: the tool's path, or a panic naming the tool and its package. A missing peer
//!   is a failure there, never a skip.
#![allow(dead_code)]

pub mod azure;
pub mod http;
pub mod issuer;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod tls;
pub mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// The environment variable that turns the peer tests on (`1`).
pub const PEER_SWITCH: &str = "KEYRING_PEER_TESTS";

/// Whether the peer tests are on.
pub fn peers_on() -> bool {
    std::env::var(PEER_SWITCH).as_deref() == Ok("1")
}

/// `tool` on `PATH` (an executable file), for a test that needs it; `package` says where it
/// comes from. See the module docs: `None` when the switch is off (after one line on
/// stderr), a panic when it is on and the tool is missing.
pub fn peer(tool: &str, package: &str) -> Option<PathBuf> {
    if !peers_on() {
        eprintln!("needs {tool}: not run, {PEER_SWITCH} is not 1 (bash scripts/test.sh sets it)");
        return None;
    }
    Some(on_path(tool).unwrap_or_else(|| {
        panic!(
            "{PEER_SWITCH}=1 and {tool} is not on PATH: install {package} \
             (bash scripts/install-test-deps.sh)"
        )
    }))
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
        c.current_dir(&self.cwd)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("--root-dir")
            .arg(&self.root)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs the binary with `stdin` and returns its output.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_with(self.command(args), stdin.as_bytes())
    }
}

/// Spawns `cmd`, writes `stdin`, waits.
pub fn run_with(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd.spawn().expect("spawn kubelet-keyring");
    {
        let mut sin = child.stdin.take().expect("stdin");
        // The binary may exit before reading everything (oversized input): ignore EPIPE.
        let _ = sin.write_all(stdin);
    }
    child.wait_with_output().expect("wait")
}

/// An RSA key (PKCS#8 PEM) and its public half, made with the openssl CLI.
pub fn rsa_key(dir: &Path) -> (String, PathBuf) {
    let key = dir.join("key.pem");
    let public = dir.join("pub.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("the openssl CLI is required (scripts/install-test-deps.sh installs it)");
    assert!(
        ok.status.success(),
        "openssl genpkey: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .output()
        .expect("openssl pkey");
    assert!(
        ok.status.success(),
        "openssl pkey: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    (std::fs::read_to_string(&key).expect("key"), public)
}

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

/// `application/x-www-form-urlencoded` pairs (a query or a form body); panics on a bad
/// escape or non-UTF-8, which would be a bug of the client that sent it.
pub fn form_pairs(s: &str) -> std::collections::BTreeMap<String, String> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("hex"));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).expect("utf-8")
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A Go duration like `54m13s` or `1h2m3s`, in seconds.
pub fn go_secs(d: &str) -> u64 {
    let (mut total, mut n) = (0, 0);
    for c in d.chars() {
        match c {
            '0'..='9' => n = n * 10 + u64::from(c.to_digit(10).unwrap_or(0)),
            'h' => (total, n) = (total + n * 3600, 0),
            'm' => (total, n) = (total + n * 60, 0),
            's' => (total, n) = (total + n, 0),
            _ => panic!("not a Go duration: {d:?}"),
        }
    }
    total
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

/// A tool the test needs, from PATH; fails loudly when it is not installed.
pub fn require(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{tool} is not on PATH: install {package} (scripts/install-test-deps.sh)")
        })
}

/// A port on 127.0.0.1 that was free a moment ago, for a peer to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Runs `cmd` with `stdin`, killing it after `limit`: `None` when it had to be killed (it
/// hung). For tests of what must never block (FIFOs, devices, huge files).
pub fn run_within(mut cmd: Command, stdin: &[u8], limit: std::time::Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("output"))
}

/// Makes a FIFO at `path` (coreutils' mkfifo).
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success(), "mkfifo {}", path.display());
}
