//! Hostile input: files others name (`--config`, `KUBELET_KEYRING_CONFIG`, `validate-config`'s
//! file or directory). A FIFO, a device or a file built to make the parser crawl is one line
//! naming the file and exit 2, at once: never a hang past the kubelet's 60 s, never two lines.

use std::time::{Duration, Instant};

use crate::common::*;

/// Longer than any of these runs takes when right; much shorter than a hang.
const LIMIT: Duration = Duration::from_secs(10);

fn req() -> Vec<u8> {
    request(VERSIONS[0], "quay.io/team/app").into_bytes()
}

/// The run ended within [`LIMIT`] with exit 2 and one line on stderr; returns that line.
fn one_line_exit_2(cmd: std::process::Command, stdin: &[u8], what: &str) -> String {
    let out = run_within(cmd, stdin, LIMIT).unwrap_or_else(|| panic!("{what}: hung"));
    assert_one_line_exit(&out, 2, &[])
}

#[test]
fn a_fifo_as_the_config_is_one_line_naming_it_whether_by_flag_or_by_variable() {
    let s = Sandbox::new();
    let fifo = s.tmp.path().join("config.yaml");
    mkfifo(&fifo);
    let shown = fifo.display().to_string();
    let by_flag = s.command(&["--config", &shown]);
    let mut by_env = s.command(&[]);
    by_env.env("KUBELET_KEYRING_CONFIG", &fifo);
    for (what, cmd) in [("--config", by_flag), ("KUBELET_KEYRING_CONFIG", by_env)] {
        let line = one_line_exit_2(cmd, &req(), what);
        assert!(
            line.contains(&shown) && line.contains("not a regular file (a FIFO)"),
            "{what}: {line}"
        );
    }
}

#[test]
fn the_config_as_dev_zero_or_a_directory_is_one_line_saying_it_is_not_a_regular_file() {
    let s = Sandbox::new();
    for (path, what) in [
        ("/dev/zero", "a character device"),
        (s.cwd.to_str().expect("utf-8"), "a directory"),
    ] {
        let line = one_line_exit_2(s.command(&["--config", path]), &req(), path);
        assert!(
            line.contains(path) && line.ends_with(&format!("not a regular file ({what})")),
            "{line}"
        );
        // Not first a warning about who may write a device, then a size complaint.
        assert!(
            !line.contains("writable") && !line.contains("larger than"),
            "{line}"
        );
    }
}

#[test]
fn validate_config_on_a_fifo_or_a_directory_holding_one_is_one_line_not_a_hang() {
    let s = Sandbox::new();
    let fifo = s.tmp.path().join("kubelet.yaml");
    mkfifo(&fifo);
    let dir = s.tmp.path().join("conf.d");
    std::fs::create_dir(&dir).expect("mkdir");
    mkfifo(&dir.join("10-providers.yaml"));
    for path in [&fifo, &dir.join("10-providers.yaml"), &dir] {
        let shown = path.display().to_string();
        let line = one_line_exit_2(s.command(&["validate-config", &shown]), b"", &shown);
        assert!(line.contains("not a regular file (a FIFO)"), "{line}");
        assert!(
            line.contains("10-providers.yaml") || path == &fifo,
            "{line}"
        );
    }
}

/// `[[[[...]]]]` nested 100,000 deep: 200 KB, well under the 1 MiB cap, and the YAML
/// scanner's work grows with the square of the depth (over 30 s in a debug build).
fn nested(prefix: &str, depth: usize) -> String {
    format!("{prefix}{}{}\n", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn a_deeply_nested_config_is_refused_at_once_naming_the_file() {
    let s = Sandbox::new();
    let plugin = s.tmp.path().join("keyring.yaml");
    write(&plugin, &nested("backends: ", 100_000));
    let kubelet = s.tmp.path().join("kubelet.yaml");
    write(
        &kubelet,
        &nested(
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: ",
            100_000,
        ),
    );
    let json = s.tmp.path().join("keyring.json");
    write(
        &json,
        &format!("{}{}\n", "{\"a\":".repeat(50_000), "}".repeat(50_000)),
    );
    let cases = [
        (
            plugin.clone(),
            s.command(&["--config", plugin.to_str().expect("utf-8")]),
        ),
        (
            json.clone(),
            s.command(&["--config", json.to_str().expect("utf-8")]),
        ),
        (
            kubelet.clone(),
            s.command(&["validate-config", kubelet.to_str().expect("utf-8")]),
        ),
    ];
    for (path, cmd) in cases {
        let started = Instant::now();
        let line = one_line_exit_2(cmd, &req(), &path.display().to_string());
        let took = started.elapsed();
        assert!(
            line.contains(&path.display().to_string()) && line.contains("nested"),
            "{line}"
        );
        assert!(
            took < Duration::from_secs(2),
            "{}: {took:?}",
            path.display()
        );
    }
}

#[test]
fn a_config_nested_a_few_levels_deep_in_flow_style_still_loads() {
    let s = Sandbox::new();
    let cfg = s.tmp.path().join("keyring.yaml");
    write(
        &cfg,
        "{\"apiVersion\": \"kubelet-keyring/v1alpha1\", \"kind\": \"KeyringConfig\", \
         \"backends\": [\"docker-config\"]}\n",
    );
    let out = s.run(
        &["--config", cfg.to_str().expect("utf-8")],
        &String::from_utf8(req()).expect("utf-8"),
    );
    assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}));
}

/// Block-style nesting no bracket counts: `- - - ... x` and `? ? ? ... x`, 500,000 deep in
/// 1 MB (under the 1 MiB cap), and a mapping indented 1,400 deep. Refused at once naming the
/// file, in bounded memory: the old code parsed every level into the YAML loader's event list
/// first, 203 MB of memory per invocation in a release build (0.6 s), and in 256 MiB of
/// address space aborted (exit 134, allocating 192 MiB).
#[test]
fn a_config_nested_in_block_style_is_refused_at_once_in_bounded_memory() {
    let s = Sandbox::new();
    let cases = [
        ("dashes.yaml", format!("{}x\n", "- ".repeat(500_000))),
        ("keys.yaml", format!("{}x\n", "? ".repeat(500_000))),
        (
            "indented.yaml",
            (0..1_400)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect::<String>(),
        ),
    ];
    for (name, text) in cases {
        let path = s.tmp.path().join(name);
        write(&path, &text);
        let shown = path.display().to_string();
        for args in [
            vec!["--config", shown.as_str()],
            vec!["validate-config", shown.as_str()],
        ] {
            let mut cmd = std::process::Command::new("sh");
            cmd.arg("-c")
                .arg("ulimit -v 262144; exec \"$0\" \"$@\"")
                .arg(BIN)
                .args(["--no-cache", "--root-dir"])
                .arg(&s.root)
                .args(&args);
            s.isolate(&mut cmd);
            let started = Instant::now();
            let line = one_line_exit_2(cmd, &req(), &format!("{args:?}"));
            assert!(
                line.contains(&shown) && line.contains("nested"),
                "{args:?}: {line}"
            );
            assert!(started.elapsed() < Duration::from_secs(2), "{args:?}");
        }
    }
}
