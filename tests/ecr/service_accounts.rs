//! KEP-4412: service-account tokens. moto implements AssumeRoleWithWebIdentity (without
//! checking the token) and answers ECR calls signed with the assumed role's credentials in
//! the role's own account, so the password (`<account>-auth-token`) says whose credentials
//! signed the call.

use super::*;

/// Runs one token-mode request against moto, with no node credentials unless `node_creds`,
/// extra `env` and `args` (global flags), and the cache in the sandbox.
fn sa_get(
    s: &Sandbox,
    moto: &Moto,
    request: &str,
    node_creds: bool,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut cmd = s.command(args);
    cmd.env(TEST_NOW_ENV, TEST_NOW.to_string())
        .env("AWS_ENDPOINT_URL_ECR", moto.url())
        .env("AWS_ENDPOINT_URL_STS", moto.url());
    if node_creds {
        cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with(cmd, request.as_bytes())
}

#[test]
#[ignore = "needs moto_server"]
fn the_annotated_role_is_assumed_with_the_service_account_token() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let role = "arn:aws:iam::111111111111:role/team-pull";
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(
        &format!("{SA_HOST}/app"),
        &token,
        &[(ROLE_ANNOTATION, role)],
    );
    // No node credentials at all: the role's must be the ones used. Trace logging on.
    let out = sa_get(&s, &moto, &req, false, &[], &["-vvv"]);
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheKeyType"], "Registry");
    assert_eq!(
        creds(&resp, SA_HOST),
        ("AWS".into(), "111111111111-auth-token".into()),
        "the ECR call was not signed by the assumed role"
    );
    let calls = moto.assume_role_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["RoleArn"], role);
    assert_eq!(calls[0]["RoleSessionName"], "kubelet-keyring");
    assert_eq!(calls[0]["WebIdentityToken"], token);
    let ecr = moto.token_calls();
    assert_eq!(ecr.len(), 1);
    let key = signing_key(&ecr[0]);
    assert!(key.starts_with("ASIA") && key != ACCESS_KEY, "{}", ecr[0]);
    assert!(ecr[0].contains("/us-east-1/ecr/aws4_request"), "{}", ecr[0]);
    // The token reaches moto and nothing else: not stderr (at trace level), not the
    // response, not the cache.
    crate::common::assert_token_not_shown(&token, &out, Some(&s.cache));
    assert_no_secret(&out, &[]);
}

#[test]
#[ignore = "needs moto_server"]
fn the_configured_default_role_and_aws_ecr_role_arn() {
    let moto = Moto::start();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(&format!("{SA_HOST}/app"), &token, &[]);
    // The config's role.
    let s = Sandbox::new();
    let config = s.tmp.path().join("keyring.yaml");
    write(
        &config,
        "ecr:\n  serviceAccountRoleArn: arn:aws:iam::222222222222:role/default-pull\n",
    );
    let cfg = config.to_str().expect("utf-8");
    let out = sa_get(
        &s,
        &moto,
        &req,
        false,
        &[("AWS_ECR_ROLE_ARN", "arn:aws:iam::333333333333:role/env")],
        &["--config", cfg],
    );
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "222222222222-auth-token",
        "{}",
        stderr(&out)
    );
    // Upstream's variable, when the config names none.
    let s = Sandbox::new();
    let out = sa_get(
        &s,
        &moto,
        &req,
        false,
        &[("AWS_ECR_ROLE_ARN", "arn:aws:iam::333333333333:role/env")],
        &[],
    );
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "333333333333-auth-token"
    );
    let roles: Vec<String> = moto
        .assume_role_calls()
        .iter()
        .map(|c| c["RoleArn"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            "arn:aws:iam::222222222222:role/default-pull",
            "arn:aws:iam::333333333333:role/env"
        ]
    );
    // A role that is not an ARN fails in one line naming where it came from, without STS.
    let s = Sandbox::new();
    let bad = sa_request(
        &format!("{SA_HOST}/app"),
        &token,
        &[(ROLE_ANNOTATION, "team-pull")],
    );
    let line = assert_misconfigured(&sa_get(&s, &moto, &bad, true, &[], &[]), &[&token]);
    assert!(
        line.contains("annotation eks.amazonaws.com/ecr-role-arn")
            && line.contains("\"team-pull\" is not an IAM role ARN"),
        "{line}"
    );
    assert_eq!(moto.assume_role_calls().len(), 2);
}

#[test]
#[ignore = "needs moto_server"]
fn no_role_falls_back_to_the_node_only_when_configured() {
    let moto = Moto::start();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(&format!("{SA_HOST}/app"), &token, &[]);
    // Default: the node's credentials.
    let s = Sandbox::new();
    let out = sa_get(&s, &moto, &req, true, &[], &["--no-cache"]);
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "123456789012-auth-token"
    );
    assert_eq!(signing_key(&moto.token_calls()[0]), ACCESS_KEY);
    assert!(moto.assume_role_calls().is_empty());
    // nodeIdentityFallback: false: a one-line error saying how to name a role; no AWS call.
    let config = s.tmp.path().join("strict.yaml");
    write(&config, "ecr:\n  nodeIdentityFallback: false\n");
    let out = sa_get(
        &s,
        &moto,
        &req,
        true,
        &[],
        &["--config", config.to_str().expect("utf-8")],
    );
    let line = assert_misconfigured(&out, &[&token]);
    assert!(
        line.contains(ROLE_ANNOTATION)
            && line.contains("ecr.serviceAccountRoleArn")
            && line.contains("AWS_ECR_ROLE_ARN")
            && line.contains("nodeIdentityFallback"),
        "{line}"
    );
    assert_eq!(moto.token_calls().len(), 1);
    assert!(moto.assume_role_calls().is_empty());
    crate::common::assert_token_nowhere(&token, &[("stderr", &out.stderr)], Some(&s.cache));
}

