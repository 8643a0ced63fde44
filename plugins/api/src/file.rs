//! Opening the files kubelet-keyring reads or writes on someone else's say-so: never block on
//! them, never read them unbounded.
//!
//! `File::open` on a FIFO waits for a writer, for ever: a `~/.docker/config.json`, a key file,
//! a `--config` or a cache entry that is a FIFO would hang the invocation past the kubelet's
//! 60 s, and no deadline can interrupt a blocking open. A device (`/dev/zero`) or a sparse
//! file of many gigabytes read whole runs memory out. Every open here is non-blocking
//! (`O_NONBLOCK`, which changes nothing for a regular file) and is followed by a check of
//! what was opened, and every read stops one byte past the caller's cap.
//!
//! Two kinds of files:
//!
//! * **Named by others** (the environment, the home or working directory, a cloud config,
//!   `--config`): [`open`] (a directory is returned, callers tell it apart), [`open_regular`]
//!   and [`read`]. A symlink is followed: pointing a variable through one is the operator's
//!   choice.
//! * **In a directory of our own** (the cache and metrics directories, checked to be ours
//!   before use): [`open_in_own_dir`] and [`read_in_own_dir`] do not follow a symlink either,
//!   and refuse a file owned by someone else or with another hard link: only something
//!   planted there could be one, and a hard link would have us read or append to a file
//!   elsewhere.
//!
//! The CA certificates that replace the system's ([`SSL_CERT_FILE`], [`SSL_CERT_DIR`]) are
//! files named by others too, read by [`ca_files`] under the same rules: every TLS client of
//! this program takes its roots from there, never from a library that opens them itself.
//!
//! What is refused is an [`io::Error`] of kind [`io::ErrorKind::InvalidInput`] (or
//! [`io::ErrorKind::FileTooLarge`]) whose text is one short phrase for the caller to put
//! after the file's name: `not a regular file (a FIFO)`, `a symlink, not followed`,
//! `larger than 1048576 bytes`.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::Secret;

/// Opens `path` for reading without blocking; a FIFO, socket or device is an
/// [`io::ErrorKind::InvalidInput`] error ("not a regular file (a FIFO)"). Directories open.
pub fn open(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    match file.metadata()?.file_type() {
        t if t.is_dir() => Ok(file),
        t => regular(t).map(|()| file),
    }
}

/// [`open`], but a directory is refused too: for a path that must name a file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = open(path)?;
    regular(file.metadata()?.file_type())?;
    Ok(file)
}

/// The contents of the regular file at `path` ([`open_regular`]), at most `max` bytes.
pub fn read(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_at_most(open_regular(path)?, max)
}

/// [`read`] for a file holding a secret (a token, a key, a client secret), through
/// [`read_secret_at_most`]: the bytes are wiped whatever happens, a refusal included.
pub fn read_secret(path: &Path, max: u64) -> io::Result<crate::Secret<Vec<u8>>> {
    read_secret_at_most(open_regular(path)?, max)
}

/// Opens a file in a directory that is ours with `options` (read, append, create...), adding
/// `O_NOFOLLOW` and `O_NONBLOCK`: a symlink is refused ("a symlink, not followed"), a FIFO
/// neither blocks the open nor a write, and after the open (one `fstat`) what is not a regular
/// file of our effective uid with one link is refused. A file created here passes.
pub fn open_in_own_dir(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // O_NOFOLLOW's answer for a final component that is a symlink.
            Some(libc::ELOOP) => refused("a symlink, not followed"),
            // A FIFO opened for writing with no reader, under O_NONBLOCK.
            Some(libc::ENXIO) => refused("not a regular file"),
            _ => e,
        })?;
    let meta = file.metadata()?;
    regular(meta.file_type())?;
    let me = euid();
    if meta.uid() != me {
        return Err(refused(&format!(
            "owned by uid {}, not by us (uid {me})",
            meta.uid()
        )));
    }
    if meta.nlink() != 1 {
        return Err(refused(&format!("{} hard links, not one", meta.nlink())));
    }
    Ok(file)
}

/// This process's effective uid, asked of the kernel once: the owner of our own files and
/// directories.
pub fn euid() -> u32 {
    static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *EUID.get_or_init(|| rustix::process::geteuid().as_raw())
}

/// The contents of the regular file at `path` in a directory of ours ([`open_in_own_dir`]),
/// at most `max` bytes.
pub fn read_in_own_dir(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_at_most(open_in_own_dir(path, OpenOptions::new().read(true))?, max)
}

