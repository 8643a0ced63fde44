//! Hostile input: docker credential helpers. A helper's stderr is its own business and may
//! hold what it was told (a password in a "login failed" line): it is never quoted, at any
//! verbosity.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

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
