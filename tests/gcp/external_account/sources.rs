//! The subject token's sources other than AWS: a file, a URL (with its headers, and a
//! workforce pool's client authentication), an executable (run only when allowed, with
//! Google's variables); and a drop-in reads the file only when the plugin config lists it.

use super::*;

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
