//! Workload identity federation files (`"type": "external_account"`) against a fake Google
//! STS and IAM credentials API, a fake token URL and a fake AWS metadata server, each as
//! Google's documentation and auth libraries describe them (AIP-4117; "Access resources from
//! AWS"; the STS `token` and IAM `generateAccessToken` references), field by field.

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

#[test]
fn an_external_account_file_source_is_exchanged_at_sts_then_impersonated() {
    let fake = fake();
    let s = Sandbox::new();
    let token_file = s.tmp.path().join("oidc.json");
    write(&token_file, &format!(r#"{{"id_token":"{SUBJECT}"}}"#));
    let file = ea_file(
        &s,
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "token_url": fake.url(STS_PATH),
            "service_account_impersonation_url": fake.url(IAM_PATH),
            "service_account_impersonation": {"token_lifetime_seconds": 1800},
            "credential_source": {"file": token_file, "format": {"type": "json", "subject_token_field_name": "id_token"}},
        }),
    );
    let out = traced(&s, &file, &[]);
    let resp = stdout_json(&out);
    assert_eq!(
        creds(&resp, "us-docker.pkg.dev"),
        ("oauth2accesstoken".into(), "ya29.impersonated".into())
    );
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(lifetime_range(3599).contains(&secs), "{resp}");
    let sts = sts_form(&fake);
    assert_eq!(sts.len(), 1);
    let want: BTreeMap<String, String> = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("audience", AUD),
        ("scope", "https://www.googleapis.com/auth/cloud-platform"),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("subject_token", SUBJECT),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:id_token",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(sts[0], want);
    assert!(!requests_to(&fake, STS_PATH)[0]
        .headers
        .contains_key("authorization"));
    let iam = requests_to(&fake, ":generateAccessToken");
    assert_eq!(iam.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&iam[0].body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"scope": ["https://www.googleapis.com/auth/cloud-platform"], "lifetime": "1800s"})
    );
    // Neither the subject token nor the federated one goes anywhere else.
    for secret in [SUBJECT, "ya29.federated"] {
        crate::common::assert_token_not_shown(secret, &out, Some(&s.cache));
    }
    // explain names the file, the source and the service account.
    let mut cmd = s.command(&["explain", "us-docker.pkg.dev/p/r/i"]);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &file);
    let out = run_with(cmd, b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("token: workload identity federation, GOOGLE_APPLICATION_CREDENTIALS {file}: the subject token in {}", token_file.display()))
            && text.contains(&format!("then impersonating {SA}")),
        "{text}"
    );
}

#[test]
fn a_url_source_is_fetched_with_its_headers_and_a_workforce_client_authenticates() {
    let fake = fake();
    let s = Sandbox::new();
    let file = ea_file(
        &s,
        serde_json::json!({
            "audience": "//iam.googleapis.com/locations/global/workforcePools/wf/providers/oidc",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": fake.url(STS_PATH),
            "client_id": "wf-client",
            "client_secret": "wf-secret-canary",
            "workforce_pool_user_project": "billing-project",
            "credential_source": {
                "url": fake.url("/subject?api-version=2018-02-01&resource=query-canary"),
                "headers": {"Metadata": "True"},
                "format": {"type": "json", "subject_token_field_name": "access_token"},
            },
        }),
    );
    let out = run(&s, &file, &[]);
    let resp = stdout_json(&out);
    assert_eq!(creds(&resp, "us-docker.pkg.dev").1, "ya29.federated");
    let secs = go_secs(resp["cacheDuration"].as_str().unwrap_or_default());
    assert!(lifetime_range(3599).contains(&secs), "{resp}");
    let got = requests_to(&fake, "&resource=query-canary");
    assert_eq!(got.len(), 1, "{:?}", fake.requests());
    let sts = sts_form(&fake);
    assert_eq!(sts[0]["subject_token"], SUBJECT);
    // A client authenticates with HTTP Basic; then no userProject option (Google's rule).
    assert!(!sts[0].contains_key("options"), "{:?}", sts[0]);
    use base64::Engine as _;
    assert_eq!(
        requests_to(&fake, STS_PATH)[0].headers["authorization"],
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("wf-client:wf-secret-canary")
        )
    );
    crate::common::assert_token_nowhere(
        "wf-secret-canary",
        &[("stderr", &out.stderr)],
        Some(&s.cache),
    );

    // Without a client, the workforce pool's user project goes in options.
    let file = ea_file(
        &s,
        serde_json::json!({
            "audience": "//iam.googleapis.com/locations/global/workforcePools/wf/providers/oidc",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": fake.url(STS_PATH),
            "workforce_pool_user_project": "billing-project",
            "credential_source": {"url": fake.url("/subject"), "headers": {"Metadata": "True"}, "format": {"type": "json", "subject_token_field_name": "access_token"}},
        }),
    );
    let out = run(&s, &file, &[]);
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev").1,
        "ya29.federated"
    );
    let sts = sts_form(&fake);
    let options: serde_json::Value =
        serde_json::from_str(&sts[1]["options"]).expect("JSON options");
    assert_eq!(
        options,
        serde_json::json!({"userProject": "billing-project"})
    );

    // The URL refuses: one line naming the file and the URL without its query, exit 1.
    let file = ea_file(
        &s,
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": fake.url(STS_PATH),
            "credential_source": {"url": fake.url("/subject?resource=query-canary")},
        }),
    );
    let line = assert_one_line_failure(&run(&s, &file, &[]), &["query-canary"]);
    assert!(
        line.contains(&format!("GOOGLE_APPLICATION_CREDENTIALS {file} (external_account): subject token at {}/subject: refused with HTTP 400", fake.base())),
        "{line}"
    );
}

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

