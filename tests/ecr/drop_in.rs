//! Drop-in fidelity (issue 22): under upstream's name, what upstream does, or the difference
//! docs/migrating.md states: the endpoints and regions asked, the role annotation, a token's
//! expiry, `ALL_PROXY`. In-process fakes and a recording proxy: no moto needed.

use super::*;

/// Point 1. Upstream asks the region's standard ECR API endpoint whatever the registry host
/// (its host regex captures `-fips` and drops it); a FIPS or dual-stack host must not lead
/// elsewhere, or a VPC endpoint with private DNS for the standard name only is left. Under
/// our own name the host still chooses (`ecr.endpointVariantsFromHost`, on by default), and
/// the SDK's own `AWS_USE_FIPS_ENDPOINT` works under both. The endpoint asked is the host of
/// the proxy's CONNECT (no override, so the SDK's own endpoint rules choose it); the proxy
/// refuses, so each run fails in one line naming that endpoint.
#[test]
fn upstream_a_fips_or_dual_stack_host_asks_the_regions_standard_api_endpoint() {
    let (port, rx) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let s = Sandbox::new();
    /// (image host, extra env, endpoint as upstream, endpoint under our own name)
    type Case = (
        &'static str,
        Option<(&'static str, &'static str)>,
        &'static str,
        &'static str,
    );
    let cases: [Case; 5] = [
        (
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
            None,
            "api.ecr.us-east-1.amazonaws.com",
            "api.ecr-fips.us-east-1.amazonaws.com",
        ),
        (
            "123456789012.dkr-ecr.eu-west-1.on.aws",
            None,
            "api.ecr.eu-west-1.amazonaws.com",
            "ecr.eu-west-1.api.aws",
        ),
        (
            "123456789012.dkr-ecr-fips.us-east-2.on.aws",
            None,
            "api.ecr.us-east-2.amazonaws.com",
            "ecr-fips.us-east-2.api.aws",
        ),
        (
            "ecr-public.aws.com",
            None,
            "api.ecr-public.us-east-1.amazonaws.com",
            "ecr-public.us-east-1.api.aws",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            Some(("AWS_USE_FIPS_ENDPOINT", "true")),
            "api.ecr-fips.us-east-1.amazonaws.com",
            "api.ecr-fips.us-east-1.amazonaws.com",
        ),
    ];
    for (host, extra, upstream, own) in cases {
        for (as_upstream, want) in [(true, upstream), (false, own)] {
            let mut cmd = if as_upstream {
                upstream_command(&s, true)
            } else {
                let mut c = s.command(&["--no-cache"]);
                c.env(TEST_NOW_ENV, TEST_NOW.to_string())
                    .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                    .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
                c
            };
            cmd.env("HTTPS_PROXY", &proxy)
                .env("KUBELET_KEYRING_NO_CACHE", "1");
            if let Some((k, v)) = extra {
                cmd.env(k, v);
            }
            let out = run_with(
                cmd,
                request(VERSIONS[0], &format!("{host}/x/app")).as_bytes(),
            );
            let who = format!("{host} {extra:?} as upstream: {as_upstream}");
            let line = assert_one_line_failure(&out, &[]);
            assert!(line.contains(&format!("https://{want} (")), "{who}: {line}");
            let who = format!("{who}: {line}");
            proxy::assert_connects_only_to(&rx, &format!("{want}:443"), &who);
        }
    }
}

/// Point 2. Upstream reads the role from `eks.amazonaws.com/ecr-role-arn` when the service
/// account has the annotation at all, and an empty value means the node's credentials: not
/// `AWS_ECR_ROLE_ARN`'s role. A blank value counts as empty here (upstream would send it to
/// STS, which refuses it: a documented difference).
#[test]
fn upstream_an_empty_role_annotation_means_the_nodes_credentials() {
    let ecr = ecr_fake("node-password", Some(TEST_NOW + 12 * 3600));
    let sts = aws_fake(|_| (500, "{}".into()));
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let image = format!("{SA_HOST}/app");
    let run = |annotations: &[(&str, &str)]| {
        let mut cmd = upstream_command(&s, true);
        cmd.env("KUBELET_KEYRING_NO_CACHE", "1")
            .env("AWS_ENDPOINT_URL_ECR", ecr.base())
            .env("AWS_ENDPOINT_URL_STS", sts.base())
            .env("AWS_ECR_ROLE_ARN", "arn:aws:iam::333333333333:role/env");
        run_with(cmd, sa_request(&image, &token, annotations).as_bytes())
    };
    for empty in ["", " "] {
        let out = run(&[(ROLE_ANNOTATION, empty)]);
        assert_eq!(
            creds(&stdout_json(&out), SA_HOST).1,
            "node-password",
            "{empty:?}: {}",
            stderr(&out)
        );
        let last = ecr.requests().pop().expect("ECR asked");
        assert_eq!(signer(&last), ACCESS_KEY, "{empty:?}: not the node's keys");
        assert!(sts.requests().is_empty(), "{empty:?}: STS was asked");
    }
    // Without the annotation, AWS_ECR_ROLE_ARN's role is assumed (and this STS fails).
    let out = run(&[]);
    let line = assert_one_line_failure(&out, &[&token]);
    assert!(line.contains("role/env"), "{line}");
    assert!(!sts.requests().is_empty());
}

