//! Hostile input: logging. Whatever reads stderr may go away before we are done (the kubelet
//! reads it only when the plugin fails); a log line that cannot be written is dropped, and
//! the answer, the exit code and the other lines are what they would have been.

use std::io::Write;
use std::process::{Command, Output};

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
