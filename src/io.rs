//! Stdout and the process's surroundings, shared by the subcommands: the one writer of
//! stdout, the docker-config search directories, and opening the credential cache. Kept out of
//! `get` so that `explain` and `cli` need not import a sibling subcommand for them; it imports
//! only leaves (`args`, `cache`, `config`, `exit`).

use std::io::Write;

use keyring_docker_config::SearchPaths;

use crate::args::GlobalArgs;
use crate::cache::{self, DiskCache};
use crate::config::Config;
use crate::exit::Failure;

/// The one place that writes the protocol to stdout.
#[allow(clippy::print_stdout)]
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Internal(format!("cannot write to stdout: {e}")))
}

/// The config of this run: the plugin's file (or the defaults) with the upstream command
/// line applied. A bad file or upstream argument is bad input (exit 2).
pub fn load_config(args: &GlobalArgs) -> Result<Config, Failure> {
    let mut config =
        Config::load(args.config.as_deref()).map_err(|e| Failure::BadInput(e.to_string()))?;
    config
        .apply_upstream(&args.upstream, &|k| std::env::var(k).ok())
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    Ok(config)
}

/// The docker-config search directories of this process: `--root-dir`, the working
/// directory and `$HOME`, as the kubelet's own keyring resolves them.
pub fn search_paths(args: &GlobalArgs) -> SearchPaths {
    SearchPaths {
        root_dir: args.root_dir.clone(),
        cwd: std::env::current_dir().ok(),
        home: std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(Into::into),
    }
}

/// Opens the cache, or says why not and carries on without it.
pub fn open_cache(args: &GlobalArgs, config: &Config, paths: &SearchPaths) -> Option<DiskCache> {
    let dir = args.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let context = cache::context_hash(
        &config.context_bytes(),
        &[
            Some(paths.root_dir.as_path()),
            paths.cwd.as_deref(),
            paths.home.as_deref(),
        ],
    );
    match DiskCache::open(dir, context) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("running without the cache: {e}");
            None
        }
    }
}
