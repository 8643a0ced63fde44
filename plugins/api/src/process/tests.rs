//! Tests of [`super::run`] and the watchdog's kill, with real children (`sh`, `sleep`).

use super::*;

/// The tests that kill every registered group run alone: the others' children would be
/// killed with them.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sh(script: &str) -> Command {
    shell(script)
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(20))
}

/// Whether process `pid` is gone (or a zombie nobody here reaps).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid_file: &std::path::Path) {
    let pid = std::fs::read_to_string(pid_file).expect("pid file");
    let until = Instant::now() + Duration::from_secs(5);
    while !gone(&pid) {
        assert!(Instant::now() < until, "{} still running", pid.trim());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn input_reaches_stdin_and_both_outputs_and_the_status_come_back() {
    let _g = serial();
    let out = run(
        sh("cat; echo oops >&2; exit 3"),
        b"reg.example.com",
        Limits::default(),
        soon(),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout.expose(), b"reg.example.com");
    assert_eq!(out.stderr.expose(), b"oops\n");
    assert_eq!(out.stderr_len, 5);
}

#[test]
fn a_child_that_never_reads_a_large_input_does_not_block_the_run() {
    let _g = serial();
    let input = vec![b'x'; 4 << 20];
    let out = run(sh("echo done"), &input, Limits::default(), soon()).unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.expose(), b"done\n");
}

#[test]
fn loud_outputs_are_read_together_and_stderr_is_cut_to_what_is_kept() {
    let _g = serial();
    // 3 MB on stderr before any stdout: a run reading stdout alone would deadlock.
    let out = run(
        sh("head -c 3000000 /dev/zero >&2; printf answer"),
        b"",
        Limits {
            stdout: 100,
            stderr_kept: 10,
        },
        soon(),
    )
    .unwrap();
    assert_eq!(out.stdout.expose(), b"answer");
    assert_eq!(out.stderr.expose().len(), 10);
    assert_eq!(out.stderr_len, 3_000_000);
}

#[test]
fn stdout_past_its_limit_kills_the_child() {
    let _g = serial();
    let started = Instant::now();
    let err = run(
        sh("exec yes"),
        b"",
        Limits {
            stdout: 1 << 20,
            stderr_kept: 0,
        },
        soon(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::StdoutTooLarge(1048576)), "{err}");
    assert_eq!(err.to_string(), "printed more than 1048576 bytes");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn at_the_deadline_the_child_and_its_own_children_are_killed() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("keyring-process-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pids = dir.join("deadline");
    let started = Instant::now();
    let err = run(
        sh(&format!("sleep 60 & echo $! > '{}'; wait", pids.display())),
        b"",
        Limits::default(),
        Deadline::after(Duration::from_millis(500)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::TimedOut(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_gone(&pids);

    // Exited, but its background child holds stdout open: the same.
    let pids = dir.join("holder");
    let err = run(
        sh(&format!(
            "sleep 60 & echo $! > '{}'; exit 0",
            pids.display()
        )),
        b"",
        Limits::default(),
        Deadline::after(Duration::from_millis(500)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::TimedOut(_)), "{err}");
    wait_gone(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_program_is_not_found_and_a_passed_deadline_starts_nothing() {
    let _g = serial();
    let err = run(
        Command::new("keyring-surely-not-installed-7f3a"),
        b"",
        Limits::default(),
        soon(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotFound), "{err}");
    let err = run(
        sh("exit 0"),
        b"",
        Limits::default(),
        Deadline::after(Duration::ZERO),
    )
    .unwrap_err();
    assert!(matches!(err, Error::TimedOut(_)), "{err}");
}

#[test]
fn the_watchdogs_kill_reaches_every_running_childs_group() {
    let _g = serial();
    let dir = std::env::temp_dir().join(format!("keyring-watchdog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pids = dir.join("pids");
    let script = format!("sleep 60 & echo $! > '{}'; wait", pids.display());
    let runner = std::thread::spawn(move || {
        run(
            sh(&script),
            b"",
            Limits::default(),
            Deadline::after(Duration::from_secs(30)),
        )
    });
    let until = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&pids).map_or(true, |p| p.trim().is_empty()) {
        assert!(Instant::now() < until, "the child never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    assert_eq!(kill_groups(false), 1);
    let out = runner.join().unwrap().unwrap();
    assert!(!out.status.success(), "killed: {:?}", out.status);
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_gone(&pids);
    assert!(groups().pgids.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
