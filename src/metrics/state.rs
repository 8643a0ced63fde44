//! The counters kept between folds (`kubelet-keyring.state.json`), and the fold that adds the
//! journal's new records to them.
//!
//! The fold takes the directory's lock, reads what each journal holds past what was folded
//! (renamed journals by name, never counting a record twice), writes the state atomically
//! (fsynced by the timer's fold: this is what makes counters survive restarts), sweeps the
//! cache while reading its entries' expiry times, and writes the textfile.
//!
//! Bounds, so that nothing planted or grown in the directory makes a fold slow or large:
//!
//! * The state is read only if it is a regular file of ours of at most [`MAX_STATE_BYTES`];
//!   otherwise counters start again (with a warning), and the new state replaces the file.
//!   Renamed journals a lost state named are adopted by the next `metrics` fold
//!   ([`adopt_orphans`]), so they are deleted as the others are.
//! * A journal that is not a regular file of ours (a FIFO, a symlink, a hard link) is removed
//!   with a warning, so invocations start a new one.
//! * A journal is read in chunks of [`CHUNK`], at most [`FOLD_STEP`] per fold: a backlog is
//!   caught up over the next folds. A journal with more than [`SKIP_PAST`] bytes not folded
//!   yet is no journal any node writes between two folds (a 20 GB sparse file, say): it is
//!   skipped to its end with a warning, its records lost, and since it is past the rotation
//!   size it is renamed and later deleted.
//! * A series (backend and registry) with no event for [`SERIES_KEPT`] is dropped: a node
//!   that pulled once from 400 registries would otherwise write 400 series for ever.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use keyring_api::{file, Deadline};
use serde::{Deserialize, Serialize};

use super::journal::{Decoder, Event, Record, JOURNAL, RECORD_LEN};
use super::textfile::{render, seconds_left};
use super::{PROM, STATE};
use crate::cache::dir::{self, DirError, Kind};
use crate::cache::entry::ms;

const LOCK: &str = "kubelet-keyring.lock";

/// A renamed journal unchanged for this long has no writer left: every invocation ends
/// within 55 s, and one that opened the journal before the rename wrote within that time.
const WRITER_GRACE: Duration = Duration::from_secs(90);

/// The journal is renamed (and a new one started) once it is this large: 3,120 records.
const ROTATE_BYTES: u64 = 1 << 20;

/// The largest state read: some 30,000 series, far more than [`SERIES_KEPT`] lets live.
pub const MAX_STATE_BYTES: u64 = 8 << 20;

/// Bytes of a journal read at a time.
const CHUNK: usize = 64 * RECORD_LEN * 3;

/// Bytes of one journal folded at most per fold (12,483 records): a fold stays short, and
/// the timer's fold every minute still folds far more than a node answers in a minute.
const FOLD_STEP: u64 = 4 << 20;

/// Bytes not yet folded past which a journal is skipped instead (some 200,000 records).
const SKIP_PAST: u64 = 64 << 20;

/// How long a series lives without an event: 8 days, so that the series of a weekly job's
/// registry lives on from one week's pull to the next with a day to spare, and a registry
/// the node stopped pulling from leaves the textfile (and Prometheus's storage) in about a
/// week instead of never.
pub const SERIES_KEPT: Duration = Duration::from_secs(8 * 24 * 3600);

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
    /// Failed fetches by [`keyring_api::ErrorKind::as_str`].
    pub fetches_failed: BTreeMap<String, u64>,
    /// The last successful fetch, ms since the epoch.
    pub last_success_ms: Option<u64>,
    /// The last failed fetch, ms since the epoch.
    pub last_failure_ms: Option<u64>,
    /// The last event of any kind, ms since the epoch ([`SERIES_KEPT`]). Absent in states
    /// written before series expired: the first fold after the upgrade sets it to its time.
    #[serde(default)]
    pub last_event_ms: Option<u64>,
}

