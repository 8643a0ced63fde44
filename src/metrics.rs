//! Prometheus metrics in node_exporter's textfile-collector format, per backend and registry.
//!
//! Every invocation is its own short process, so counters live on disk, in the directory the
//! operator names (`--metrics-dir`, `KUBELET_KEYRING_METRICS_DIR`; off when unset):
//!
//! * **Journal.** Each answer appends one fixed-size [`RECORD_LEN`] record (what happened,
//!   when, backend, registry) to `kubelet-keyring.journal`: one `open(O_APPEND)`, one
//!   `write`, one `close`. That is all a cache hit pays, and only when metrics are on; with
//!   metrics off it pays nothing but the flag check. Appends of one small `write` to a local
//!   file do not interleave, so concurrent invocations need no lock. A torn record (disk
//!   full) is skipped by re-synchronising on the record magic.
//! * **Fold.** [`fold`] (the `metrics` command, run by a systemd timer, and every fetch,
//!   which already waits on the network) takes the directory's lock, adds the records it
//!   has not yet read to the counters in `kubelet-keyring.state.json` (written atomically,
//!   and fsynced by the timer's fold: this is what makes counters survive restarts, and it
//!   remembers how far each journal was read, so no record is counted twice), and writes
//!   `kubelet-keyring.prom` atomically (temp file, rename; mode 0644). A journal past
//!   1 MiB is renamed to `kubelet-keyring.journal.<ms>` so writers start a new one; it is
//!   deleted once nothing changed it for longer than an invocation may live (a writer that
//!   opened it before the rename may still append).
//! * **Seconds left.** The fold reads the cache entries' expiry times (never their
//!   credentials) for `kubelet_keyring_token_seconds_left`, so the gauge is current whenever
//!   the file is written, not when the token was fetched.
//!
//! Labels are the backend's name and the registry as the kubelet matches it (the image's
//! host\[:port\]); never a user name, token, path, service account or image repository.
//! Metrics never fail an invocation: any error is logged and the answer stands.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use keyring_api::{ErrorKind, ImageName};
use serde::{Deserialize, Serialize};

use crate::args::GlobalArgs;
use crate::cache::entry::ms;
use crate::cache::{self, DiskCache, Freshness};
use crate::exit::Failure;

/// The journal that invocations append to.
pub const JOURNAL: &str = "kubelet-keyring.journal";
/// The counters folded so far, and how far each renamed journal was read.
pub const STATE: &str = "kubelet-keyring.state.json";
/// The file node_exporter's textfile collector reads.
pub const PROM: &str = "kubelet-keyring.prom";
const LOCK: &str = "kubelet-keyring.lock";

/// Bytes per journal record.
pub const RECORD_LEN: usize = 320;
const MAGIC: &[u8; 4] = b"KKM1";
/// The last bytes of a record: a record cut short by a failed write lacks them.
const END: &[u8; 4] = b"1MKK";
const PROVIDER_MAX: usize = 32;
const REGISTRY_AT: usize = 24 + PROVIDER_MAX;
/// The longest registry recorded: a DNS name (253) with a port.
const REGISTRY_MAX: usize = RECORD_LEN - END.len() - REGISTRY_AT;

/// A renamed journal unchanged for this long has no writer left: every invocation ends
/// within 55 s, and one that opened the journal before the rename wrote within that time.
const WRITER_GRACE: Duration = Duration::from_secs(90);

/// The journal is renamed (and a new one started) once it is this large: 3,276 records.
const ROTATE_BYTES: u64 = 1 << 20;

/// What one invocation did for one registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Answered from a fresh cache entry.
    Hit,
    /// Answered from a stale but still valid entry because the backend failed.
    StaleServed,
    /// The backend (or the chain, for "no credentials") answered.
    FetchOk,
    /// The backend failed.
    FetchFailed(ErrorKind),
}

impl Event {
    fn code(self) -> (u8, u8) {
        match self {
            Event::Hit => (1, 0),
            Event::StaleServed => (2, 0),
            Event::FetchOk => (3, 0),
            Event::FetchFailed(k) => (4, kind_code(k)),
        }
    }

