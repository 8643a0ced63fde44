//! Stdin, stdout and the process's surroundings, shared by the subcommands: the one reader
//! of stdin and the one writer of stdout (both bounded by the invocation's deadline when one
//! was started), the docker-config search directories, and opening the credential cache.
//! Kept out of `get` so that `explain` and `cli` need not import a sibling subcommand for
//! them; it imports only leaves (`args`, `cache`, `config`, `exit`).

use std::io::Write;
use std::os::fd::AsFd;

use keyring_api::deadline::{self, Deadline};
use keyring_api::process::{self, timespec, PIPE_BUF};
use rustix::event::{PollFd, PollFlags};

use keyring_docker_config::SearchPaths;

use crate::args::GlobalArgs;
use crate::cache::{self, DiskCache};
use crate::config::{self, Config};
use crate::exit::Failure;

/// The one place that writes the protocol to stdout. In an invocation with a deadline, a
/// write that could block (a pipe nobody reads, a response above [`PIPE_BUF`]) arms the
/// watchdog first ([`keyring_api::process`]), so it cannot outlast the exit limit; one
/// that cannot (the kubelet's pipe, read as we write) costs a `poll`, not a thread.
#[allow(clippy::print_stdout)]
pub fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    if deadline::exit_at().is_some() {
        deadline::set_stage("writing the response on stdout");
        if bytes.len() > PIPE_BUF || !ready(stdout.as_fd(), PollFlags::OUT) {
            process::arm_watchdog();
        }
    }
    let mut out = stdout.lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Internal(format!("cannot write to stdout: {e}")))
}

/// Whether `fd` is ready for `events` right now.
fn ready(fd: impl AsFd, events: PollFlags) -> bool {
    let mut fds = [PollFd::new(&fd, events)];
    let now = timespec(std::time::Duration::ZERO);
    matches!(rustix::event::poll(&mut fds, Some(&now)), Ok(1))
        && fds[0].revents().intersects(events)
}

/// Why stdin could not be read.
#[derive(Debug)]
pub enum StdinError {
    /// The deadline passed before stdin was closed.
    OutOfTime,
    /// Reading failed.
    Io(std::io::Error),
}

/// Reads stdin to its end, at most `limit` bytes (one more says it is longer), by
/// `deadline` (`None`: no bound, for a person typing at a terminal). Waits with `poll` and
/// reads the descriptor directly (no buffer of `std::io::stdin` between them), so no read
/// ever blocks past the deadline.
pub fn read_stdin(limit: usize, deadline: Option<Deadline>) -> Result<Vec<u8>, StdinError> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let timeout = match deadline {
            None => None,
            Some(d) if d.passed() => return Err(StdinError::OutOfTime),
            Some(d) => Some(timespec(d.remaining())),
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(StdinError::Io(e.into())),
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity().min(limit + 1 - buf.len()).max(1));
        }
        match rustix::io::read(fd, rustix::buffer::spare_capacity(&mut buf)) {
            Ok(0) => return Ok(buf),
            Ok(_) if buf.len() > limit => return Ok(buf),
            Ok(_) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
            Err(e) => return Err(StdinError::Io(e.into())),
        }
    }
}

/// The config of this run: the plugin's file (or the defaults) with the upstream command
/// line applied. A bad file or upstream argument is bad input (exit 2).
pub fn load_config(args: &GlobalArgs) -> Result<Config, Failure> {
    parse_config(args, read_config(args)?)
}

/// The plugin's file as read, not parsed ([`Config::read`]); one it cannot be is bad input.
pub fn read_config(args: &GlobalArgs) -> Result<config::Read, Failure> {
    Config::read(args.config.as_deref()).map_err(|e| Failure::BadInput(e.to_string()))
}

/// [`load_config`] of what [`read_config`] read.
pub fn parse_config(args: &GlobalArgs, read: config::Read) -> Result<Config, Failure> {
    let mut config = Config::from_read(read).map_err(|e| Failure::BadInput(e.to_string()))?;
    config
        .apply_upstream(&args.upstream, &|k| std::env::var(k).ok())
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    Ok(config)
}

/// The cache context bytes of this run from its unparsed config, when they need no parsing
/// ([`config::Read::context_bytes`]): what [`Config::context_bytes`] gives once parsed.
/// `None` under an upstream plugin's command line, whose flags and variables are checked
/// (and refused, exit 2) on every run when they are applied to the parsed config.
pub fn unparsed_context(args: &GlobalArgs, read: &config::Read) -> Option<Vec<u8>> {
    match args.upstream.is_empty() {
        true => read.context_bytes(&[]),
        false => None,
    }
}

/// The docker-config search directories of this process: `--root-dir`, the working
/// directory and `$HOME`, as the kubelet's own keyring resolves them.
pub fn search_paths(args: &GlobalArgs) -> SearchPaths {
    SearchPaths {
        root_dir: args.root_dir.clone(),
        cwd: std::env::current_dir().ok(),
        home: std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(Into::into),
    }
}

/// Opens the cache, or says why not and carries on without it.
pub fn open_cache(args: &GlobalArgs, config: &Config, paths: &SearchPaths) -> Option<DiskCache> {
    open_cache_for(args, &config.context_bytes(), paths)
}

/// [`open_cache`] for the config's context bytes `config_bytes`.
pub fn open_cache_for(
    args: &GlobalArgs,
    config_bytes: &[u8],
    paths: &SearchPaths,
) -> Option<DiskCache> {
    let dir = args.cache_dir.clone().unwrap_or_else(cache::default_dir);
    let context = cache::context_hash(
        config_bytes,
        &[
            Some(paths.root_dir.as_path()),
            paths.cwd.as_deref(),
            paths.home.as_deref(),
        ],
    );
    match DiskCache::open(dir, context) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("running without the cache: {e}");
            None
        }
    }
}
