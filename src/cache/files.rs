//! Which files of the cache directory are the cache's own, and removing them: `cache clear`,
//! and the sweep of what will never be served again.
//!
//! The directory may be one an operator named by mistake (`KUBELET_KEYRING_CACHE_DIR` set to a
//! directory of theirs), so only what is provably ours is ever removed ([`Own`]):
//!
//! * an entry: `<64 hex digits>.json` whose content has an entry's fields ([`Shape`]), of
//!   any format version;
//! * a lock: `<64 hex digits>.lock`, empty (locks are never written);
//! * a temp file: `.<64 hex digits>.<pid>.<nanos>.tmp`, left by a writer killed before its
//!   rename;
//! * the sweep's lock, [`MARKER`], empty.
//!
//! **Growth.** Nothing else removes an entry: a node that pulled from 400 registries once
//! would keep 400 entries and 400 locks for ever, and the metrics fold (which reads every
//! entry) would slow down with them. The sweep removes an entry [`EXPIRED_KEPT`] after it
//! stopped being of use (its freshness and its credential both over: never one that could
//! still be served, fresh or stale), a lock when no entry of its name is left, it is that
//! old and nobody holds it (taken before the unlink, so a waiter never holds a removed lock
//! while another process takes a new one: see [`super::DiskCache::lock`]), and temp files
//! that old. Who sweeps:
//!
//! * the metrics fold (`kubelet-keyring metrics`, and a fetch with metrics on): the whole
//!   directory, in the pass that reads every entry for the seconds-left gauge;
//! * a fetch with metrics off, at most every [`SWEEP_EVERY`] (the mtime of the empty lock
//!   file [`MARKER`] says when the last one was: one `stat` for the fetches in between, and
//!   one sweeper at a time): a window of [`FETCH_SWEEP`] files at a random place, so a node
//!   without metrics stays tidy too, at a bounded cost after the answer is written;
//! * never a cache hit.
//!
//! An entry rewritten between the sweep's read and its unlink (a refresh of an entry an hour
//! past use, at that instant) is lost: a miss, one more fetch.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use keyring_api::file;

use super::entry::{jitter_fraction, ms, Shape};
use super::{DiskCache, Entry, MAX_ENTRY_BYTES};

/// How long an entry (and its lock, and a temp file) is kept after it stopped being of use:
/// `cache list` still shows what was served last and why a fetch came, for an hour; well
/// beyond any clock difference between two invocations.
pub const EXPIRED_KEPT: Duration = Duration::from_secs(3600);

/// Files a fetch looks at for its sweep: at one sweep per [`SWEEP_EVERY`], a cache of
/// 3,000 entries and locks is gone over in four hours.
pub const FETCH_SWEEP: usize = 256;

/// The least time between two fetches' sweeps: listing a directory of 6,000 files costs a
/// fetch some milliseconds, which one fetch in ten minutes can pay.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// The fetches' sweep lock: held while one sweeps, its mtime when the last one did.
pub const MARKER: &str = "kubelet-keyring-sweep.lock";