    fn from_code(event: u8, kind: u8) -> Option<Event> {
        Some(match (event, kind) {
            (1, 0) => Event::Hit,
            (2, 0) => Event::StaleServed,
            (3, 0) => Event::FetchOk,
            (4, k) => Event::FetchFailed(*ErrorKind::ALL.get(usize::from(k).checked_sub(1)?)?),
            _ => return None,
        })
    }
}

fn kind_code(k: ErrorKind) -> u8 {
    ErrorKind::ALL
        .iter()
        .position(|&x| x == k)
        .map_or(0, |i| i as u8 + 1)
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// What.
    pub event: Event,
    /// The backend's name (`none` when nobody had credentials).
    pub backend: String,
    /// The registry, as the kubelet matches it.
    pub registry: String,
}

impl Record {
    /// A record of `event` for `image`'s registry at `at`.
    pub fn new(at: SystemTime, event: Event, backend: &str, image: &ImageName) -> Record {
        Record {
            at_ms: ms(at),
            event,
            backend: backend.to_string(),
            registry: image.registry().to_string(),
        }
    }

    /// The fixed-size bytes: magic, event, error kind, lengths, time, backend, registry,
    /// end marker.
    /// `None` for names too long to record (no real backend or registry is).
    pub fn encode(&self) -> Option<[u8; RECORD_LEN]> {
        let (p, r) = (self.backend.as_bytes(), self.registry.as_bytes());
        if p.len() > PROVIDER_MAX || r.len() > REGISTRY_MAX {
            return None;
        }
        let mut b = [0u8; RECORD_LEN];
        let (event, kind) = self.event.code();
        b[..4].copy_from_slice(MAGIC);
        b[4] = event;
        b[5] = kind;
        b[6] = p.len() as u8;
        b[8..10].copy_from_slice(&(r.len() as u16).to_le_bytes());
        b[16..24].copy_from_slice(&self.at_ms.to_le_bytes());
        b[24..24 + p.len()].copy_from_slice(p);
        b[REGISTRY_AT..REGISTRY_AT + r.len()].copy_from_slice(r);
        b[RECORD_LEN - END.len()..].copy_from_slice(END);
        Some(b)
    }

    /// The record in `b`, if it is one.
    pub fn decode(b: &[u8]) -> Option<Record> {
        if b.len() < RECORD_LEN || &b[..4] != MAGIC || &b[RECORD_LEN - END.len()..RECORD_LEN] != END
        {
            return None;
        }
        let event = Event::from_code(b[4], b[5])?;
        let p = usize::from(b[6]);
        let r = usize::from(u16::from_le_bytes([b[8], b[9]]));
        if p > PROVIDER_MAX || r > REGISTRY_MAX {
            return None;
        }
        let text = |s: &[u8]| String::from_utf8(s.to_vec()).ok();
        Some(Record {
            at_ms: u64::from_le_bytes(b[16..24].try_into().ok()?),
            event,
            backend: text(&b[24..24 + p])?,
            registry: text(&b[REGISTRY_AT..REGISTRY_AT + r])?,
        })
    }
}

/// All records in `bytes`; bytes that are not a record (a torn write) are skipped up to the
/// next magic.
pub fn decode_all(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + RECORD_LEN <= bytes.len() {
        match Record::decode(&bytes[at..]) {
            Some(r) => {
                out.push(r);
                at += RECORD_LEN;
            }
            None => {
                at += 1;
                at += bytes[at..]
                    .windows(MAGIC.len())
                    .position(|w| w == MAGIC)
                    .unwrap_or(bytes.len() - at);
            }
        }
    }
    out
}

/// Opens a file in the metrics directory without following a symlink planted there.
fn open_nofollow(opts: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    opts.custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Appends `records` to the journal in `dir` with one `write`. The hot path: no directory
/// check, no lock; the directory is created (0755) only when the journal cannot be opened
/// for want of it.
pub fn record(dir: &Path, records: &[Record]) {
    let mut buf = Vec::with_capacity(RECORD_LEN * records.len());
    for r in records {
        match r.encode() {
            Some(b) => buf.extend_from_slice(&b),
            None => tracing::debug!("metrics: a name too long to record"),
        }
    }
    if buf.is_empty() {
        return;
    }
    let path = dir.join(JOURNAL);
    let open = || {
        open_nofollow(
            OpenOptions::new().append(true).create(true).mode(0o600),
            &path,
        )
    };
    let file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_dir(dir).and_then(|()| open()),
        other => other,
    };
    if let Err(e) = file.and_then(|mut f| f.write_all(&buf)) {
        tracing::warn!("metrics: cannot append to {}: {e}", path.display());
    }
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
}

