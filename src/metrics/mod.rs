//! Prometheus metrics in node_exporter's textfile-collector format, per backend and registry.
//!
//! Every invocation is its own short process, so counters live on disk, in the directory the
//! operator names (`--metrics-dir`, `KUBELET_KEYRING_METRICS_DIR`; off when unset), which is
//! checked as the cache directory is (ours, not a symlink, not writable by others:
//! [`crate::cache::dir`]) wherever it is used, and whose files are opened with
//! [`keyring_api::file::open_in_own_dir`] (no symlink, FIFO or hard link followed).
//!
//! * [`journal`]: each answer appends one fixed-size record (what happened, when, backend,
//!   registry) to `kubelet-keyring.journal`: the directory check, one `open(O_APPEND)`, one
//!   `fstat`, one `write`, one `close`. That is all a cache hit pays, and only when metrics
//!   are on; with metrics off it pays nothing but the flag check. Appends of one small
//!   `write` to a local file do not interleave, so concurrent invocations need no lock.
//! * [`state`]: the fold ([`fold`]: the `metrics` command, run by a systemd timer, and every
//!   fetch, which already waits on the network) adds the records not yet read to the
//!   counters in `kubelet-keyring.state.json` and writes the textfile; it reads journals in
//!   bounded chunks, rotates them, and drops series with no event for
//!   [`state::SERIES_KEPT`].
//! * [`textfile`]: `kubelet-keyring.prom` (atomically, mode 0644), with the seconds left
//!   of the cached credentials; the pass that reads them also sweeps expired cache entries
//!   away ([`crate::cache::files`]).
//!
//! Labels are the backend's name and the registry as the kubelet matches it (the image's
//! host\[:port\]); never a user name, token, path, service account or image repository.
//! Metrics never fail an invocation: any error is logged and the answer stands.

pub mod journal;
pub mod state;
pub mod textfile;

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::args::GlobalArgs;
use crate::cache;
use crate::exit::Failure;

pub use journal::{append as record, Event, Record, JOURNAL, RECORD_LEN};
pub use state::{fold, FoldError};

/// The counters folded so far, and how far each journal was read.
pub const STATE: &str = "kubelet-keyring.state.json";
/// The file node_exporter's textfile collector reads.
pub const PROM: &str = "kubelet-keyring.prom";

/// A fetch's records, then a fold if no other fold is running: the kubelet already waits on
/// the network here, and a failure shows in the file at once instead of at the next timer.
pub fn after_fetch(args: &GlobalArgs, cache: Option<&Path>, records: &[Record]) {
    let Some(dir) = &args.metrics_dir else { return };
    record(dir, records);
    let now = records.first().map_or_else(SystemTime::now, |r| {
        SystemTime::UNIX_EPOCH + Duration::from_millis(r.at_ms)
    });
    if let Err(e) = fold(dir, cache, now, false) {
        tracing::warn!("metrics: cannot update {}: {e}", dir.display());
    }
}

/// `kubelet-keyring metrics`: one fold, waiting for any other until the invocation's
/// deadline, then one line naming the lock file (exit 1). A refused directory is bad input
/// (exit 2), as a refused cache directory is for `cache list|clear`.
pub fn command(args: &GlobalArgs) -> Result<(), Failure> {
    let dir = args.metrics_dir.as_ref().ok_or_else(|| {
        Failure::BadInput(
            "metrics needs --metrics-dir or KUBELET_KEYRING_METRICS_DIR (node_exporter's textfile directory)"
                .into(),
        )
    })?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(cache::default_dir);
    // The invocation's deadline bounds the wait for another fold's lock: a timer's run that
    // waited for ever would never write the textfile again.
    keyring_api::deadline::start();
    let now = keyring_api::Clock::invocation().now();
    match fold(dir, Some(&cache_dir), now, true) {
        Ok(written) => {
            if let Some(p) = written {
                tracing::info!("wrote {}", p.display());
            }
            Ok(())
        }
        Err(FoldError::Dir(e)) => Err(Failure::BadInput(e.to_string())),
        Err(e @ FoldError::Locked { .. }) => Err(Failure::Internal(e.to_string())),
        Err(FoldError::Io(e)) => Err(Failure::Internal(format!(
            "cannot write metrics in {}: {e}",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests;
