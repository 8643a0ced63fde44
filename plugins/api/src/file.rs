//! Opening the files a backend reads on someone else's say-so (paths from the environment,
//! the home directory, the working directory, a cloud config): never block on them.
//!
//! `File::open` on a FIFO waits for a writer, for ever: a `~/.docker/config.json` or a key
//! file that is a FIFO would hang the invocation past the kubelet's 60 s, and no deadline can
//! interrupt a blocking open. [`open`] opens without blocking (`O_NONBLOCK`, which changes
//! nothing for a regular file) and refuses what is not a regular file or a directory (FIFOs,
//! sockets, devices such as `/dev/zero`), so the caller's size cap and error text stay the
//! only rules for the rest. Directories are returned: callers already tell them apart.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` for reading without blocking; a FIFO, socket or device is an
/// [`io::ErrorKind::InvalidInput`] error ("not a regular file").
pub fn open(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_fifo() || kind.is_socket() || kind.is_char_device() || kind.is_block_device() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn regular_files_and_directories_open_the_rest_is_refused_at_once() {
        let dir = tempfile_dir();
        let f = dir.join("f");
        std::fs::write(&f, "x").unwrap();
        let mut s = String::new();
        open(&f).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "x");
        assert!(open(&dir).unwrap().metadata().unwrap().is_dir());
        for p in [Path::new("/dev/zero"), Path::new("/dev/null")] {
            let e = open(p).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{}", p.display());
        }
        // A FIFO without a writer: File::open would wait for ever.
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.expect("mkfifo (coreutils)").success());
        assert_eq!(open(&fifo).unwrap_err().to_string(), "not a regular file");
        assert_eq!(
            open(&dir.join("missing")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("keyring-api-file-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
