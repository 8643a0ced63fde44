//! End to end against a real registry: the credentials the binary returns from a docker
//! `config.json` must open a real, auth-enforcing registry, and nothing else may come back.
//!
//! Each test starts Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with TLS from a
//! throwaway CA and htpasswd (bcrypt) auth, pushes a tiny OCI image it builds itself with
//! `skopeo copy`, writes `$HOME/.docker/config.json` with the right entry and decoys, runs the
//! binary, and hands the returned username and password to `skopeo inspect`. A wrong password
//! and no credentials must both be refused, which proves the registry really checks.
//!
//! The tools (`docker-registry`, `skopeo`, `htpasswd`, `openssl`) come from
//! `scripts/install-test-deps.sh`. These are peer tests (`#[ignore = "needs ..."]`, see
//! `crate::common`): a missing tool fails the test, it never skips. Every child runs with a
//! cleared environment, a temp HOME, temp config files and a
//! temp credential cache (`KUBELET_KEYRING_CACHE_DIR`), so the machine's own docker,
//! containers and kubelet files and its cache play no part. Every wait is bounded, and the
//! registry is killed by a drop guard, on success and on panic alike.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{free_port, go_secs, peer, run_within, sha256_hex, write};
use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The three request/response versions the kubelet speaks.
const API_VERSIONS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];

/// The repository and tag the test pushes.
const REPO: &str = "e2e/tiny";
const TAG: &str = "v1";
const USER: &str = "e2e-user";

/// Bounds: how long the registry may take to listen, and any one child process to finish.
const REGISTRY_START: Duration = Duration::from_secs(15);
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The external tools, by absolute path (children run with a cleared environment).
struct Tools {
    registry: PathBuf,
    skopeo: PathBuf,
    htpasswd: PathBuf,
    openssl: PathBuf,
}

impl Tools {
    /// Every tool (see `crate::common::peer`).
    fn require() -> Tools {
        Tools {
            registry: peer("docker-registry", "the Debian package docker-registry"),
            skopeo: peer("skopeo", "the Debian package skopeo"),
            htpasswd: peer("htpasswd", "the Debian package apache2-utils"),
            openssl: peer("openssl", "the Debian package openssl"),
        }
    }
}