/// The counters of one backend and registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// The backend.
    pub backend: String,
    /// The registry.
    pub registry: String,
    /// Answers from fresh cache entries.
    pub cache_hits: u64,
    /// Answers from stale entries because the backend failed.
    pub stale_answers: u64,
    /// Successful fetches.
    pub fetches_ok: u64,
    /// Failed fetches by [`ErrorKind::as_str`].
    pub fetches_failed: BTreeMap<String, u64>,
    /// The last successful fetch, ms since the epoch.
    pub last_success_ms: Option<u64>,
    /// The last failed fetch, ms since the epoch.
    pub last_failure_ms: Option<u64>,
}

/// What the fold keeps between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Counters, sorted by backend and registry.
    pub series: Vec<Counters>,
    /// Renamed journals not yet deleted, and how many bytes of each were folded.
    pub journals: BTreeMap<String, u64>,
}

impl State {
    /// Adds one record.
    pub fn add(&mut self, r: &Record) {
        let i = match self
            .series
            .binary_search_by(|c| (&*c.backend, &*c.registry).cmp(&(&r.backend, &r.registry)))
        {
            Ok(i) => i,
            Err(i) => {
                self.series.insert(
                    i,
                    Counters {
                        backend: r.backend.clone(),
                        registry: r.registry.clone(),
                        ..Default::default()
                    },
                );
                i
            }
        };
        let c = &mut self.series[i];
        match r.event {
            Event::Hit => c.cache_hits += 1,
            Event::StaleServed => c.stale_answers += 1,
            Event::FetchOk => {
                c.fetches_ok += 1;
                c.last_success_ms = c.last_success_ms.max(Some(r.at_ms));
            }
            Event::FetchFailed(kind) => {
                *c.fetches_failed.entry(kind.as_str().into()).or_default() += 1;
                c.last_failure_ms = c.last_failure_ms.max(Some(r.at_ms));
            }
        }
    }
}

/// Seconds left per (backend, registry): of the longest-lived usable cache entry, until its
/// credential expires (until its cache lifetime ends when the expiry is unknown).
pub type SecondsLeft = BTreeMap<(String, String), i64>;

/// Reads `seconds left` from the cache entries in `dir` (no secret is looked at). A missing
/// or unusable directory has no entries; it is never created here.
pub fn seconds_left(dir: &Path, now: SystemTime) -> SecondsLeft {
    let mut out = SecondsLeft::new();
    if !dir.is_dir() {
        return out;
    }
    let cache = match DiskCache::open(dir.to_path_buf(), [0; 32]) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("metrics: not reading the cache: {e}");
            return out;
        }
    };
    let now_ms = ms(now) as i64;
    for (_, entry) in cache.entries() {
        let Some(e) = entry else { continue };
        if e.freshness(now) == Freshness::Dead {
            continue;
        }
        let registry = match e.key_type() {
            Some(keyring_api::CacheKeyType::Image) => match ImageName::parse(&e.key) {
                Ok(i) => i.registry().to_string(),
                Err(_) => continue,
            },
            Some(_) => e.key.clone(),
            None => continue,
        };
        let until = e.credential_expires_ms.unwrap_or(e.fresh_until_ms) as i64;
        let left = (until - now_ms).div_euclid(1000);
        let slot = out.entry((e.backend.clone(), registry)).or_insert(left);
        *slot = (*slot).max(left);
    }
    out
}

