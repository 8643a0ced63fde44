//! Hostile input: logging. Whatever reads stderr may go away before we are done (the kubelet
//! reads it only when the plugin fails), or stop reading it; a log line that cannot be
//! written (at once, or within a short wait) is dropped, and the answer, the exit code and
//! the other lines are what they would have been.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::process::{full_pipe, wait_within};
use crate::common::*;

/// Runs `cmd` with stderr a pipe whose reading end is closed before the request is written.
fn with_stderr_closed(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd.spawn().expect("spawn");
    drop(child.stderr.take());
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("wait")
}

#[test]
fn a_closed_stderr_never_keeps_the_answer_from_stdout() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"reg.example.com":{"username":"u","password":"p"}}}"#);
    // A regular file where the cache directory should be: a warning on every run.
    write(&s.cache, "");
    for v in [&[][..], &["-v"], &["-vv"], &["-vvv"]] {
        let out = with_stderr_closed(s.command(v), &request(VERSIONS[0], "reg.example.com/app"));
        assert_eq!(out.status.code(), Some(0), "{v:?}: {:?}", out.status);
        assert_eq!(
            stdout_json(&out)["auth"]["reg.example.com"]["username"],
            "u"
        );
    }
}

#[test]
fn a_closed_stderr_keeps_a_failures_exit_code() {
    let s = Sandbox::new();
    // Bad input is exit 2 whether or not its line can be written.
    let out = with_stderr_closed(s.command(&[]), "not json");
    assert_eq!(out.status.code(), Some(2), "{:?}", out.status);
    assert!(out.stdout.is_empty());
    // So is a usage error.
    let out = with_stderr_closed(s.command(&["--bogus"]), "");
    assert_eq!(out.status.code(), Some(2), "{:?}", out.status);
}

/// Runs `cmd` with stderr a pipe that is full and never read (a parent that does not read
/// it; the kubelet does, but a wrapper, a hand run or a test harness may not), feeding it
/// `stdin`: its output (stdout only) and how long it took, or `None` if it was still running
/// after [`HUNG`].
fn with_stderr_full(mut cmd: Command, stdin: &str) -> Option<(Output, Duration)> {
    let (reader, writer) = full_pipe();
    cmd.stderr(Stdio::from(writer));
    let mut child = cmd.spawn().expect("spawn");
    drop(cmd);
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    let done = wait_within(child, HUNG);
    drop(reader);
    done
}

/// Far longer than any answer takes, far shorter than the kubelet's 60 s.
const HUNG: Duration = Duration::from_secs(20);

#[test]
fn a_stderr_nobody_reads_never_keeps_the_answer_from_stdout() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"reg.example.com":{"username":"u","password":"p"}}}"#);
    // A regular file where the cache directory should be: a warning on every run, before
    // the answer is written.
    write(&s.cache, "");
    for v in [&[][..], &["-vvv"]] {
        let (out, took) =
            with_stderr_full(s.command(v), &request(VERSIONS[0], "reg.example.com/app"))
                .unwrap_or_else(|| panic!("{v:?}: still running after {HUNG:?}"));
        assert_eq!(out.status.code(), Some(0), "{v:?}: {:?}", out.status);
        assert_eq!(
            stdout_json(&out)["auth"]["reg.example.com"]["username"],
            "u"
        );
        assert!(took < Duration::from_secs(8), "{v:?}: took {took:?}");
    }
}

#[test]
fn a_stderr_nobody_reads_keeps_a_failures_exit_code_and_ends_at_once() {
    let s = Sandbox::new();
    for (args, stdin, code) in [
        (&[][..], "not json", 2),
        (&["--bogus"], "", 2),
        (&["validate-config", "/nonexistent.yaml"], "", 2),
    ] {
        let (out, took) = with_stderr_full(s.command(args), stdin)
            .unwrap_or_else(|| panic!("{args:?}: still running after {HUNG:?}"));
        assert_eq!(out.status.code(), Some(code), "{args:?}: {:?}", out.status);
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(took < Duration::from_secs(8), "{args:?}: took {took:?}");
    }
}
