//! The credential cache shared by every invocation on the node.
//!
//! The kubelet execs a fresh process per cache miss, so the cache lives on disk:
//!
//! * One directory (`--cache-dir`, default `/var/lib/kubelet-keyring/cache` for root,
//!   `$XDG_CACHE_HOME/kubelet-keyring` otherwise), mode 0700, owned by us. A directory that
//!   is a symlink (however spelled), owned by someone else or group/world writable is
//!   refused ([`dir`], the check the metrics directory gets too): we say so on stderr and run
//!   uncached, because someone else could plant or read credentials there. Its files are
//!   opened with [`keyring_api::file::open_in_own_dir`]: a FIFO, device, symlink or hard link
//!   where an entry or lock should be is a miss (or no lock), never a hang or a read
//!   elsewhere.
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
//! * Growth: entries, locks and temp files no longer of use are swept away an hour later,
//!   by the metrics fold and a little by every fetch, never by a hit ([`files`], which also
//!   says what `cache clear` removes: only the cache's own files).
//! * Stale-if-error: an entry past its refresh time whose credential still works is served
//!   when the backend fails (see [`entry::Freshness`]).
//!
//! [`memory::MemoryCache`] (moka) sits in front of the disk in `explain`, which looks up many
//! images in one process; a one-shot `get-credentials` never builds it.
//!
//! Time is always passed in (`now`), never read inside the freshness rules, so tests set it.

pub mod cmd;
pub mod dir;
pub mod entry;
pub mod files;
pub mod memory;
pub mod workload;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use keyring_api::{file, CacheKeyType, ImageName};
use sha2::{Digest, Sha256};

pub use dir::DirError;
pub use entry::{Entry, Freshness};
pub use workload::{NoWorkload, Workload};

/// Largest entry file read; a bigger one is corrupt by definition.
const MAX_ENTRY_BYTES: u64 = 1 << 20;

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

/// A usable entry, with the `cacheDuration` it may be served for.
pub type Usable = (Entry, Duration);

/// The first usable entry for `image` in the kubelet's lookup order ([`lookup_keys`]), each
/// key's entry read by `read`: a fresh one, or, unless `fresh_only`, a stale one whose
/// credential still works.
pub fn first_usable(
    image: &ImageName,
    now: SystemTime,
    fresh_only: bool,
    mut read: impl FnMut(CacheKeyType, &str) -> Option<Entry>,
) -> Option<Usable> {
    for (scope, key) in lookup_keys(image) {
        if let Some(e) = read(scope, key) {
            match e.freshness(now) {
                Freshness::Fresh(d) => return Some((e, d)),
                Freshness::Stale(d) if !fresh_only => return Some((e, d)),
                _ => {}
            }
        }
    }
    None
}

/// The scope key under which an answer of this type is stored.
pub fn store_key(image: &ImageName, t: CacheKeyType) -> (CacheKeyType, &str) {
    match t {
        CacheKeyType::Image => (CacheKeyType::Image, image.as_str()),
        CacheKeyType::Registry | CacheKeyType::Global => (CacheKeyType::Registry, image.registry()),
    }
}

impl DiskCache {
    /// Opens the cache in `dir` (created or checked by [`dir::prepare`]) with the given
    /// context hash.
    pub fn open(dir: PathBuf, context: [u8; 32]) -> Result<Self, DirError> {
        let dir = dir::prepare(&dir, dir::Kind::Cache)?;
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
        // Never a blocking open or an unbounded read, whatever was planted here: a FIFO, a
        // device or a symlink is a miss (and the fetch's entry replaces it).
        let bytes = match file::read_in_own_dir(&path, MAX_ENTRY_BYTES) {
            Ok(b) => b,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!("cache entry {}: {e}; a miss", path.display());
                }
                return None;
            }
        };
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
    pub fn find(&self, image: &ImageName, now: SystemTime, fresh_only: bool) -> Option<Usable> {
        first_usable(image, now, fresh_only, |scope, key| self.read(scope, key))
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
            let mut f = file::open_in_own_dir(
                &tmp,
                OpenOptions::new().write(true).create_new(true).mode(0o600),
            )?;
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
    ///
    /// The sweep removes a lock file nobody holds ([`files`]); a process that opened it before
    /// and takes it after would hold a lock nobody else can see, so a lock is only held when
    /// its file is still the one at its name, else it is opened again.
    pub fn lock(&self, image: &ImageName, wait: Duration) -> Option<File> {
        let path = self.dir.join(format!(
            "{}.lock",
            self.file_stem(CacheKeyType::Registry, image.registry())
        ));
        let open = || {
            dir::open_lock(&path)
                .map_err(|e| tracing::warn!("cannot open cache lock {}: {e}", path.display()))
                .ok()
        };
        let identity = |m: &fs::Metadata| (m.dev(), m.ino());
        let until = Instant::now()
            .checked_add(wait)
            .unwrap_or_else(Instant::now);
        let mut file = open()?;
        loop {
            match dir::lock_until(&file, until) {
                Ok(true) => {
                    let held = file.metadata().ok().map(|m| identity(&m));
                    if held.is_some() && held == fs::metadata(&path).ok().map(|m| identity(&m)) {
                        return Some(file);
                    }
                    // Swept away (or replaced) since we opened it.
                    file = open()?;
                }
                Ok(false) => {
                    // Not a warning: when the backend then fails too, its error must stay the
                    // invocation's one line on stderr.
                    tracing::info!(
                        "waited {wait:?} for another kubelet-keyring; asking the backend directly"
                    );
                    return None;
                }
                Err(e) => {
                    // NFS and friends: degrade to unlocked atomic writes.
                    tracing::debug!("cache lock unsupported here ({e}); going ahead unlocked");
                    return None;
                }
            }
        }
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
    fn the_directory_is_created_private_and_an_unsafe_one_is_refused() {
        let (tmp, c) = cache();
        let mode = fs::metadata(c.dir()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(c.dir(), &link).unwrap();
        let e = DiskCache::open(link.join("."), [7; 32]).err().unwrap();
        assert!(matches!(e, DirError::Symlink { .. }), "{e}");
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let e = DiskCache::open(open, [7; 32]).err().unwrap();
        assert!(matches!(e, DirError::Writable { .. }), "{e}");
    }

    #[test]
    fn a_fifo_a_symlink_or_a_hard_link_as_an_entry_is_a_miss_at_once() {
        let (tmp, c) = cache();
        let now = SystemTime::now();
        let img = ImageName::parse("reg.io/app").unwrap();
        store(&c, &img, "p", &answer(CacheKeyType::Registry, 300), now);
        let (path, _) = c.entries().remove(0);
        let elsewhere = tmp.path().join("elsewhere.json");
        fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(c.find(&img, now, false).is_none(), "a symlink");
        fs::remove_file(&path).unwrap();
        fs::hard_link(&elsewhere, &path).unwrap();
        assert!(c.find(&img, now, false).is_none(), "a hard link");
        fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.expect("mkfifo").success());
        assert!(c.find(&img, now, false).is_none(), "a FIFO");
        // The next answer's entry takes the FIFO's place.
        store(&c, &img, "p", &answer(CacheKeyType::Registry, 300), now);
        assert!(c.find(&img, now, false).is_some());
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
    fn another_context_has_other_entries() {
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
