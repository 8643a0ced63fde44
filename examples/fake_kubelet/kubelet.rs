//! What the kubelet does with one provider entry: exec the plugin, decode its answer with the
//! kubelet's strictness, and build the keyring the pull tries. Shared by the fake kubelet and
//! the black-box tests (`tests/common/upstream.rs` includes this file), so both hold the same
//! rules.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyring_api::pattern::{Keyring, Target};
use serde::Deserialize;

/// The kubelet's exec limit (not configurable in the kubelet either).
pub const KUBELET_TIMEOUT: Duration = Duration::from_secs(60);

/// A `CredentialProviderConfig`, the fields the kubelet execs with.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfig {
    pub providers: Vec<ProviderConfig>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    pub name: String,
    pub match_images: Vec<String>,
    pub default_cache_duration: String,
    pub api_version: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// KEP-4412's service-account token settings; the fake kubelet sends no token, the tests
    /// read them.
    #[allow(dead_code)]
    pub token_attributes: Option<TokenAttributes>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct TokenAttributes {
    pub service_account_token_audience: String,
}

#[derive(Deserialize, Debug, Clone)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// Reads a config file (YAML or JSON).
pub fn load(config: &Path) -> Result<KubeletConfig, String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))
}

/// The response as the kubelet's strict decoder sees it.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Response {
    pub kind: String,
    pub api_version: String,
    pub cache_key_type: String,
    pub cache_duration: Option<String>,
    pub auth: Option<BTreeMap<String, AuthConfig>>,
}

/// One credential of the answer.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

/// An answer the kubelet accepted.
pub struct Answer {
    /// What the kubelet would say about it (no password).
    pub lines: Vec<String>,
    /// The credentials the pull tries, in order: (auth key, credential). The fake kubelet
    /// prints only `lines`; the tests read these.
    #[allow(dead_code)]
    pub tries: Vec<(String, AuthConfig)>,
}

/// The command the kubelet runs for `p`: `<bin_dir>/<name> <args...>`. The environment is the
/// caller's (the kubelet's own); [`exec`] adds the entry's `env` on top.
pub fn command(p: &ProviderConfig, bin_dir: &Path) -> Command {
    let mut cmd = Command::new(bin_dir.join(&p.name));
    cmd.args(&p.args);
    cmd
}

/// Runs `cmd` (from [`command`]) for the image `repo` as the kubelet does.
pub fn exec(p: &ProviderConfig, mut cmd: Command, repo: &str) -> Result<Answer, String> {
    let request = format!(
        "{{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"{}\",\"image\":\"{}\"}}\n",
        p.api_version, repo
    );
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for e in &p.env {
        cmd.env(&e.name, &e.value);
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("plugin binary executable {:?} did not start: {e}", p.name))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(request.as_bytes())
        .map_err(|e| format!("writing the request: {e}"))?;
    // Read both pipes on threads so a chatty plugin cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().ok_or("no stdout")?;
    let mut err_pipe = child.stderr.take().ok_or("no stderr")?;
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out_pipe.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err_pipe.read_to_end(&mut b);
        b
    });
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > KUBELET_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err("context deadline exceeded (60s)".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default())
        .trim()
        .to_string();
    let took = start.elapsed();
    if !status.success() {
        return Err(format!(
            "error execing credential provider plugin: {status}: {stderr}"
        ));
    }
    let resp: Response =
        serde_json::from_slice(&stdout).map_err(|e| format!("strict decoding failed: {e}"))?;
    if resp.kind != "CredentialProviderResponse" {
        return Err(format!("kind is {:?}", resp.kind));
    }
    if resp.api_version != p.api_version {
        return Err(format!(
            "apiVersion from credential plugin response did not match: {} != {}",
            resp.api_version, p.api_version
        ));
    }
    let scope = match resp.cache_key_type.as_str() {
        "Image" => repo.to_string(),
        "Registry" => repo.split('/').next().unwrap_or(repo).to_string(),
        "Global" => "<global>".to_string(),
        other => return Err(format!("invalid cacheKeyType {other:?}")),
    };
    let cache_for = match &resp.cache_duration {
        None => format!("{} (defaultCacheDuration)", p.default_cache_duration),
        Some(d) => {
            let n = keyring_api::duration::parse(d)
                .map_err(|e| format!("invalid cacheDuration: {e}"))?;
            if n == 0 {
                "not cached (0)".into()
            } else {
                d.clone()
            }
        }
    };
    let mut lines = vec![format!(
        "answered in {took:.1?}: cacheKeyType {} -> cached under {scope:?} for {cache_for}",
        resp.cache_key_type
    )];
    let mut keyring = Keyring::new();
    for (key, a) in resp.auth.unwrap_or_default() {
        if let Err(e) = keyring.add(&key, (key.clone(), a)) {
            lines.push(format!("auth key {key:?} is skipped by the kubelet: {e}"));
        }
    }
    let (found, _) = keyring.lookup(&Target::new(repo));
    if found.is_empty() {
        lines.push(
            "no credential in the answer matches: the pull goes without these credentials".into(),
        );
    }
    let tries: Vec<(String, AuthConfig)> = found.iter().map(|e| e.value.clone()).collect();
    for (i, (key, a)) in tries.iter().enumerate() {
        let pw = if a.password.is_empty() {
            "empty password"
        } else {
            "password redacted"
        };
        lines.push(format!(
            "try #{}: key {key:?}, user {:?}, {pw}",
            i + 1,
            a.username
        ));
    }
    Ok(Answer { lines, tries })
}
