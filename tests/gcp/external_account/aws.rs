//! An AWS source: the instance profile's keys from a (fake) AWS metadata server sign
//! `GetCallerIdentity`, and the signature is one botocore accepts.

use super::*;

#[test]
fn an_aws_source_signs_get_caller_identity_with_the_instance_profile() {
    let fake = fake();
    let s = Sandbox::new();
    let imds = |p: &str| fake.url(&format!("/latest{p}"));
    let file = ea_file(
        &s,
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": AWS_TYPE,
            "token_url": fake.url(STS_PATH),
            "credential_source": {
                "environment_id": "aws1",
                "region_url": imds("/meta-data/placement/availability-zone"),
                "url": imds("/meta-data/iam/security-credentials"),
                "imdsv2_session_token_url": imds("/api/token"),
                "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            },
        }),
    );
    let out = traced(&s, &file, &[]);
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev").1,
        "ya29.federated"
    );
    let paths: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/placement/availability-zone",
            "GET /latest/meta-data/iam/security-credentials",
            "GET /latest/meta-data/iam/security-credentials/node-role",
            "POST /v1/token",
        ]
    );
    let sts = sts_form(&fake);
    assert_eq!(sts[0]["subject_token_type"], AWS_TYPE);
    let signed: serde_json::Value =
        serde_json::from_str(&crate::common::form(format!("t={}", sts[0]["subject_token"]))["t"])
            .expect("the subject token is a form-encoded JSON request");
    assert_eq!(
        signed["url"],
        "https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
    );
    assert_eq!(signed["method"], "POST");
    let headers: BTreeMap<String, String> = signed["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| {
            (
                h["key"].as_str().unwrap_or_default().to_string(),
                h["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        headers.keys().collect::<Vec<_>>(),
        [
            "Authorization",
            "host",
            "x-amz-date",
            "x-amz-security-token",
            "x-goog-cloud-target-resource"
        ]
    );
    assert_eq!(headers["host"], "sts.us-east-2.amazonaws.com");
    assert_eq!(headers["x-amz-security-token"], AWS_SESSION);
    assert_eq!(headers["x-goog-cloud-target-resource"], AUD);
    assert!(
        headers["Authorization"].starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEROLE/")
            && headers["Authorization"].contains("/us-east-2/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature="),
        "{headers:?}"
    );
    for secret in [AWS_SECRET, IMDS_SESSION, AWS_SESSION] {
        crate::common::assert_token_nowhere(secret, &[("stderr", &out.stderr)], Some(&s.cache));
    }

    // Google's variables first: with AWS_REGION and keys, the metadata server is not asked.
    let before = fake.requests().len();
    let out = run(
        &s,
        &file,
        &[
            ("AWS_REGION", "eu-west-3"),
            ("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ],
    );
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev").1,
        "ya29.federated"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), before + 1, "{reqs:?}");
    let sts = sts_form(&fake);
    let token = &sts[1]["subject_token"];
    let signed = crate::common::form(format!("t={token}"))["t"].clone();
    assert!(
        signed.contains("https://sts.eu-west-3.amazonaws.com?Action=GetCallerIdentity"),
        "{signed}"
    );
    assert!(
        signed.contains("Credential=AKIAENVEXAMPLE/") && !signed.contains("x-amz-security-token"),
        "{signed}"
    );
    crate::common::assert_token_nowhere(AWS_SECRET, &[("stderr", &out.stderr)], Some(&s.cache));
}

/// Verifies an AWS SigV4 signature with botocore (moto's, an implementation other than the
/// one that signed): exit 0 when the `Authorization` of the request on stdin (Google's
/// serialized form, decoded) is right for the secret in `SECRET`.
const BOTOCORE_VERIFY: &str = r#"
import json, os, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
req = json.load(sys.stdin)
h = {x["key"]: x["value"] for x in req["headers"]}
auth = h.pop("Authorization")
signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
akid, _, region, service = auth.split("Credential=")[1].split(",")[0].split("/")[:4]
r = AWSRequest(method=req["method"], url=req["url"], data=b"",
               headers={k: v for k, v in h.items() if k.lower() in signed})
r.context["timestamp"] = h["x-amz-date"]
a = SigV4Auth(Credentials(akid, os.environ["SECRET"], h.get("x-amz-security-token")), service, region)
sys.exit(0 if a.signature(a.string_to_sign(r, a.canonical_request(r)), r) == auth.split("Signature=")[1] else 1)
"#;

/// The signature Google STS would check with AWS, checked by botocore instead: AWS's own
/// Python signer agrees with `aws-sigv4` on the request Google's libraries serialize,
/// `x-goog-cloud-target-resource` included (changing it breaks the signature).
#[test]
#[ignore = "needs moto_server (its botocore)"]
fn an_aws_subject_token_carries_a_signature_botocore_accepts() {
    let moto = crate::common::peer("moto_server", "moto[server] from PyPI");
    let shebang = std::fs::read_to_string(&moto).unwrap_or_default();
    let python = shebang
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .filter(|p| !p.contains("bash") && !p.ends_with("/sh"))
        .unwrap_or("python3")
        .to_string();
    let fake = fake();
    let s = Sandbox::new();
    let file = ea_file(
        &s,
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": AWS_TYPE,
            "token_url": fake.url(STS_PATH),
            "credential_source": {
                "environment_id": "aws1",
                "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            },
        }),
    );
    let out = run(
        &s,
        &file,
        &[
            ("AWS_DEFAULT_REGION", "ap-southeast-2"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEENV"),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
            ("AWS_SESSION_TOKEN", AWS_SESSION),
        ],
    );
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev").1,
        "ya29.federated"
    );
    let token = sts_form(&fake)[0]["subject_token"].clone();
    let signed = crate::common::form(format!("t={token}"))["t"].clone();
    let verify = |request: &str| {
        let mut child = Command::new(python.split_whitespace().next().unwrap_or("python3"))
            .args(python.split_whitespace().skip(1))
            .args(["-c", BOTOCORE_VERIFY])
            .env("SECRET", AWS_SECRET)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn python");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(request.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "the verifier failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    };
    assert!(
        verify(&signed),
        "botocore refuses the signature of {signed}"
    );
    let tampered = signed.replace("providers/prov", "providers/other");
    assert_ne!(tampered, signed);
    assert!(!verify(&tampered), "the target resource is not signed");
}
