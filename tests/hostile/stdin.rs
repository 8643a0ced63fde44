//! Hostile input: the kubelet's pipes. A request whose stdin is never closed, and a response
//! nobody reads, end by the invocation's deadline (`keyring_api::deadline`) with one line
//! naming the stage and exit 1, instead of hanging until the kubelet kills the plugin.
//!
//! The deadline is 54 s; a debug build takes a shorter one from
//! `KUBELET_KEYRING_TEST_DEADLINE`, so these tests take seconds.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::common::process::{full_pipe, wait_within};
use crate::common::*;

/// The shortened deadline these tests run under.
const DEADLINE: &str = "2s";
/// How long a test waits before calling the run hung: far past the deadline.
const HUNG: Duration = Duration::from_secs(20);

#[test]
fn a_request_whose_stdin_is_never_closed_ends_by_the_deadline_naming_stdin() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"reg.example.com":{"username":"u","password":"p"}}}"#);
    for written in [request(VERSIONS[0], "reg.example.com/app"), String::new()] {
        let mut cmd = s.command(&["--no-cache"]);
        cmd.env("KUBELET_KEYRING_TEST_DEADLINE", DEADLINE);
        let mut child = cmd.spawn().expect("spawn");
        // Written, but stdin stays open: the process cannot know the request is complete.
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(written.as_bytes()).expect("write");
        let (out, took) = wait_within(child, HUNG)
            .unwrap_or_else(|| panic!("still running after {HUNG:?} with stdin open"));
        drop(stdin);
        let line = assert_one_line_failure(&out, &[]);
        assert!(line.contains("stdin"), "names the stage: {line}");
        assert!(took < Duration::from_secs(6), "took {took:?}");
    }
}

#[test]
fn a_response_nobody_reads_ends_by_the_deadline_naming_stdout() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"reg.example.com":{"username":"u","password":"p"}}}"#);
    // Once to fill the cache (the hit path is the one that must stay cheap), then with a
    // stdout whose pipe is full and never read.
    stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.example.com/app")));
    for args in [&[][..], &["--no-cache"]] {
        let (reader, writer) = full_pipe();
        let mut cmd = s.command(args);
        cmd.env("KUBELET_KEYRING_TEST_DEADLINE", DEADLINE)
            .stdout(Stdio::from(writer));
        let mut child = cmd.spawn().expect("spawn");
        drop(cmd);
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(request(VERSIONS[0], "reg.example.com/app").as_bytes())
            .expect("write");
        let (out, took) = wait_within(child, HUNG)
            .unwrap_or_else(|| panic!("{args:?}: still running after {HUNG:?} on a full stdout"));
        drop(reader);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("stdout"), "{args:?}: names the stage: {err}");
        assert!(took < Duration::from_secs(6), "{args:?}: took {took:?}");
    }
}
