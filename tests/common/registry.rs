//! A real registry for end-to-end tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 with TLS from a throwaway CA and htpasswd (bcrypt) auth, holding a tiny OCI image
//! pushed with `skopeo copy`, and `skopeo inspect` to check that a user and password really
//! open it ([`Served`]). Used by tests/registry_e2e.rs (docker config files) and
//! tests/identity/vault_secret.rs (Vault, a namespace Secret).
//!
//! The tools come from `scripts/install-test-deps.sh`. Every child runs with a cleared
//! environment, a temp HOME and temp config files, so the machine's own docker, containers
//! and kubelet files play no part; every wait is bounded, and the registry is killed by a
//! drop guard, on success and on panic alike.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::peer;
use serde_json::json;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

/// The repository and tag the test pushes.
pub const REPO: &str = "e2e/tiny";
pub const TAG: &str = "v1";
pub const USER: &str = "e2e-user";

/// Bounds: how long the registry may take to listen, and any one child process to finish.
pub const REGISTRY_START: Duration = Duration::from_secs(15);
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The external tools, by absolute path (children run with a cleared environment).
pub struct Tools {
    pub registry: PathBuf,
    pub skopeo: PathBuf,
    pub htpasswd: PathBuf,
    pub openssl: PathBuf,
}

impl Tools {
    /// Every tool, when the peer tests are on (see `crate::common::peer`); `None` when they are off.
    /// Every tool, failing when one is missing: for tests marked `#[ignore = "needs ..."]`,
    /// which run only when asked for.
    pub fn required() -> Tools {
        Tools {
            registry: peer("docker-registry", "the Debian package docker-registry"),
            skopeo: peer("skopeo", "the Debian package skopeo"),
            htpasswd: peer("htpasswd", "the Debian package apache2-utils"),
            openssl: peer("openssl", "the Debian package openssl"),
        }
    }
}

/// What a finished child left behind.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `cmd` to completion within [`CHILD_TIMEOUT`], feeding it `stdin`, reading both pipes
/// on their own threads so a chatty child cannot block. Kills it and panics on timeout.
pub fn run(cmd: &mut Command, stdin: &[u8], what: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut pipe_in = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_vec();
    let writer = thread::spawn(move || {
        // A child that exits without reading gives EPIPE: its exit status tells the story.
        let _ = pipe_in.write_all(&input);
    });
    let mut pipe_out = child.stdout.take().expect("stdout is piped");
    let mut pipe_err = child.stderr.take().expect("stderr is piped");
    let out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe_out.read_to_end(&mut buf);
        buf
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe_err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {CHILD_TIMEOUT:?}; killed");
            }
            Err(e) => panic!("cannot wait for {what}: {e}"),
        }
    };
    let _ = writer.join();
    let stdout = out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// Runs `cmd` and panics with its stderr unless it succeeds.
pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = run(cmd, b"", what);
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        out.stderr.trim()
    );
    out
}

/// A command for a tool with a cleared environment: only PATH (for its own helpers) and HOME.
pub fn tool(program: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("HOME", home).current_dir(home);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// A port on 127.0.0.1 that was free a moment ago (the registry start retries on a clash).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn mkdir(path: PathBuf) -> PathBuf {
    fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    path
}

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The TLS files: `ca_dir` holds only `ca.crt` (skopeo reads every `*.crt`/`*.key` there).
pub struct Tls {
    pub ca_dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A throwaway CA (P-256) and a server certificate for IP 127.0.0.1 signed by it.
pub fn make_tls(tools: &Tools, dir: &Path) -> Tls {
    let cnf = dir.join("openssl.cnf");
    write(
        &cnf,
        "[req]\n\
         distinguished_name = dn\n\
         prompt = no\n\
         [dn]\n\
         CN = unused\n\
         [ca_ext]\n\
         basicConstraints = critical, CA:TRUE\n\
         keyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n\
         [server_ext]\n\
         basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = IP:127.0.0.1\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
    );
    let ca_key = dir.join("ca.key");
    let ca_crt = dir.join("ca.crt");
    let csr = dir.join("server.csr");
    let tls = Tls {
        ca_dir: mkdir(dir.join("ca")),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    run_ok(
        tool(&tools.openssl, dir)
            .args(["req", "-x509", "-new", "-nodes", "-days", "2"])
            .args(ec)
            .args([
                "-subj",
                "/CN=kubelet-keyring e2e CA",
                "-extensions",
                "ca_ext",
            ])
            .arg("-config")
            .arg(&cnf)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_crt),
        "openssl req (CA)",
    );
    run_ok(
        tool(&tools.openssl, dir)
            .args(["req", "-new", "-nodes"])
            .args(ec)
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-config")
            .arg(&cnf)
            .arg("-keyout")
            .arg(&tls.key)
            .arg("-out")
            .arg(&csr),
        "openssl req (server)",
    );
    run_ok(
        tool(&tools.openssl, dir)
            .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
            .args(["-extensions", "server_ext"])
            .arg("-extfile")
            .arg(&cnf)
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_crt)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-out")
            .arg(&tls.cert),
        "openssl x509 (sign server)",
    );
    fs::copy(&ca_crt, tls.ca_dir.join("ca.crt")).expect("copy ca.crt");
    tls
}