/// Point 3. Upstream assumes a pod's role for an ECR Public image in the SDK's default region
/// (`AWS_REGION`...), not in us-east-1 where ECR Public's API is; for a private registry, in
/// the registry's region. Which STS endpoint is asked is the host of the proxy's CONNECT.
/// Without any default region upstream fails; here STS is then asked in us-east-1 (a
/// documented extra).
#[test]
fn upstream_a_pods_role_for_ecr_public_is_assumed_in_the_default_region() {
    let (port, rx) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let role = "arn:aws:iam::111111111111:role/team-pull";
    let cases = [
        ("public.ecr.aws/nginx/nginx", Some("eu-west-1"), "eu-west-1"),
        (
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/app",
            Some("eu-west-1"),
            "us-west-2",
        ),
        ("public.ecr.aws/nginx/nginx", None, "us-east-1"),
    ];
    for (image, region, want) in cases {
        let mut cmd = upstream_command(&s, false);
        cmd.env("KUBELET_KEYRING_NO_CACHE", "1")
            .env("HTTPS_PROXY", &proxy);
        if let Some(r) = region {
            cmd.env("AWS_REGION", r);
        }
        let out = run_with(
            cmd,
            sa_request(image, &token, &[(ROLE_ANNOTATION, role)]).as_bytes(),
        );
        let line = assert_one_line_failure(&out, &[&token]);
        assert!(
            line.contains(&format!("cannot assume role {role} at STS in {want}")),
            "{image} {region:?}: {line}"
        );
        let (sts, who) = (
            format!("sts.{want}.amazonaws.com:443"),
            format!("{image} {region:?}"),
        );
        proxy::assert_connects_only_to(&rx, &sts, &format!("{who}: {line}"));
    }
}

/// Point 4. A token without an expiry: upstream answers `cacheDuration: 0s` (the kubelet
/// caches nothing), and so do we, storing nothing either. A token already expired by the
/// node's clock (a clock running ahead): upstream answers it without `cacheDuration` (the
/// kubelet keeps it for its default, 12 h on EKS); here it is answered for this pull only,
/// `0s`, with a warning naming the skew, instead of failing every pull (the old code) or
/// pinning a token this node thinks expired.
#[test]
fn upstream_a_token_without_expiry_or_already_expired_is_answered_for_this_pull_only() {
    let cases = [
        (None, "came without an expiry"),
        (
            Some(TEST_NOW - 3600),
            "expired 3600s ago by this node's clock, which is probably ahead; check it (NTP)",
        ),
    ];
    for (expires, warning) in cases {
        let ecr = ecr_fake("once-password", expires);
        let s = Sandbox::new();
        for n in 1..=2 {
            let mut cmd = upstream_command(&s, true);
            cmd.env("AWS_ENDPOINT_URL_ECR", ecr.base());
            let out = run_with(
                cmd,
                request(VERSIONS[0], &format!("{SA_HOST}/app")).as_bytes(),
            );
            let resp = stdout_json(&out);
            assert_eq!(
                creds(&resp, SA_HOST),
                ("AWS".into(), "once-password".into())
            );
            assert_eq!(resp["cacheDuration"], "0s", "{resp}");
            let err = stderr(&out);
            assert!(err.contains(warning), "{expires:?}: {err}");
            assert_no_secret(&out, &["once-password"]);
            // Nothing cached: every pull asks ECR.
            assert_eq!(ecr.requests().len(), n, "{expires:?}");
        }
        let list = s.run(&["cache", "list"], "");
        let text = String::from_utf8_lossy(&list.stdout);
        assert!(!text.contains(SA_HOST), "{expires:?}: {text}");
    }
}

/// Point 6. Go's `net/http` never reads `ALL_PROXY`: under upstream's name a node whose
/// environment has only `ALL_PROXY` reaches AWS directly, as upstream does (one warning line
/// says it is ignored). Under our own name it is the proxy, as curl and every other backend
/// here read it.
#[test]
fn upstream_all_proxy_is_no_proxy_as_for_upstreams_go_client() {
    let ecr = ecr_fake("direct-password", Some(TEST_NOW + 12 * 3600));
    let (port, rx) = crate::common::proxy::refusing();
    let proxy = format!("http://127.0.0.1:{port}");
    let s = Sandbox::new();
    let image = format!("{SA_HOST}/app");
    let mut cmd = upstream_command(&s, true);
    cmd.env("ALL_PROXY", &proxy)
        .env("AWS_ENDPOINT_URL_ECR", ecr.base())
        .env("KUBELET_KEYRING_NO_CACHE", "1");
    let out = run_with(cmd, request(VERSIONS[0], &image).as_bytes());
    assert_eq!(creds(&stdout_json(&out), SA_HOST).1, "direct-password");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ALL_PROXY is set and ignored"), "{err}");
    assert!(proxy::heads_until_quiet(&rx).is_empty());
    assert_eq!(ecr.requests().len(), 1);

    let (out, _) = get(
        &s,
        &image,
        &[("ALL_PROXY", &proxy), ("AWS_ENDPOINT_URL_ECR", ecr.base())],
        &["--no-cache"],
    );
    assert_one_line_failure(&out, &[]);
    let seen = proxy::heads_until_quiet(&rx);
    assert!(
        seen.first()
            .is_some_and(|h| h.starts_with(&format!("POST {}/ ", ecr.base()))),
        "{seen:?}"
    );
    assert_eq!(ecr.requests().len(), 1);
}
