//! What an AWS peer sends: a flood (every answer the SDK reads stops at the cap), a 200 that
//! does not parse, an expiry beyond any clock.

use super::*;

// ---------------------------------------------------------------------------------------
// #13: every answer the AWS SDK reads stops at the cap.

/// Each AWS peer the SDK reads, flooding: the run ends in one line within the deadline, and
/// no connection took more than the cap and the socket buffers of the 64 MiB offered (the
/// old code read it all: 2.3 GB of memory for a longer flood).
#[test]
fn every_answer_the_aws_sdk_reads_stops_at_the_cap() {
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let ecr_request = request(VERSIONS[0], &format!("{HOST}/app"));
    let sa_req = sa_request(&format!("{HOST}/app"), &token, &[(ROLE_ANNOTATION, ROLE)]);
    type Case = (&'static str, &'static str, &'static str);
    let cases: [Case; 4] = [
        (
            "ECR",
            "application/x-amz-json-1.1",
            r#"{"authorizationData":[{"authorizationToken":""#,
        ),
        (
            "STS",
            "text/xml",
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>",
        ),
        ("container credentials", "application/json", r#"{"AccessKeyId":""#),
        ("IMDS", "text/plain", ""),
    ];
    for (peer, content_type, prefix) in cases {
        let flood = Flood::start(content_type, prefix);
        let s = Sandbox::new();
        let url = flood.base.clone();
        let creds_url = format!("{url}/creds");
        let ecr_url = closed_port_url();
        let (url, creds_url, ecr_url) = (url.as_str(), creds_url.as_str(), ecr_url.as_str());
        let (req, env): (&str, Vec<(&str, &str)>) = match peer {
            "ECR" => (
                &ecr_request,
                [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", url)].to_vec(),
            ),
            "STS" => (
                &sa_req,
                vec![
                    ("AWS_ENDPOINT_URL_STS", url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
            "container credentials" => (
                &ecr_request,
                vec![
                    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
            _ => (
                &ecr_request,
                vec![
                    ("AWS_EC2_METADATA_DISABLED", "false"),
                    ("AWS_EC2_METADATA_SERVICE_ENDPOINT", url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
        };
        let (out, took) = run(&s, req, &env);
        let taken = flood.taken();
        let err = stderr(&out);
        assert!(
            matches!(out.status.code(), Some(1 | 2)) && err.lines().count() == 1,
            "{peer}: exit {:?}: {err}",
            out.status.code()
        );
        assert!(!err.contains("secret-canary"), "{peer}: {err}");
        assert!(took < DEADLINE, "{peer}: {took:?}");
        assert!(!taken.is_empty(), "{peer}: the peer was never asked: {err}");
        assert!(
            taken.iter().all(|&n| n < MOST_TAKEN),
            "{peer}: a connection took {taken:?} bytes of {FLOOD}: {err}"
        );
        if peer != "IMDS" {
            // IMDS failures end the node's chain as "no credentials", which says so.
            assert!(err.contains("larger than 1 MiB"), "{peer}: {err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// #17: a 200 whose body does not parse is an unreadable answer, not a refusal.

#[test]
fn an_ecr_200_that_does_not_parse_is_an_unreadable_answer_not_a_refusal() {
    for body in [
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":"NaN"}]}"#,
        "<html>captive portal</html>",
    ] {
        let ecr = fake(200, body);
        let s = Sandbox::new();
        let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", ecr.base())];
        let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
        let line = assert_one_line_failure(&out, &["secret-canary-51e2"]);
        assert!(
            line.contains("unreadable answer from") && line.contains(ecr.base()),
            "{body}: {line}"
        );
        assert!(!line.contains("refused"), "{body}: {line}");
        let report = fetch_report(&s, &format!("{HOST}/app"), &env);
        assert_eq!(report["error_kind"], "protocol", "{body}: {report}");
    }
}

#[test]
fn an_sts_200_that_does_not_parse_is_an_unreadable_answer_not_a_refusal() {
    let sts = fake(200, "<html>not STS</html>");
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(&format!("{HOST}/app"), &token, &[(ROLE_ANNOTATION, ROLE)]);
    let ecr = closed_port_url();
    let env = [
        ("AWS_ENDPOINT_URL_STS", sts.base()),
        ("AWS_ENDPOINT_URL_ECR", ecr.as_str()),
    ];
    let (out, _) = run(&s, &req, &env);
    let line = assert_one_line_failure(&out, &["sig-canary"]);
    assert!(
        line.contains("unreadable answer from") && line.contains(sts.base()),
        "{line}"
    );
    assert!(line.contains(ROLE), "{line}");
    assert!(
        !line.contains("refused") && !line.contains("check the role ARN"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------
// A peer's expiry becomes a time only through keyring_api::lifetime.

#[test]
fn an_ecr_expiry_beyond_any_clock_is_clamped_and_one_before_the_epoch_is_expired() {
    let s = Sandbox::new();
    // AWS:pw, expiring 1e300 seconds after the epoch: the SDK makes that i64::MAX seconds,
    // which the old code took as the token's expiry (the year 292 billion); it is clamped to
    // keyring_api::lifetime's ten-year horizon, and the lifetime is the usual 12 h cap.
    let far = fake(
        200,
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":1e300}]}"#,
    );
    let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", far.base())];
    let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
    let resp = stdout_json(&out);
    let secs = go_secs(resp["cacheDuration"].as_str().expect("cacheDuration"));
    assert!(
        ((12 * 3600 * 9 / 10)..=12 * 3600).contains(&secs),
        "{resp}: {}",
        stderr(&out)
    );
    let report = fetch_report(&s, &format!("{HOST}/app"), &env);
    let horizon = 10 * 365 * 24 * 3600;
    let expires_in = report["expires_in_secs"].as_i64().expect("expires_in_secs");
    assert!((horizon - 60..=horizon).contains(&expires_in), "{report}");
    // Before the epoch by as much: expired when it arrived (the epoch, by the clamp), so for
    // this pull only: cacheDuration 0s, a warning naming the clock, never a negative or
    // overflowing lifetime.
    let past = fake(
        200,
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":-1e300}]}"#,
    );
    let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", past.base())];
    let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheDuration"], "0s", "{resp}");
    let err = stderr(&out);
    assert!(err.contains("s ago by this node's clock"), "{err}");
}