/// A running `docker-registry`; dropping it kills the process and reaps it.
pub struct Registry {
    pub child: Child,
    pub port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the registry on a free port and waits until it accepts connections. A port taken
/// between [`free_port`] and the registry's bind is retried on another port.
pub fn start_registry(tools: &Tools, dir: &Path, tls: &Tls, htpasswd: &Path) -> Registry {
    let storage = mkdir(dir.join("storage"));
    let config = dir.join("registry.yml");
    let log = dir.join("registry.log");
    for attempt in 1..=3 {
        let port = free_port();
        write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: e2e-{port}\n  \
                 tls:\n    certificate: {cert}\n    key: {key}\n\
                 auth:\n  htpasswd:\n    realm: kubelet-keyring-e2e\n    path: {htpasswd}\n",
                storage = storage.display(),
                cert = tls.cert.display(),
                key = tls.key.display(),
                htpasswd = htpasswd.display(),
            ),
        );
        let log_file = fs::File::create(&log).expect("create registry.log");
        let child = tool(&tools.registry, dir)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup registry.log"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.registry.display()));
        let mut registry = Registry { child, port };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + REGISTRY_START;
        loop {
            if let Ok(Some(status)) = registry.child.try_wait() {
                let text = fs::read_to_string(&log).unwrap_or_default();
                if attempt < 3 && text.contains("address already in use") {
                    break; // someone took the port: next attempt
                }
                panic!("docker-registry exited ({status}) before listening:\n{text}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return registry;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry not listening on {addr} after {REGISTRY_START:?}:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
    unreachable!("the third attempt returns or panics")
}

/// One regular file in a ustar archive, with fixed metadata so the digest is reproducible.
pub fn tar_one_file(name: &str, body: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let mut put = |at: usize, field: &[u8]| h[at..at + field.len()].copy_from_slice(field);
    put(0, name.as_bytes());
    put(100, b"0000644\0"); // mode
    put(108, b"0000000\0"); // uid
    put(116, b"0000000\0"); // gid
    put(124, format!("{:011o}\0", body.len()).as_bytes()); // size
    put(136, b"00000000000\0"); // mtime
    put(148, b"        "); // checksum, counted as spaces
    put(156, b"0"); // regular file
    put(257, b"ustar\0");
    put(263, b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(body);
    out.resize(out.len().next_multiple_of(512) + 1024, 0); // padding + end-of-archive
    out
}

/// Writes an OCI image layout with one tag, one config and one uncompressed layer; returns
/// the manifest digest.
pub fn build_oci_layout(dir: &Path) -> String {
    let blobs = mkdir(dir.join("blobs/sha256"));
    let blob = |bytes: &[u8]| -> (String, usize) {
        let hex = sha256_hex(bytes);
        write(&blobs.join(&hex), bytes);
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer_digest, layer_size) = blob(&tar_one_file("hello.txt", b"kubelet-keyring e2e\n"));
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        // Uncompressed, so the diff ID is the layer digest.
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = blob(config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    });
    let (manifest_digest, manifest_size) = blob(manifest.to_string().as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": TAG},
        }],
    });
    write(&dir.join("index.json"), index.to_string());
    write(&dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#);
    manifest_digest
}

/// A registry holding `e2e/tiny:v1` for [`USER`] with a random password, and skopeo's own
/// isolated HOME. Field order matters: the registry dies before its directory is removed.
pub struct Served {
    pub registry: Registry,
    pub tools: Tools,
    pub tls: Tls,
    pub password: String,
    pub manifest_digest: String,
    /// skopeo's HOME, policy, empty authfile, registries.conf and registries.d.
    pub skopeo_home: PathBuf,
    pub policy: PathBuf,
    pub authfile: PathBuf,
    pub registries_conf: PathBuf,
    pub registries_d: PathBuf,
    pub dir: TempDir,
}

impl Served {
    /// Starts the registry and pushes the image, with `tools`.
    pub fn start(tools: Tools) -> Served {
        let dir = tempfile::Builder::new()
            .prefix("keyring-registry-e2e-")
            .tempdir()
            .expect("temp dir");
        let base = dir.path().to_path_buf();
        let tls = make_tls(&tools, &mkdir(base.join("tls")));

        // A colon in the password: the docker `auth` field and skopeo's --creds both split
        // user from password at the first colon only.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let password = format!("pw:{}-{nanos:x}", std::process::id());
        let htpasswd = base.join("htpasswd");
        let entry = run_ok(
            tool(&tools.htpasswd, &base).args(["-Bbn", USER, &password]),
            "htpasswd -Bbn",
        );
        write(&htpasswd, &entry.stdout);

        let registry = start_registry(&tools, &base, &tls, &htpasswd);

        let skopeo_home = mkdir(base.join("skopeo-home"));
        let policy = base.join("policy.json");
        write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        );
        let authfile = base.join("skopeo-auth.json");
        write(&authfile, r#"{"auths":{}}"#);
        let registries_conf = base.join("registries.conf");
        write(&registries_conf, "");
        let registries_d = mkdir(base.join("registries.d"));
        let layout = mkdir(base.join("oci"));
        let manifest_digest = build_oci_layout(&layout);

        let served = Served {
            registry,
            tools,
            tls,
            password,
            manifest_digest,
            skopeo_home,
            policy,
            authfile,
            registries_conf,
            registries_d,
            dir,
        };
        let source = format!("oci:{}:{TAG}", layout.display());
        let dest = format!("docker://{}", served.reference());
        run_ok(
            served
                .skopeo("copy")
                .args(["--preserve-digests", "--dest-tls-verify=true"])
                .arg("--dest-creds")
                .arg(format!("{USER}:{}", served.password))
                .arg("--dest-cert-dir")
                .arg(&served.tls.ca_dir)
                .arg("--dest-authfile")
                .arg(&served.authfile)
                .args([&source, &dest]),
            "skopeo copy (push)",
        );
        served
    }