#[test]
fn external_account_failures_are_one_line_naming_the_file_and_step() {
    let s = Sandbox::new();
    let refusing = google::fake(|r| match r.path.as_str() {
        STS_PATH => json(
            400,
            r#"{"error":"invalid_grant","error_description":"description-canary: the subject"}"#,
        ),
        _ => json(404, "{}"),
    });
    let token_file = s.tmp.path().join("token");
    write(&token_file, SUBJECT);
    let fields = |token_url: String, source: serde_json::Value| {
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": token_url,
            "credential_source": source,
        })
    };
    // STS refuses: exit 1, its code, never its description or the subject token.
    let file = ea_file(
        &s,
        fields(
            refusing.url(STS_PATH),
            serde_json::json!({"file": token_file}),
        ),
    );
    let line = assert_one_line_failure(&run(&s, &file, &[]), &[SUBJECT, "description-canary"]);
    assert!(
        line.contains(&format!("no access token for us-docker.pkg.dev: GOOGLE_APPLICATION_CREDENTIALS {file} (external_account): STS token exchange at {}: refused with HTTP 400 invalid_grant; Google STS does not accept the subject token", refusing.url(STS_PATH))),
        "{line}"
    );
    // The token file is missing: exit 2.
    let gone = s.tmp.path().join("gone");
    let file = ea_file(
        &s,
        fields(refusing.url(STS_PATH), serde_json::json!({"file": gone})),
    );
    let line = assert_misconfigured(&run(&s, &file, &[]), &[]);
    assert!(
        line.contains(&format!(
            "credential_source.file {}: no such file",
            gone.display()
        )),
        "{line}"
    );
    // A token URL in clear to another host is refused before anything is sent.
    let file = ea_file(
        &s,
        fields(
            "http://sts.example.com/v1/token".into(),
            serde_json::json!({"file": token_file}),
        ),
    );
    let line = assert_misconfigured(&run(&s, &file, &[]), &[SUBJECT]);
    assert!(
        line.contains("token_url \"http://sts.example.com/v1/token\" must be https://"),
        "{line}"
    );
    assert_eq!(requests_to(&refusing, STS_PATH).len(), 1);
}

