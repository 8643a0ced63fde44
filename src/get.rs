//! `get-credentials`, the default action: one request on stdin, one response on stdout.
//!
//! The edges around [`crate::core::answer`]: read and decode the request, normalize the image,
//! open the cache this request may use, then write the core's response and its metrics
//! records. What is served and when (hit, lock, fetch, stale) is the core's.
//!
//! Token mode (KEP-4412, a v1 request with `serviceAccountToken`): the answer belongs to the
//! pod's service account, so the cache (entries and the single-flight lock) is keyed by it as
//! well ([`crate::cache::workload`]); a token whose service account cannot be read from it bypasses
//! the cache for that request. The token never reaches the cache, a log line or the
//! response: an answer whose password equals it is refused (the kubelet would discard it
//! anyway unless its `cacheType` is `Token`).

use std::io::{IsTerminal, Read};

use keyring_api::backend::Query;
use keyring_api::wire::{decode_request, MAX_REQUEST_BYTES};
use keyring_api::ImageName;

use crate::args::GlobalArgs;
use crate::cache::{DiskCache, Workload};
use crate::chain::Chain;
use crate::core::{self, NoCache, Served, Turn};
use crate::exit::Failure;
use crate::io::{open_cache, search_paths, write_stdout};
use crate::metrics;

/// Reads the request, resolves it, writes the response.
pub fn run(args: &GlobalArgs) -> Result<(), Failure> {
    let input = read_stdin()?;
    let request =
        decode_request(&input).map_err(|e| Failure::BadInput(format!("invalid request: {e}")))?;
    let image = ImageName::parse(&request.image).map_err(|e| {
        let shown: String = request.image.chars().take(256).collect();
        Failure::BadInput(format!("invalid image reference {shown:?}: {e}"))
    })?;
    let version = request.api_version;
    let mut query = Query::new(image);
    query.service_account_token = request.service_account_token.clone();
    query.service_account_annotations = request.service_account_annotations.clone();

    let config = crate::io::load_config(args)?;
    let paths = search_paths(args);
    // Token mode answers belong to one service account: its key goes into every entry and
    // lock name. Without a readable key, no cache at all rather than risk serving another's.
    let workload = match &query.service_account_token {
        None => Ok(None),
        Some(token) => Workload::from_token(token, &query.service_account_annotations).map(Some),
    };
    let cache = match &workload {
        _ if args.no_cache => None,
        Err(why) => {
            tracing::info!("not using the cache for this request: {why}");
            None
        }
        Ok(None) => open_cache(args, &config, &paths),
        Ok(Some(w)) => {
            tracing::debug!("token mode: cache entries of service account {}", w.label);
            open_cache(args, &config, &paths).map(|c| c.for_workload(w))
        }
    };
    // The chain is built only on a miss: a hit constructs no backend.
    let resolve = |q: &Query| Chain::new(&config, paths).and_then(|chain| chain.resolve(q));
    match &cache {
        Some(disk) => respond(
            args,
            Some(disk),
            core::answer(&query, version, disk, resolve),
        ),
        None => respond(args, None, core::answer(&query, version, &NoCache, resolve)),
    }
}

/// The edge after the core: the response on stdout, then the lock released, then the
/// metrics (a hit only appends its record; a fetch also folds the journal into the file).
fn respond<L>(args: &GlobalArgs, cache: Option<&DiskCache>, turn: Turn<L>) -> Result<(), Failure> {
    let result = turn.result.and_then(|a| {
        write_stdout(&a.response.to_json())?;
        Ok(a.served)
    });
    // Waiters on the registry's lock need not wait for the metrics too.
    drop(turn.lock);
    match result {
        Ok(Served::Hit | Served::Filled) => {
            if let Some(dir) = &args.metrics_dir {
                metrics::record(dir, &turn.records);
            }
        }
        _ => metrics::after_fetch(args, cache.map(|c| c.dir()), &turn.records),
    }
    result.map(drop)
}

/// Reads all of stdin, at most one byte more than a request may have.
fn read_stdin() -> Result<Vec<u8>, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        crate::logging::line(
            "kubelet-keyring: reading a CredentialProviderRequest from stdin (end with Ctrl-D)",
        );
    }
    let mut buf = Vec::with_capacity(4096);
    stdin
        .lock()
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::BadInput(format!("cannot read request from stdin: {e}")))?;
    Ok(buf)
}