    /// The temp directory everything lives in.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// `127.0.0.1:PORT`, the registry host as images name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.registry.port)
    }

    /// `127.0.0.1:PORT/e2e/tiny:v1`.
    pub fn reference(&self) -> String {
        format!("{}/{REPO}:{TAG}", self.host())
    }

    /// skopeo with its own HOME, runtime dir, policy, registries.conf and registries.d.
    pub fn skopeo(&self, subcommand: &str) -> Command {
        let mut cmd = tool(&self.tools.skopeo, &self.skopeo_home);
        cmd.env("XDG_RUNTIME_DIR", &self.skopeo_home)
            .env("XDG_CONFIG_HOME", self.skopeo_home.join(".config"))
            .env("REGISTRY_AUTH_FILE", &self.authfile)
            .env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
            .arg("--policy")
            .arg(&self.policy)
            .arg("--registries.d")
            .arg(&self.registries_d)
            .arg("--tmpdir")
            .arg(&self.skopeo_home)
            .args(["--command-timeout", "45s", subcommand]);
        cmd
    }

    /// `skopeo inspect` of the pushed tag with `creds` (`None`: anonymous).
    pub fn inspect(&self, creds: Option<&str>) -> Output {
        let mut cmd = self.skopeo("inspect");
        cmd.arg("--tls-verify=true")
            .arg("--cert-dir")
            .arg(&self.tls.ca_dir)
            .arg("--authfile")
            .arg(&self.authfile);
        if let Some(creds) = creds {
            cmd.arg("--creds").arg(creds);
        }
        cmd.arg(format!("docker://{}", self.reference()));
        run(&mut cmd, b"", "skopeo inspect")
    }

    /// `skopeo inspect` with `user:password` succeeds and names the pushed manifest; a wrong
    /// password and no credentials are refused (which proves the registry really checks).
    pub fn assert_opens(&self, user: &str, password: &str) {
        let ok = self.inspect(Some(&format!("{user}:{password}")));
        assert!(
            ok.status.success(),
            "skopeo inspect with the returned credentials failed: {}",
            ok.stderr.trim()
        );
        let inspected: serde_json::Value =
            serde_json::from_slice(&ok.stdout).expect("skopeo inspect prints JSON");
        assert_eq!(inspected["Name"], format!("{}/{REPO}", self.host()));
        assert_eq!(
            inspected["Digest"], self.manifest_digest,
            "the registry serves another manifest than the one pushed"
        );
        assert_refused(
            &self.inspect(Some(&format!("{user}:{password}-wrong"))),
            "with a wrong password",
        );
        assert_refused(&self.inspect(None), "without credentials");
    }
}

/// A refusal must come from the registry's auth, not from TLS or a missing image.
pub fn assert_refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "skopeo inspect {what} succeeded");
    let err = out.stderr.to_ascii_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "skopeo inspect {what} failed for another reason than auth: {}",
        out.stderr.trim()
    );
}
