//! Running the binary as the kubelet runs an upstream plugin: from a bin dir where it is
//! installed under the upstream name (a symlink, as the packages install it), with exactly the
//! `args` of the provider entry and the kubelet's environment plus the entry's `env`.
//!
//! The provider entries come from the kubelet configs that node images and installers ship,
//! copied verbatim into `tests/data/upstream-configs/` (each file names its source; `INDEX.md`
//! says how each was collected), decoded with the same checker `validate-config` uses.
#![allow(dead_code)]

use super::Sandbox;
use keyring_kubelet_config::decode::{decode, Provider};
use keyring_kubelet_config::kubelet::Kubelet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The directory of the shipped configs.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-configs")
}

/// One provider entry of one shipped config.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The config's file name.
    pub file: String,
    pub provider: Provider,
}

/// Every provider entry named `name` (or `name.exe`) in every shipped config the newest
/// kubelet accepts. Panics when there is none, so a renamed file cannot empty a test.
pub fn entries(names: &[&str]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(configs_dir())
        .expect("tests/data/upstream-configs")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read config");
        let decoded = decode(&text, &Kubelet::newest());
        if decoded.fatal || !decoded.errors.is_empty() {
            continue; // the kubelet refuses the file: it never runs a plugin from it
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for p in decoded.providers {
            let bare = p.name.strip_suffix(".exe").unwrap_or(&p.name);
            if names.contains(&bare) {
                out.push(Entry {
                    file: file.clone(),
                    provider: p,
                });
            }
        }
    }
    assert!(!out.is_empty(), "no shipped config names {names:?}");
    out
}

impl Entry {
    /// A label for assertion messages.
    pub fn label(&self) -> String {
        format!("{} ({})", self.file, self.provider.name)
    }

    /// The entry's `env` as pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.provider
            .env
            .iter()
            .map(|e| (e.name.clone(), e.value.expose().clone()))
            .collect()
    }

    /// A request the kubelet would write for `image`, in the entry's `apiVersion`.
    pub fn request(&self, image: &str) -> String {
        super::request(&self.provider.api_version, image)
    }
}

impl Sandbox {
    /// The bin dir with the binary installed as `name` (a symlink), as the packages do.
    pub fn install_as(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join("bin");
        std::fs::create_dir_all(&dir).expect("mkdir bin");
        let link = dir.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(super::BIN, &link).expect("symlink");
        }
        link
    }

    /// The command the kubelet runs for `entry`: the binary under the entry's name with the
    /// entry's exact args, the sandbox's environment (HOME, cwd, and our root and cache dirs by
    /// their variables, since no flag of ours may be added), then `base_env` (what the test's
    /// node provides: endpoints, credentials), then the entry's `env`, as the kubelet applies it.
    pub fn upstream_command(&self, entry: &Entry, base_env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(self.install_as(&entry.provider.name));
        c.current_dir(&self.cwd)
            .env_clear()
            .env("HOME", &self.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("KUBELET_KEYRING_ROOT_DIR", &self.root)
            .env("KUBELET_KEYRING_CACHE_DIR", &self.cache)
            .args(&entry.provider.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in base_env {
            c.env(k, v);
        }
        for (k, v) in entry.env() {
            c.env(k, v);
        }
        c
    }
}

/// A `CredentialProviderResponse` as the kubelet decodes it: strictly (an unknown field is
/// an error), `kind` and `apiVersion` checked against the entry.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Response {
    pub kind: String,
    pub api_version: String,
    pub cache_key_type: String,
    pub cache_duration: Option<String>,
    pub auth: Option<std::collections::BTreeMap<String, AuthConfig>>,
}

/// One `auth` entry, strictly.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
}

impl Entry {
    /// The run succeeded and stdout is exactly one response the kubelet accepts for this
    /// entry (strict decoding, its `apiVersion`, a known `cacheKeyType`).
    pub fn response(&self, out: &std::process::Output) -> Response {
        let v = super::stdout_json(out);
        let r: Response = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{}: strict decoding failed: {e}: {v}", self.label()));
        assert_eq!(r.kind, "CredentialProviderResponse", "{}", self.label());
        assert_eq!(r.api_version, self.provider.api_version, "{}", self.label());
        assert!(
            matches!(r.cache_key_type.as_str(), "Image" | "Registry" | "Global"),
            "{}: {v}",
            self.label()
        );
        r
    }
}
