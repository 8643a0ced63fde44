//! The credential cache shared by every invocation on the node.
//!
//! The kubelet execs a fresh process per cache miss, so the cache lives on disk:
//!
//! * One directory (`--cache-dir`, default `/var/lib/kubelet-keyring/cache` for root,
//!   `$XDG_CACHE_HOME/kubelet-keyring` otherwise), mode 0700, owned by us. A directory that
//!   is a symlink, owned by someone else or group/world writable is refused: we say so on
//!   stderr and run uncached, because someone else could plant or read credentials there.
//! * One file per key, `<sha256 hex>.json`, mode 0600. The key hashes the scope (image or
//!   registry) with everything that could change the answer (config, search dirs, cloud
//!   environment), so a hand run with other settings never poisons the kubelet's entries.
//!   No image name or secret appears in a file name.
//! * Token mode (KEP-4412): answers made for a pod's service account are kept apart per
//!   service account. [`DiskCache::for_workload`] folds the [`workload::Workload`] key into
//!   every file and lock name, so two service accounts never share an entry nor wait on each
//!   other's lock, and the same service account with a fresh token finds its entry.
//! * Lookup order is the kubelet's: the image key, then the registry key. An answer is stored
//!   under the key its `cacheKeyType` names (`Global` is stored per registry: here one plugin
//!   serves several backends, and a global answer of one must not serve another's images).
//! * Concurrency: writes are atomic (temp file, fsync, rename), so readers never see a partial
//!   entry and need no lock. A miss takes an exclusive lock on the registry's lock file, checks
//!   again, and only then asks the backend: N processes missing at once make one backend call.
//!   Waiting is bounded by the invocation's deadline (`keyring_api::deadline`), which keeps
//!   a share for this process's own backend call; after the bound it asks the backend itself.
//! * A corrupt, truncated or foreign-version entry is a miss, never an error.
//! * Stale-if-error: an entry past its refresh time whose credential still works is served
//!   when the backend fails (see [`entry::Freshness`]).
//!
//! [`memory::MemoryCache`] (moka) sits in front of the disk in `explain`, which looks up many
//! images in one process; a one-shot `get-credentials` never builds it.
//!
//! Time is always passed in (`now`), never read inside the freshness rules, so tests set it.

pub mod cmd;
pub mod entry;
pub mod memory;
pub mod workload;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use keyring_api::{CacheKeyType, ImageName};
use sha2::{Digest, Sha256};

pub use entry::{Entry, Freshness};
pub use workload::{NoWorkload, Workload};

/// Largest entry file read; a bigger one is corrupt by definition.
const MAX_ENTRY_BYTES: u64 = 1 << 20;

/// Why the cache directory was refused.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// It is a symlink.
    #[error("cache directory {0} is a symlink; refusing to use it")]
    Symlink(PathBuf),
    /// Someone else owns it.
    #[error(
        "cache directory {path} is owned by uid {owner}, not by us (uid {me}); refusing to use it"
    )]
    Owner {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        me: u32,
    },
    /// Others may write in it.
    #[error(
        "cache directory {path} is group or world writable (mode {mode:o}); refusing to use it"
    )]
    Writable {
        /// The directory.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// It is not a directory.
    #[error("cache path {0} is not a directory")]
    NotDir(PathBuf),
    /// It could not be created or inspected.
    #[error("cache directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The default directory for this user.
pub fn default_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/kubelet-keyring/cache");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("kubelet-keyring")
}

