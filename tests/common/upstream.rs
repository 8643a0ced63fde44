//! Running the binary as the kubelet runs an upstream plugin: from a bin dir where it is
//! installed under the upstream name (a symlink, as the packages install it), with exactly the
//! `args` of the provider entry and the kubelet's environment plus the entry's `env`, and the
//! answer decoded by the kubelet's rules (the fake kubelet's own module, included below).
//!
//! The provider entries come from the kubelet configs that node images and installers ship,
//! copied verbatim into `tests/data/upstream-configs/` (each file names its source; `INDEX.md`
//! says how each was collected). Files the kubelet would refuse (checked with the same crate
//! `validate-config` uses) are left out: the kubelet never runs a plugin from them.
#![allow(dead_code)]

#[path = "../../examples/fake_kubelet/kubelet.rs"]
pub mod kubelet;

use super::Sandbox;
use keyring_kubelet_config::Kubelet;
use kubelet::{Answer, ProviderConfig};
pub use kubelet::{AuthConfig, Response};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of the shipped configs.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/upstream-configs")
}

/// The shipped configs (YAML and JSON), in name order.
pub fn config_files() -> Vec<PathBuf> {
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
    files
}

/// One provider entry of one shipped config.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The config's file name.
    pub file: String,
    pub provider: ProviderConfig,
}

/// Every provider entry named one of `names` (`.exe` ignored) in every shipped config the
/// newest kubelet accepts. Panics when there is none, so a renamed file cannot empty a test.
pub fn entries(names: &[&str]) -> Vec<Entry> {
    let mut out = Vec::new();
    for path in config_files() {
        let bytes = std::fs::read(&path).expect("read config");
        let options = keyring_kubelet_config::traps::Options {
            bin_dir: None,
            entry_check: None,
        };
        let report = keyring_kubelet_config::check(
            &path,
            keyring_kubelet_config::Source::File(bytes),
            &Kubelet::newest(),
            &[],
            &options,
        );
        if report.errors() > 0 {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let config = kubelet::load(&path).expect("a config the kubelet accepts parses");
        for p in config.providers {
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

    /// A request the kubelet would write for `image`, in the entry's `apiVersion`.
    pub fn request(&self, image: &str) -> String {
        super::request(&self.provider.api_version, image)
    }

    /// Whether the entry's args or env mention `s`.
    pub fn mentions(&self, s: &str) -> bool {
        self.provider.args.iter().any(|a| a.contains(s))
            || self
                .provider
                .env
                .iter()
                .any(|e| e.name.contains(s) || e.value.contains(s))
    }
}

impl Sandbox {
    /// The bin dir, with the binary installed in it as `name` (a symlink, as the packages do).
    pub fn bin_dir_with(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join("bin");
        std::fs::create_dir_all(&dir).expect("mkdir bin");
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(super::BIN, &link).expect("symlink");
        }
        dir
    }

    /// The kubelet's command for `entry`, with the kubelet's environment: the sandbox's (HOME,
    /// cwd, and our root and cache dirs by their variables, since no flag of ours may be
    /// added), then `node_env` (what the test's node provides: endpoints, credentials), then
    /// the entry's own `env`, as the kubelet merges them.
    pub fn upstream_command(&self, entry: &Entry, node_env: &[(&str, &str)]) -> Command {
        let bin = self.bin_dir_with(&entry.provider.name);
        let mut c = kubelet::command(&entry.provider, &bin);
        self.isolate(&mut c)
            .env("KUBELET_KEYRING_ROOT_DIR", &self.root)
            .env("KUBELET_KEYRING_CACHE_DIR", &self.cache);
        for (k, v) in node_env {
            c.env(k, v);
        }
        for e in &entry.provider.env {
            c.env(&e.name, &e.value);
        }
        c
    }

    /// What the kubelet gets for `image` from `entry`: the answer it accepted under its strict
    /// rules, or its error text.
    pub fn kubelet_pull(
        &self,
        entry: &Entry,
        node_env: &[(&str, &str)],
        image: &str,
    ) -> Result<Answer, String> {
        let repo = keyring_api::ImageName::parse(image)
            .map_err(|e| format!("{image}: {e}"))?
            .as_str()
            .to_string();
        kubelet::exec(
            &entry.provider,
            self.upstream_command(entry, node_env),
            &repo,
        )
    }
}

impl Sandbox {
    /// The first credential the kubelet tries for `image` from `entry` (its auth key and the
    /// credential); panics naming the entry when the kubelet refuses the answer or it has none.
    pub fn first_try(
        &self,
        entry: &Entry,
        node_env: &[(&str, &str)],
        image: &str,
    ) -> (String, AuthConfig) {
        let answer = self
            .kubelet_pull(entry, node_env, image)
            .unwrap_or_else(|e| panic!("{} {image}: {e}", entry.label()));
        let lines = answer.lines;
        answer
            .tries
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{} {image}: no credential: {lines:?}", entry.label()))
    }
}

/// A concrete host for a `matchImages` pattern: each `*` becomes `label`, `region` where the
/// pattern's label is a region (`dkr.ecr.*.`), and `:*` ports become 5000.
pub fn host_for(pattern: &str, first: &str, rest: &str) -> String {
    let mut n = 0;
    pattern
        .split('.')
        .map(|l| {
            if l.contains('*') {
                n += 1;
                l.replace('*', if n == 1 { first } else { rest })
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
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
        // The kubelet defaults a missing user name or password to ""; ours always sends both.
        for (key, a) in v["auth"].as_object().into_iter().flatten() {
            assert!(
                a.get("username").is_some() && a.get("password").is_some(),
                "{}: {key}: {a}",
                self.label()
            );
        }
        r
    }
}
