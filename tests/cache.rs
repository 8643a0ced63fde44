//! Black-box tests of the shared on-disk cache: hits without the backend, one backend call for
//! many simultaneous misses, crash safety, and refusal of unsafe directories.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use crate::common::*;

const CFG: &str = r#"{"auths":{"reg.io":{"username":"u","password":"cache-canary-secret"}}}"#;

fn entry_files(s: &Sandbox) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(&s.cache)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_hit_is_served_without_touching_the_backend() {
    let s = Sandbox::new();
    let cfg = s.docker_config(CFG);
    let first = stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.io/app")));
    assert_eq!(first["auth"]["reg.io"]["username"], "u");
    // The backend (the file) disappears; the cache still answers, for another repository of
    // the registry too, and in the version asked.
    fs::remove_file(&cfg).unwrap();
    let hit = stdout_json(&s.run(&[], &request(VERSIONS[2], "reg.io/other")));
    assert_eq!(hit["auth"], first["auth"]);
    assert_eq!(hit["apiVersion"], VERSIONS[2]);
    let d = hit["cacheDuration"].as_str().unwrap();
    assert!(d == "5m0s" || d.starts_with("4m5"), "{d}");
    // --no-cache (flag or env) bypasses it entirely.
    let fresh = stdout_json(&s.run(&["--no-cache"], &request(VERSIONS[0], "reg.io/app")));
    assert_eq!(fresh["auth"], serde_json::json!({}));
    let mut cmd = s.command(&[]);
    cmd.env("KUBELET_KEYRING_NO_CACHE", "1");
    let env = stdout_json(&run_with(
        cmd,
        request(VERSIONS[0], "reg.io/app").as_bytes(),
    ));
    assert_eq!(env["auth"], serde_json::json!({}));
}

#[test]
fn files_are_private_hash_named_and_listing_shows_no_secret() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.io/app")));
    assert_eq!(fs::metadata(&s.cache).unwrap().mode() & 0o777, 0o700);
    let files = entry_files(&s);
    assert_eq!(files.len(), 1);
    for f in &files {
        assert_eq!(fs::metadata(f).unwrap().mode() & 0o777, 0o600);
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!name.contains("reg") && name.len() == 69, "{name}");
    }
    for args in [&["cache", "list"][..], &["cache", "list", "--json"]] {
        let out = s.run(args, "");
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("reg.io") && text.contains("docker-config") && text.contains("fresh"),
            "{text}"
        );
        assert!(!text.contains("cache-canary-secret"), "{text}");
    }
    let out = s.run(&["cache", "path"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        s.cache.display().to_string()
    );
    let out = s.run(&["cache", "clear"], "");
    assert!(out.status.success());
    assert!(entry_files(&s).is_empty());
}

#[test]
fn unsafe_cache_dirs_are_refused_and_the_answer_still_comes() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    fs::create_dir_all(&s.cache).unwrap();
    fs::set_permissions(&s.cache, fs::Permissions::from_mode(0o777)).unwrap();
    let out = s.run(&[], &request(VERSIONS[0], "reg.io/app"));
    assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
    assert!(
        stderr(&out).contains("group or world writable"),
        "{}",
        stderr(&out)
    );
    assert!(entry_files(&s).is_empty());

    let s = Sandbox::new();
    s.docker_config(CFG);
    let real = s.tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, &s.cache).unwrap();
    let out = s.run(&[], &request(VERSIONS[0], "reg.io/app"));
    assert_eq!(stdout_json(&out)["auth"]["reg.io"]["username"], "u");
    assert!(stderr(&out).contains("is a symlink"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0);
}