/// Everything `reader` holds, if that is at most `max` bytes; otherwise an
/// [`io::ErrorKind::FileTooLarge`] error ("larger than `max` bytes"), after reading one byte
/// past the cap and no more.
pub fn read_at_most(reader: impl Read, max: u64) -> io::Result<Vec<u8>> {
    // Most files read this way are small: one read(2) for them, no growing probes.
    let mut bytes = Vec::with_capacity(max.min(4096) as usize);
    reader.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// [`read_at_most`] for a secret (a key, a token file): the bytes are in a [`Secret`] before
/// any error returns, so a partial read or a file past the cap is wiped on drop too.
pub fn read_secret_at_most(reader: impl Read, max: u64) -> io::Result<Secret<Vec<u8>>> {
    let mut bytes = Vec::with_capacity(max.min(4096) as usize);
    let read = reader.take(max.saturating_add(1)).read_to_end(&mut bytes);
    let bytes = Secret::new(bytes);
    read?;
    if bytes.expose().len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// The error of a file larger than `max` bytes, for callers that bound a read themselves.
pub fn too_large(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {max} bytes"),
    )
}

/// The variable naming one PEM file of CA certificates to trust instead of the system's
/// (OpenSSL's, Go's `crypto/x509` and `rustls-native-certs` read it alike).
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// The variable naming directories (`:`-separated) of PEM files of CA certificates to trust
/// instead of the system's.
pub const SSL_CERT_DIR: &str = "SSL_CERT_DIR";
/// The most bytes read from one CA certificate file: a whole distribution bundle is about
/// 220 KB.
pub const MAX_CA_FILE_BYTES: u64 = 4 << 20;
/// The most bytes read from all of them together.
pub const MAX_CA_BYTES: u64 = 16 << 20;
/// The most files read from the directories (`/etc/ssl/certs` holds a few hundred, most of
/// them links to the same files).
pub const MAX_CA_FILES: usize = 4096;

/// What [`ca_files`] read: the PEM text of every file, and what could not be read.
#[derive(Debug, Default)]
pub struct CaFiles {
    /// The files' contents, one after another (a newline between two), unparsed.
    pub pem: Vec<u8>,
    /// How many files were read.
    pub files: usize,
    /// The files and directories that could not be read, with why, in the order met.
    pub problems: Vec<(PathBuf, io::Error)>,
}

impl CaFiles {
    /// Reads the file at `path` (see [`ca_files`]) and appends it, or notes why not; `false`
    /// once [`MAX_CA_BYTES`] are read and nothing more may be.
    fn add(&mut self, path: &Path) -> bool {
        let left = MAX_CA_BYTES.saturating_sub(self.pem.len() as u64);
        match read(path, MAX_CA_FILE_BYTES.min(left)) {
            Ok(pem) => {
                if !self.pem.is_empty() {
                    self.pem.push(b'\n');
                }
                self.pem.extend_from_slice(&pem);
                self.files += 1;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge && left < MAX_CA_FILE_BYTES => {
                let all = too_large(MAX_CA_BYTES).to_string();
                self.problems
                    .push((path.to_path_buf(), refused(&format!("{all} in all"))));
                false
            }
            Err(e) => {
                self.problems.push((path.to_path_buf(), e));
                true
            }
        }
    }
}

/// The CA certificates named by `file` ([`SSL_CERT_FILE`]'s value) and `dirs`
/// ([`SSL_CERT_DIR`]'s), as `rustls-native-certs` finds them (the file; every regular file
/// in each directory, symlinks followed, each file once) but read as files named by others:
/// without blocking, a FIFO, device or directory in a file's place refused, each file at most
/// [`MAX_CA_FILE_BYTES`], at most [`MAX_CA_FILES`] files and [`MAX_CA_BYTES`] in all.
/// `None` when neither is set (empty counts as unset, as in Go): then the system's own
/// bundle applies. A file that cannot be read is a problem, not an error: what the others
/// hold still counts, and the caller says what it found.
pub fn ca_files(file: Option<&OsStr>, dirs: Option<&OsStr>) -> Option<CaFiles> {
    let file = file.filter(|f| !f.is_empty());
    let dirs = dirs.filter(|d| !d.is_empty());
    if file.is_none() && dirs.is_none() {
        return None;
    }
    let mut found = CaFiles::default();
    if let Some(f) = file {
        found.add(Path::new(f));
    }
    let mut seen = std::collections::HashSet::new();
    for dir in std::env::split_paths(dirs.unwrap_or_default()) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(d) => d.flatten().map(|e| e.path()).collect(),
            Err(e) => {
                found.problems.push((dir, e));
                continue;
            }
        };
        entries.sort();
        for path in entries {
            // A stat does not block on a FIFO; what is not a regular file is skipped
            // silently, as `openssl rehash` directories hold other things too.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() && seen.insert((m.dev(), m.ino())) => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    found.problems.push((path, e));
                    continue;
                }
            }
            if found.files >= MAX_CA_FILES {
                found.problems.push((
                    dir.clone(),
                    refused(&format!("more than {MAX_CA_FILES} certificate files")),
                ));
                return Some(found);
            }
            if !found.add(&path) {
                return Some(found);
            }
        }
    }
    Some(found)
}

