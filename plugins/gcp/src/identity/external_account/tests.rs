use super::*;

const AUD: &str =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k";

fn parsed(json: serde_json::Value) -> Result<ExternalAccount, String> {
    let text = Secret::new(json.to_string());
    parse(Path::new("/etc/gcp/ea.json"), Origin::EnvVar, &text).map_err(|e| e.to_string())
}

fn file_source() -> serde_json::Value {
    serde_json::json!({
        "type": "external_account",
        "audience": AUD,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "credential_source": {"file": "/var/run/token"},
    })
}

#[test]
fn a_file_source_takes_googles_defaults_and_json_formats() {
    let ea = parsed(file_source()).unwrap();
    assert_eq!(ea.token_url, DEFAULT_TOKEN_URL);
    assert!(ea.impersonation.is_none() && ea.client.is_none() && ea.user_project.is_none());
    assert!(matches!(
        ea.source,
        SubjectSource::File { ref path, format: Format::Text } if path == Path::new("/var/run/token")
    ));

    let mut j = file_source();
    j["credential_source"]["format"] =
        serde_json::json!({"type": "json", "subject_token_field_name": "id_token"});
    j["token_url"] = "http://127.0.0.1:8080/v1/token".into();
    j["service_account_impersonation_url"] = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken".into();
    j["service_account_impersonation"] = serde_json::json!({"token_lifetime_seconds": 7200});
    j["quota_project_id"] = "ignored".into();
    j["universe_domain"] = "googleapis.com".into();
    let ea = parsed(j).unwrap();
    assert!(matches!(
        ea.source,
        SubjectSource::File { format: Format::Json { ref field }, .. } if field == "id_token"
    ));
    let imp = ea.impersonation.unwrap();
    assert_eq!(imp.email.as_deref(), Some("sa@p.iam.gserviceaccount.com"));
    assert_eq!(imp.lifetime_secs, Some(7200));
}

#[test]
fn url_and_aws_sources_allow_plain_http_only_to_local_metadata_addresses() {
    let mut j = file_source();
    j["credential_source"] = serde_json::json!({
        "url": "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
        "headers": {"Metadata": "True", "Authorization": "Bearer SECRET"},
        "format": {"type": "json", "subject_token_field_name": "access_token"},
    });
    let ea = parsed(j.clone()).unwrap();
    let SubjectSource::Url { headers, .. } = &ea.source else {
        panic!("{ea:?}")
    };
    assert_eq!(headers.len(), 2);
    assert!(!format!("{ea:?}").contains("SECRET"), "{ea:?}");
    // A URL source elsewhere must be https.
    j["credential_source"]["url"] = "http://tokens.example.com/t?secret=SECRET".into();
    let e = parsed(j).unwrap_err();
    assert!(
        e.contains("credential_source.url \"http://tokens.example.com/t\" must be https://"),
        "{e}"
    );
    assert!(!e.contains("SECRET"), "{e}");

    let mut j = file_source();
    j["subject_token_type"] = AWS_TOKEN_TYPE.into();
    j["credential_source"] = serde_json::json!({
        "environment_id": "aws1",
        "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone",
        "url": "http://[fd00:ec2::254]/latest/meta-data/iam/security-credentials",
        "imdsv2_session_token_url": "http://169.254.169.254/latest/api/token",
        "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
    });
    let ea = parsed(j.clone()).unwrap();
    let SubjectSource::Aws(aws) = &ea.source else {
        panic!("{ea:?}")
    };
    assert!(aws.region_url.is_some() && aws.credentials_url.is_some() && aws.imdsv2_url.is_some());
    for (field, value, want) in [
        (
            "environment_id",
            "aws2",
            "\"aws2\" is not supported (only aws1)",
        ),
        (
            "regional_cred_verification_url",
            "http://sts.amazonaws.com",
            "not an https:// URL",
        ),
        (
            "url",
            "http://10.0.0.1/creds",
            "must be https:// (http:// only to a loopback or link-local",
        ),
    ] {
        let mut bad = j.clone();
        bad["credential_source"][field] = value.into();
        let e = parsed(bad).unwrap_err();
        assert!(e.contains(want), "{field}: {e}");
    }
}