/// What a finished child left behind.
struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `cmd` to completion within [`CHILD_TIMEOUT`], feeding it `stdin`
/// ([`run_within`]). Kills it and panics on timeout.
fn run(cmd: &mut Command, stdin: &str, what: &str) -> Output {
    let out = run_within(cmd, stdin, CHILD_TIMEOUT)
        .unwrap_or_else(|| panic!("{what} did not finish within {CHILD_TIMEOUT:?}; killed"));
    Output {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cmd` and panics with its stderr unless it succeeds.
fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = run(cmd, "", what);
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        out.stderr.trim()
    );
    out
}

/// A command for a tool with a cleared environment: only PATH (for its own helpers) and HOME.
fn tool(program: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("HOME", home).current_dir(home);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn mkdir(path: PathBuf) -> PathBuf {
    fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    path
}

/// The TLS files: `ca_dir` holds only `ca.crt` (skopeo reads every `*.crt`/`*.key` there).
struct Tls {
    ca_dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A throwaway CA (P-256) and a server certificate for IP 127.0.0.1 signed by it.
fn make_tls(tools: &Tools, dir: &Path) -> Tls {
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
struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the registry on a free port and waits until it accepts connections. A port taken
/// between [`free_port`] and the registry's bind is retried on another port.
fn start_registry(tools: &Tools, dir: &Path, tls: &Tls, htpasswd: &Path) -> Registry {
    let storage = mkdir(dir.join("storage"));
    let config = dir.join("registry.yml");
    let log = dir.join("registry.log");
    for attempt in 1..=3 {
        let port = free_port();
        write(
            &config,
            &format!(
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
fn tar_one_file(name: &str, body: &[u8]) -> Vec<u8> {
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
fn build_oci_layout(dir: &Path) -> String {
    let blobs = mkdir(dir.join("blobs/sha256"));
    let blob = |bytes: &[u8]| -> (String, usize) {
        let hex = sha256_hex(bytes);
        fs::write(blobs.join(&hex), bytes).expect("write a blob");
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
    write(&dir.join("index.json"), &index.to_string());
    write(&dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#);
    manifest_digest
}

/// A registry holding `e2e/tiny:v1`, the binary's temp HOME/cwd/root-dir, and skopeo's own
/// isolated HOME. Field order matters: the registry dies before its directory is removed.
struct Fixture {
    registry: Registry,
    tools: Tools,
    tls: Tls,
    password: String,
    manifest_digest: String,
    /// skopeo's HOME, policy, empty authfile, registries.conf and registries.d.
    skopeo_home: PathBuf,
    policy: PathBuf,
    authfile: PathBuf,
    registries_conf: PathBuf,
    registries_d: PathBuf,
    /// The binary's HOME (with `.docker/config.json`), cwd and `--root-dir`, all else empty.
    home: PathBuf,
    cwd: PathBuf,
    root_dir: PathBuf,
    /// The binary's credential cache (never the machine's `/var/lib/kubelet-keyring/cache`).
    cache_dir: PathBuf,
    _dir: TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let tools = Tools::require();
        let dir = tempfile::Builder::new()
            .prefix("keyring-registry-e2e-")
            .tempdir()
            .expect("temp dir");
        let base = dir.path();
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
            tool(&tools.htpasswd, base).args(["-Bbn", USER, &password]),
            "htpasswd -Bbn",
        );
        fs::write(&htpasswd, &entry.stdout).expect("write htpasswd");

        let registry = start_registry(&tools, base, &tls, &htpasswd);

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

        let home = mkdir(base.join("home"));
        let cwd = mkdir(base.join("cwd"));
        let root_dir = mkdir(base.join("root-dir"));

        let layout = mkdir(base.join("oci"));
        let manifest_digest = build_oci_layout(&layout);

        let fixture = Fixture {
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
            home,
            cwd,
            root_dir,
            cache_dir: base.join("keyring-cache"),
            _dir: dir,
        };
        let source = format!("oci:{}:{TAG}", layout.display());
        let dest = format!("docker://{}", fixture.reference());
        run_ok(
            fixture
                .skopeo("copy")
                .args(["--preserve-digests", "--dest-tls-verify=true"])
                .arg("--dest-creds")
                .arg(format!("{USER}:{}", fixture.password))
                .arg("--dest-cert-dir")
                .arg(&fixture.tls.ca_dir)
                .arg("--dest-authfile")
                .arg(&fixture.authfile)
                .args([&source, &dest]),
            "skopeo copy (push)",
        );
        fixture.write_docker_config();
        fixture
    }

    /// `127.0.0.1:PORT`, the registry host as images name it.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.registry.port)
    }

    /// `127.0.0.1:PORT/e2e/tiny:v1`.
    fn reference(&self) -> String {
        format!("{}/{REPO}:{TAG}", self.host())
    }

    /// `$HOME/.docker/config.json`: the right entry for `127.0.0.1:PORT`, and decoys that the
    /// kubelet's rules must not match: another port, the bare host, another name for the
    /// same address, another registry.
    fn write_docker_config(&self) {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let port = self.registry.port;
        let other_port = if port == u16::MAX { port - 1 } else { port + 1 };
        let config = json!({
            "auths": {
                self.host(): {"auth": b64(&format!("{USER}:{}", self.password))},
                format!("127.0.0.1:{other_port}"): {"username": "decoy-port", "password": "wrong-1"},
                "127.0.0.1": {"auth": b64("decoy-bare-host:wrong-2")},
                format!("localhost:{port}"): {"auth": b64("decoy-localhost:wrong-3")},
                "https://registry.example.invalid/v1/": {"auth": b64("decoy-other:wrong-4")},
            }
        });
        let docker = mkdir(self.home.join(".docker"));
        let path = docker.join("config.json");
        write(&path, &config.to_string());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    }

    /// skopeo with its own HOME, runtime dir, policy, registries.conf and registries.d.
    fn skopeo(&self, subcommand: &str) -> Command {
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
    fn inspect(&self, creds: Option<&str>) -> Output {
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
        run(&mut cmd, "", "skopeo inspect")
    }

    /// Runs the binary on a request for `127.0.0.1:PORT/e2e/tiny` in `api_version`.
    fn ask(&self, api_version: &str) -> Output {
        let request = json!({
            "kind": "CredentialProviderRequest",
            "apiVersion": api_version,
            "image": format!("{}/{REPO}", self.host()),
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubelet-keyring"));
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("KUBELET_KEYRING_CACHE_DIR", &self.cache_dir)
            .current_dir(&self.cwd)
            .arg("--root-dir")
            .arg(&self.root_dir);
        run(&mut cmd, &request.to_string(), "kubelet-keyring")
    }

    /// Checks a response in `api_version` and returns its one (username, password). A `fresh`
    /// answer lives exactly the docker-config lifetime; one served from the cache, what is
    /// left of it.
    fn expect_answer(&self, api_version: &str, out: &Output, fresh: bool) -> (String, String) {
        assert!(
            out.status.success(),
            "kubelet-keyring ({api_version}) exited {}: {}",
            out.status,
            out.stderr.trim()
        );
        assert!(
            !out.stderr.contains(&self.password),
            "the password reached stderr"
        );
        let docs = serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter::<Value>()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|e| {
                panic!(
                    "stdout is not JSON ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
        assert_eq!(docs.len(), 1, "stdout must hold exactly one JSON document");
        let response = &docs[0];
        assert_eq!(response["kind"], "CredentialProviderResponse");
        assert_eq!(
            response["apiVersion"], api_version,
            "answered in another version"
        );
        assert_eq!(response["cacheKeyType"], "Registry");
        let duration = response["cacheDuration"].as_str().unwrap_or_default();
        if fresh {
            assert_eq!(duration, "5m0s");
        } else {
            assert!(
                (1..=300).contains(&go_secs(duration)),
                "cacheDuration {duration:?} is not within (0, 5m0s]"
            );
        }
        let auth = response["auth"].as_object().expect("auth is an object");
        let keys: Vec<&String> = auth.keys().collect();
        assert_eq!(
            keys,
            [&self.host()],
            "auth must hold exactly the matching key"
        );
        let entry = &auth[&self.host()];
        let username = entry["username"].as_str().expect("username is a string");
        let password = entry["password"].as_str().expect("password is a string");
        (username.to_owned(), password.to_owned())
    }
}

/// A refusal must come from the registry's auth, not from TLS or a missing image.
fn assert_refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "skopeo inspect {what} succeeded");
    let err = out.stderr.to_ascii_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "skopeo inspect {what} failed for another reason than auth: {}",
        out.stderr.trim()
    );
}

#[test]
#[ignore = "needs docker-registry and skopeo"]
fn docker_config_credentials_open_the_real_registry() {
    let fx = Fixture::start();
    let out = fx.ask(API_VERSIONS[0]);
    let (username, password) = fx.expect_answer(API_VERSIONS[0], &out, true);
    assert_eq!(username, USER);
    assert_eq!(password, fx.password);

    let ok = fx.inspect(Some(&format!("{username}:{password}")));
    assert!(
        ok.status.success(),
        "skopeo inspect with the returned credentials failed: {}",
        ok.stderr.trim()
    );
    let inspected: Value = serde_json::from_slice(&ok.stdout).expect("skopeo inspect prints JSON");
    assert_eq!(inspected["Name"], format!("{}/{REPO}", fx.host()));
    assert_eq!(
        inspected["Digest"], fx.manifest_digest,
        "the registry serves another manifest than the one pushed"
    );

    assert_refused(
        &fx.inspect(Some(&format!("{username}:{password}-wrong"))),
        "with a wrong password",
    );
    assert_refused(&fx.inspect(None), "without credentials");
}

#[test]
#[ignore = "needs docker-registry and skopeo"]
fn every_api_version_is_answered_in_kind_with_working_credentials() {
    let fx = Fixture::start();
    // The first answer is fresh; the others may come from the cache, which must still answer
    // in the version asked.
    for (i, api_version) in API_VERSIONS.into_iter().enumerate() {
        let out = fx.ask(api_version);
        let (username, password) = fx.expect_answer(api_version, &out, i == 0);
        let ok = fx.inspect(Some(&format!("{username}:{password}")));
        assert!(
            ok.status.success(),
            "skopeo inspect with the {api_version} answer failed: {}",
            ok.stderr.trim()
        );
    }
}