/// Creates (0700) or checks the cache directory.
pub fn prepare_dir(dir: &Path) -> Result<(), DirError> {
    let io = |source| DirError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
            fs::symlink_metadata(dir).map_err(io)?
        }
        Err(e) => return Err(io(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(DirError::Symlink(dir.to_path_buf()));
    }
    if !meta.is_dir() {
        return Err(DirError::NotDir(dir.to_path_buf()));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(DirError::Owner {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DirError::Writable {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// The on-disk cache.
pub struct DiskCache {
    dir: PathBuf,
    /// Hash of everything besides the scope key that changes answers.
    context: [u8; 32],
    /// In token mode, the service account (`namespace/name`) whose entries these are.
    workload: Option<String>,
}

/// The scope keys to look up for an image, most specific first.
pub fn lookup_keys(image: &ImageName) -> [(CacheKeyType, &str); 2] {
    [
        (CacheKeyType::Image, image.as_str()),
        (CacheKeyType::Registry, image.registry()),
    ]
}

/// The scope key under which an answer of this type is stored.
pub fn store_key(image: &ImageName, t: CacheKeyType) -> (CacheKeyType, &str) {
    match t {
        CacheKeyType::Image => (CacheKeyType::Image, image.as_str()),
        CacheKeyType::Registry | CacheKeyType::Global => (CacheKeyType::Registry, image.registry()),
    }
}

impl DiskCache {
    /// Opens the cache in `dir` (checked by [`prepare_dir`]) with the given context hash.
    pub fn open(dir: PathBuf, context: [u8; 32]) -> Result<Self, DirError> {
        prepare_dir(&dir)?;
        Ok(DiskCache {
            dir,
            context,
            workload: None,
        })
    }

    /// The same cache as seen by one workload (token mode): its key is folded into the
    /// context, so every entry and lock name differs from the node's and from every other
    /// workload's, and its label is recorded in (and required of) each entry.
    pub fn for_workload(self, workload: &Workload) -> Self {
        let mut h = Sha256::new();
        h.update(b"kubelet-keyring workload\0");
        h.update(self.context);
        h.update(workload.digest);
        DiskCache {
            dir: self.dir,
            context: h.finalize().into(),
            workload: Some(workload.label.clone()),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_stem(&self, scope: CacheKeyType, key: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"kubelet-keyring cache v1\0");
        h.update(self.context);
        h.update(scope.as_str().as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        hex(&h.finalize())
    }

    /// Reads the entry for a scope key; any problem is a miss.
    pub fn read(&self, scope: CacheKeyType, key: &str) -> Option<Entry> {
        let path = self
            .dir
            .join(format!("{}.json", self.file_stem(scope, key)));
        // Entries are a few hundred bytes: one read(2) instead of std's growing probes.
        let mut bytes = Vec::with_capacity(4096);
        let file = File::open(&path).ok()?;
        file.take(MAX_ENTRY_BYTES).read_to_end(&mut bytes).ok()?;
        match serde_json::from_slice::<Entry>(&bytes) {
            Ok(e) if e.key == key && e.workload == self.workload => Some(e),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(
                    "cache entry {} unreadable, treating as a miss: {e}",
                    path.display()
                );
                None
            }
        }
    }

    /// The first entry, in kubelet lookup order, for which `pick` says yes.
    pub fn find(
        &self,
        image: &ImageName,
        now: SystemTime,
        fresh_only: bool,
    ) -> Option<(Entry, Duration)> {
        for (scope, key) in lookup_keys(image) {
            if let Some(e) = self.read(scope, key) {
                match e.freshness(now) {
                    Freshness::Fresh(d) => return Some((e, d)),
                    Freshness::Stale(d) if !fresh_only => return Some((e, d)),
                    _ => {}
                }
            }
        }
        None
    }

    /// Writes an entry atomically: a 0600 temp file in the same directory, fsync, rename.
    pub fn write(&self, scope: CacheKeyType, entry: &Entry) -> std::io::Result<()> {
        let stem = self.file_stem(scope, &entry.key);
        let labelled;
        let entry = if entry.workload == self.workload {
            entry
        } else {
            labelled = Entry {
                workload: self.workload.clone(),
                ..entry.clone()
            };
            &labelled
        };
        let tmp = self
            .dir
            .join(format!(".{stem}.{}.{}.tmp", std::process::id(), nanos()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec(entry).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            fs::rename(&tmp, self.dir.join(format!("{stem}.json")))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Takes the exclusive lock for an image's registry, waiting at most `wait`. `None` when
    /// the wait ran out or locking is not possible (the caller then goes ahead unlocked).
    pub fn lock(&self, image: &ImageName, wait: Duration) -> Option<File> {
        let path = self.dir.join(format!(
            "{}.lock",
            self.file_stem(CacheKeyType::Registry, image.registry())
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| tracing::warn!("cannot open cache lock {}: {e}", path.display()))
            .ok()?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => return Some(file),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    // NFS and friends: degrade to unlocked atomic writes.
                    tracing::debug!("cache lock unsupported here ({e}); going ahead unlocked");
                    return None;
                }
            }
            if start.elapsed() >= wait {
                // Not a warning: when the backend then fails too, its error must stay the
                // invocation's one line on stderr.
                tracing::info!(
                    "waited {wait:?} for another kubelet-keyring; asking the backend directly"
                );
                return None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// All entries (for `cache list`), with their file names.
    pub fn entries(&self) -> Vec<(PathBuf, Option<Entry>)> {
        let mut out = Vec::new();
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return out;
        };
        for item in dir.flatten() {
            let path = item.path();
            if path.extension().is_some_and(|e| e == "json")
                && !item.file_name().to_string_lossy().starts_with('.')
            {
                let entry = File::open(&path).ok().and_then(|f| {
                    let mut b = Vec::new();
                    f.take(MAX_ENTRY_BYTES).read_to_end(&mut b).ok()?;
                    serde_json::from_slice(&b).ok()
                });
                out.push((path, entry));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Removes every entry, lock and leftover temp file. Returns how many files went.
    pub fn clear(&self) -> std::io::Result<usize> {
        let mut n = 0;
        for item in fs::read_dir(&self.dir)?.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") || name.ends_with(".lock") || name.ends_with(".tmp") {
                fs::remove_file(item.path())?;
                n += 1;
            }
        }
        Ok(n)
    }
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Whether `var`'s value changes what this program answers: one of this program's own
/// variables, or one a backend declares ([`keyring_api::BackendInfo::cache_env`]). Values of
/// names that look secret are not hashed, only their presence: a hash of a short secret
/// could be brute-forced from a file name.
fn in_context(var: &str, backends: &[&keyring_api::BackendInfo]) -> bool {
    var.starts_with("KUBELET_KEYRING_") || backends.iter().any(|b| b.reads(var))
}

fn looks_secret(name: &str) -> bool {
    ["SECRET", "TOKEN", "PASSWORD", "SESSION", "KEY"]
        .iter()
        .any(|w| name.contains(w))
}

/// Hashes everything besides the scope key that changes the answer: the config file's bytes,
/// the docker-config search directories, and the cloud environment.
pub fn context_hash(config_bytes: &[u8], search_dirs: &[Option<&Path>]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((config_bytes.len() as u64).to_be_bytes());
    h.update(config_bytes);
    for d in search_dirs {
        let s = d
            .map(|p| p.as_os_str().as_encoded_bytes())
            .unwrap_or(b"\xff");
        h.update((s.len() as u64).to_be_bytes());
        h.update(s);
    }
    let backends = crate::backends::all();
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
        .filter(|(k, _)| in_context(k, backends))
        .filter(|(k, _)| {
            // None of these changes an answer: a hit must find the entries of runs without
            // them (the flags' table says which of this program's variables they are).
            crate::args::in_cache_context(k) && !k.starts_with("KUBELET_KEYRING_LOG")
        })
        .collect();
    vars.sort();
    for (k, v) in vars {
        h.update(k.as_bytes());
        h.update([0]);
        if looks_secret(&k) {
            h.update(b"(set)");
        } else {
            h.update(v.as_bytes());
        }
        h.update([0]);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::Answer;

    /// Stores a fresh answer under the key its type names, as `get` does.
    fn store(c: &DiskCache, image: &ImageName, backend: &str, answer: &Answer, now: SystemTime) {
        let (scope, key) = store_key(image, answer.cache_key_type);
        c.write(scope, &Entry::new(key.to_string(), backend, answer, now))
            .expect("write");
    }
    use std::os::unix::fs::PermissionsExt;

    fn answer(t: CacheKeyType, lifetime: u64) -> Answer {
        let mut a = entry::tests::answer(Duration::from_secs(lifetime), None);
        a.cache_key_type = t;
        a
    }

    fn cache() -> (tempfile::TempDir, DiskCache) {
        let tmp = tempfile::tempdir().unwrap();
        let c = DiskCache::open(tmp.path().join("c"), [7; 32]).unwrap();
        (tmp, c)
    }

    #[test]
    fn dir_is_created_private_and_unsafe_dirs_are_refused() {
        let (tmp, c) = cache();
        let mode = fs::metadata(c.dir()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(prepare_dir(&open), Err(DirError::Writable { .. })));
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(c.dir(), &link).unwrap();
        assert!(matches!(prepare_dir(&link), Err(DirError::Symlink(_))));
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(prepare_dir(&file), Err(DirError::NotDir(_))));
    }

    #[test]
    fn stores_under_the_answers_scope_and_looks_up_image_then_registry() {
        let (_t, c) = cache();
        let now = SystemTime::now();
        let img = ImageName::parse("reg.io/team/app").unwrap();
        let other = ImageName::parse("reg.io/other").unwrap();
        store(
            &c,
            &img,
            "docker-config",
            &answer(CacheKeyType::Image, 300),
            now,
        );
        assert!(c.find(&img, now, true).is_some());
        assert!(
            c.find(&other, now, true).is_none(),
            "an Image answer must not serve another repository"
        );
        store(
            &c,
            &img,
            "docker-config",
            &answer(CacheKeyType::Registry, 300),
            now,
        );
        let (e, d) = c.find(&other, now, true).unwrap();
        assert_eq!((e.key.as_str(), d), ("reg.io", Duration::from_secs(300)));
        // Files: 0600, named by hash only.
        for (path, entry) in c.entries() {
            assert!(entry.is_some());
            assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.contains("reg") && name.len() == 64 + 5, "{name}");
        }
    }

    #[test]
    fn corrupt_truncated_and_foreign_entries_are_misses() {
        let (_t, c) = cache();
        let now = SystemTime::now();
        let img = ImageName::parse("reg.io/app").unwrap();
        store(&c, &img, "p", &answer(CacheKeyType::Registry, 300), now);
        let (path, _) = c.entries().remove(0);
        let good = fs::read(&path).unwrap();
        for bad in [&good[..good.len() / 2], b"", b"{}", b"\x00\x01garbage"] {
            fs::write(&path, bad).unwrap();
            assert!(c.find(&img, now, false).is_none());
        }
        let foreign = String::from_utf8(good)
            .unwrap()
            .replace("\"version\":1", "\"version\":2");
        fs::write(&path, foreign).unwrap();
        assert!(c.find(&img, now, false).is_none());
    }

    #[test]
    fn context_changes_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let a = DiskCache::open(tmp.path().into(), context_hash(b"a", &[None])).unwrap();
        let b = DiskCache::open(tmp.path().into(), context_hash(b"b", &[None])).unwrap();
        let img = ImageName::parse("reg.io/app").unwrap();
        store(
            &a,
            &img,
            "p",
            &answer(CacheKeyType::Registry, 300),
            SystemTime::now(),
        );
        assert!(b.find(&img, SystemTime::now(), false).is_none());
        assert!(a.find(&img, SystemTime::now(), false).is_some());
    }

    #[test]
    fn lock_is_exclusive_and_bounded() {
        let (_t, c) = cache();
        let img = ImageName::parse("reg.io/app").unwrap();
        let held = c.lock(&img, Duration::ZERO).unwrap();
        let start = Instant::now();
        assert!(c.lock(&img, Duration::from_millis(100)).is_none());
        assert!(start.elapsed() >= Duration::from_millis(100));
        drop(held);
        assert!(c.lock(&img, Duration::ZERO).is_some());
    }

    #[test]
    fn workloads_have_their_own_entries_and_locks() {
        let (_t, node) = cache();
        let dir = node.dir().to_path_buf();
        let open = || DiskCache::open(dir.clone(), [7; 32]).unwrap();
        let w = |label: &str, d: u8| Workload {
            label: label.into(),
            digest: [d; 32],
        };
        let a = open().for_workload(&w("team/a", 1));
        let a_again = open().for_workload(&w("team/a", 1));
        let b = open().for_workload(&w("team/b", 2));
        let now = SystemTime::now();
        let img = ImageName::parse("reg.io/app").unwrap();
        store(&a, &img, "p", &answer(CacheKeyType::Registry, 300), now);
        assert!(a_again.find(&img, now, false).is_some());
        assert_eq!(
            a_again
                .find(&img, now, false)
                .unwrap()
                .0
                .workload
                .as_deref(),
            Some("team/a")
        );
        assert!(
            b.find(&img, now, false).is_none(),
            "another service account"
        );
        assert!(node.find(&img, now, false).is_none(), "the node");
        store(&node, &img, "p", &answer(CacheKeyType::Registry, 300), now);
        assert!(node.find(&img, now, false).unwrap().0.workload.is_none());
        // A node entry copied over a workload's file name is not served to the workload.
        let entries = node.entries();
        assert_eq!(entries.len(), 2);
        let (node_file, a_file) = if entries[0].1.as_ref().unwrap().workload.is_none() {
            (&entries[0].0, &entries[1].0)
        } else {
            (&entries[1].0, &entries[0].0)
        };
        fs::copy(node_file, a_file).unwrap();
        assert!(a.find(&img, now, false).is_none());
        // Locks are per workload: b is not held up by a.
        let held = a.lock(&img, Duration::ZERO).unwrap();
        assert!(a_again.lock(&img, Duration::ZERO).is_none());
        assert!(b.lock(&img, Duration::ZERO).is_some());
        assert!(node.lock(&img, Duration::ZERO).is_some());
        drop(held);
    }
}