#[test]
fn unusable_files_are_refused_naming_the_field_never_a_secret() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!({"audience": AUD}), "no subject_token_type"),
        (
            serde_json::json!({"audience": "", "subject_token_type": "t"}),
            "audience is empty",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t"}),
            "no credential_source",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {}}),
            "exactly one of file, url, environment_id, executable",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"file": "/t", "url": "https://x/t"}}),
            "exactly one of",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"executable": {"command": "token-tool --print"}}}),
            "command must start with the program's absolute path",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"executable": {"command": "/bin/t", "timeout_millis": 4999}}}),
            "timeout_millis 4999 is not between 5000 and 120000",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"certificate": {"use_default_certificate_config": true}}}),
            "certificate (X.509 federation over mutual TLS) is not supported",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"file": "/t", "format": {"type": "json"}}}),
            "needs subject_token_field_name",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"file": "/t", "format": {"type": "xml"}}}),
            "\"xml\" is neither text nor json",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "token_url": "http://sts.example.com/v1/token", "credential_source": {"file": "/t"}}),
            "token_url \"http://sts.example.com/v1/token\" must be https:// (http:// only to a loopback address): a token is sent there",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "token_url": "https://u:SECRET@sts.example.com/v1/token", "credential_source": {"file": "/t"}}),
            "needs a host and no user-info",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "token_url": "https://sts.example.com/v1/token?k=SECRET", "credential_source": {"file": "/t"}}),
            "must not have a query or fragment",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "service_account_impersonation_url": "http://192.168.1.1/x", "credential_source": {"file": "/t"}}),
            "service_account_impersonation_url \"http://192.168.1.1/x\" must be https://",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "service_account_impersonation": {"token_lifetime_seconds": 43201}, "credential_source": {"file": "/t"}}),
            "43201 is not between 600 and 43200",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "client_secret": "SECRET", "credential_source": {"file": "/t"}}),
            "client_id and client_secret go together",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "workforce_pool_user_project": "p", "credential_source": {"file": "/t"}}),
            "the audience is not a workforce pool's",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"url": "https://x/t", "headers": {"Bad Name": "SECRET"}}}),
            "\"Bad Name\" is not a header name",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "credential_source": {"url": "https://x/t", "headers": {"X-Token": "SECRET\n"}}}),
            "headers.x-token: the value is not a header value",
        ),
        (
            serde_json::json!({"audience": AUD, "subject_token_type": "t", "client_secret": ["SECRET"], "credential_source": {"file": "/t"}}),
            "a field has the wrong type",
        ),
    ];
    for (json, want) in cases {
        let e = parsed(json.clone()).unwrap_err();
        assert!(
            e.starts_with("GOOGLE_APPLICATION_CREDENTIALS /etc/gcp/ea.json: external_account: "),
            "{e}"
        );
        assert!(e.contains(want), "{json}: {e}");
        assert!(!e.contains("SECRET"), "{json}: {e}");
    }
}

#[test]
fn an_executable_source_is_an_argument_vector_with_google_s_timeout() {
    let mut j = file_source();
    j["credential_source"] = serde_json::json!({"executable": {"command": "/usr/bin/token-tool --audience  x", "output_file": "/run/token.json"}});
    let ea = parsed(j).unwrap();
    let SubjectSource::Executable(e) = &ea.source else {
        panic!("{ea:?}")
    };
    assert_eq!(e.argv, ["/usr/bin/token-tool", "--audience", "x"]);
    assert_eq!(e.timeout, Duration::from_secs(30));
    assert_eq!(e.output_file.as_deref(), Some(Path::new("/run/token.json")));
}

#[test]
fn a_workforce_pool_takes_a_user_project_or_a_client() {
    let mut j = file_source();
    j["audience"] = "//iam.googleapis.com/locations/global/workforcePools/wf/providers/oidc".into();
    j["workforce_pool_user_project"] = "my-project".into();
    let ea = parsed(j.clone()).unwrap();
    assert_eq!(ea.user_project.as_deref(), Some("my-project"));
    j["client_id"] = "cid".into();
    j["client_secret"] = "csecret".into();
    let ea = parsed(j).unwrap();
    let (id, secret) = ea.client.unwrap();
    assert_eq!((id.as_str(), secret.expose().as_str()), ("cid", "csecret"));
}

#[test]
fn describe_names_the_source_sts_and_service_account_only() {
    let mut j = file_source();
    j["credential_source"] = serde_json::json!({"url": "https://tokens.example.com/t?key=SECRET", "headers": {"k": "SECRET"}});
    j["service_account_impersonation_url"] = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken".into();
    let line = parsed(j).unwrap().describe();
    assert_eq!(
        line,
        format!("the subject token from https://tokens.example.com/t exchanged at https://sts.googleapis.com/v1/token (audience {AUD}), then impersonating sa@p.iam.gserviceaccount.com")
    );
}
