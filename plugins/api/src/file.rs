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
//! What is refused is an [`io::Error`] of kind [`io::ErrorKind::InvalidInput`] (or
//! [`io::ErrorKind::FileTooLarge`]) whose text is one short phrase for the caller to put
//! after the file's name: `not a regular file (a FIFO)`, `a symlink, not followed`,
//! `larger than 1048576 bytes`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

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

/// Opens a file in a directory that is ours with `options` (read, append, create...), adding
/// `O_NOFOLLOW` and `O_NONBLOCK`: a symlink is refused ("a symlink, not followed"), a FIFO
/// neither blocks the open nor a write, and after the open (one `fstat`) what is not a regular
/// file of our effective uid with one link is refused. A file created here passes.
pub fn open_in_own_dir(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
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

/// The error of a file larger than `max` bytes, for callers that bound a read themselves.
pub fn too_large(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {max} bytes"),
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

    fn tempfile_dir(what: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("keyring-api-file-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
