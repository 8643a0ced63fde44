//! Hostile input: the metrics directory. Nothing planted there (a FIFO, a symlink to
//! `/dev/zero`, a hard link to someone else's file, a 20 GB sparse journal) holds an
//! invocation past its answer, is read unbounded or is written through; a directory others
//! may write in is refused as the cache directory is.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

const CFG: &str = r#"{"auths":{"reg.io":{"username":"u","password":"hostile-metrics-canary"}}}"#;
const LIMIT: Duration = Duration::from_secs(10);
const JOURNAL: &str = "kubelet-keyring.journal";
const STATE: &str = "kubelet-keyring.state.json";
const PROM: &str = "kubelet-keyring.prom";

fn world() -> (Sandbox, PathBuf) {
    let s = Sandbox::new();
    s.docker_config(CFG);
    let m = s.tmp.path().join("metrics");
    (s, m)
}

fn get(s: &Sandbox, metrics: &Path) -> std::process::Output {
    let mut cmd = s.command(&[]);
    cmd.arg("--metrics-dir").arg(metrics);
    run_within(cmd, request(VERSIONS[0], "reg.io/app").as_bytes(), LIMIT)
        .expect("the invocation hung")
}

/// [`fold_in_a_gigabyte`], which must succeed.
fn folded_in_a_gigabyte(s: &Sandbox, metrics: &Path) -> std::process::Output {
    let out = fold_in_a_gigabyte(s, metrics);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    out
}

/// `kubelet-keyring metrics` with at most 1 GiB of address space, as a watchdog of
/// unbounded reads (which then fail at once instead of eating the machine's memory).
fn fold_in_a_gigabyte(s: &Sandbox, metrics: &Path) -> std::process::Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 1048576; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--cache-dir")
        .arg(&s.cache)
        .arg("--metrics-dir")
        .arg(metrics)
        .arg("metrics")
        .env_clear()
        .env("HOME", &s.home);
    run_within(cmd, b"", LIMIT).expect("the fold hung")
}

