//! `get-credentials`, the default action: one request on stdin, one response on stdout.
//!
//! The edges around [`crate::core::answer`]: read and decode the request, normalize the image,
//! open the cache this request may use, then write the core's response and its metrics
//! records. What is served and when (hit, lock, fetch, stale) is the core's.
//!
//! A cache hit parses no plugin config: the cache context is the config's bytes
//! ([`crate::config::Read::context_bytes`]), and the file is parsed only on a miss (or when
//! its `mirrors:` section reads runtime files, whose bytes are part of the context, or under
//! an upstream plugin's command line).
//!
//! Token mode (KEP-4412, a v1 request with `serviceAccountToken`): the answer belongs to the
//! pod's service account, so the cache (entries and the single-flight lock) is keyed by it as
//! well ([`crate::cache::workload`]); a token whose service account cannot be read from it bypasses
//! the cache for that request. The token never reaches the cache, a log line or the
//! response: an answer whose password equals it is refused (the kubelet would discard it
//! anyway unless its `cacheType` is `Token`).
//!
//! One deadline covers the invocation from the first read of stdin to the exit
//! ([`keyring_api::deadline`]): stdin is read against it, the stage is recorded as the run
//! goes, and the watchdog ([`keyring_api::process`]) is armed where the run leaves the
//! cache-hit path (the registry lock of a miss, a response write that could block), so that
//! whatever blocks, the process exits by the limit with one line naming the stage, exit 1
//! (exit 0 if the response was already written), the children's groups killed.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use keyring_api::backend::Query;
use keyring_api::deadline::{self, set_stage};
use keyring_api::wire::{decode_request, MAX_REQUEST_BYTES};
use keyring_api::{process, CacheKeyType, ImageName};

use crate::args::GlobalArgs;
use crate::cache::{DiskCache, Entry, Usable, Workload};
use crate::chain::Chain;
use crate::core::{self, CacheView, NoCache, Served, Turn};
use crate::exit::Failure;
use crate::io::{open_cache_for, read_stdin, search_paths, write_stdout, StdinError};
use crate::metrics;

/// Whether the response is out: past that, running out of time is no failure.
static ANSWERED: AtomicBool = AtomicBool::new(false);

/// The watchdog's line and exit code when the exit limit passes during `stage`, after it
/// killed `killed` children's process groups.
fn out_of_time(stage: &str, killed: usize) -> (Cow<'static, str>, i32) {
    if ANSWERED.load(Ordering::SeqCst) {
        let line = format!(
            "kubelet-keyring: warning: out of time while {stage}, after the response was written\n"
        );
        return (line.into(), 0);
    }
    let children = match killed {
        0 => String::new(),
        1 => "; a child process was killed with its group".into(),
        n => format!("; {n} child processes were killed with their groups"),
    };
    let line = format!(
        "kubelet-keyring: error: out of time while {stage}: gave up {}s after reading the \
         request began, inside the kubelet's {}s limit{children}\n",
        deadline::exit_limit()
            .unwrap_or(deadline::EXIT_LIMIT)
            .as_secs_f64(),
        deadline::KUBELET_EXEC_TIMEOUT.as_secs()
    );
    (line.into(), 1)
}

