//! Token mode (KEP-4412) in the binary itself, whatever the backend: the per-service-account
//! cache and the rule that an answer never hands the pod's token back as a password (the
//! newest kubelets discard such an answer unless `cacheType` is `Token`). The per-cloud
//! flows are in tests/ecr/service_accounts.rs, tests/gcp/workload_identity.rs and
//! tests/acr/service_accounts.rs.

use crate::common::*;

const AUDIENCE: &str = "sts.amazonaws.com";

/// A docker config that answers `reg.example.com` with this password.
fn config_with_password(s: &Sandbox, password: &str) {
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("u:{password}"))
    };
    s.docker_config(&format!(
        r#"{{"auths":{{"reg.example.com":{{"auth":"{auth}"}}}}}}"#
    ));
}

#[test]
fn an_answer_that_echoes_the_token_is_refused() {
    let s = Sandbox::new();
    let token = sa_token(AUDIENCE, "team", "puller", "uid-1", 1);
    config_with_password(&s, &token);
    let out = s.run(&[], &sa_request("reg.example.com/app", &token, &[]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "refusing an answer from docker-config that would hand the pod's service-account token"
        ),
        "{err}"
    );
    assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
    // The same config answers a request without that token, or with another one.
    let other = sa_token(AUDIENCE, "team", "puller", "uid-1", 2);
    let resp = stdout_json(&s.run(&[], &sa_request("reg.example.com/app", &other, &[])));
    assert_eq!(resp["auth"]["reg.example.com"]["password"], token.as_str());
}

#[test]
fn token_mode_answers_are_cached_per_service_account() {
    let s = Sandbox::new();
    config_with_password(&s, "first");
    let ask = |ns: &str, name: &str, nonce: u32| {
        let token = sa_token(AUDIENCE, ns, name, &format!("uid-{name}"), nonce);
        let out = s.run(
            &[],
            &sa_request("reg.example.com/app", &token, &[("a.example/k", "v")]),
        );
        assert_token_nowhere(
            &token,
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
            Some(&s.cache),
        );
        stdout_json(&out)["auth"]["reg.example.com"]["password"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(ask("team", "a", 1), "first");
    // The file changes; a cached service account keeps its answer (five minutes), a new one
    // reads the file.
    config_with_password(&s, "second");
    assert_eq!(ask("team", "a", 2), "first");
    assert_eq!(ask("team", "b", 3), "second");
    // A request without a token has its own entry too.
    let resp = stdout_json(&s.run(&[], &request(VERSIONS[0], "reg.example.com/app")));
    assert_eq!(resp["auth"]["reg.example.com"]["password"], "second");
    // v1beta1 requests carry no token even if one is sent: the node's entry.
    config_with_password(&s, "third");
    let beta = sa_request(
        "reg.example.com/app",
        &sa_token(AUDIENCE, "team", "a", "uid-a", 4),
        &[],
    )
    .replace(VERSIONS[0], VERSIONS[1]);
    let resp = stdout_json(&s.run(&[], &beta));
    assert_eq!(resp["auth"]["reg.example.com"]["password"], "second");
    // cache list shows two service-account entries and the node's.
    let list = s.run(&["cache", "list", "--json"], "");
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).expect("JSON");
    let mut workloads: Vec<String> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["workload"].as_str().unwrap_or("(node)").to_string())
        .collect();
    workloads.sort();
    assert_eq!(workloads, ["(node)", "team/a", "team/b"]);
}
