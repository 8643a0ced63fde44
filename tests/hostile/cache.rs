//! Hostile input: the cache directory. Whatever sits where an entry should be, an answer comes
//! at once; a directory reached through a symlink is refused however it is spelled; `cache
//! clear` removes only files that are provably the cache's own.

use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

const CFG: &str = r#"{"auths":{"reg.io":{"username":"u","password":"hostile-cache-canary"}}}"#;
const LIMIT: Duration = Duration::from_secs(10);

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn entries(dir: &std::path::Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .map(|n| dir.join(n))
        .collect()
}

#[test]
fn a_fifo_in_place_of_a_cache_entry_is_a_miss_not_a_hang() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.io/app")));
    let entry = entries(&s.cache).pop().expect("an entry");
    fs::remove_file(&entry).unwrap();
    mkfifo(&entry);
    let out = run_within(
        s.command(&[]),
        request(VERSIONS[0], "reg.io/app").as_bytes(),
        LIMIT,
    )
    .expect("a FIFO as the cache entry hung the invocation");
    assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
    // The fetch's answer replaced the FIFO with an entry.
    assert!(fs::metadata(&entry).unwrap().is_file());
    let hit = run_within(
        s.command(&[]),
        request(VERSIONS[0], "reg.io/app").as_bytes(),
        LIMIT,
    )
    .expect("hung");
    assert_eq!(stdout_json(&hit)["auth"]["reg.io"]["username"], "u");
}

#[test]
fn a_cache_dir_reached_through_a_symlink_is_refused_however_it_is_spelled() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    let real = s.tmp.path().join("real-cache");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let link = s.tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let link = link.display().to_string();
    // The sandbox's command names its own cache directory: the variable is overridden by it.
    let with_cache_dir = |dir: &str, args: &[&str]| {
        let mut c = std::process::Command::new(BIN);
        c.current_dir(&s.cwd)
            .env_clear()
            .env("HOME", &s.home)
            .arg("--root-dir")
            .arg(&s.root)
            .arg("--cache-dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    for spelled in [
        link.clone(),
        format!("{link}/"),
        format!("{link}/."),
        format!("{link}//./"),
    ] {
        let out = run_with(
            with_cache_dir(&spelled, &[]),
            request(VERSIONS[0], "reg.io/app").as_bytes(),
        );
        assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
        assert!(
            stderr(&out).contains("is a symlink"),
            "{spelled}: {}",
            stderr(&out)
        );
        assert!(files(&real).is_empty(), "{spelled}: {:?}", files(&real));
        let out = run_with(with_cache_dir(&spelled, &["cache", "clear"]), b"");
        let line = assert_one_line_exit(&out, 2, &[]);
        assert!(line.contains("is a symlink"), "{spelled}: {line}");
    }
}

#[test]
fn cache_clear_removes_only_the_cache_s_own_files() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.io/app")));
    let ours = files(&s.cache);
    assert!(ours.iter().any(|n| n.ends_with(".json")), "{ours:?}");
    assert!(ours.iter().any(|n| n.ends_with(".lock")), "{ours:?}");
    // A killed writer's temp file is the cache's too.
    let stem = ours[0].split('.').next().unwrap().to_string();
    fs::write(s.cache.join(format!(".{stem}.4242.17.tmp")), "{").unwrap();
    // What an operator keeps in a directory the variable named by mistake.
    let hash_named = format!("{}.json", "ab".repeat(32));
    let theirs = [
        ("config.json", r#"{"auths":{}}"#),
        ("backup.lock", ""),
        ("draft.tmp", "notes"),
        (".editor.tmp", ""),
        ("payroll.JSON", "{}"),
        (hash_named.as_str(), r#"{"version":1,"not":"an entry"}"#),
        ("0123.json", "{}"),
    ];
    for (name, body) in theirs {
        fs::write(s.cache.join(name), body).unwrap();
    }
    let out = s.run(&["cache", "clear"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("removed {} files", ours.len() + 1)),
        "{text}"
    );
    let mut left = files(&s.cache);
    let mut want: Vec<String> = theirs.iter().map(|(n, _)| n.to_string()).collect();
    left.sort();
    want.sort();
    assert_eq!(left, want);
}
