//! ECR Public (moto has no ECR Public: an in-process fake of its JSON API).

use super::*;

#[test]
fn ecr_public_token_comes_from_us_east_1() {
    let token = base64::engine::general_purpose::STANDARD.encode("AWS:public-canary-password");
    let expires = TEST_NOW + 12 * 3600;
    let fake = aws_fake(move |r| {
        if r.headers.get("x-amz-target").map(String::as_str)
            != Some("SpencerFrontendService.GetAuthorizationToken")
        {
            return (400, r#"{"__type":"UnknownOperationException"}"#.into());
        }
        (
            200,
            format!(
                r#"{{"authorizationData":{{"authorizationToken":"{token}","expiresAt":{expires}}}}}"#
            ),
        )
    });
    let s = Sandbox::new();
    for host in ["public.ecr.aws", "ecr-public.aws.com"] {
        // The region of the environment does not matter: ECR Public lives in us-east-1.
        let (out, _) = get(
            &s,
            &format!("{host}/nginx/nginx:1.27"),
            &[
                ("AWS_ENDPOINT_URL_ECR_PUBLIC", fake.base()),
                ("AWS_REGION", "eu-west-1"),
            ],
            &["--no-cache"],
        );
        let resp = stdout_json(&out);
        assert_eq!(
            creds(&resp, host),
            ("AWS".into(), "public-canary-password".into())
        );
        assert_eq!(resp["cacheKeyType"], "Registry");
        let d = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
        assert!(LIFETIME_12H.contains(&d), "{resp}");
        assert_no_secret(&out, &["public-canary-password"]);
    }
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    for r in reqs {
        let auth = r.headers.get("authorization").cloned().unwrap_or_default();
        assert!(
            auth.contains("/us-east-1/ecr-public/aws4_request"),
            "{auth}"
        );
    }
}
