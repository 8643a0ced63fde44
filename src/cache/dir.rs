//! The one check of a directory kubelet-keyring keeps its own files in: the credential cache
//! and the metrics directory.
//!
//! Whoever can write in such a directory can plant files there (a FIFO to hang us, a symlink
//! or hard link to have us read or write elsewhere, a forged entry to send credentials to
//! their registry), so before use the directory must be ours: not a symlink, owned by our
//! effective uid, not group or world writable. A refused directory is a warning and the
//! invocation goes on without it (the answer never depends on it); the subcommands that are
//! about the directory (`cache list|clear`, `metrics`) exit 2.
//!
//! The path is checked as the kernel will resolve it: `link/`, `link/.` and `link//./` all
//! name `link` itself, a symlink, and are refused like `link` (a trailing `/` or `.` would
//! make `lstat` look through it). A path ending in `..` is refused: what it names is
//! reached through the directory before it, which is not checked. The files inside are
//! opened with [`keyring_api::file::open_in_own_dir`].

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use keyring_api::file;

/// Which directory, for its messages and the mode it is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The credential cache: 0700, no one else reads credentials.
    Cache,
    /// The metrics directory: 0755, node_exporter (another user) reads the textfile.
    Metrics,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cache => "cache directory",
            Kind::Metrics => "metrics directory",
        }
    }

    fn create_mode(self) -> u32 {
        match self {
            Kind::Cache => 0o700,
            Kind::Metrics => 0o755,
        }
    }
}

/// Why a directory was refused. Each text names the directory and says what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// It is a symlink.
    #[error("{what} {path} is a symlink; refusing to use it")]
    Symlink {
        /// Which directory.
        what: &'static str,
        /// As given.
        path: PathBuf,
    },
    /// Someone else owns it.
    #[error("{what} {path} is owned by uid {owner}, not by us (uid {me}); refusing to use it")]
    Owner {
        /// Which directory.
        what: &'static str,
        /// As given.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        me: u32,
    },
    /// Others may write in it.
    #[error("{what} {path} is group or world writable (mode {mode:o}); refusing to use it")]
    Writable {
        /// Which directory.
        what: &'static str,
        /// As given.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// It is not a directory.
    #[error("{what} {path} is not a directory")]
    NotDir {
        /// Which directory.
        what: &'static str,
        /// As given.
        path: PathBuf,
    },
    /// The path is empty or ends in `..`.
    #[error("{what} {path:?} must name a directory by its own name (not empty, not ending in ..)")]
    Unchecked {
        /// Which directory.
        what: &'static str,
        /// As given.
        path: PathBuf,
    },
    /// It could not be created or inspected.
    #[error("{what} {path}: {source}")]
    Io {
        /// Which directory.
        what: &'static str,
        /// As given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// `dir` without `.` components, repeated or trailing slashes: the path whose last component
/// is the directory itself (`.` alone is the working directory, by the name the kernel
/// gives it). `None` when there is no such component (empty, `..` last).
pub fn normalize(dir: &Path) -> Option<PathBuf> {
    let out: PathBuf = dir.components().collect();
    match out.components().next_back()? {
        Component::Normal(_) | Component::RootDir => Some(out),
        Component::CurDir => std::env::current_dir().ok(),
        Component::ParentDir | Component::Prefix(_) => None,
    }
}

/// Creates (with `kind`'s mode, parents too) or checks the directory at `dir`, and returns
/// the path to use for it from now on ([`normalize`]d, so that no later join looks through
/// a symlink the check did not see).
pub fn prepare(dir: &Path, kind: Kind) -> Result<PathBuf, DirError> {
    let what = kind.name();
    let given = || dir.to_path_buf();
    let path = normalize(dir).ok_or_else(|| DirError::Unchecked {
        what,
        path: given(),
    })?;
    let io = |source| DirError::Io {
        what,
        path: given(),
        source,
    };
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(kind.create_mode())
                .create(&path)
                .map_err(io)?;
            fs::symlink_metadata(&path).map_err(io)?
        }
        Err(e) => return Err(io(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(DirError::Symlink {
            what,
            path: given(),
        });
    }
    if !meta.is_dir() {
        return Err(DirError::NotDir {
            what,
            path: given(),
        });
    }
    let me = keyring_api::file::euid();
    if meta.uid() != me {
        return Err(DirError::Owner {
            what,
            path: given(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(DirError::Writable {
            what,
            path: given(),
            mode,
        });
    }
    Ok(path)
}

/// Opens the lock file `path` of a directory of ours (a registry's single-flight lock, the
/// metrics fold's, the sweep's marker): read and write, created 0600, never truncated, through
/// [`file::open_in_own_dir`] (so a FIFO or a link planted in its place is refused).
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    file::open_in_own_dir(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
    )
}

/// Takes `file`'s exclusive lock, polling [`File::try_lock`] (2 ms apart, doubling to 50 ms)
/// until `until`: `Ok(true)` once held, `Ok(false)` when `until` passed first, and the
/// error of a file system that cannot lock. Never [`File::lock`], which waits without
/// bound: a lock held for ever (a process stopped with Ctrl-Z, a file planted and locked)
/// must not hold the invocation past its deadline. Every wait for a lock of ours is this
/// one (the cache's per-registry lock, the metrics fold's).
pub fn lock_until(file: &File, until: Instant) -> std::io::Result<bool> {
    let mut pause = Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_directory_is_created_with_its_kind_s_mode() {
        let tmp = tempfile::tempdir().unwrap();
        for (kind, mode) in [(Kind::Cache, 0o700), (Kind::Metrics, 0o755)] {
            let d = tmp.path().join(format!("{kind:?}/sub"));
            assert_eq!(prepare(&d, kind).unwrap(), d);
            assert_eq!(fs::metadata(&d).unwrap().mode() & 0o777, mode);
        }
    }

    #[test]
    fn symlinks_however_spelled_writable_directories_and_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let shown = link.display().to_string();
        for spelled in [
            shown.clone(),
            format!("{shown}/"),
            format!("{shown}/."),
            format!("{shown}//./"),
        ] {
            let e = prepare(Path::new(&spelled), Kind::Metrics).unwrap_err();
            assert!(matches!(e, DirError::Symlink { .. }), "{spelled}: {e}");
            assert_eq!(
                e.to_string(),
                format!("metrics directory {spelled} is a symlink; refusing to use it")
            );
        }
        assert_eq!(
            prepare(Path::new(&format!("{}/./", real.display())), Kind::Cache).unwrap(),
            real
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(normalize(Path::new("./")), Some(cwd.clone()));
        assert_eq!(
            normalize(Path::new("./a/./b/")),
            Some(PathBuf::from("./a/b"))
        );
        for bad in ["", "..", "a/.."] {
            let e = prepare(Path::new(bad), Kind::Cache).unwrap_err();
            assert!(matches!(e, DirError::Unchecked { .. }), "{bad:?}: {e}");
        }
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            prepare(&open, Kind::Cache).unwrap_err().to_string(),
            format!(
                "cache directory {} is group or world writable (mode 777); refusing to use it",
                open.display()
            )
        );
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            prepare(&file, Kind::Cache),
            Err(DirError::NotDir { .. })
        ));
    }
}
