//! Hostile input: mirrors. What a careless operator's runtime files or a pass-through rule
//! can do to an answer that follows mirrors, and what must still hold: no secret on stderr,
//! the pod's token handed to nobody but its rule's registry. (A silent mirror endpoint, many
//! parallel pulls, look-alike hosts, deep TOML, FIFOs and `-vvv` held from the start; their
//! tests are in `tests/mirrors.rs`.)
#![cfg(feature = "identity")]

use crate::common::issuer::Issuer;
use crate::common::*;

const SOURCE: &str = "source.example.com/team/app";

fn sandbox() -> Sandbox {
    let s = Sandbox::new();
    s.docker_config(
        r#"{"auths":{"source.example.com":{"username":"source-user","password":"source-pw"}}}"#,
    );
    s
}

fn plugin_config(s: &Sandbox, text: &str) -> String {
    let p = s.tmp.path().join("keyring.yaml");
    write(&p, text);
    p.display().to_string()
}

/// containerd and CRI-O files are the operator's; a password pasted into a mirror URL there
/// (which neither runtime reads as a credential) was quoted in the warning that skipped it.
#[test]
fn a_password_in_a_mirror_url_of_a_runtime_file_never_reaches_stderr() {
    let s = sandbox();
    let hosts = s.tmp.path().join("certs.d");
    write(
        &hosts.join("source.example.com/hosts.toml"),
        "[host.\"https://puller:hosts-s3cret@mirror.example.com\"]\n",
    );
    let conf = s.tmp.path().join("registries.conf");
    write(
        &conf,
        "[[registry]]\nprefix = \"quay.example.com\"\n[[registry.mirror]]\nlocation = \"puller:conf-s3cret@mirror.example.com\"\n",
    );
    let cfg = plugin_config(
        &s,
        &format!(
            "mirrors:\n  containerd: {{hostsDir: {}}}\n  registriesConf: {{path: {}}}\n",
            hosts.display(),
            conf.display()
        ),
    );
    for image in [SOURCE, "quay.example.com/team/app"] {
        let out = s.run(
            &["--config", &cfg, "--no-cache", "-vvv"],
            &request(VERSIONS[0], image),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("skipped"),
            "the bad mirror is still named: {err}"
        );
        assert!(!err.contains("s3cret"), "{image}: {err}");
        let out = s.run(&["--config", &cfg, "explain", image], "");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret"));
        assert!(!stderr(&out).contains("s3cret"));
    }
    // The same in the plugin config: refused in one line, without the password.
    let cfg = plugin_config(
        &s,
        "mirrors: {registries: [{source: source.example.com, mirrors: ['puller:cfg-s3cret@mirror.example.com']}]}\n",
    );
    let out = s.run(&["--config", &cfg], &request(VERSIONS[0], SOURCE));
    assert_one_line_exit(&out, 2, &["cfg-s3cret"]);
}

/// A pass-through rule answers with the pod's own token, meant for its rule's registry only.
/// Under the source's key of a mirrored image, the runtime would hand it to the mirror and
/// the source alike (containerd tries every host with it): it was answered there.
#[test]
fn the_pods_token_is_never_handed_out_for_a_mirrored_image() {
    let issuer = Issuer::new();
    let s = sandbox();
    let token = issuer.sa_token("harbor", "team", "puller", "uid-1", 1, 3600);
    for (strategy, mirror_rule_is_the_sources) in [
        ("mirrorFirst", false),
        ("mirrorOnly", false),
        ("mirrorLast", true),
    ] {
        let host = if mirror_rule_is_the_sources {
            "source.example.com"
        } else {
            "mirror.example.com"
        };
        let cfg = plugin_config(
            &s,
            &format!(
                "backends: [identity, docker-config]
mirrors:
  credentials: {strategy}
  registries: [{{source: source.example.com, mirrors: [mirror.example.com]}}]
identity:
  rules:
    - hosts: [{host}]
      identity: pod
      pod: {{audience: harbor}}
      method: {{passThrough: {{}}}}
"
            ),
        );
        let out = s.run(
            &["--config", &cfg, "--no-cache"],
            &sa_request(SOURCE, &token, &[]),
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            !text.contains(&token),
            "{strategy}: the pod's token was answered: {text}"
        );
        let err = stderr(&out);
        assert!(!err.contains(&token), "{strategy}: {err}");
        assert!(
            err.contains("pod's service-account token"),
            "{strategy}: the refusal is not said: {err}"
        );
    }
}