/// Escapes a label value for the exposition format.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The metric families, in the order written: name, type, help.
pub const FAMILIES: [(&str, &str, &str); 7] = [
    (HITS, "counter", "Answers served from a fresh cache entry."),
    (
        STALE,
        "counter",
        "Answers served from a stale but still valid cache entry because the backend failed.",
    ),
    (
        FETCHES,
        "counter",
        "Successful fetches from the backend (backend none: nobody had credentials).",
    ),
    (FAILURES, "counter", "Failed fetches from the backend, by error kind."),
    (LAST_SUCCESS, "gauge", "Unix time of the last successful fetch."),
    (LAST_FAILURE, "gauge", "Unix time of the last failed fetch."),
    (
        SECONDS_LEFT,
        "gauge",
        "Seconds until the longest-lived usable cached credential expires (its cache lifetime when the expiry is unknown).",
    ),
];
const HITS: &str = "kubelet_keyring_cache_hits_total";
const STALE: &str = "kubelet_keyring_stale_answers_total";
const FETCHES: &str = "kubelet_keyring_fetches_total";
const FAILURES: &str = "kubelet_keyring_fetch_failures_total";
const LAST_SUCCESS: &str = "kubelet_keyring_last_success_timestamp_seconds";
const LAST_FAILURE: &str = "kubelet_keyring_last_failure_timestamp_seconds";
const SECONDS_LEFT: &str = "kubelet_keyring_token_seconds_left";

/// The textfile: every family with HELP and TYPE, a series per backend and registry (and
/// per error kind, all kinds present so that `increase()` sees the first failure).
pub fn render(state: &State, left: &SecondsLeft) -> String {
    let labels = |p: &str, r: &str| {
        format!(
            "backend=\"{}\",registry=\"{}\"",
            escape_label(p),
            escape_label(r)
        )
    };
    let secs = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
    // (labels, value) of each sample of a family.
    let samples = |name: &str| -> Vec<(String, String)> {
        let per_series = |value: &dyn Fn(&Counters) -> Option<String>| {
            state
                .series
                .iter()
                .filter_map(|c| Some((labels(&c.backend, &c.registry), value(c)?)))
                .collect()
        };
        match name {
            HITS => per_series(&|c| Some(c.cache_hits.to_string())),
            STALE => per_series(&|c| Some(c.stale_answers.to_string())),
            FETCHES => per_series(&|c| Some(c.fetches_ok.to_string())),
            FAILURES => state
                .series
                .iter()
                .flat_map(|c| {
                    ErrorKind::ALL.map(|k| {
                        let n = c.fetches_failed.get(k.as_str()).copied().unwrap_or(0);
                        let l = labels(&c.backend, &c.registry);
                        (format!("{l},kind=\"{}\"", k.as_str()), n.to_string())
                    })
                })
                .collect(),
            LAST_SUCCESS => per_series(&|c| c.last_success_ms.map(secs)),
            LAST_FAILURE => per_series(&|c| c.last_failure_ms.map(secs)),
            _ => left
                .iter()
                .map(|((p, r), v)| (labels(p, r), v.to_string()))
                .collect(),
        }
    };
    let mut out = String::new();
    for (name, kind, help) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (l, v) in samples(name) {
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
    }
    out
}

/// Folds the journals in `dir` into its state and writes the `.prom` file, reading seconds
/// left from `cache_dir`. With `wait` false, returns `Ok(None)` at once when another fold
/// holds the lock (a fetch does not wait for the timer's fold). Returns the file written.
pub fn fold(
    dir: &Path,
    cache_dir: Option<&Path>,
    now: SystemTime,
    wait: bool,
) -> std::io::Result<Option<PathBuf>> {
    fold_rotating_at(dir, cache_dir, now, wait, ROTATE_BYTES)
}

