//! Hostile input: docker credential helpers. A helper's stderr is its own business and may
//! hold what it was told (a password in a "login failed" line): it is never quoted, at any
//! verbosity. A helper that outlives the invocation's deadline is killed with its process
//! group.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::process::wait_within;
use crate::common::*;

/// Installs `docker-credential-testhelper` with `body` in a bin directory of the sandbox and
/// returns a command whose PATH starts there.
fn with_helper(s: &Sandbox, body: &str, args: &[&str]) -> Command {
    let bin = s.tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let path = bin.join("docker-credential-testhelper");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write helper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    s.docker_config(r#"{"credHelpers":{"reg.example.com":"testhelper"}}"#);
    let mut cmd = s.command(args);
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"));
    cmd
}

#[test]
fn a_failing_helpers_stderr_is_withheld_at_every_verbosity() {
    let s = Sandbox::new();
    let body =
        "cat >/dev/null; echo 'login failed for user u with password hunter2-canary' >&2; exit 1";
    for v in [
        &["--no-cache"][..],
        &["--no-cache", "-v"],
        &["--no-cache", "-vvv"],
    ] {
        let out = run_with(
            with_helper(&s, body, v),
            request(VERSIONS[0], "reg.example.com/app").as_bytes(),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{v:?}: {err}");
        assert!(
            !err.contains("hunter2") && !err.contains("login failed"),
            "{v:?}: the helper's stderr leaked: {err}"
        );
        let last = err.lines().last().unwrap_or_default();
        assert!(last.contains("docker-credential-testhelper"), "{last}");
        assert!(last.contains("exit status: 1"), "{last}");
        assert!(last.contains("withheld"), "{last}");
    }
}

fn gone(pid: &str) -> bool {
    let stat = PathBuf::from(format!("/proc/{}/stat", pid.trim()));
    // Gone, or a zombie waiting for a reaper that is not ours.
    match std::fs::read_to_string(&stat) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file).expect("pid file");
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while !gone(&pid) {
        assert!(
            std::time::Instant::now() < until,
            "{} still running",
            pid.trim()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_helper_running_past_the_invocations_deadline_is_killed_with_its_group() {
    let s = Sandbox::new();
    let pids = s.tmp.path().join("pids");
    let body = format!("sleep 60 & echo $! > '{}'; wait", pids.display());
    let mut cmd = with_helper(&s, &body, &["--no-cache"]);
    // The helper's own limit (20 s) is longer than what is left of the invocation.
    cmd.env("KUBELET_KEYRING_TEST_DEADLINE", "2s");
    let mut child = cmd.spawn().expect("spawn");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request(VERSIONS[0], "reg.example.com/app").as_bytes())
        .expect("write");
    let (out, took) = wait_within(child, Duration::from_secs(30)).expect("still running after 30s");
    let line = assert_one_line_failure(&out, &[]);
    assert!(line.contains("docker-credential-testhelper"), "{line}");
    assert!(took < Duration::from_secs(6), "took {took:?}: {line}");
    wait_gone(&pids);
}

/// `head`, then `entry(i)` for i = 0, 1, ... while the text stays under the 16 MiB cap, then
/// `tail`: the config.json of the tests below, answered for `reg.example.com/app` in 256 MiB
/// of address space (a debug build's baseline runs in less than 128 MiB) and 10 s, with the
/// `auths` entry's `u` / `p`.
fn assert_huge_config_answered_in_bounds(head: &str, entry: impl Fn(u32) -> String, tail: &str) {
    let s = Sandbox::new();
    let mut text = String::from(head);
    let mut i = 0u32;
    while text.len() < (16 << 20) - 64 {
        text.push_str(&entry(i));
        i += 1;
    }
    text.push_str(tail);
    s.docker_config(&text);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 262144; exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(["--no-cache", "--root-dir"])
        .arg(&s.root);
    s.isolate(&mut cmd);
    let started = std::time::Instant::now();
    let out = run_within(
        cmd,
        request(VERSIONS[0], "reg.example.com/app"),
        Duration::from_secs(60),
    )
    .expect("still running after 60 s");
    let took = started.elapsed();
    assert_eq!(
        creds(&stdout_json(&out), "reg.example.com"),
        ("u".into(), "p".into()),
        "{}",
        stderr(&out)
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A `config.json` just under the 16 MiB cap made of 1.5 million empty entries
/// (`{"auths":{"0":{},"1":{},...}}`): read, parsed and matched in bounded memory and time.
/// The old code kept every entry, then a parsed keyring entry for each, then parsed each key
/// again for the cache scope: 463 MB and 2.8 s in a release build (19.8 s in a debug build),
/// per invocation, for a registry none of them names.
#[test]
fn a_config_of_a_million_tiny_entries_is_answered_in_bounded_memory_and_time() {
    assert_huge_config_answered_in_bounds(
        r#"{"auths":{"reg.example.com":{"username":"u","password":"p"}"#,
        |i| format!(r#","{i:x}":{{}}"#),
        "}}",
    );
}

/// The same for `credHelpers`: 16 MiB of tiny entries (`{"credHelpers":{"0":"","1":"",...}}`)
/// for other registries. The old code kept the whole object as raw JSON, then every entry
/// as raw text, then every entry in a map: 313 MB and 0.7 s in a release build; under a
/// 256 MiB address space it aborted ("memory allocation of 83886080 bytes failed", SIGABRT).
#[test]
fn a_config_of_a_million_tiny_cred_helpers_is_answered_in_bounded_memory_and_time() {
    assert_huge_config_answered_in_bounds(
        r#"{"auths":{"reg.example.com":{"username":"u","password":"p"}},"credHelpers":{"reg.example.com":"missing""#,
        |i| format!(r#","{i:x}":"""#),
        // The last word for this registry: no helper, so the `auths` entry answers.
        r#","reg.example.com":""}}"#,
    );
}
