//! The examples are exercised: the demo request, the node-bootstrap script with its systemd
//! drop-in, and the fake kubelet driving the real binary with the bundled kubelet config.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readme_demo_answers_from_the_bundled_docker_config() {
    let s = Sandbox::new();
    let req = std::fs::read_to_string(root().join("examples/demo/request.json")).unwrap();
    let demo_root = root().join("examples/demo/kubelet-root");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(&s.cwd)
        .env_clear()
        .env("HOME", &s.home)
        .arg("--root-dir")
        .arg(&demo_root)
        .arg("--no-cache")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let json = stdout_json(&run_with(cmd, req.as_bytes()));
    assert_eq!(
        json["auth"]["registry.example.com"]["username"],
        "demo-robot"
    );
    // team-b's path-scoped key exists for this registry, so the answer is per image.
    assert_eq!(json["cacheKeyType"], "Image");
}

#[test]
fn node_bootstrap_installs_validates_and_adds_the_drop_in() {
    let s = Sandbox::new();
    let dest = s.tmp.path().join("node");
    let out = Command::new("bash")
        .arg(root().join("examples/node-bootstrap.sh"))
        .arg(BIN)
        .arg(root().join("config/credential-provider-config.yaml"))
        .env("DESTDIR", &dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("valid for kubelet") && stdout.contains("0 warnings"),
        "{stdout}"
    );
    use std::os::unix::fs::PermissionsExt;
    let bin = dest.join("usr/libexec/kubelet-credential-providers/kubelet-keyring");
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let cfg = dest.join("etc/kubernetes/credential-provider-config.yaml");
    assert_eq!(
        std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let dropin = std::fs::read_to_string(
        dest.join("etc/systemd/system/kubelet.service.d/20-kubelet-keyring.conf"),
    )
    .unwrap();
    assert!(dropin.contains(
        "--image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml"
    ));
    assert!(dropin
        .contains("--image-credential-provider-bin-dir=/usr/libexec/kubelet-credential-providers"));
    // The installed binary answers as the kubelet would ask it.
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert!(out.status.success());
}

/// The fake kubelet example, built with the features of the suite's own command
/// (`cargo test --workspace --all-features`, scripts/test.sh): there `cargo test` has built
/// it already and this is a no-op, where a build of the package alone would resolve other
/// features for the shared dependencies and rebuild the whole tree (minutes) twice. The
/// variables `cargo test` sets for this test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...) are
/// not passed on: build scripts (ring's) rerun when they change, and so would everything
/// above them.
fn fake_kubelet() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || k == "CARGO_PRIMARY_PACKAGE"
            || k == "CARGO_TARGET_TMPDIR"
        {
            cmd.env_remove(&*k);
        }
    }
    let st = cmd
        .args([
            "build",
            "-q",
            "--workspace",
            "--all-features",
            "--example",
            "fake_kubelet",
            "--manifest-path",
        ])
        .arg(root().join("Cargo.toml"))
        .status()
        .expect("cargo build --example fake_kubelet");
    assert!(st.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("debug/examples/fake_kubelet")
}

#[test]
fn the_fake_kubelet_accepts_our_answers_under_the_kubelets_strict_rules() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"registry.example.com":{"username":"robot","password":"fk-canary"},"https://index.docker.io/v1/":{"username":"hub","password":"fk-hub"}}}"#);
    // The bin dir holds the binary under the provider's name, as the kubelet requires.
    let bin_dir = s.tmp.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(BIN, bin_dir.join("kubelet-keyring")).unwrap();
    let fk = fake_kubelet();
    for (config, image, want) in [
        (
            "config/credential-provider-config.yaml",
            "registry.example.com/app:1",
            "user \"robot\"",
        ),
        (
            "config/credential-provider-config.yaml",
            "nginx:1.25",
            "user \"hub\"",
        ),
        (
            "config/credential-provider-config-v1beta1.yaml",
            "registry.example.com/app",
            "user \"robot\"",
        ),
    ] {
        let out = Command::new(&fk)
            .arg(root().join(config))
            .arg(&bin_dir)
            .arg(image)
            .current_dir(&s.cwd)
            .env_clear()
            .env("HOME", &s.home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBELET_KEYRING_ROOT_DIR", &s.root)
            .env("KUBELET_KEYRING_CACHE_DIR", &s.cache)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{config} {image}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("try #1") && text.contains(want),
            "{config} {image}: {text}"
        );
        assert!(
            !text.contains("fk-canary") && !text.contains("fk-hub"),
            "{text}"
        );
    }
}

#[test]
fn explain_shows_the_decision_and_never_a_secret() {
    let s = Sandbox::new();
    s.docker_config(r#"{"auths":{"reg.io/team":{"username":"team","password":"ex-canary-1"},"reg.io":{"auth":"dTpleC1jYW5hcnktMg=="},"reg.io:5000":{"username":"p","password":"ex-canary-3"}}}"#);
    let out = s.run(
        &["explain", "reg.io/team/app:1", "reg.io/other", "--fetch"],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", stderr(&out));
    assert!(
        text.contains("image reg.io/team/app (from \"reg.io/team/app:1\")"),
        "{text}"
    );
    assert!(text.contains("key \"reg.io/team\" matches"), "{text}");
    assert!(
        text.contains("key \"reg.io:5000\" does not match: ports differ"),
        "{text}"
    );
    assert!(text.contains("cacheKeyType Image"), "{text}");
    assert!(text.contains("fetch: ok from docker-config"), "{text}");
    assert!(text.contains("answered by: docker-config"), "{text}");
    for secret in [
        "ex-canary-1",
        "ex-canary-2",
        "ex-canary-3",
        "dTpleC1jYW5hcnktMg",
    ] {
        assert!(
            !text.contains(secret) && !stderr(&out).contains(secret),
            "{secret} leaked"
        );
    }
    // JSON form, and a bad reference exits 2.
    let out = s.run(&["explain", "--json", "reg.io/x"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["image"], "reg.io/x");
    assert_eq!(json[0]["answered_by"], "docker-config");
    let out = s.run(&["explain", "Bad/Ref"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_fetch_says_what_the_failure_kind_leads_to() {
    let s = Sandbox::new();
    // A docker credential helper that is not installed: the set-up must change (exit 2).
    s.docker_config(r#"{"credHelpers":{"reg.io":"keyring-test-missing"}}"#);
    let out = s.run(&["explain", "reg.io/app", "--fetch"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("fetch: FAILED"), "{text}");
    assert!(
        text.contains("kind misconfigured: exit 2, no cached answer served"),
        "{text}"
    );
    let out = s.run(&["explain", "reg.io/app", "--fetch", "--json"], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json[0]["fetch"]["error_kind"], "misconfigured", "{json}");
}

#[test]
fn completions_and_man_page() {
    let s = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = s.run(&["completions", shell], "");
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).contains("get-credentials"),
            "{shell}"
        );
    }
    let out = s.run(&["man"], "");
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(
        man.contains(".TH kubelet-keyring 1") && man.contains("validate\\-config"),
        "{man}"
    );
}