/// Writes an executable script `name` that records Google's variables (`<name>.env`) and
/// that it ran (`<name>.ran`), then runs `body`; returns its path.
fn script(s: &Sandbox, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = s.tmp.path().join(name);
    write(
        &p,
        &format!("#!/bin/sh\nenv | grep '^GOOGLE_EXTERNAL_ACCOUNT_' | sort > \"$0.env\"\ntouch \"$0.ran\"\n{body}\n"),
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p.display().to_string()
}

/// Google's executable response for `token`, valid `secs` more (negative: expired).
fn executable_response(token: &str, secs: i64) -> String {
    format!(
        r#"{{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt","id_token":"{token}","expiration_time":{}}}"#,
        unix_now() as i64 + secs
    )
}

#[test]
fn an_executable_source_runs_only_when_allowed_with_googles_variables() {
    let fake = fake();
    let s = Sandbox::new();
    let tool = script(
        &s,
        "token-tool",
        &format!("printf '%s' '{}'", executable_response(SUBJECT, 3600)),
    );
    let cached = s.tmp.path().join("cached.json");
    let fields = |output_file: bool| {
        let mut exe =
            serde_json::json!({"command": format!("{tool} --audience x"), "timeout_millis": 10000});
        if output_file {
            exe["output_file"] = cached.display().to_string().into();
        }
        serde_json::json!({
            "audience": AUD,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": fake.url(STS_PATH),
            "service_account_impersonation_url": fake.url(IAM_PATH),
            "credential_source": {"executable": exe},
        })
    };
    let ran = std::path::PathBuf::from(format!("{tool}.ran"));
    // Not allowed: exit 2, nothing runs.
    let file = ea_file(&s, fields(false));
    let line = assert_misconfigured(&run(&s, &file, &[]), &[]);
    assert!(
        line.contains(&format!("credential_source.executable {tool}: not run: GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES is not 1")),
        "{line}"
    );
    assert!(!ran.exists(), "the program ran");

    // Allowed: its token goes to STS; it saw Google's variables.
    let allow = [("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")];
    let out = traced(&s, &file, &allow);
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev").1,
        "ya29.impersonated"
    );
    assert!(ran.exists());
    assert_eq!(sts_form(&fake)[0]["subject_token"], SUBJECT);
    let seen = std::fs::read_to_string(format!("{tool}.env")).expect("env");
    assert_eq!(
        seen,
        format!("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1\nGOOGLE_EXTERNAL_ACCOUNT_AUDIENCE={AUD}\nGOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL={SA}\nGOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=0\nGOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=urn:ietf:params:oauth:token-type:jwt\n")
    );
    crate::common::assert_token_not_shown(SUBJECT, &out, Some(&s.cache));

    // An unexpired response in the output file is used without running the program; an
    // expired one is not.
    let file = ea_file(&s, fields(true));
    write(&cached, &executable_response("cached.subject.token", 600));
    std::fs::remove_file(&ran).expect("rm");
    let out = run(&s, &file, &allow);
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev").1,
        "ya29.impersonated"
    );
    assert!(!ran.exists(), "the program ran despite its output file");
    assert_eq!(sts_form(&fake)[1]["subject_token"], "cached.subject.token");
    write(&cached, &executable_response("expired.subject.token", -5));
    let out = run(&s, &file, &allow);
    assert_eq!(
        creds(&stdout_json(&out), "us-docker.pkg.dev").1,
        "ya29.impersonated"
    );
    assert!(ran.exists(), "an expired output file was used");
    assert_eq!(sts_form(&fake)[2]["subject_token"], SUBJECT);
    let seen = std::fs::read_to_string(format!("{tool}.env")).expect("env");
    assert!(
        seen.contains(&format!(
            "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE={}\n",
            cached.display()
        )),
        "{seen}"
    );

    // A failing program: its exit status, never its output.
    let failing = script(
        &s,
        "failing-tool",
        "echo 'stderr-canary' >&2; echo 'stdout-canary'; exit 3",
    );
    let mut j = fields(false);
    j["credential_source"]["executable"]["command"] = failing.clone().into();
    let file = ea_file(&s, j);
    let line =
        assert_one_line_failure(&run(&s, &file, &allow), &["stderr-canary", "stdout-canary"]);
    assert!(
        line.contains(&format!("credential_source.executable {failing}: exited with status 3 (14 bytes of stderr withheld)")),
        "{line}"
    );
}

#[test]
fn external_account_calls_go_through_https_proxy() {
    let (port, seen) = crate::common::proxy::refusing();
    let s = Sandbox::new();
    let file = file_sourced(&s, "https://sts.example.invalid/v1/token");
    let proxy = format!("http://127.0.0.1:{port}");
    let line = assert_one_line_failure(&run(&s, &file, &[("HTTPS_PROXY", &proxy)]), &[SUBJECT]);
    assert!(
        line.contains("STS token exchange at https://sts.example.invalid/v1/token"),
        "{line}"
    );
    let head = crate::common::proxy::first_connect(&seen, "sts.example.invalid:443");
    assert!(!head.contains(SUBJECT));
}

#[test]
fn upstream_reads_an_external_account_file_only_when_the_config_lists_it() {
    let s = Sandbox::new();
    let md = metadata_server("ya29.metadata-only", 3599);
    let fake = fake();
    let file = file_sourced(&s, &fake.url(STS_PATH));
    let host = md.host();
    let env = [
        ("GCE_METADATA_HOST", host.as_str()),
        ("GOOGLE_APPLICATION_CREDENTIALS", file.as_str()),
    ];
    let req = request(V1, "gcr.io/p/i");
    let out = as_upstream(&s, &["get-credentials"], &env, &req);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.metadata-only");
    assert!(fake.requests().is_empty(), "the file was used");
    let cfg = config(&s, "gcp:\n  credentialFiles: [applicationCredentials]\n");
    let mut with = env.to_vec();
    with.push(("KUBELET_KEYRING_CONFIG", cfg.as_str()));
    let out = as_upstream(&s, &["get-credentials"], &with, &req);
    assert_eq!(creds(&stdout_json(&out), "gcr.io").1, "ya29.federated");
    assert_eq!(requests_to(&fake, STS_PATH).len(), 1);
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
