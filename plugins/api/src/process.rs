//! Child processes under the invocation's deadline, and the watchdog that ends the invocation
//! when its exit limit passes.
//!
//! # Running a child: [`run`]
//!
//! For docker credential helpers, AWS `credential_process` and any other program a backend
//! must ask. The caller builds the [`Command`]: an argument vector run directly (no shell;
//! `docker-credential-ecr-login get`), or, where the setting is one command-line string
//! (`credential_process`), [`shell`]'s `sh -c`; and its environment, working directory and
//! arguments. Then [`run`]:
//!
//! * spawns it in a process group of its own (`process_group(0)`: its pid is the group's id)
//!   with stdin, stdout and stderr piped, and registers the group with the watchdog;
//! * writes `input` on its stdin and closes it (a child that exits without reading it is not
//!   an error: its exit status says what it thought), while reading stdout and stderr
//!   concurrently, from one thread, with `poll`: a child never blocks on a full pipe;
//! * bounds what it keeps: stdout up to [`Limits::stdout`] (one byte more and the child is
//!   killed: [`Error::StdoutTooLarge`]), held as a [`Secret`]; stderr up to
//!   [`Limits::stderr_kept`], also a [`Secret`] (a child's diagnostics may quote what it was
//!   told), the rest read, counted ([`Output::stderr_len`]) and dropped;
//! * waits until the child has exited and both its outputs are closed, at most until the
//!   [`Deadline`] ([`Error::TimedOut`]);
//! * on any return before that (deadline, oversized output, an I/O error, a panic), kills the
//!   whole group with `SIGKILL` (a shell script's own children go with it) and reaps the
//!   child. After a clean exit nothing is killed.
//!
//! A descendant that leaves the group (`setsid`, as a daemon does) is out of reach: nothing
//! here can find it.
//!
//! # The watchdog
//!
//! The binary [`install_watchdog`]s at start-up, with what to write and the exit code, and
//! [`arm_watchdog`]s where the invocation leaves the cache-hit path (a miss, a response that
//! may block on stdout); [`run`] arms it too. Armed, one thread sleeps until the
//! [`exit limit`](crate::deadline::exit_at) of the [`start`](crate::deadline::start)ed
//! invocation; if the process is still there then, it kills the group of every child
//! [`run`] registered (and lets none start after), writes the installed line, naming the
//! [`stage`](crate::deadline::stage), if stderr can take it without blocking, and exits.
//! It never takes the lock of `std::io::stderr` (the thread it interrupts may hold it,
//! blocked on a full pipe).
//!
//! A cache hit arms nothing: a thread's start and end cost about 0.5 ms, a third of a hit.
//! What a hit does that could block, it bounds itself: stdin is read with `poll` against the
//! budget, the response is written only when it cannot block (else the watchdog is armed
//! first), and files are opened without blocking ([`file`](crate::file)).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Signal};

use crate::deadline::{self, Deadline};
use crate::Secret;

/// How much of a child's output [`run`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most stdout may hold; one byte more is [`Error::StdoutTooLarge`].
    pub stdout: usize,
    /// How much of stderr is kept in [`Output::stderr`]; the rest is read and dropped.
    pub stderr_kept: usize,
}

impl Default for Limits {
    /// 1 MiB of stdout (a credential reply is a few KiB), 64 KiB of stderr.
    fn default() -> Self {
        Limits {
            stdout: 1 << 20,
            stderr_kept: 64 << 10,
        }
    }
}

/// What a finished child left.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// All of its stdout.
    pub stdout: Secret<Vec<u8>>,
    /// The first [`Limits::stderr_kept`] bytes of its stderr. Never quote it in an error or
    /// a log line: it may hold what the child was given.
    pub stderr: Secret<Vec<u8>>,
    /// How many bytes it wrote on stderr in all.
    pub stderr_len: u64,
}