/// [`ca_files`] of this process's [`SSL_CERT_FILE`] and [`SSL_CERT_DIR`].
pub fn ca_files_from_env() -> Option<CaFiles> {
    ca_files(
        std::env::var_os(SSL_CERT_FILE).as_deref(),
        std::env::var_os(SSL_CERT_DIR).as_deref(),
    )
}

fn regular(t: std::fs::FileType) -> io::Result<()> {
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "of an unknown type"
    };
    Err(refused(&format!("not a regular file ({what})")))
}

fn refused(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo").arg(path).status();
        assert!(made.expect("mkfifo (coreutils)").success());
    }

    #[test]
    fn regular_files_and_directories_open_the_rest_is_refused_at_once() {
        let dir = tempfile_dir("open");
        let f = dir.join("f");
        std::fs::write(&f, "x").unwrap();
        let mut s = String::new();
        open(&f).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "x");
        assert!(open(&dir).unwrap().metadata().unwrap().is_dir());
        for (p, what) in [
            ("/dev/zero", "a character device"),
            ("/dev/null", "a character device"),
        ] {
            let e = open(Path::new(p)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{p}");
            assert_eq!(e.to_string(), format!("not a regular file ({what})"));
        }
        // A FIFO without a writer: File::open would wait for ever.
        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        assert_eq!(
            open(&fifo).unwrap_err().to_string(),
            "not a regular file (a FIFO)"
        );
        assert_eq!(
            open(&dir.join("missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_read_stops_one_byte_past_its_cap_as_a_plain_one() {
        let mut zeros = io::repeat(0).take(1 << 30);
        let e = read_secret_at_most(&mut zeros, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "larger than 4 bytes");
        assert_eq!(zeros.limit(), (1 << 30) - 5);
        let ok = read_secret_at_most(&b"12345"[..], 5).unwrap();
        assert_eq!(ok.expose(), b"12345");
    }

    #[test]
    fn a_read_is_of_a_regular_file_and_stops_one_byte_past_its_cap() {
        let dir = tempfile_dir("read");
        let f = dir.join("f");
        std::fs::write(&f, "12345").unwrap();
        assert_eq!(read(&f, 5).unwrap(), b"12345");
        let e = read(&f, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "larger than 4 bytes");
        assert_eq!(
            read(&dir, 10).unwrap_err().to_string(),
            "not a regular file (a directory)"
        );
        // A device is refused before a byte is read, not as "larger than".
        assert_eq!(
            read(Path::new("/dev/zero"), 10).unwrap_err().to_string(),
            "not a regular file (a character device)"
        );
        // A symlink named by others is the operator's choice: followed.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(read(&link, 5).unwrap(), b"12345");
        // A secret is read by the same rules.
        assert_eq!(read_secret(&f, 5).unwrap().expose(), b"12345");
        assert_eq!(
            read_secret(&f, 4).unwrap_err().to_string(),
            "larger than 4 bytes"
        );
        assert_eq!(
            read_secret(Path::new("/dev/zero"), 10)
                .unwrap_err()
                .to_string(),
            "not a regular file (a character device)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn in_a_directory_of_ours_symlinks_fifos_and_devices_are_refused_for_reading_and_writing() {
        let dir = tempfile_dir("own");
        let f = dir.join("f");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(read_in_own_dir(&f, 1).unwrap(), b"x");
        let zero = dir.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let fifo = dir.join("fifo");
        mkfifo(&fifo);
        for (p, why) in [
            (&zero, "a symlink, not followed"),
            (&fifo, "not a regular file (a FIFO)"),
        ] {
            let e = read_in_own_dir(p, 10).unwrap_err();
            assert_eq!(
                (e.kind(), e.to_string().as_str()),
                (io::ErrorKind::InvalidInput, why)
            );
        }
        // Appending to a FIFO nobody reads neither blocks nor writes.
        let append = || OpenOptions::new().append(true).create(true).clone();
        let e = open_in_own_dir(&fifo, &mut append()).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
        // A FIFO somebody reads opens at once, and is refused after the open.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let e = open_in_own_dir(&fifo, &mut append()).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
        drop(reader);
        let link = dir.join("link");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(
            open_in_own_dir(&link, &mut append())
                .unwrap_err()
                .to_string(),
            "a symlink, not followed"
        );
        // A hard link to a file elsewhere is neither read nor written through.
        let linked = dir.join("linked");
        std::fs::hard_link(&f, &linked).unwrap();
        let e = open_in_own_dir(&linked, &mut append()).unwrap_err();
        assert_eq!(e.to_string(), "2 hard links, not one");
        assert!(read_in_own_dir(&f, 1).is_err());
        std::fs::remove_file(&linked).unwrap();
        assert_eq!(read_in_own_dir(&f, 1).unwrap(), b"x");
        // A new file is created, regular.
        let new = dir.join("new");
        open_in_own_dir(&new, &mut append()).unwrap();
        assert!(std::fs::metadata(&new).unwrap().is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_of_another_owner_in_a_directory_of_ours_is_refused() {
        assert!(
            rustix::process::geteuid().is_root(),
            "needs root to chown (CI runs as root)"
        );
        let dir = tempfile_dir("owner");
        let f = dir.join("planted");
        std::fs::write(&f, "x").unwrap();
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        assert_eq!(
            read_in_own_dir(&f, 1).unwrap_err().to_string(),
            "owned by uid 65534, not by us (uid 0)"
        );
        // Named by others, it is read: ownership is the operator's business there.
        assert_eq!(read(&f, 1).unwrap(), b"x");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ca_files_are_read_as_files_named_by_others() {
        let os = |s: &str| Some(OsStr::new(s).to_owned());
        assert!(ca_files(None, None).is_none());
        assert!(ca_files(os("").as_deref(), os("").as_deref()).is_none());
        let dir = tempfile_dir("ca");
        let certs = dir.join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("a.pem"), "A").unwrap();
        std::fs::write(certs.join("b.pem"), "B").unwrap();
        // The links `openssl rehash` makes: each file is read once.
        std::os::unix::fs::symlink(certs.join("a.pem"), certs.join("0a1b2c3d.0")).unwrap();
        mkfifo(&certs.join("fifo.pem"));
        std::os::unix::fs::symlink("/dev/zero", certs.join("zero.pem")).unwrap();
        std::os::unix::fs::symlink("missing", certs.join("dangling.pem")).unwrap();
        std::fs::create_dir(certs.join("java")).unwrap();
        let bundle = dir.join("bundle.pem");
        std::fs::write(&bundle, "F").unwrap();
        let found = ca_files(
            Some(bundle.as_os_str()),
            Some(
                std::env::join_paths([&certs, &dir.join("none")])
                    .unwrap()
                    .as_os_str(),
            ),
        )
        .unwrap();
        // The file first, then each directory's regular files by name (the link sorts first).
        assert_eq!((found.pem.as_slice(), found.files), (&b"F\nA\nB"[..], 3));
        let problems: Vec<String> = found
            .problems
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(problems, [dir.join("none").display().to_string()]);
        // A FIFO, a device or a directory as the file: refused at once, named.
        for (file, why) in [
            (certs.join("fifo.pem"), "not a regular file (a FIFO)"),
            (
                PathBuf::from("/dev/zero"),
                "not a regular file (a character device)",
            ),
            (certs.clone(), "not a regular file (a directory)"),
        ] {
            let found = ca_files(Some(file.as_os_str()), None).unwrap();
            assert_eq!((found.files, found.pem.len()), (0, 0), "{}", file.display());
            assert_eq!(found.problems[0].1.to_string(), why);
        }
        // Bounded, per file.
        let big = dir.join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_CA_FILE_BYTES + 1)
            .unwrap();
        let found = ca_files(Some(big.as_os_str()), None).unwrap();
        assert_eq!(
            found.problems[0].1.to_string(),
            format!("larger than {MAX_CA_FILE_BYTES} bytes")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(what: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("keyring-api-file-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
