//! Running the binary when it may hang: a bounded wait that collects stdout and stderr on
//! threads (so a chatty child never blocks on a full pipe) and kills the child when the bound
//! passes, and a pipe already full, for a stdout nobody reads.

use std::io::{Read, Write};
use std::process::{Child, ExitStatus, Output};
use std::time::{Duration, Instant};

/// Waits at most `limit` for `child`, reading its piped stdout and stderr meanwhile. `None`
/// (after killing it) if it was still running then; else its output and how long it took
/// from this call.
pub fn wait_within(mut child: Child, limit: Duration) -> Option<(Output, Duration)> {
    let started = Instant::now();
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    Some((
        Output {
            status,
            stdout: out.join().expect("stdout reader"),
            stderr: err.join().expect("stderr reader"),
        },
        took,
    ))
}

/// A pipe whose buffer is already full: a child given the writer as stdout blocks on its
/// first write until someone reads the reader (returned so it stays open).
pub fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    rustix::io::ioctl_fionbio(&writer, true).expect("O_NONBLOCK");
    let chunk = [b'x'; 4096];
    loop {
        match writer.write(&chunk) {
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the pipe: {e}"),
        }
    }
    // A byte at a time: a page-sized write can fail while a smaller one still fits.
    while writer.write(b"x").is_ok() {}
    rustix::io::ioctl_fionbio(&writer, false).expect("blocking again");
    (reader, writer)
}