#[test]
#[ignore = "needs moto_server"]
fn an_assume_role_failure_is_one_line_without_the_token() {
    // A fake STS refusing the role, as AWS does when the trust policy does not match.
    let sts = aws_fake(|_| {
        (
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>".into(),
        )
    });
    let moto = Moto::start();
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(
        &format!("{SA_HOST}/app"),
        &token,
        &[(ROLE_ANNOTATION, "arn:aws:iam::111111111111:role/team-pull")],
    );
    let out = sa_get(
        &s,
        &moto,
        &req,
        true,
        &[("AWS_ENDPOINT_URL_STS", sts.base())],
        &["-vv"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("role arn:aws:iam::111111111111:role/team-pull")
            && last.contains("AccessDenied")
            && last.contains("trust policy"),
        "{err}"
    );
    assert!(
        !err.contains("Not authorized"),
        "the AWS message is not quoted: {err}"
    );
    assert_eq!(sts.requests().len(), 1, "not retried");
    assert!(moto.token_calls().is_empty(), "no fallback to the node");
    crate::common::assert_token_not_shown(&token, &out, Some(&s.cache));
}

#[test]
#[ignore = "needs moto_server"]
fn service_accounts_have_their_own_cache_entries() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let image = format!("{SA_HOST}/app");
    let a_role = [(ROLE_ANNOTATION, "arn:aws:iam::111111111111:role/a")];
    let b_role = [(ROLE_ANNOTATION, "arn:aws:iam::222222222222:role/b")];
    let run = |token: &str, ann: &[(&str, &str)]| {
        let out = sa_get(&s, &moto, &sa_request(&image, token, ann), false, &[], &[]);
        let resp = stdout_json(&out);
        crate::common::assert_token_nowhere(
            token,
            &[("stdout", &out.stdout), ("stderr", &out.stderr)],
            Some(&s.cache),
        );
        creds(&resp, SA_HOST).1
    };
    let calls = || (moto.assume_role_calls().len(), moto.token_calls().len());

    let a1 = sa_token("sts.amazonaws.com", "team", "a", "uid-a", 1);
    assert_eq!(run(&a1, &a_role), "111111111111-auth-token");
    assert_eq!(calls(), (1, 1));
    // Another service account, same registry: its own STS and ECR calls, its own answer.
    let b1 = sa_token("sts.amazonaws.com", "team", "b", "uid-b", 2);
    assert_eq!(run(&b1, &b_role), "222222222222-auth-token");
    assert_eq!(calls(), (2, 2));
    // The same service accounts with fresh tokens (another pod, later): from the cache.
    let a2 = sa_token("sts.amazonaws.com", "team", "a", "uid-a", 3);
    let b2 = sa_token("sts.amazonaws.com", "team", "b", "uid-b", 4);
    assert_eq!(run(&a2, &a_role), "111111111111-auth-token");
    assert_eq!(run(&b2, &b_role), "222222222222-auth-token");
    assert_eq!(
        calls(),
        (2, 2),
        "a fresh token of a known service account missed"
    );
    // Same name, new UID (deleted and re-created): not the old one's entry.
    let a_new = sa_token("sts.amazonaws.com", "team", "a", "uid-a2", 5);
    assert_eq!(run(&a_new, &a_role), "111111111111-auth-token");
    assert_eq!(calls(), (3, 3));
    // And a request without a token never sees a service account's entry.
    let out = sa_get(&s, &moto, &request(VERSIONS[0], &image), true, &[], &[]);
    assert_eq!(
        creds(&stdout_json(&out), SA_HOST).1,
        "123456789012-auth-token"
    );
    assert_eq!(calls(), (3, 4));
    // cache list names the service accounts, never a token.
    let list = s.run(&["cache", "list"], "");
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        text.contains("(sa team/a)") && text.contains("(sa team/b)"),
        "{text}"
    );
    for t in [&a1, &a2, &b1, &b2, &a_new] {
        crate::common::assert_token_nowhere(t, &[("cache list", list.stdout.as_slice())], None);
    }
}

#[test]
#[ignore = "needs moto_server"]
fn an_unreadable_token_bypasses_the_cache() {
    let moto = Moto::start();
    let s = Sandbox::new();
    let req = sa_request(
        &format!("{SA_HOST}/app"),
        "opaque-token-canary-71c",
        &[(ROLE_ANNOTATION, "arn:aws:iam::111111111111:role/a")],
    );
    for n in 1..=2 {
        let out = sa_get(&s, &moto, &req, false, &[], &["-v"]);
        assert_eq!(
            creds(&stdout_json(&out), SA_HOST).1,
            "111111111111-auth-token"
        );
        assert!(
            stderr(&out).contains(
                "not using the cache for this request: the service-account token is not a JWT"
            ),
            "{}",
            stderr(&out)
        );
        assert_eq!(moto.assume_role_calls().len(), n);
        crate::common::assert_token_nowhere(
            "opaque-token-canary-71c",
            &[("stderr", &out.stderr)],
            Some(&s.cache),
        );
    }
    assert!(
        std::fs::read_dir(&s.cache).map(|d| d.count()).unwrap_or(0) == 0,
        "nothing written"
    );
}
