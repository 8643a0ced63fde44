//! Workload identity federation files (`"type": "external_account"`) against a fake Google
//! STS and IAM credentials API, a fake token URL and a fake AWS metadata server, each as
//! Google's documentation and auth libraries describe them (AIP-4117; "Access resources from
//! AWS"; the STS `token` and IAM `generateAccessToken` references), field by field.

mod aws;
mod failures;
mod sources;

use super::*;
use std::collections::BTreeMap;

const AUD: &str =
    "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov";
const SUBJECT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJub2RlIn0.subject-canary-c2ln";
const SA: &str = "puller@proj.iam.gserviceaccount.com";
const IAM_PATH: &str =
    "/v1/projects/-/serviceAccounts/puller@proj.iam.gserviceaccount.com:generateAccessToken";
const AWS_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";
const IMDS_SESSION: &str = "imds-session-canary";
const AWS_SECRET: &str = "aws-secret-canary/K7MDENG+bPxRfiCY";
const AWS_SESSION: &str = "aws-session-canary";

/// Fake Google and friends: STS (form body; `ya29.federated`), IAM (`ya29.impersonated` to a
/// bearer `ya29.federated`), a subject token URL (`/subject`, needing `Metadata: True`), and
/// AWS's metadata server under `/latest` (an IMDSv2 session required).
fn fake() -> Fake {
    google::fake(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", STS_PATH) => json(
            200,
            r#"{"access_token":"ya29.federated","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":3599}"#,
        ),
        ("POST", IAM_PATH) => {
            if r.headers.get("authorization").map(String::as_str) != Some("Bearer ya29.federated") {
                return json(401, r#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#);
            }
            json(
                200,
                &format!(
                    r#"{{"accessToken":"ya29.impersonated","expireTime":"{}"}}"#,
                    rfc3339(unix_now() + 3599)
                ),
            )
        }
        ("GET", p) if p.starts_with("/subject") => {
            if r.headers.get("metadata").map(String::as_str) != Some("True") {
                return json(400, "{}");
            }
            json(
                200,
                &format!(r#"{{"access_token":"{SUBJECT}","expires_in":"3599"}}"#),
            )
        }
        ("PUT", "/latest/api/token") => {
            if r.headers
                .get("x-aws-ec2-metadata-token-ttl-seconds")
                .map(String::as_str)
                != Some("300")
            {
                return json(400, "");
            }
            json(200, IMDS_SESSION)
        }
        ("GET", p) if p.starts_with("/latest/meta-data/") => {
            if r.headers
                .get("x-aws-ec2-metadata-token")
                .map(String::as_str)
                != Some(IMDS_SESSION)
            {
                return json(401, "");
            }
            match p {
                "/latest/meta-data/placement/availability-zone" => json(200, "us-east-2b"),
                "/latest/meta-data/iam/security-credentials" => json(200, "node-role\n"),
                "/latest/meta-data/iam/security-credentials/node-role" => json(
                    200,
                    &format!(
                        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAEXAMPLEROLE","SecretAccessKey":"{AWS_SECRET}","Token":"{AWS_SESSION}","Expiration":"2099-01-01T00:00:00Z"}}"#
                    ),
                ),
                _ => json(404, ""),
            }
        }
        _ => json(404, "{}"),
    })
}

/// Writes the credentials file `ea.json` with `fields` (and the type) and returns its path.
fn ea_file(s: &Sandbox, fields: serde_json::Value) -> String {
    let mut j = fields;
    j["type"] = "external_account".into();
    let p = s.tmp.path().join("ea.json");
    write(&p, &j.to_string());
    p.display().to_string()
}

/// An external account file whose subject token ([`SUBJECT`], a JWT) is a file in the
/// sandbox, exchanged at `token_url`.
fn file_sourced(s: &Sandbox, token_url: &str) -> String {
    let token_file = s.tmp.path().join("token");
    write(&token_file, SUBJECT);
    ea_file(
        s,
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": token_url,
            "credential_source": {"file": token_file},
        }),
    )
}

/// One run for a Google image with GOOGLE_APPLICATION_CREDENTIALS `file` and `env`, without
/// cache, with debug output (which must not show a secret either).
fn run(s: &Sandbox, file: &str, env: &[(&str, &str)]) -> Output {
    let mut all = vec![
        ("GOOGLE_APPLICATION_CREDENTIALS", file),
        ("GCE_METADATA_HOST", "127.0.0.1:1"),
    ];
    all.extend_from_slice(env);
    get(s, "us-docker.pkg.dev/p/r/i", &all, &[]).0
}

/// The same with `-vvv`: every debug line, none with a secret.
fn traced(s: &Sandbox, file: &str, env: &[(&str, &str)]) -> Output {
    let mut all = vec![
        ("GOOGLE_APPLICATION_CREDENTIALS", file),
        ("GCE_METADATA_HOST", "127.0.0.1:1"),
    ];
    all.extend_from_slice(env);
    get(s, "us-docker.pkg.dev/p/r/i", &all, &["-vvv"]).0
}

fn sts_form(fake: &Fake) -> Vec<BTreeMap<String, String>> {
    requests_to(fake, STS_PATH)
        .iter()
        .map(|r| {
            assert_eq!(
                r.headers.get("content-type").map(String::as_str),
                Some("application/x-www-form-urlencoded")
            );
            form(&r.body)
        })
        .collect()
}