/// A file of the cache, by its name's shape; the stem is the 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Own<'a> {
    /// `<stem>.json`: an entry if its content says so.
    Entry(&'a str),
    /// `<stem>.lock`.
    Lock(&'a str),
    /// `.<stem>.<pid>.<nanos>.tmp`.
    Temp(&'a str),
    /// [`MARKER`].
    Marker,
}

impl<'a> Own<'a> {
    /// The kind of cache file `name` is shaped as, if any.
    pub fn of(name: &'a str) -> Option<Own<'a>> {
        if name == MARKER {
            return Some(Own::Marker);
        }
        if let Some(stem) = name.strip_suffix(".json").filter(|s| is_stem(s)) {
            return Some(Own::Entry(stem));
        }
        if let Some(stem) = name.strip_suffix(".lock").filter(|s| is_stem(s)) {
            return Some(Own::Lock(stem));
        }
        let mut parts = name.strip_prefix('.')?.strip_suffix(".tmp")?.split('.');
        let (stem, pid, nanos) = (parts.next()?, parts.next()?, parts.next()?);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (parts.next().is_none() && is_stem(stem) && digits(pid) && digits(nanos))
            .then_some(Own::Temp(stem))
    }
}

fn is_stem(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The names in `dir` shaped as cache files.
fn own_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for item in fs::read_dir(dir)? {
        let name = item?.file_name();
        if let Some(name) = name.to_str().filter(|n| Own::of(n).is_some()) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// The bytes of the file `name` in `dir` if it is an entry's shape, with that shape.
fn read_shaped(dir: &Path, name: &str) -> Option<(Vec<u8>, Shape)> {
    let bytes = file::read_in_own_dir(&dir.join(name), MAX_ENTRY_BYTES).ok()?;
    let shape = serde_json::from_slice(&bytes).ok()?;
    Some((bytes, shape))
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Entries.
    pub entries: usize,
    /// Lock files.
    pub locks: usize,
    /// Temp files.
    pub temps: usize,
}

impl DiskCache {
    /// All entry files (for `cache list`), with their entry when it is one this version reads.
    pub fn entries(&self) -> Vec<(std::path::PathBuf, Option<Entry>)> {
        let mut out: Vec<_> = own_names(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| matches!(Own::of(n), Some(Own::Entry(_))))
            .map(|name| {
                let path = self.dir.join(&name);
                let entry = file::read_in_own_dir(&path, MAX_ENTRY_BYTES)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                (path, entry)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Removes every entry, lock and leftover temp file of the cache, and nothing else
    /// ([`Own`]). Returns how many files went.
    pub fn clear(&self) -> std::io::Result<usize> {
        let mut n = 0;
        for name in own_names(&self.dir)? {
            let ours = match Own::of(&name) {
                Some(Own::Entry(_)) => read_shaped(&self.dir, &name).is_some(),
                Some(Own::Lock(_) | Own::Marker) => {
                    file::open_in_own_dir(&self.dir.join(&name), OpenOptions::new().read(true))
                        .and_then(|f| f.metadata())
                        .is_ok_and(|m| m.len() == 0)
                }
                Some(Own::Temp(_)) => true,
                None => false,
            };
            if ours {
                fs::remove_file(self.dir.join(&name))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Sweeps the whole directory, handing every entry still of use to `live` (the metrics
    /// fold's seconds-left pass).
    pub fn sweep(&self, now: SystemTime, live: &mut dyn FnMut(&Entry)) -> Swept {
        match own_names(&self.dir) {
            Ok(names) => self.sweep_names(&names, usize::MAX, now, live),
            Err(e) => {
                tracing::debug!("cannot list {}: {e}", self.dir.display());
                Swept::default()
            }
        }
    }

    /// A fetch's share of the work: unless another fetch did within [`SWEEP_EVERY`] of `now`,
    /// sweeps at most [`FETCH_SWEEP`] files, from a random place in the directory.
    pub fn sweep_some(&self, now: SystemTime) -> Swept {
        let marker = self.dir.join(MARKER);
        let last = fs::symlink_metadata(&marker).and_then(|m| m.modified());
        if last.is_ok_and(|t| t + SWEEP_EVERY > now) {
            return Swept::default();
        }
        let lock = super::dir::open_lock(&marker);
        let _held = match lock.and_then(|f| f.try_lock().map_err(Into::into).map(|()| f)) {
            Ok(f) => {
                let _ = f.set_modified(now);
                f
            }
            // Another fetch is sweeping, or the lock cannot be had: not this fetch's turn.
            Err(e) => {
                tracing::debug!("cache sweep lock {}: {e}", marker.display());
                return Swept::default();
            }
        };
        let Ok(mut names) = own_names(&self.dir) else {
            return Swept::default();
        };
        if !names.is_empty() {
            let start = (jitter_fraction() * names.len() as f64) as usize % names.len();
            names.rotate_left(start);
        }
        self.sweep_names(&names, FETCH_SWEEP, now, &mut |_| {})
    }

    /// Sweeps the first `max` of `names` (all the cache's files in the directory).
    fn sweep_names(
        &self,
        names: &[String],
        max: usize,
        now: SystemTime,
        live: &mut dyn FnMut(&Entry),
    ) -> Swept {
        let now_ms = ms(now);
        let kept_ms = EXPIRED_KEPT.as_millis() as u64;
        let past = |useless_after_ms: u64| useless_after_ms.saturating_add(kept_ms) < now_ms;
        let old = |meta: &fs::Metadata| past(meta.mtime().max(0) as u64 * 1000);
        let remove = |name: &str| match fs::remove_file(self.dir.join(name)) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("cannot remove {}: {e}", self.dir.join(name).display());
                false
            }
        };
        let owned: Vec<(&str, Own)> = names
            .iter()
            .filter_map(|n| Some((n.as_str(), Own::of(n)?)))
            .collect();
        // The entries that stay, to tell which locks still have one (without a stat each).
        let mut entries: HashSet<&str> = owned
            .iter()
            .filter_map(|(_, own)| match own {
                Own::Entry(stem) => Some(*stem),
                _ => None,
            })
            .collect();
        let mut swept = Swept::default();
        let window = &owned[..owned.len().min(max)];
        // Entries first, so that the locks of the entries removed go in the same pass.
        for &(name, own) in window {
            let Own::Entry(stem) = own else {
                continue;
            };
            let Ok(bytes) = file::read_in_own_dir(&self.dir.join(name), MAX_ENTRY_BYTES) else {
                continue;
            };
            // One parse for an entry of this version; another, looser one for the rest.
            let (useless_after_ms, entry) = match serde_json::from_slice::<Entry>(&bytes) {
                Ok(e) => (e.useless_after_ms(), Some(e)),
                Err(_) => match serde_json::from_slice::<Shape>(&bytes) {
                    Ok(shape) => (shape.useless_after_ms(), None),
                    // Not an entry: not ours to remove.
                    Err(_) => continue,
                },
            };
            if past(useless_after_ms) {
                if remove(name) {
                    swept.entries += 1;
                    entries.remove(stem);
                }
            } else if let Some(e) = entry {
                live(&e);
            }
        }
        for &(name, own) in window {
            match own {
                Own::Lock(stem) if !entries.contains(stem) => {
                    let path = self.dir.join(name);
                    let Ok(lock) =
                        file::open_in_own_dir(&path, OpenOptions::new().read(true).write(true))
                    else {
                        continue;
                    };
                    // Held: someone is fetching; it stays. Taken: removed while we hold it.
                    if lock.metadata().is_ok_and(|m| old(&m)) && lock.try_lock().is_ok() {
                        swept.locks += usize::from(remove(name));
                    }
                }
                Own::Temp(_)
                    if fs::symlink_metadata(self.dir.join(name)).is_ok_and(|m| old(&m)) =>
                {
                    swept.temps += usize::from(remove(name));
                }
                _ => {}
            }
        }
        if swept != Swept::default() {
            tracing::debug!("cache sweep in {}: {swept:?}", self.dir.display());
        }
        swept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::CacheKeyType;

    fn expired_entry(cache: &DiskCache, key: &str, at: SystemTime) {
        let answer = keyring_api::Answer {
            auth: Default::default(),
            cache_key_type: CacheKeyType::Registry,
            lifetime: Duration::from_secs(300),
            expires_at: None,
            source: "test".into(),
        };
        let entry = Entry::new(key.into(), "docker-config", &answer, at);
        cache.write(CacheKeyType::Registry, &entry).unwrap();
    }

    #[test]
    fn fetches_sweep_at_most_every_ten_minutes_and_take_turns() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(tmp.path().join("c"), [3; 32]).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let useless = t0 + Duration::from_secs(300) + EXPIRED_KEPT + Duration::from_secs(1);
        expired_entry(&cache, "a.example.com", t0);
        assert_eq!(cache.sweep_some(useless).entries, 1);
        expired_entry(&cache, "b.example.com", t0);
        let soon = useless + SWEEP_EVERY - Duration::from_secs(1);
        assert_eq!(cache.sweep_some(soon), Swept::default());
        // Another fetch sweeping holds the lock: this one does not wait, it leaves it.
        let held = fs::File::open(cache.dir().join(MARKER)).unwrap();
        held.lock().unwrap();
        let due = useless + SWEEP_EVERY + Duration::from_secs(1);
        assert_eq!(cache.sweep_some(due), Swept::default());
        drop(held);
        assert_eq!(cache.sweep_some(due).entries, 1);
        // clear removes the lock too: it is the cache's.
        assert_eq!(cache.clear().unwrap(), 1);
        assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 0);
    }

    #[test]
    fn only_names_shaped_as_the_cache_s_own_files_are_recognised() {
        let stem = "0123456789abcdef".repeat(4);
        assert_eq!(Own::of(&format!("{stem}.json")), Some(Own::Entry(&stem)));
        assert_eq!(Own::of(&format!("{stem}.lock")), Some(Own::Lock(&stem)));
        assert_eq!(
            Own::of(&format!(".{stem}.42.1700000000123456789.tmp")),
            Some(Own::Temp(&stem))
        );
        assert_eq!(Own::of(MARKER), Some(Own::Marker));
        for not in [
            "config.json".to_string(),
            format!("{}.json", stem.to_uppercase()),
            format!("{}.json", &stem[1..]),
            format!("{stem}.json.bak"),
            format!(".{stem}.json"),
            format!(".{stem}.42.tmp"),
            format!(".{stem}.42.x.tmp"),
            format!(".{stem}.42.1.2.tmp"),
            format!("{stem}.42.1.tmp"),
            "backup.lock".into(),
        ] {
            assert_eq!(Own::of(&not), None, "{not}");
        }
    }
}