/// [`fold`], renaming the journal once it holds `rotate_at` bytes.
fn fold_rotating_at(
    dir: &Path,
    cache_dir: Option<&Path>,
    now: SystemTime,
    wait: bool,
    rotate_at: u64,
) -> std::io::Result<Option<PathBuf>> {
    create_dir(dir)?;
    let lock = open_nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        &dir.join(LOCK),
    )?;
    if wait {
        lock.lock()?;
    } else {
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    let mut state = read_state(&dir.join(STATE));
    // A journal that grew large is renamed, so writers start a new one; it is read on by
    // its new name, which is never reused (names grow). Renaming at every fold would leave
    // a file per fold for the grace period.
    let live_len = match fs::symlink_metadata(dir.join(JOURNAL)) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    if live_len >= rotate_at {
        let last = state
            .journals
            .keys()
            .filter_map(|n| n.rsplit('.').next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let renamed = format!("{JOURNAL}.{}", ms(now).max(last + 1));
        fs::rename(dir.join(JOURNAL), dir.join(&renamed))?;
        let folded = state.journals.remove(JOURNAL).unwrap_or(0);
        state.journals.insert(renamed, folded);
    }
    let mut done = Vec::new();
    let mut names: Vec<String> = state.journals.keys().cloned().collect();
    if !state.journals.contains_key(JOURNAL) {
        names.push(JOURNAL.to_string());
    }
    for name in names {
        let path = dir.join(&name);
        let mut file = match open_nofollow(OpenOptions::new().read(true), &path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                state.journals.remove(&name);
                continue;
            }
            Err(e) => return Err(e),
        };
        // Checked before reading: a renamed journal unchanged for the grace period has no
        // writer left, so what is read now is all it will ever hold.
        let meta = file.metadata()?;
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
        let finished =
            name != JOURNAL && now.duration_since(changed).unwrap_or_default() > WRITER_GRACE;
        // A journal shorter than what was read of it is another file (removed by hand).
        let from = state
            .journals
            .get(&name)
            .copied()
            .filter(|&f| f <= meta.len())
            .unwrap_or(0);
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(from))?;
        file.read_to_end(&mut bytes)?;
        // Only whole records: the rest of a record being written is read next time.
        let whole = if finished {
            bytes.len()
        } else {
            bytes.len() / RECORD_LEN * RECORD_LEN
        };
        for r in decode_all(&bytes[..whole]) {
            state.add(&r);
        }
        state.journals.insert(name.clone(), from + whole as u64);
        if finished {
            done.push(name);
        }
    }
    // Durable for the timer's fold; a fetch's fold leaves that to the timer (a lost state
    // file is a counter reset, which Prometheus's rate() and increase() handle).
    write_atomic(
        &dir.join(STATE),
        &serde_json::to_vec(&state).map_err(std::io::Error::other)?,
        0o600,
        wait,
    )?;
    // After the state that says they were read in full: a crash in between leaves a file
    // whose offset is its end, which the next fold reads nothing from and deletes.
    for name in done {
        let _ = fs::remove_file(dir.join(name));
    }
    let left = cache_dir.map(|d| seconds_left(d, now)).unwrap_or_default();
    let prom = dir.join(PROM);
    write_atomic(&prom, render(&state, &left).as_bytes(), 0o644, false)?;
    Ok(Some(prom))
}

fn read_state(path: &Path) -> State {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(
                "metrics: {} unreadable ({e}); counters start again",
                path.display()
            );
            State::default()
        }),
        Err(_) => State::default(),
    }
}

/// Temp file in the same directory (a name node_exporter does not read), then rename.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = open_nofollow(
            OpenOptions::new().write(true).create_new(true).mode(mode),
            &tmp,
        )?;
        // The umask must not take the collector's read access away.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

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

