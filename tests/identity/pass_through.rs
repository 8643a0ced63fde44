//! `passThrough`: the identity's token is the registry password (Harbor, zot).

use super::*;

#[test]
fn pass_through_hands_the_pods_token_to_the_registry_and_nobody_caches_it() {
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let cfg = config(&s, &pod_rule(HOST, "passThrough: {username: robot$harbor}"));
    let token = issuer.sa_token(HOST, "team", "puller", "uid-1", 1, 3600);
    for _ in 0..2 {
        let out = run(
            &s,
            &cfg,
            &sa_request(IMAGE, &token, &[]),
            &[],
            &["-vvvvvvvvv"],
        );
        let resp = stdout_json(&out);
        assert_eq!(creds(&resp, HOST), ("robot$harbor".into(), token.clone()));
        assert_eq!(resp["cacheDuration"], "0s", "the kubelet must not keep it");
        assert_eq!(resp["cacheKeyType"], "Registry");
        assert!(
            !stderr(&out).contains(&token[token.len() - 20..]),
            "stderr: {}",
            stderr(&out)
        );
        // Nothing on disk holds the token.
        assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
    }
}

#[test]
fn pass_through_of_a_node_token_file_answers_every_api_version_for_its_lifetime() {
    let issuer = Issuer::new();
    let s = Sandbox::new();
    let file = s.tmp.path().join("node-token");
    let token = registry_token(&issuer, "node-1", 7200);
    write(&file, &format!("{token}\n"));
    let cfg = config(
        &s,
        &format!("    - hosts: [{HOST}]\n      identity: node\n      node: {{tokenFile: {}}}\n      method: {{passThrough: {{username: node}}}}\n", file.display()),
    );
    for v in VERSIONS {
        let resp = stdout_json(&run(&s, &cfg, &request(v, IMAGE), &[], &["--no-cache"]));
        assert_eq!(resp["apiVersion"], v);
        assert_eq!(creds(&resp, HOST), ("node".into(), token.clone()));
        lifetime_ok(cache_secs(&resp), 7200);
    }
    // Images of other hosts are not the backend's: an empty answer.
    let resp = stdout_json(&run(
        &s,
        &cfg,
        &request(VERSIONS[0], "other.example.com/x"),
        &[],
        &["--no-cache"],
    ));
    assert_eq!(resp["auth"], json!({}));
}