fn sample(metrics: &Path, name: &str) -> Option<f64> {
    let text = fs::read_to_string(metrics.join(PROM)).ok()?;
    text.lines()
        .find(|l| {
            l.starts_with(&format!(
                "{name}{{backend=\"docker-config\",registry=\"reg.io\"}} "
            ))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn a_fifo_as_the_journal_does_not_hold_a_cache_hit_past_its_answer() {
    let (s, m) = world();
    stdout_json(&get(&s, &m));
    fs::remove_file(m.join(JOURNAL)).unwrap();
    mkfifo(&m.join(JOURNAL));
    // The hit answers and exits; the record is lost with a warning.
    let out = get(&s, &m);
    assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    // The timer's fold puts a journal back.
    folded_in_a_gigabyte(&s, &m);
    assert!(fs::symlink_metadata(m.join(JOURNAL)).map_or(true, |m| m.is_file()));
    stdout_json(&get(&s, &m));
    assert!(fs::metadata(m.join(JOURNAL)).unwrap().is_file());
}

#[test]
fn a_fifo_as_the_state_file_does_not_block_a_fetch() {
    let (s, m) = world();
    fs::create_dir(&m).unwrap();
    mkfifo(&m.join(STATE));
    let out = get(&s, &m);
    assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
    assert!(stderr(&out).contains(STATE), "{}", stderr(&out));
    // The fold wrote a state file in its place and counted the fetch.
    assert!(fs::metadata(m.join(STATE)).unwrap().is_file());
    assert_eq!(sample(&m, "kubelet_keyring_fetches_total"), Some(1.0));
}

#[test]
fn a_journal_hard_linked_to_another_file_is_not_written_through() {
    let (s, m) = world();
    stdout_json(&get(&s, &m));
    let victim = s.tmp.path().join("victim");
    fs::write(&victim, "keep").unwrap();
    fs::remove_file(m.join(JOURNAL)).unwrap();
    fs::hard_link(&victim, m.join(JOURNAL)).unwrap();
    let out = get(&s, &m);
    assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
    assert_eq!(fs::read(&victim).unwrap(), b"keep");
}

#[test]
fn state_and_journal_symlinked_to_dev_zero_are_not_read() {
    let (s, m) = world();
    stdout_json(&get(&s, &m));
    for name in [STATE, JOURNAL] {
        fs::remove_file(m.join(name)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", m.join(name)).unwrap();
    }
    let out = folded_in_a_gigabyte(&s, &m);
    let err = stderr(&out);
    assert!(err.contains("a symlink, not followed"), "{err}");
    // Both are regular files of ours again, and the next fetch is counted.
    for name in [STATE, JOURNAL] {
        let meta = fs::symlink_metadata(m.join(name));
        assert!(meta.map_or(true, |m| m.is_file()), "{name}");
    }
    stdout_json(&get(&s, &m));
    folded_in_a_gigabyte(&s, &m);
    assert_eq!(sample(&m, "kubelet_keyring_cache_hits_total"), Some(1.0));
}

#[test]
fn a_twenty_gigabyte_sparse_journal_is_folded_in_bounded_memory_and_time() {
    let (s, m) = world();
    stdout_json(&get(&s, &m));
    let journal = fs::OpenOptions::new()
        .append(true)
        .open(m.join(JOURNAL))
        .unwrap();
    journal.set_len(20 << 30).unwrap();
    drop(journal);
    let started = Instant::now();
    let out = folded_in_a_gigabyte(&s, &m);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr(&out).contains(JOURNAL), "{}", stderr(&out));
    // The counters before it survive; the live journal starts again.
    assert_eq!(sample(&m, "kubelet_keyring_fetches_total"), Some(1.0));
    let live = fs::metadata(m.join(JOURNAL)).map_or(0, |m| m.len());
    assert!(live < 1 << 20, "{live}");
}

#[test]
fn a_metrics_directory_others_can_write_or_a_symlink_is_refused_like_the_cache_directory() {
    let (s, m) = world();
    fs::create_dir(&m).unwrap();
    fs::set_permissions(&m, fs::Permissions::from_mode(0o777)).unwrap();
    let out = get(&s, &m);
    assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
    let err = stderr(&out);
    assert!(
        err.contains("metrics directory") && err.contains("group or world writable"),
        "{err}"
    );
    assert!(!m.join(STATE).exists() && !m.join(PROM).exists());
    let out = fold_in_a_gigabyte(&s, &m);
    let line = assert_one_line_exit(&out, 2, &[]);
    assert!(line.contains("group or world writable"), "{line}");

    let real = s.tmp.path().join("real-metrics");
    fs::create_dir(&real).unwrap();
    let link = s.tmp.path().join("metrics-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let spelled = PathBuf::from(format!("{}/", link.display()));
    let out = fold_in_a_gigabyte(&s, &spelled);
    let line = assert_one_line_exit(&out, 2, &[]);
    assert!(line.contains("is a symlink"), "{line}");
    assert!(fs::read_dir(&real).unwrap().next().is_none());
}

/// A fold lock held for ever (a `kubelet-keyring metrics` stopped with Ctrl-Z, a process that
/// planted and locked the file): the timer's `metrics` gives up within its deadline with one
/// line naming the lock, instead of waiting for ever (the old code did: the timer's service
/// never ended, so the textfile was never written again). A fetch's fold never waits.
#[test]
fn a_fold_lock_held_for_ever_ends_the_metrics_command_in_time_with_one_line() {
    let (s, m) = world();
    // A fetch makes the directory and the lock file.
    assert!(get(&s, &m).status.success());
    let lock = m.join("kubelet-keyring.lock");
    assert!(lock.is_file());
    // Held by this test process (another open file description than the binary's).
    let holder = fs::File::open(&lock).expect("open the lock");
    holder.lock().expect("lock");
    let mut cmd = s.command(&["--metrics-dir"]);
    cmd.arg(&m)
        .arg("metrics")
        .env("KUBELET_KEYRING_TEST_DEADLINE", "3s");
    let started = Instant::now();
    let out = run_within(cmd, b"", Duration::from_secs(20))
        .expect("metrics waited for the lock past 20 s");
    let line = assert_one_line_exit(&out, 1, &[]);
    assert!(line.contains("kubelet-keyring.lock"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(10), "{line}");
    // A fetch's fold does not wait for it: the answer comes at once.
    let started = Instant::now();
    assert!(get(&s, &m).status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(holder);
}