/// `kubelet-keyring metrics`: one fold, waiting for any other.
pub fn command(args: &GlobalArgs) -> Result<(), Failure> {
    let dir = args.metrics_dir.as_ref().ok_or_else(|| {
        Failure::BadInput(
            "metrics needs --metrics-dir or KUBELET_KEYRING_METRICS_DIR (node_exporter's textfile directory)"
                .into(),
        )
    })?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let now = keyring_api::Clock::system().now();
    match fold(dir, Some(&cache_dir), now, true) {
        Ok(written) => {
            if let Some(p) = written {
                tracing::info!("wrote {}", p.display());
            }
            Ok(())
        }
        Err(e) => Err(Failure::Internal(format!(
            "cannot write metrics in {}: {e}",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at_ms: u64, event: Event, backend: &str, registry: &str) -> Record {
        Record {
            at_ms,
            event,
            backend: backend.into(),
            registry: registry.into(),
        }
    }

    #[test]
    fn records_round_trip_and_torn_ones_are_skipped() {
        let all = [
            rec(1, Event::Hit, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com"),
            rec(2, Event::StaleServed, "gcp", "gcr.io"),
            rec(3, Event::FetchOk, "none", "quay.io"),
            rec(
                4,
                Event::FetchFailed(ErrorKind::Denied),
                "acr",
                "x.azurecr.io",
            ),
            rec(
                5,
                Event::FetchFailed(ErrorKind::Protocol),
                "a",
                "[::1]:5000",
            ),
        ];
        let mut bytes = Vec::new();
        for r in &all {
            let b = r.encode().unwrap();
            assert_eq!(Record::decode(&b).as_ref(), Some(r));
            bytes.extend_from_slice(&b);
        }
        assert_eq!(decode_all(&bytes), all);
        // A torn record in the middle costs that record only.
        let mut torn = bytes[..RECORD_LEN].to_vec();
        torn.extend_from_slice(&bytes[RECORD_LEN..RECORD_LEN + 100]);
        torn.extend_from_slice(&bytes[2 * RECORD_LEN..]);
        let got = decode_all(&torn);
        assert_eq!(got.len(), 4);
        assert_eq!(got[1], all[2]);
        assert!(rec(1, Event::Hit, &"p".repeat(33), "r").encode().is_none());
        assert!(rec(1, Event::Hit, "p", &"r".repeat(REGISTRY_MAX + 1))
            .encode()
            .is_none());
        assert!(rec(1, Event::Hit, "p", &"r".repeat(REGISTRY_MAX))
            .encode()
            .is_some());
    }

    fn sample() -> (State, SecondsLeft) {
        let mut s = State::default();
        for r in [
            rec(
                1_700_000_000_123,
                Event::FetchOk,
                "ecr",
                "1.dkr.ecr.us-east-1.amazonaws.com",
            ),
            rec(
                1_700_000_001_000,
                Event::Hit,
                "ecr",
                "1.dkr.ecr.us-east-1.amazonaws.com",
            ),
            rec(
                1_700_000_001_000,
                Event::Hit,
                "ecr",
                "1.dkr.ecr.us-east-1.amazonaws.com",
            ),
            rec(
                1_700_000_002_000,
                Event::FetchFailed(ErrorKind::Unavailable),
                "gcp",
                "gcr.io",
            ),
            rec(1_700_000_002_500, Event::StaleServed, "gcp", "gcr.io"),
            rec(
                1_700_000_003_000,
                Event::Hit,
                "docker-config",
                "we\"ird\\reg\nistry",
            ),
        ] {
            s.add(&r);
        }
        let mut left = SecondsLeft::new();
        left.insert(
            ("ecr".into(), "1.dkr.ecr.us-east-1.amazonaws.com".into()),
            39_000,
        );
        (s, left)
    }

    #[test]
    fn the_textfile_has_help_type_and_every_series() {
        let (s, left) = sample();
        let text = render(&s, &left);
        for (name, kind, _) in FAMILIES {
            assert_eq!(
                text.matches(&format!("# HELP {name} ")).count(),
                1,
                "{name}"
            );
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        }
        let ecr = r#"backend="ecr",registry="1.dkr.ecr.us-east-1.amazonaws.com""#;
        for line in [
            format!("kubelet_keyring_cache_hits_total{{{ecr}}} 2"),
            format!("kubelet_keyring_fetches_total{{{ecr}}} 1"),
            format!("kubelet_keyring_last_success_timestamp_seconds{{{ecr}}} 1700000000.123"),
            format!("kubelet_keyring_token_seconds_left{{{ecr}}} 39000"),
            format!("kubelet_keyring_fetch_failures_total{{{ecr},kind=\"denied\"}} 0"),
            r#"kubelet_keyring_fetch_failures_total{backend="gcp",registry="gcr.io",kind="unavailable"} 1"#.into(),
            r#"kubelet_keyring_stale_answers_total{backend="gcp",registry="gcr.io"} 1"#.into(),
            r#"kubelet_keyring_last_failure_timestamp_seconds{backend="gcp",registry="gcr.io"} 1700000002.000"#.into(),
            r#"kubelet_keyring_cache_hits_total{backend="docker-config",registry="we\"ird\\reg\nistry"} 1"#.into(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        // No failure time where there was none; every line is a comment or a sample.
        assert!(!text.contains("last_failure_timestamp_seconds{backend=\"ecr\""));
        for l in text.lines() {
            assert!(
                l.starts_with("# HELP kubelet_keyring_")
                    || l.starts_with("# TYPE kubelet_keyring_")
                    || l.starts_with("kubelet_keyring_"),
                "{l}"
            );
        }
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn folds_survive_restarts_count_each_record_once_and_hold_no_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("metrics");
        let cache_dir = tmp.path().join("cache");
        let now = SystemTime::now();
        let t = ms(now);
        // A cached credential: its secret must not reach the file.
        let cache = DiskCache::open(cache_dir.clone(), [1; 32]).unwrap();
        let img = ImageName::parse("reg.example.com/team/app").unwrap();
        let mut auth = BTreeMap::new();
        auth.insert(
            "reg.example.com".to_string(),
            keyring_api::wire::AuthConfig {
                username: "hunter-user".into(),
                password: keyring_api::Secret::new("hunter2-secret".into()),
            },
        );
        let answer = keyring_api::Answer {
            auth,
            cache_key_type: keyring_api::CacheKeyType::Registry,
            lifetime: Duration::from_secs(600),
            expires_at: None,
            source: "test".into(),
        };
        let (scope, key) = crate::cache::store_key(&img, answer.cache_key_type);
        let entry = crate::cache::Entry::new(key.to_string(), "docker-config", &answer, now);
        cache.write(scope, &entry).unwrap();

        let ok = Record::new(now, Event::FetchOk, "docker-config", &img);
        record(&dir, &[ok]);
        // Rotating at every record: the renamed journal is read on by name.
        let fold = |at| fold_rotating_at(&dir, Some(&cache_dir), at, true, RECORD_LEN as u64);
        fold(now).unwrap();
        // Nothing new: nothing counted again, nothing renamed.
        fold(now).unwrap();
        let ok_only = read_state(&dir.join(STATE));
        assert_eq!(ok_only.series[0].fetches_ok, 1);
        // A writer that opened the journal before the rename appends to the renamed file.
        let renamed: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(&format!("{JOURNAL}.")))
            .collect();
        assert_eq!(renamed.len(), 1, "{renamed:?}");
        let late = rec(t, Event::Hit, "docker-config", "reg.example.com");
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(&renamed[0]))
            .unwrap();
        f.write_all(&late.encode().unwrap()).unwrap();
        record(&dir, std::slice::from_ref(&late));
        // A second fold, as after a restart: reads only what is new.
        let prom = fold(now).unwrap().unwrap();
        let text = fs::read_to_string(&prom).unwrap();
        let l = r#"backend="docker-config",registry="reg.example.com""#;
        assert!(
            text.contains(&format!("kubelet_keyring_cache_hits_total{{{l}}} 2\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("kubelet_keyring_fetches_total{{{l}}} 1\n")),
            "{text}"
        );
        let left: i64 = text
            .lines()
            .find_map(|x| x.strip_prefix(&format!("kubelet_keyring_token_seconds_left{{{l}}} ")))
            .unwrap()
            .parse()
            .unwrap();
        assert!((590..=600).contains(&left), "{left}");
        assert!(!text.contains("hunter"), "{text}");
        assert_eq!(fs::metadata(&prom).unwrap().mode() & 0o777, 0o644);
        // Once nobody can write them any more, renamed journals go; counters stay.
        let later = now + WRITER_GRACE + Duration::from_secs(5);
        fold(later).unwrap();
        fold(later).unwrap();
        let leftover: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(JOURNAL) || n.ends_with(".tmp"))
            .collect();
        assert!(leftover.is_empty(), "{leftover:?}");
        let state = read_state(&dir.join(STATE));
        assert!(state.journals.is_empty());
        assert_eq!(state.series[0].cache_hits, 2);
        assert_eq!(state.series[0].fetches_ok, 1);
        for f in fs::read_dir(&dir).unwrap() {
            let bytes = fs::read(f.unwrap().path()).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains("hunter"));
        }
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, tmp.path().join(JOURNAL)).unwrap();
        let img = ImageName::parse("reg.io/app").unwrap();
        record(
            tmp.path(),
            &[Record::new(SystemTime::now(), Event::Hit, "p", &img)],
        );
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
    }
}