/// Reads the request, resolves it, writes the response.
pub fn run(args: &GlobalArgs) -> Result<(), Failure> {
    process::install_watchdog(out_of_time);
    let input = read_request()?;
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

    set_stage("loading the plugin config");
    let read = crate::io::read_config(args)?;
    let paths = search_paths(args);
    set_stage("opening the cache");
    // Token mode answers belong to one service account: its key goes into every entry and
    // lock name. Without a readable key, no cache at all rather than risk serving another's.
    let workload = match &query.service_account_token {
        None => Ok(None),
        Some(token) => Workload::from_token(token, &query.service_account_annotations).map(Some),
    };
    let open = |config_bytes: &[u8]| match &workload {
        _ if args.no_cache => None,
        Err(_) => None,
        Ok(None) => open_cache_for(args, config_bytes, &paths),
        Ok(Some(w)) => open_cache_for(args, config_bytes, &paths).map(|c| c.for_workload(w)),
    };
    // A hit needs only the config's bytes: parsing it (YAML, every backend's section) waits
    // for a miss, unless those bytes alone do not make the cache context (mirrors).
    let unparsed = crate::io::unparsed_context(args, &read);
    let early = unparsed.as_deref().map(open);
    if let Some(Some(disk)) = &early {
        set_stage("reading the cache");
        if let Some(turn) = core::hit(&query, version, &Watched(disk)) {
            return respond(args, Some(disk), turn);
        }
    }
    set_stage("loading the plugin config");
    let config = crate::io::parse_config(args, read)?;
    set_stage("opening the cache");
    match &workload {
        Err(why) if !args.no_cache => {
            tracing::info!("not using the cache for this request: {why}")
        }
        Ok(Some(w)) => tracing::debug!("token mode: cache entries of service account {}", w.label),
        _ => {}
    }
    let context = config.context_bytes();
    let cache = match early {
        // The same context: the cache opened (or refused) for the hit serves the miss too.
        Some(opened) if unparsed.as_deref() == Some(context.as_slice()) => opened,
        _ => open(&context),
    };
    // The chain is built only on a miss: a hit constructs no backend.
    let resolve = |q: &Query| {
        set_stage("building the backends");
        Chain::new(&config, paths).and_then(|chain| chain.resolve(q))
    };
    set_stage("reading the cache");
    match &cache {
        Some(disk) => respond(
            args,
            Some(disk),
            core::answer(&query, version, &Watched(disk), resolve),
        ),
        None => respond(
            args,
            None,
            core::answer(&query, version, &Watched(&NoCache), resolve),
        ),
    }
}

/// A cache view that arms the watchdog where a miss begins (its registry lock): past that
/// point the run waits on other processes, backends and children.
struct Watched<'a, C>(&'a C);

impl<C: CacheView> CacheView for Watched<'_, C> {
    type Lock = C::Lock;

    fn find(&self, image: &ImageName, now: SystemTime, fresh_only: bool) -> Option<Usable> {
        self.0.find(image, now, fresh_only)
    }

    fn lock(&self, image: &ImageName, wait: Duration) -> Option<Self::Lock> {
        process::arm_watchdog();
        set_stage("waiting for the registry's cache lock");
        self.0.lock(image, wait)
    }

    fn store(&self, scope: CacheKeyType, entry: &Entry) {
        set_stage("writing the cache entry");
        self.0.store(scope, entry)
    }
}

/// The edge after the core: the response on stdout, then the lock released, then the
/// metrics (a hit only appends its record; a fetch also folds the journal into the file)
/// and, after a fetch, a bounded sweep of the cache.
fn respond<L>(args: &GlobalArgs, cache: Option<&DiskCache>, turn: Turn<L>) -> Result<(), Failure> {
    let result = turn.result.and_then(|a| {
        write_stdout(&a.response.to_json())?;
        ANSWERED.store(true, Ordering::SeqCst);
        Ok(a.served)
    });
    // Waiters on the registry's lock need not wait for the metrics too.
    drop(turn.lock);
    set_stage("recording metrics");
    match result {
        Ok(Served::Hit | Served::Filled) => {
            if let Some(dir) = &args.metrics_dir {
                metrics::record(dir, &turn.records);
            }
        }
        _ => {
            metrics::after_fetch(args, cache.map(|c| c.dir()), &turn.records);
            // A fetch waited on the network anyway: with metrics on, its fold swept the whole
            // cache; without, it sweeps a few files (a hit never does; crate::cache::files).
            if let (Some(c), None) = (cache, &args.metrics_dir) {
                c.sweep_some(keyring_api::Clock::invocation().now());
            }
        }
    }
    result.map(drop)
}

/// Starts the invocation's deadline and reads all of stdin within it, at most one byte more
/// than a request may have. At a terminal a person is typing: the deadline starts once they
/// are done.
fn read_request() -> Result<Vec<u8>, Failure> {
    let typed = std::io::stdin().is_terminal();
    if typed {
        crate::logging::line(
            "kubelet-keyring: reading a CredentialProviderRequest from stdin (end with Ctrl-D)",
        );
    }
    let began = std::time::Instant::now();
    let deadline = (!typed).then(deadline::start);
    set_stage("reading the request on stdin");
    let input = read_stdin(MAX_REQUEST_BYTES, deadline).map_err(|e| match e {
        StdinError::OutOfTime => Failure::Internal(format!(
            "out of time while reading the request on stdin: it was not closed within {:.0}s \
             (the kubelet closes it once the request is written)",
            deadline.map_or(0.0, |d| d.instant().duration_since(began).as_secs_f64())
        )),
        StdinError::Io(e) => Failure::BadInput(format!("cannot read request from stdin: {e}")),
    })?;
    deadline::start();
    Ok(input)
}
