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

mod kubelet;

use std::path::Path;
use std::process::ExitCode;

use keyring_api::pattern::urls_match;
use keyring_api::ImageName;

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
    let config = kubelet::load(config)?;
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
        match kubelet::exec(p, kubelet::command(p, bin_dir), repo.as_str()) {
            Ok(answer) => answer.lines.iter().for_each(|l| say(&format!("  {l}"))),
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

#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}
