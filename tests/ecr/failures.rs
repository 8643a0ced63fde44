//! Failures: one line, the cause and the fix, no secret, within the deadline.

use super::*;

#[test]
fn an_unreachable_endpoint_fails_in_one_line_within_the_deadline() {
    let s = Sandbox::new();
    let url = closed_port_url();
    let (out, took) = get(
        &s,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        &[("AWS_ENDPOINT_URL_ECR", &url)],
        &["--no-cache"],
    );
    let line = assert_one_line_failure(&out, &[]);
    assert!(line.starts_with("kubelet-keyring: error: ecr: 123456789012.dkr.ecr.us-east-1.amazonaws.com: cannot reach"), "{line}");
    assert!(
        line.contains(&url) && line.contains("AWS_ENDPOINT_URL_ECR"),
        "{line}"
    );
    assert!(
        line.contains("Connection refused") && line.contains("check the region"),
        "{line}"
    );
    assert!(took < DEADLINE, "{took:?}");
}

#[test]
fn an_unusable_ca_bundle_is_named() {
    let s = Sandbox::new();
    // The SDK's TLS set-up panics on a bundle it cannot parse: each of these must be a
    // configuration error in one line instead.
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("no-such-ca.pem", None, "cannot read AWS_CA_BUNDLE"),
        ("empty.pem", Some(""), "no PEM certificate"),
        (
            "bad-base64.pem",
            Some("-----BEGIN CERTIFICATE-----\n%%%not base64%%%\n-----END CERTIFICATE-----\n"),
            "certificate 1 is not valid PEM",
        ),
        (
            "not-a-cert.pem",
            Some("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"),
            "certificate 1 does not parse",
        ),
    ];
    for (name, content, expected) in cases {
        let bundle = s.tmp.path().join(name);
        if let Some(c) = content {
            std::fs::write(&bundle, c).unwrap();
        }
        let (out, _) = get(
            &s,
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
            &[
                ("AWS_CA_BUNDLE", bundle.to_str().expect("utf-8")),
                ("AWS_ENDPOINT_URL_ECR", &closed_port_url()),
            ],
            &["--no-cache"],
        );
        let line = assert_misconfigured(&out, &[]);
        assert!(
            line.contains(expected) && line.contains(name),
            "{name}: {line}"
        );
    }
}

#[test]
fn files_the_sdk_would_read_without_end_are_refused_in_time() {
    // The SDK reads these whole on the runtime's one thread, where no deadline reaches it:
    // /dev/zero hung the call until the kubelet killed it, or memory ran out.
    let s = Sandbox::new();
    for var in [
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_CA_BUNDLE",
    ] {
        for path in ["/dev/zero", "/"] {
            let started = Instant::now();
            let (out, _) = get(
                &s,
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
                &[
                    (var, path),
                    ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
                    ("AWS_ENDPOINT_URL_ECR", &closed_port_url()),
                ],
                &["--no-cache"],
            );
            let line = assert_misconfigured(&out, &[]);
            assert!(
                line.contains(var) && line.contains(path) && line.contains("not a regular file"),
                "{var}={path}: {line}"
            );
            assert!(started.elapsed() < Duration::from_secs(10), "{var}={path}");
        }
    }
}

#[test]
fn missing_credentials_name_the_fix() {
    let s = Sandbox::new();
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_ECR", closed_port_url());
    let started = Instant::now();
    let out = run_with(
        cmd,
        request(
            VERSIONS[0],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        )
        .as_bytes(),
    );
    let line = assert_misconfigured(&out, &[]);
    assert!(
        line.contains("no AWS credentials") && line.contains("hop limit"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_silent_instance_metadata_service_fails_fast() {
    let imds = silent();
    let s = Sandbox::new();
    let mut cmd = s.command(&["--no-cache"]);
    cmd.env("AWS_EC2_METADATA_DISABLED", "false")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.base())
        .env("AWS_ENDPOINT_URL_ECR", closed_port_url());
    let started = Instant::now();
    let out = run_with(
        cmd,
        request(
            VERSIONS[0],
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        )
        .as_bytes(),
    );
    let took = started.elapsed();
    let line = assert_misconfigured(&out, &[]);
    assert!(
        line.contains("no AWS credentials") && line.contains("hop limit"),
        "{line}"
    );
    // IMDS gets 1 s timeouts, not the SDK's default of several seconds per attempt.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn throttling_is_retried_a_bounded_number_of_times() {
    let fake = aws_fake(|_| {
        (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded body-canary-51c"}"#.into(),
        )
    });
    let s = Sandbox::new();
    let (out, took) = get(
        &s,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        &[("AWS_ENDPOINT_URL_ECR", fake.base())],
        &["--no-cache"],
    );
    let line = assert_one_line_failure(&out, &["body-canary-51c"]);
    assert!(
        line.contains("ThrottlingException") && line.contains("throttled after 3 attempts"),
        "{line}"
    );
    assert_eq!(fake.requests().len(), 3, "{line}");
    assert!(took < DEADLINE, "{took:?}");
}

#[test]
fn access_denied_names_the_permission_and_is_not_retried() {
    let fake = aws_fake(|_| {
        (
            400,
            r#"{"__type":"AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/x body-canary-0d2 is not authorized"}"#.into(),
        )
    });
    let s = Sandbox::new();
    let (out, _) = get(
        &s,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        &[("AWS_ENDPOINT_URL_ECR", fake.base())],
        &["--no-cache"],
    );
    let line = assert_one_line_failure(&out, &["body-canary-0d2"]);
    assert!(
        line.contains("AccessDeniedException") && line.contains("ecr:GetAuthorizationToken"),
        "{line}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn other_images_never_reach_aws() {
    let fake = aws_fake(|_| (500, "{}".into()));
    let s = Sandbox::new();
    for image in [
        "quay.io/team/app",
        "nginx:1.27",
        "evil.io/123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io/app",
        "public.ecr.aws.evil.io/x",
    ] {
        let (out, took) = get(
            &s,
            image,
            &[
                ("AWS_ENDPOINT_URL_ECR", fake.base()),
                ("AWS_ENDPOINT_URL_ECR_PUBLIC", fake.base()),
            ],
            &["--no-cache"],
        );
        assert_eq!(stdout_json(&out)["auth"], serde_json::json!({}), "{image}");
        assert!(took < Duration::from_secs(5), "{image}: {took:?}");
    }
    assert_eq!(fake.requests().len(), 0);
}