/// What the fold keeps between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Counters, sorted by backend and registry.
    pub series: Vec<Counters>,
    /// Journals (the live one and renamed ones not yet deleted), and how many bytes of each
    /// were folded.
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
        c.last_event_ms = c.last_event_ms.max(Some(r.at_ms));
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

    /// Drops the series with no event for [`SERIES_KEPT`] before `now`; a series without a
    /// time (an older state's) is given `now`.
    pub fn expire(&mut self, now: SystemTime) {
        let now_ms = ms(now);
        let kept = SERIES_KEPT.as_millis() as u64;
        self.series.retain_mut(|c| {
            let last = *c.last_event_ms.get_or_insert(now_ms);
            last.saturating_add(kept) >= now_ms
        });
    }
}

/// Why a fold could not be done.
#[derive(Debug, thiserror::Error)]
pub enum FoldError {
    /// The metrics directory is not ours ([`dir::prepare`]).
    #[error(transparent)]
    Dir(#[from] DirError),
    /// Reading or writing in it failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Another fold held the directory's lock (`path`) until the invocation's deadline.
    #[error("another process held the metrics lock {} for {}s, until the invocation's deadline; \
             is a kubelet-keyring metrics stopped (Ctrl-Z) or hung?", .path.display(), .waited.as_secs())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long this fold waited.
        waited: Duration,
    },
}

/// Folds the journals in `dir` into its state and writes the `.prom` file, reading seconds
/// left from (and sweeping) the cache in `cache_dir`. With `wait` false, returns `Ok(None)`
/// at once when another fold holds the lock (a fetch does not wait for the timer's fold);
/// with `wait`, waits for it until the invocation's deadline ([`Deadline::invocation`],
/// polling: [`dir::lock_until`]), then fails with [`FoldError::Locked`]. Returns the file
/// written.
pub fn fold(
    dir: &Path,
    cache_dir: Option<&Path>,
    now: SystemTime,
    wait: bool,
) -> Result<Option<PathBuf>, FoldError> {
    fold_rotating_at(dir, cache_dir, now, wait, ROTATE_BYTES)
}

/// [`fold`], renaming the journal once it holds `rotate_at` bytes.
pub(super) fn fold_rotating_at(
    dir: &Path,
    cache_dir: Option<&Path>,
    now: SystemTime,
    wait: bool,
    rotate_at: u64,
) -> Result<Option<PathBuf>, FoldError> {
    let dir = dir::prepare(dir, Kind::Metrics)?;
    let lock_path = dir.join(LOCK);
    let lock = open_lock(&lock_path)?;
    if wait {
        let started = std::time::Instant::now();
        if !dir::lock_until(&lock, Deadline::invocation().instant())? {
            return Err(FoldError::Locked {
                path: lock_path,
                waited: started.elapsed(),
            });
        }
    } else {
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
    let mut state = read_state(&dir.join(STATE));
    // Only names this fold gives journals are read (and deleted): nothing else in the
    // directory, whatever the state says.
    state.journals.retain(|name, _| is_journal(name));
    if wait {
        adopt_orphans(&dir, &mut state)?;
    }
    // A journal that grew large is renamed, so writers start a new one; it is read on by
    // its new name, which is never reused (names grow). Renaming at every fold would leave
    // a file per fold for the grace period.
    let live_len = match fs::symlink_metadata(dir.join(JOURNAL)) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e.into()),
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
        match fold_journal(&dir, &name, &mut state, now)? {
            Journal::Gone => {
                state.journals.remove(&name);
            }
            Journal::Read { to, finished } => {
                state.journals.insert(name.clone(), to);
                if finished {
                    done.push(name);
                }
            }
        }
    }
    state.expire(now);
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

/// The most directory entries the timer's fold looks at for renamed journals the state does
/// not name (the directory holds a handful of files of ours).
const MAX_LISTED: usize = 256;

/// Renamed journals the state does not name, adopted at their end. They are left by a state
/// file that was lost, or refused and started again: no fold would read or delete them, one
/// file of up to [`ROTATE_BYTES`] (or a skipped giant) for good per loss. Their records
/// belong to the counters that were lost, so none is counted; a record a late writer appends
/// is, and once quiet the file goes as any renamed journal does. Only the timer's fold (the
/// `metrics` command) lists the directory.
fn adopt_orphans(dir: &Path, state: &mut State) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)?.take(MAX_LISTED) {
        let Ok(name) = entry?.file_name().into_string() else {
            continue;
        };
        if name == JOURNAL || !is_journal(&name) || state.journals.contains_key(&name) {
            continue;
        }
        if let Ok(meta) = fs::symlink_metadata(dir.join(&name)) {
            state.journals.insert(name, meta.len());
        }
    }
    Ok(())
}

