//! A fake kubelet: drives a credential provider exactly as the kubelet does, for trying
//! kubelet-keyring (or any plugin) by hand before touching a node.
//!
//! ```sh
//! cargo build && cargo run --example fake_kubelet -- \
//!     config/credential-provider-config.yaml target/debug nginx:1.25
//! ```
//!
//! It reads a kubelet `CredentialProviderConfig`, normalizes the image as the kubelet does,
//! picks the providers whose `matchImages` match (in config order), execs
//! `<bin-dir>/<name> <args...>` with the config's `env` appended to its own environment and the
//! request on stdin, with the kubelet's 60-second limit, and decodes the response with the
//! kubelet's strictness: unknown fields, a different `apiVersion`, an unknown `cacheKeyType` or a
//! malformed `cacheDuration` fail it. Then it builds the kubelet's keyring from `auth` and
//! prints the credentials in the order the kubelet would try them (passwords redacted), the
//! cache key it would store the answer under, and for how long.
//!
//! Exit codes: 0 when every matching provider answered validly, 1 otherwise, 2 on bad usage.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use keyring_api::pattern::{urls_match, Keyring, Target};
use keyring_api::ImageName;
use serde::Deserialize;

/// The kubelet's exec limit (not configurable in the kubelet either).
const KUBELET_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubeletConfig {
    providers: Vec<ProviderConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderConfig {
    name: String,
    match_images: Vec<String>,
    default_cache_duration: String,
    api_version: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
}

#[derive(Deserialize)]
struct EnvVar {
    name: String,
    value: String,
}

/// The response as the kubelet's strict decoder sees it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Response {
    kind: String,
    api_version: String,
    cache_key_type: String,
    cache_duration: Option<String>,
    auth: Option<BTreeMap<String, AuthConfig>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, bin_dir, image] = args.as_slice() else {
        eprintln!("usage: fake_kubelet CREDENTIAL_PROVIDER_CONFIG BIN_DIR IMAGE");
        return ExitCode::from(2);
    };
    match run(Path::new(config), Path::new(bin_dir), image) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fake_kubelet: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(config: &Path, bin_dir: &Path, image: &str) -> Result<bool, String> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let config: KubeletConfig =
        serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    let repo =
        ImageName::parse(image).map_err(|e| format!("couldn't parse image name {image:?}: {e}"))?;
    say(&format!("image {image:?} -> repository {repo}"));
    let mut all_ok = true;
    let mut matched_any = false;
    for p in &config.providers {
        let Some(pattern) = p.match_images.iter().find(|m| urls_match(m, repo.as_str())) else {
            continue;
        };
        matched_any = true;
        say(&format!(
            "provider {:?}: matchImages {pattern:?} matches; exec {}/{}",
            p.name,
            bin_dir.display(),
            p.name
        ));
        match exec(p, bin_dir, repo.as_str()) {
            Ok(lines) => lines.iter().for_each(|l| say(&format!("  {l}"))),
            Err(e) => {
                all_ok = false;
                say(&format!("  FAILED: {e}"));
            }
        }
    }
    if !matched_any {
        say("no provider's matchImages match: the kubelet pulls without plugin credentials");
    }
    Ok(all_ok)
}

fn exec(p: &ProviderConfig, bin_dir: &Path, repo: &str) -> Result<Vec<String>, String> {
    let request = format!(
        "{{\"kind\":\"CredentialProviderRequest\",\"apiVersion\":\"{}\",\"image\":\"{}\"}}\n",
        p.api_version, repo
    );
    let mut cmd = Command::new(bin_dir.join(&p.name));
    cmd.args(&p.args)
        .stdin(Stdio::piped())
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
    for (i, e) in found.iter().enumerate() {
        let (key, a) = &e.value;
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
    Ok(lines)
}

#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}
