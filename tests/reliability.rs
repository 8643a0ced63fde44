//! Reliability under load and faults: many parallel invocations never corrupt the cache; a full
//! disk or a write error leaves the answer right; config files others can write are flagged.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::*;

const CFG: &str = r#"{"auths":{
    "reg-a.example.com":{"username":"a","password":"rel-canary-a"},
    "reg-b.example.com":{"username":"b","password":"rel-canary-b"},
    "reg-c.example.com/team":{"username":"c","password":"rel-canary-c"}}}"#;

fn want_user(image: &str) -> Option<&'static str> {
    match image.split('/').next() {
        Some("reg-a.example.com") => Some("a"),
        Some("reg-b.example.com") => Some("b"),
        Some("reg-c.example.com") if image.starts_with("reg-c.example.com/team") => Some("c"),
        _ => None,
    }
}

#[test]
fn two_hundred_parallel_invocations_leave_no_corrupt_entry() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    let images: Vec<String> = (0..200)
        .map(|i| match i % 4 {
            0 => format!("reg-a.example.com/app{}", i % 9),
            1 => format!("reg-b.example.com/app{}", i % 5),
            2 => format!("reg-c.example.com/team/app{}", i % 7),
            _ => format!("reg-c.example.com/other{}", i % 3),
        })
        .collect();
    let children: Vec<_> = images
        .iter()
        .map(|img| {
            let mut c = s.command(&[]).spawn().expect("spawn");
            c.stdin
                .take()
                .unwrap()
                .write_all(request(VERSIONS[0], img).as_bytes())
                .unwrap();
            c
        })
        .collect();
    for (img, child) in images.iter().zip(children) {
        let json = stdout_json(&child.wait_with_output().unwrap());
        let users: Vec<&str> = json["auth"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|a| a["username"].as_str())
            .collect();
        match want_user(img) {
            Some(u) => assert_eq!(users, [u], "{img}"),
            None => assert!(users.is_empty(), "{img}: {users:?}"),
        }
    }
    let out = s.run(&["cache", "list", "--json"], "");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["state"] == "fresh"), "{rows:?}");
    for f in fs::read_dir(&s.cache).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "leftover temp file {name}");
        assert!(!name.contains("reg-") && !name.contains("canary"), "{name}");
    }
}

/// A write error (EFBIG under `ulimit -f 0`, with SIGXFSZ ignored as a daemon would) on the
/// cache: the answer is still right, a warning says why, and no partial file is left.
#[test]
fn a_failing_cache_write_still_answers() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 0; exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("--root-dir")
        .arg(&s.root)
        .arg("--cache-dir")
        .arg(&s.cache)
        .current_dir(&s.cwd)
        .env_clear()
        .env("HOME", &s.home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run_with(
        cmd,
        request(VERSIONS[0], "reg-a.example.com/app").as_bytes(),
    );
    let json = stdout_json(&out);
    assert_eq!(json["auth"]["reg-a.example.com"]["username"], "a");
    assert!(
        stderr(&out).contains("cannot write cache entry"),
        "{}",
        stderr(&out)
    );
    let left: Vec<_> = fs::read_dir(&s.cache)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter().all(|n| n.to_string_lossy().ends_with(".lock")),
        "{left:?}"
    );
}

/// A real full disk: the cache on a tiny tmpfs (in a private mount namespace) filled up.
/// Needs root, which CI has; without it this fails rather than skips.
#[test]
fn a_full_disk_still_answers() {
    assert!(
        rustix::process::geteuid().is_root(),
        "a_full_disk_still_answers mounts a tmpfs and needs root (CI runs as root)"
    );
    let s = Sandbox::new();
    s.docker_config(CFG);
    let mnt = s.tmp.path().join("tiny");
    fs::create_dir(&mnt).unwrap();
    let script = r#"set -e
mount -t tmpfs -o size=8k,mode=0700 tmpfs "$1"
mkdir -m 0700 "$1/cache"
head -c 1048576 /dev/zero > "$1/filler" 2>/dev/null || true
shift
exec "$@""#;
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&mnt)
        .arg(BIN)
        .arg("--root-dir")
        .arg(&s.root)
        .arg("--cache-dir")
        .arg(mnt.join("cache"))
        .current_dir(&s.cwd)
        .env_clear()
        .env("HOME", &s.home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run_with(
        cmd,
        request(VERSIONS[0], "reg-b.example.com/app").as_bytes(),
    );
    let json = stdout_json(&out);
    assert_eq!(json["auth"]["reg-b.example.com"]["username"], "b");
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!err.contains("rel-canary"), "{err}");
}

