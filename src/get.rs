//! `get-credentials`, the default action: one request on stdin, one response on stdout.
//!
//! Order of work, cheapest first: decode the request, normalize the image, look in the cache
//! (a hit answers without building any backend), and only on a miss take the registry's lock,
//! look again, and run the provider chain. A backend failure is answered from a stale but
//! still valid cache entry when there is one.
//!
//! Token mode (KEP-4412, a v1 request with `serviceAccountToken`): the answer belongs to the
//! pod's service account, so the cache (entries and the single-flight lock) is keyed by it as
//! well ([`cache::workload`]); a token whose service account cannot be read from it bypasses
//! the cache for that request. The token never reaches the cache, a log line or the
//! response: an answer whose password equals it is refused (the kubelet would discard it
//! anyway unless its `cacheType` is `Token`).

use std::io::{IsTerminal, Read};
use std::time::{Duration, SystemTime};

use keyring_api::provider::Query;
use keyring_api::wire::{decode_request, ApiVersion, Response, MAX_REQUEST_BYTES};
use keyring_api::{CacheKeyType, ImageName};

use crate::args::GlobalArgs;
use crate::cache::{DiskCache, Entry, Workload};
use crate::chain::Chain;
use crate::exit::Failure;
use crate::io::{open_cache, search_paths, write_stdout};
use crate::metrics::{self, Event, Record};

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
    let now = query.clock.now();

    if let Some(c) = &cache {
        if let Some(hit) = cached_response(c, &query.image, now, version, true) {
            tracing::debug!("cache hit for {}", query.image);
            return answer_hit(args, hit, now, &query.image);
        }
    }
    // Miss: one process per registry asks the backend; the others wait and read its answer.
    // The wait draws on the invocation's one budget and leaves this process's backend call
    // its share, so waiting and asking together stay inside the kubelet's 60 s.
    let lock = cache
        .as_ref()
        .and_then(|c| c.lock(&query.image, query.deadline.lock_wait()));
    if let Some(c) = &cache {
        let now = query.clock.now();
        if let Some(hit) = cached_response(c, &query.image, now, version, true) {
            tracing::debug!("cache filled by another process for {}", query.image);
            return answer_hit(args, hit, now, &query.image);
        }
    }

    let resolved = Chain::new(&config, paths).and_then(|chain| chain.resolve(&query));
    let resolved = match resolved {
        Ok(r) => r,
        Err(e) => {
            let now = query.clock.now();
            let mut records = vec![Record::new(
                now,
                Event::FetchFailed(e.kind),
                e.provider,
                &query.image,
            )];
            let stale = cache
                .as_ref()
                .filter(|_| e.kind.serves_stale())
                .and_then(|c| cached_response(c, &query.image, now, version, false));
            let result = match stale {
                Some((resp, provider)) => {
                    tracing::warn!("serving a cached credential that is still valid, because the backend failed: {e}");
                    records.push(Record::new(
                        now,
                        Event::StaleServed,
                        &provider,
                        &query.image,
                    ));
                    write_stdout(&resp.to_json())
                }
                None => Err(e.into()),
            };
            // Waiters on the registry's lock need not wait for the metrics too.
            drop(lock);
            metrics::after_fetch(args, cache.as_ref().map(|c| c.dir()), &records);
            return result;
        }
    };
    let decided = crate::decide::decide(&query, version, resolved, now)?;
    let (scope, entry) = &decided.entry;
    if let Some(c) = &cache {
        if let Err(e) = c.write(*scope, entry) {
            tracing::warn!("cannot write cache entry in {}: {e}", c.dir().display());
        }
    }
    let (response, provider) = (decided.response, decided.provider);
    let written = write_stdout(&response.to_json());
    drop(lock);
    let ok = Record::new(query.clock.now(), Event::FetchOk, provider, &query.image);
    metrics::after_fetch(args, cache.as_ref().map(|c| c.dir()), &[ok]);
    written
}

/// Writes a cached answer, then its journal record. With metrics off, nothing but the check.
fn answer_hit(
    args: &GlobalArgs,
    (response, provider): (Response, String),
    now: SystemTime,
    image: &ImageName,
) -> Result<(), Failure> {
    let written = write_stdout(&response.to_json());
    if let Some(dir) = &args.metrics_dir {
        metrics::record(dir, &[Record::new(now, Event::Hit, &provider, image)]);
    }
    written
}

/// A response from the cache (fresh entries only, or stale-but-valid ones too), and the
/// provider that made it.
fn cached_response(
    c: &DiskCache,
    image: &ImageName,
    now: SystemTime,
    version: ApiVersion,
    fresh_only: bool,
) -> Option<(Response, String)> {
    let (entry, remaining): (Entry, Duration) = c.find(image, now, fresh_only)?;
    let cache_key_type: CacheKeyType = entry.key_type()?;
    let response = Response {
        api_version: version,
        cache_key_type,
        cache_duration: Some(remaining),
        auth: entry.auth,
    };
    Some((response, entry.provider))
}

/// Reads all of stdin, at most one byte more than a request may have.
fn read_stdin() -> Result<Vec<u8>, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "kubelet-keyring: reading a CredentialProviderRequest from stdin (end with Ctrl-D)"
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