/// The live journal's name, or a renamed one's (`kubelet-keyring.journal.<ms>`).
fn is_journal(name: &str) -> bool {
    name == JOURNAL
        || name
            .strip_prefix(JOURNAL)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|ms| !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()))
}

/// The directory's lock file; one planted in its place (a FIFO, a symlink) is removed first.
fn open_lock(path: &Path) -> std::io::Result<File> {
    let open = || dir::open_lock(path);
    match open() {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            tracing::warn!("metrics: {}: {e}; removed", path.display());
            fs::remove_file(path)?;
            open()
        }
        other => other,
    }
}

/// What became of one journal in a fold.
enum Journal {
    /// Missing, or removed for not being a journal of ours.
    Gone,
    /// Folded up to byte `to`; `finished` when that is all it will ever hold.
    Read { to: u64, finished: bool },
}

/// Adds the records of the journal `name` past what was folded of it (at most
/// [`FOLD_STEP`] bytes) to `state`.
fn fold_journal(
    dir: &Path,
    name: &str,
    state: &mut State,
    now: SystemTime,
) -> std::io::Result<Journal> {
    let path = dir.join(name);
    let mut file = match file::open_in_own_dir(&path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Journal::Gone),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            tracing::warn!("metrics: {}: {e}; removed", path.display());
            fs::remove_file(&path)?;
            return Ok(Journal::Gone);
        }
        Err(e) => return Err(e),
    };
    // Checked before reading: a renamed journal unchanged for the grace period has no
    // writer left, so what is read now is all it will ever hold.
    let meta = file.metadata()?;
    let changed = SystemTime::UNIX_EPOCH
        + Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
    let quiet = name != JOURNAL && now.duration_since(changed).unwrap_or_default() > WRITER_GRACE;
    // A journal shorter than what was read of it is another file (removed by hand).
    let from = state
        .journals
        .get(name)
        .copied()
        .filter(|&f| f <= meta.len())
        .unwrap_or(0);
    let unread = meta.len() - from;
    if unread > SKIP_PAST {
        tracing::warn!(
            "metrics: {} has {unread} bytes not folded yet, more than any node writes between \
             two folds; skipped to its end (the records in them are not counted)",
            path.display()
        );
        return Ok(Journal::Read {
            to: meta.len(),
            finished: quiet,
        });
    }
    // Only whole records, unless this is all the file will hold: the rest of a record being
    // written is read next time.
    let take = if quiet && unread <= FOLD_STEP {
        unread
    } else {
        unread.min(FOLD_STEP) / RECORD_LEN as u64 * RECORD_LEN as u64
    };
    file.seek(SeekFrom::Start(from))?;
    let mut decoder = Decoder::default();
    let mut chunk = vec![0; CHUNK];
    let mut left = take;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let got = file.read(&mut chunk[..want])?;
        if got == 0 {
            break;
        }
        decoder.feed(&chunk[..got], &mut |r| state.add(&r));
        left -= got as u64;
    }
    let to = from + (take - left);
    Ok(Journal::Read {
        to,
        finished: quiet && to == meta.len(),
    })
}

/// The state in `path`, or a new one when there is none or it cannot be read.
pub(super) fn read_state(path: &Path) -> State {
    let bytes = match file::read_in_own_dir(path, MAX_STATE_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return State::default(),
        Err(e) => {
            tracing::warn!("metrics: {}: {e}; counters start again", path.display());
            return State::default();
        }
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!(
            "metrics: {} unreadable ({e}); counters start again",
            path.display()
        );
        State::default()
    })
}

/// Temp file in the same directory (a name node_exporter does not read), then rename, which
/// also replaces whatever was planted under the name.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = file::open_in_own_dir(
            &tmp,
            OpenOptions::new().write(true).create_new(true).mode(mode),
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