#[test]
fn config_files_others_can_write_are_flagged() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    let plugin_cfg = s.tmp.path().join("keyring.yaml");
    fs::write(&plugin_cfg, "backends: [docker-config]\n").unwrap();
    fs::set_permissions(&plugin_cfg, fs::Permissions::from_mode(0o666)).unwrap();
    let out = s.run(
        &["--config", plugin_cfg.to_str().unwrap()],
        &request(VERSIONS[0], "reg-a.example.com/x"),
    );
    assert_eq!(
        stdout_json(&out)["auth"]["reg-a.example.com"]["username"],
        "a"
    );
    assert!(
        stderr(&out).contains("writable by group or others"),
        "{}",
        stderr(&out)
    );
    // The docker config itself too.
    let docker = s.home.join(".docker/config.json");
    fs::set_permissions(&docker, fs::Permissions::from_mode(0o666)).unwrap();
    let out = s.run(
        &["--no-cache"],
        &request(VERSIONS[0], "reg-a.example.com/x"),
    );
    assert_eq!(
        stdout_json(&out)["auth"]["reg-a.example.com"]["username"],
        "a"
    );
    let err = stderr(&out);
    assert!(
        err.contains("config.json is writable by group or others"),
        "{err}"
    );
    assert!(!err.contains("rel-canary"), "{err}");
}

#[test]
fn a_cache_dir_owned_by_someone_else_is_refused() {
    assert!(
        rustix::process::geteuid().is_root(),
        "needs root to chown (CI runs as root)"
    );
    let s = Sandbox::new();
    s.docker_config(CFG);
    fs::create_dir(&s.cache).unwrap();
    fs::set_permissions(&s.cache, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&s.cache, Some(65534), Some(65534)).unwrap();
    let out = s.run(&[], &request(VERSIONS[0], "reg-a.example.com/x"));
    assert_eq!(
        stdout_json(&out)["auth"]["reg-a.example.com"]["username"],
        "a"
    );
    assert!(
        stderr(&out).contains("owned by uid 65534"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_dir(&s.cache).unwrap().count(), 0);
}

fn mkfifo(path: &std::path::Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
}

#[test]
fn a_fifo_where_a_file_is_expected_never_blocks() {
    // File::open on a FIFO waits for a writer for ever, and no deadline interrupts it: a
    // docker config, key file or token file that is a FIFO must not hang the kubelet's pull.
    let s = Sandbox::new();
    fs::create_dir_all(s.home.join(".docker")).unwrap();
    mkfifo(&s.home.join(".docker/config.json"));
    let fifo = s.tmp.path().join("file.fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().expect("utf-8");
    let limit = std::time::Duration::from_secs(15);

    let out = run_within(s.command(&[]), request(VERSIONS[0], "reg.io/app"), limit)
        .expect("docker-config hung on a FIFO");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );

    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("gcr.io/p/app", &[("GOOGLE_APPLICATION_CREDENTIALS", fifo)]),
        (
            "myacr.azurecr.io/app",
            &[
                ("AZURE_FEDERATED_TOKEN_FILE", fifo),
                ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
                ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002"),
            ],
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
            &[("AWS_SHARED_CREDENTIALS_FILE", fifo)],
        ),
    ];
    for (image, env) in cases {
        let mut cmd = s.command(&["--no-cache"]);
        cmd.envs(env.iter().copied());
        let out = run_within(cmd, request(VERSIONS[0], image), limit)
            .unwrap_or_else(|| panic!("{image} hung on a FIFO"));
        let line = assert_one_line_exit(&out, 2, &[]);
        assert!(line.contains("not a regular file"), "{image}: {line}");
    }
}
