//! End to end against a real registry: the credentials the binary returns from a docker
//! `config.json` must open a real, auth-enforcing registry, and nothing else may come back.
//!
//! Each test starts Debian's `docker-registry` with TLS and htpasswd auth holding a tiny
//! image (`crate::common::registry::Served`), writes `$HOME/.docker/config.json` with the
//! right entry and decoys, runs the binary, and hands the returned username and password to
//! `skopeo inspect`. A wrong password and no credentials must both be refused, which proves
//! the registry really checks.
//!
//! These are peer tests (`#[ignore = "needs ..."]`, see `crate::common`): a missing tool
//! fails the test, it never skips. The binary runs with a cleared
//! environment, a temp HOME, cwd and root dir and a temp credential cache
//! (`KUBELET_KEYRING_CACHE_DIR`), so the machine's own files and cache play no part.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use crate::common::registry::{mkdir, run, write, Output, Served, Tools, REPO, USER};
use base64::Engine as _;
use serde_json::{json, Value};

/// The three request/response versions the kubelet speaks.
const API_VERSIONS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];

/// A served registry and the binary's HOME (with `.docker/config.json`), cwd, `--root-dir`
/// and cache, all else empty. The registry (first field) dies before its directory goes.
struct Fixture {
    served: Served,
    home: PathBuf,
    cwd: PathBuf,
    root_dir: PathBuf,
    /// The binary's credential cache (never the machine's `/var/lib/kubelet-keyring/cache`).
    cache_dir: PathBuf,
}

impl Fixture {
    fn start() -> Fixture {
        let served = Served::start(Tools::required());
        let base = served.base().to_path_buf();
        let fixture = Fixture {
            home: mkdir(base.join("home")),
            cwd: mkdir(base.join("cwd")),
            root_dir: mkdir(base.join("root-dir")),
            cache_dir: base.join("keyring-cache"),
            served,
        };
        fixture.write_docker_config();
        fixture
    }

    fn host(&self) -> String {
        self.served.host()
    }

    /// `$HOME/.docker/config.json`: the right entry for `127.0.0.1:PORT`, and decoys that the
    /// kubelet's rules must not match: another port, the bare host, another name for the
    /// same address, another registry.
    fn write_docker_config(&self) {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let port = self.served.registry.port;
        let other_port = if port == u16::MAX { port - 1 } else { port + 1 };
        let config = json!({
            "auths": {
                self.host(): {"auth": b64(&format!("{USER}:{}", self.served.password))},
                format!("127.0.0.1:{other_port}"): {"username": "decoy-port", "password": "wrong-1"},
                "127.0.0.1": {"auth": b64("decoy-bare-host:wrong-2")},
                format!("localhost:{port}"): {"auth": b64("decoy-localhost:wrong-3")},
                "https://registry.example.invalid/v1/": {"auth": b64("decoy-other:wrong-4")},
            }
        });
        let docker = mkdir(self.home.join(".docker"));
        let path = docker.join("config.json");
        write(&path, config.to_string());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
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
        run(&mut cmd, request.to_string().as_bytes(), "kubelet-keyring")
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
            !out.stderr.contains(&self.served.password),
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
            let secs = go_duration_secs(duration);
            assert!(
                secs.is_some_and(|s| s > 0.0 && s <= 300.0),
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

/// Seconds in a Go duration of minutes and seconds (`5m0s`, `4m59s`, `59.5s`).
fn go_duration_secs(text: &str) -> Option<f64> {
    let rest = text.strip_suffix('s')?;
    let (minutes, seconds) = rest.split_once('m').unwrap_or(("0", rest));
    Some(minutes.parse::<u32>().ok().map(f64::from)? * 60.0 + seconds.parse::<f64>().ok()?)
}

#[test]
#[ignore = "needs docker-registry, skopeo, htpasswd, openssl"]
fn docker_config_credentials_open_the_real_registry() {
    let fx = Fixture::start();
    let out = fx.ask(API_VERSIONS[0]);
    let (username, password) = fx.expect_answer(API_VERSIONS[0], &out, true);
    assert_eq!(username, USER);

    assert_eq!(password, fx.served.password);
    fx.served.assert_opens(&username, &password);
}

#[test]
#[ignore = "needs docker-registry, skopeo, htpasswd, openssl"]
fn every_api_version_is_answered_in_kind_with_working_credentials() {
    let fx = Fixture::start();
    // The first answer is fresh; the others may come from the cache, which must still answer
    // in the version asked.
    for (i, api_version) in API_VERSIONS.into_iter().enumerate() {
        let out = fx.ask(api_version);
        let (username, password) = fx.expect_answer(api_version, &out, i == 0);
        let ok = fx.served.inspect(Some(&format!("{username}:{password}")));
        assert!(
            ok.status.success(),
            "skopeo inspect with the {api_version} answer failed: {}",
            ok.stderr.trim()
        );
    }
}
