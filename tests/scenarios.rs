//! The black-box scenarios that are data: one directory per scenario under
//! `tests/scenarios/` (format in `tests/scenarios/README.md`), each run once against the
//! built binary in a fresh sandbox by this one driver. Every scenario is run and every
//! mismatch reported, then the test fails if any did.

use std::path::{Path, PathBuf};

use crate::common::*;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// Copies the tree `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read files/").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            std::fs::create_dir_all(&dst).expect("mkdir");
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

/// `{sandbox}` in a value is the sandbox's root (where `files/` was copied).
fn expand(v: &str, s: &Sandbox) -> String {
    v.replace("{sandbox}", &s.tmp.path().display().to_string())
}

/// Runs one scenario; `Err` says what differed.
fn run(dir: &Path) -> Result<(), String> {
    let s = Sandbox::new();
    if dir.join("files").is_dir() {
        copy_tree(&dir.join("files"), s.tmp.path());
    }
    let request = read(dir, "request.json").ok_or("no request.json")?;
    let lines = |name| -> Vec<String> {
        read(dir, name)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| expand(l, &s))
            .collect()
    };
    let args = lines("args");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = s.command(&args);
    for kv in lines("env") {
        let (k, v) = kv
            .split_once('=')
            .ok_or(format!("env line {kv:?} is not K=V"))?;
        cmd.env(k, v);
    }
    let out = run_with(cmd, request.as_bytes());
    let (code, err) = (out.status.code(), stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    match (read(dir, "expected.json"), read(dir, "expected-error")) {
        (Some(want), None) => {
            let want: serde_json::Value =
                serde_json::from_str(&want).map_err(|e| format!("expected.json: {e}"))?;
            if code != Some(0) {
                return Err(format!("exit {code:?}: {err}"));
            }
            if stdout.matches('\n').count() != 1 || !stdout.ends_with('\n') {
                return Err(format!("stdout is not one line: {stdout:?}"));
            }
            let got: serde_json::Value = serde_json::from_str(&stdout)
                .map_err(|e| format!("stdout is not JSON ({e}): {stdout}"))?;
            if got != want {
                return Err(format!("stdout\n  got:  {got}\n  want: {want}"));
            }
            if !err.is_empty() {
                return Err(format!("stderr is not empty: {err}"));
            }
        }
        (None, Some(want)) => {
            let mut want = want.lines().filter(|l| !l.trim().is_empty());
            let exit: i32 = want
                .next()
                .and_then(|l| l.trim().strip_prefix("exit "))
                .and_then(|n| n.parse().ok())
                .ok_or("expected-error must start with `exit N`")?;
            if code != Some(exit) {
                return Err(format!("exit {code:?}, want {exit}: {err}"));
            }
            if !stdout.is_empty() || err.lines().count() != 1 {
                return Err(format!(
                    "not a one-line failure: stdout {stdout:?}, stderr {err:?}"
                ));
            }
            for needle in want {
                if !err.contains(needle.trim()) {
                    return Err(format!("stderr lacks {:?}: {err}", needle.trim()));
                }
            }
        }
        _ => return Err("needs exactly one of expected.json and expected-error".into()),
    }
    Ok(())
}

#[test]
fn every_scenario() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("tests/scenarios")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "only {} scenarios", dirs.len());
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            let name = d.file_name()?.to_string_lossy().into_owned();
            run(d).err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}