/// Why [`run`] has no [`Output`]. None of the texts holds anything the child wrote.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program was not found (not on `PATH`, or no such file).
    #[error("was not found")]
    NotFound,
    /// It exists but could not be started (permissions, bad interpreter line, ...).
    #[error("could not be started: {0}")]
    Spawn(#[source] io::Error),
    /// Talking to it (pipes, waiting) failed; it was killed.
    #[error("could not be run to the end: {0}")]
    Io(#[source] io::Error),
    /// It had not finished when the deadline passed (it was given the `Duration`); it was
    /// killed with its group. Also when the invocation's exit limit has passed and no new
    /// child may start.
    #[error("did not finish within {}", crate::duration::format(*.0))]
    TimedOut(Duration),
    /// It wrote more than the limit (the `usize`) on stdout; it was killed with its group.
    #[error("printed more than {0} bytes")]
    StdoutTooLarge(usize),
}

/// `sh -c <command_line>`, for a setting that is one command-line string (AWS
/// `credential_process`). Add environment and the like on the result; never put untrusted
/// text in `command_line`.
pub fn shell(command_line: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(command_line);
    c
}

/// Runs `command` (see the module docs): `input` on its stdin, its outputs within `limits`,
/// all by `deadline`. Its stdio and process group are set here, whatever the caller set.
pub fn run(
    mut command: Command,
    input: &[u8],
    limits: Limits,
    deadline: Deadline,
) -> Result<Output, Error> {
    let given = deadline.remaining();
    if given.is_zero() {
        return Err(Error::TimedOut(given));
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    arm_watchdog();
    let mut running = Running::spawn(&mut command, given)?;
    let child = &mut running.child;
    let mut stdin = child.stdin.take().filter(|_| !input.is_empty());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for fd in [
        stdin.as_ref().map(|s| s.as_fd()),
        stdout.as_ref().map(|s| s.as_fd()),
        stderr.as_ref().map(|s| s.as_fd()),
    ]
    .into_iter()
    .flatten()
    {
        rustix::io::ioctl_fionbio(fd, true).map_err(|e| Error::Io(e.into()))?;
    }

    let mut written = 0;
    let mut out = Collected::new(limits.stdout.min(16 << 10));
    let mut err = Collected::new(limits.stderr_kept.min(4 << 10));
    let mut err_len = 0u64;
    while stdin.is_some() || stdout.is_some() || stderr.is_some() {
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(Error::TimedOut(given));
        }
        let timeout = timespec(left);
        {
            let mut fds = Vec::with_capacity(3);
            if let Some(s) = &stdin {
                fds.push(PollFd::new(s, PollFlags::OUT));
            }
            if let Some(s) = &stdout {
                fds.push(PollFd::new(s, PollFlags::IN));
            }
            if let Some(s) = &stderr {
                fds.push(PollFd::new(s, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::Io(e.into())),
            }
        }
        // Each stream is tried whatever poll said: they are non-blocking, and a stream with
        // nothing to do answers WouldBlock.
        if let Some(s) = &mut stdin {
            match s.write(&input[written..]) {
                Ok(n) => written += n,
                // It closed its stdin: its answer is its own to give.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => written = input.len(),
                Err(e) if would_block(&e) => {}
                Err(e) => return Err(Error::Io(e)),
            }
            if written == input.len() {
                stdin = None;
            }
        }
        if let Some(s) = &stdout {
            let drained = out.drain(s, limits.stdout + 1).map_err(Error::Io)?;
            if out.len() > limits.stdout {
                return Err(Error::StdoutTooLarge(limits.stdout));
            }
            if matches!(drained, Drained::Eof(_)) {
                stdout = None;
            }
        }
        if let Some(s) = &stderr {
            let drained = err.drain(s, limits.stderr_kept).map_err(Error::Io)?;
            err_len += drained.count();
            if matches!(drained, Drained::Eof(_)) {
                stderr = None;
            }
        }
    }

    // Both outputs are closed: the child has exited or is about to.
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = running.child.try_wait().map_err(Error::Io)? {
            break status;
        }
        let left = deadline.remaining();
        if left.is_zero() {
            return Err(Error::TimedOut(given));
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    running.clean = true;
    Ok(Output {
        status,
        stdout: out.into_secret(),
        stderr: err.into_secret(),
        stderr_len: err_len,
    })
}

/// `d` as poll's timeout (a day at most: every caller loops until its own deadline).
pub fn timespec(d: Duration) -> Timespec {
    let d = d.min(Duration::from_secs(24 * 3600));
    Timespec {
        tv_sec: d.as_secs().try_into().unwrap_or(0),
        tv_nsec: d.subsec_nanos().into(),
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// What one [`Collected::drain`] saw.
enum Drained {
    /// The stream is closed; `u64` bytes came before.
    Eof(u64),
    /// It would block now; `bytes` came before.
    Open { bytes: u64 },
}

impl Drained {
    fn count(&self) -> u64 {
        match *self {
            Drained::Eof(n) | Drained::Open { bytes: n } => n,
        }
    }
}

/// Bytes read from a child, kept in buffers that are wiped when dropped or outgrown.
struct Collected {
    kept: Vec<u8>,
    /// Where bytes past the kept limit are read to and dropped.
    scratch: Vec<u8>,
}

impl Collected {
    fn new(capacity: usize) -> Self {
        Collected {
            kept: Vec::with_capacity(capacity),
            scratch: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.kept.len()
    }

    /// Reads what `fd` has now. At most `keep` bytes in all are kept; the rest are read
    /// and dropped.
    fn drain(&mut self, fd: impl AsFd, keep: usize) -> io::Result<Drained> {
        let mut bytes = 0u64;
        loop {
            let keeping = self.kept.len() < keep;
            let buf = if keeping {
                if self.kept.len() == self.kept.capacity() {
                    self.grow();
                }
                &mut self.kept
            } else {
                self.scratch.clear();
                self.scratch.reserve(8 << 10);
                &mut self.scratch
            };
            // Into the buffer's spare capacity (never empty here: 0 would read as the end).
            match rustix::io::read(&fd, spare_capacity(buf)) {
                Ok(0) => return Ok(Drained::Eof(bytes)),
                Ok(n) => bytes += n as u64,
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                    return Ok(Drained::Open { bytes })
                }
                Err(e) => return Err(e.into()),
            }
            if keeping && self.kept.len() > keep {
                // What is cut off stays in the allocation until it is wiped.
                self.kept.truncate(keep);
            }
        }
    }

    /// Doubles the kept buffer's capacity, wiping the old one.
    fn grow(&mut self) {
        let mut bigger = Vec::with_capacity((self.kept.capacity() * 2).max(4 << 10));
        bigger.extend_from_slice(&self.kept);
        drop(Secret::new(std::mem::replace(&mut self.kept, bigger)));
    }

    fn into_secret(mut self) -> Secret<Vec<u8>> {
        drop(Secret::new(std::mem::take(&mut self.scratch)));
        Secret::new(std::mem::take(&mut self.kept))
    }
}

impl Drop for Collected {
    fn drop(&mut self) {
        drop(Secret::new(std::mem::take(&mut self.kept)));
        drop(Secret::new(std::mem::take(&mut self.scratch)));
    }
}

/// A spawned child that is killed with its whole process group and reaped on drop, unless
/// it was seen to exit with its outputs closed.
struct Running {
    child: Child,
    pgid: Pid,
    clean: bool,
}

impl Running {
    /// Spawns under the registry's lock, so the watchdog either sees the group or has
    /// already closed the registry (then nothing starts).
    fn spawn(command: &mut Command, given: Duration) -> Result<Running, Error> {
        let mut groups = groups();
        if groups.closed {
            return Err(Error::TimedOut(given));
        }
        let child = command.spawn().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound,
            _ => Error::Spawn(e),
        })?;
        let pgid = Pid::from_child(&child);
        groups.pgids.push(pgid);
        Ok(Running {
            child,
            pgid,
            clean: false,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.clean {
            // The child leads its group, so its pid is the group's id. Until it is reaped
            // below, that id cannot be reused; if it has exited but a child of its own
            // still holds our pipes, the group is still there.
            let _ = rustix::process::kill_process_group(self.pgid, Signal::KILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        groups().pgids.retain(|&p| p != self.pgid);
    }
}

/// The process groups of the children [`run`] has running.
struct Groups {
    /// Set by the watchdog: no child may start any more.
    closed: bool,
    pgids: Vec<Pid>,
}

static GROUPS: Mutex<Groups> = Mutex::new(Groups {
    closed: false,
    pgids: Vec::new(),
});

fn groups() -> std::sync::MutexGuard<'static, Groups> {
    GROUPS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kills the group of every child [`run`] has running, and says how many; with `close`, no
/// child starts after.
fn kill_groups(close: bool) -> usize {
    let mut groups = groups();
    groups.closed |= close;
    for &pgid in &groups.pgids {
        let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    }
    groups.pgids.len()
}

/// What the watchdog writes and how the process exits: given the
/// [`stage`](crate::deadline::stage) and how many children's groups it killed, the line
/// (newline included) and the exit code.
pub type Report = fn(stage: &str, killed: usize) -> (Cow<'static, str>, i32);

static REPORT: OnceLock<Report> = OnceLock::new();
static ARMED: OnceLock<()> = OnceLock::new();

/// Installs the watchdog's report (the binary, at start-up; the first call wins). Starts
/// nothing: see [`arm_watchdog`].
pub fn install_watchdog(report: Report) {
    let _ = REPORT.set(report);
}

/// Starts the watchdog if it is installed, an invocation was
/// [`start`](crate::deadline::start)ed, and it is not running yet; otherwise does nothing.
/// Cheap after the first call.
pub fn arm_watchdog() {
    if ARMED.get().is_some() {
        return;
    }
    let (Some(exit_at), Some(&report)) = (deadline::exit_at(), REPORT.get()) else {
        return;
    };
    ARMED.get_or_init(|| {
        // Without the thread, the invocation still has its budget: every wait is bounded.
        let spawned = std::thread::Builder::new()
            .name("watchdog".into())
            .stack_size(64 << 10)
            .spawn(move || {
                loop {
                    let now = Instant::now();
                    if now >= exit_at {
                        break;
                    }
                    std::thread::sleep(exit_at - now);
                }
                fire(report)
            });
        if let Err(e) = spawned {
            tracing::debug!("no watchdog for this invocation: {e}");
        }
    });
}

/// The exit limit has passed: kill the children's groups, say why, exit.
fn fire(report: Report) -> ! {
    let killed = kill_groups(true);
    let (line, code) = report(&deadline::stage(), killed);
    // Without waiting, and without the lock of `std::io::stderr` (the thread interrupted may
    // hold it).
    write_stderr(line.as_bytes(), Duration::ZERO);
    std::process::exit(code)
}

/// Linux's `PIPE_BUF`: at most this much is written into a pipe that `poll` says has room,
/// so that the write cannot block.
pub const PIPE_BUF: usize = 4096;

/// Writes `bytes` on stderr, waiting at most `wait` in all for it to take them, and says
/// whether all were written. What it could not take by then is dropped, as on any error
/// (`EPIPE`: the reader went away).
///
/// For every line this program writes on stderr (the logger, the watchdog): a stderr whose
/// reader stopped reading (a full pipe) would otherwise block a plain `write` for ever,
/// where no deadline reaches it. Each write follows a `poll` that said stderr can take bytes
/// and is at most [`PIPE_BUF`] long, which a pipe with room takes whole at once; a terminal
/// or a file is always ready. Takes no lock: a caller that must keep its lines whole against
/// other threads holds `std::io::stderr().lock()` around the call.
pub fn write_stderr(mut bytes: &[u8], wait: Duration) -> bool {
    let stderr = io::stderr();
    let fd = stderr.as_fd();
    let until = Instant::now().checked_add(wait);
    while !bytes.is_empty() {
        let left = until.map_or(wait, |u| u.saturating_duration_since(Instant::now()));
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        match rustix::event::poll(&mut fds, Some(&timespec(left))) {
            Ok(1) if fds[0].revents().contains(PollFlags::OUT) => {}
            Err(rustix::io::Errno::INTR) if !left.is_zero() => continue,
            // Not ready in time, closed (POLLERR, POLLNVAL), or poll failed.
            _ => return false,
        }
        match rustix::io::write(fd, &bytes[..bytes.len().min(PIPE_BUF)]) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