/// 64 processes miss at once; the backend is a FIFO standing in for config.json that the test
/// feeds slowly, counting how many processes opened it (= backend calls).
#[test]
fn many_simultaneous_misses_make_one_backend_call() {
    let s = Sandbox::new();
    // The slow backend: a docker credential helper that takes 400 ms and logs each call.
    let bin = s.tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = s.tmp.path().join("calls");
    let helper = bin.join("docker-credential-slow");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\necho call >> '{}'\nsleep 0.4\nprintf '%s' '{{\"Username\":\"u\",\"Secret\":\"cache-canary-secret\"}}'\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    s.docker_config(r#"{"credHelpers":{"reg.io":"slow"}}"#);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let start = Instant::now();
    let children: Vec<_> = (0..64)
        .map(|_| {
            let mut c = s
                .command(&["-vv"])
                .env("PATH", &path)
                .spawn()
                .expect("spawn");
            c.stdin
                .take()
                .unwrap()
                .write_all(request(VERSIONS[0], "reg.io/app").as_bytes())
                .unwrap();
            c
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let wall = start.elapsed();

    for out in &outputs {
        let json = stdout_json(out);
        assert_eq!(
            json["auth"]["reg.io"]["username"],
            "u",
            "{json} {}",
            stderr(out)
        );
        assert_eq!(json["auth"]["reg.io"]["password"], "cache-canary-secret");
    }
    let calls = fs::read_to_string(&log).unwrap_or_default().lines().count();
    assert_eq!(calls, 1, "backend calls");
    assert!(wall < Duration::from_secs(20), "took {wall:?}");
    eprintln!("64 concurrent cold invocations: {wall:?}, 1 backend call");
}

/// Writers killed with SIGKILL at random points leave a readable cache, and the next run is
/// right. A partial temp file or a truncated entry (what a crash could leave) is harmless.
#[test]
fn killed_writers_leave_a_readable_cache() {
    let s = Sandbox::new();
    s.docker_config(CFG);
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..60 {
        let image = format!("reg.io/app{}", i % 7);
        let mut c = s.command(&["cache", "clear"]).spawn().unwrap();
        c.wait().unwrap();
        let mut child = s.command(&[]).spawn().unwrap();
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(request(VERSIONS[0], &image).as_bytes());
        std::thread::sleep(Duration::from_micros(next() % 4000));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        for f in entry_files(&s) {
            let bytes = fs::read(&f).unwrap();
            assert!(
                serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                "torn entry {}",
                f.display()
            );
        }
    }
    // What a crash mid-write could leave: a partial temp file, and (on a filesystem without
    // atomic rename) a truncated entry.
    stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.io/app")));
    let entry = entry_files(&s).pop().unwrap();
    let good = fs::read(&entry).unwrap();
    fs::write(
        s.cache.join(".partial.123.456.tmp"),
        &good[..good.len() / 3],
    )
    .unwrap();
    fs::write(&entry, &good[..good.len() / 2]).unwrap();
    let json = stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.io/app")));
    assert_eq!(json["auth"]["reg.io"]["username"], "u");
    assert_eq!(
        fs::read(&entry).unwrap().len(),
        good.len(),
        "the truncated entry was rewritten"
    );
}

/// Nothing else removes an entry: a fetch sweeps expired files (at most every ten minutes),
/// the metrics run all of them, an hour after they stopped being of use; live entries and
/// their locks stay.
#[test]
fn expired_entries_and_their_locks_are_swept_by_a_fetch_and_by_the_metrics_run() {
    let s = Sandbox::new();
    let registries = [
        "a.example.com",
        "b.example.com",
        "c.example.com",
        "d.example.com",
    ];
    let auths: Vec<String> = registries
        .iter()
        .map(|r| format!(r#""{r}":{{"username":"u","password":"cache-canary-secret"}}"#))
        .collect();
    s.docker_config(&format!(r#"{{"auths":{{{}}}}}"#, auths.join(",")));
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = |secs: u64, args: &[&str], stdin: &str| {
        let mut c = s.command(args);
        c.env("KUBELET_KEYRING_TEST_NOW", secs.to_string());
        run_with(c, stdin.as_bytes())
    };
    let get = |secs: u64, registry: &str| {
        let out = at(secs, &[], &request(VERSIONS[0], &format!("{registry}/app")));
        assert_eq!(stdout_json(&out)["auth"][registry]["username"], "u");
    };
    // The entries, locks and temp files (not the fetches' sweep lock).
    let files = || {
        fs::read_dir(&s.cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "kubelet-keyring-sweep.lock")
            .collect::<Vec<_>>()
    };
    get(t0, registries[0]);
    get(t0, registries[1]);
    assert_eq!(files().len(), 4, "{:?}", files());
    // Docker-config answers live five minutes; an hour after that they go, on a fetch.
    get(t0 + 300 + 3500, registries[2]);
    assert_eq!(files().len(), 6, "kept within the hour: {:?}", files());
    // Ten minutes after the last fetch's sweep.
    get(t0 + 300 + 3500 + 700, registries[3]);
    let left = files();
    assert_eq!(left.len(), 4, "{left:?}");
    // The metrics run sweeps the rest once they are past their hour too.
    let metrics = s.tmp.path().join("metrics");
    let later = t0 + 8000;
    let out = at(
        later,
        &["--metrics-dir", metrics.to_str().unwrap(), "metrics"],
        "",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files().len(), 2, "{:?}", files());
    let out = at(later, &["cache", "list", "--json"], "");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["key"], registries[3]);
}
