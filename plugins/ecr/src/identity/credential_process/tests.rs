use super::*;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_types::os_shim_internal::{Env, Fs};
use std::borrow::Cow;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn files(config: &str, credentials: &str) -> EnvConfigFiles {
    EnvConfigFiles::builder()
        .with_contents(EnvConfigFileKind::Config, config)
        .with_contents(EnvConfigFileKind::Credentials, credentials)
        .build()
}

/// [`find`] on these files, `selected` the profile.
fn ours(config: &str, credentials: &str, selected: &str) -> Option<ProcessChain> {
    let set = runtime()
        .block_on(aws_config::profile::load(
            &Fs::from_slice(&[]),
            &Env::from_slice(&[]),
            &files(config, credentials),
            Some(Cow::Owned(selected.to_string())),
        ))
        .expect("profiles");
    find(&set)
}

/// An HTTP client whose every request fails at once: STS, IMDS and SSO are not asked.
fn no_network() -> aws_sdk_ecr::config::SharedHttpClient {
    use aws_smithy_runtime_api::client::http::{
        http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    #[derive(Debug)]
    struct Refuse;
    impl HttpConnector for Refuse {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Err(ConnectorError::other(
                "no network in this test".into(),
                None,
            )))
        }
    }
    http_client_fn(|_, _| SharedHttpConnector::new(Refuse))
}

/// Which profile's process the SDK's own profile provider runs for these files: each
/// `credential_process` is `<PROCESS> <name>`, written here as appending its name to a
/// marker file.
fn sdks(config: &str, credentials: &str, selected: &str) -> Option<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let process = format!("echo >> '{}'", marker.display());
    let (config, credentials) = (
        config.replace("PROCESS", &process),
        credentials.replace("PROCESS", &process),
    );
    let conf = ProviderConfig::default()
        .with_http_client(no_network())
        .with_region(Some(Region::new("us-east-1")))
        .with_behavior_version(Some(BehaviorVersion::latest()));
    #[allow(deprecated)]
    let provider = ProfileFileCredentialsProvider::builder()
        .configure(&conf)
        .profile_files(files(&config, &credentials))
        .profile_name(selected)
        .build();
    let rt = runtime();
    // Whatever it answers (STS is unreachable here): only whether it ran a process counts.
    let _ = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), provider.provide_credentials()).await
    });
    std::fs::read_to_string(&marker)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Every shape of profile chain: this crate takes a profile exactly when the SDK's own
/// provider would run a process for it, the same profile's. A profile taken here that the
/// SDK would not run, or the reverse, changes a node's identity after the swap; one the
/// SDK would run and this crate misses is refused (the binary's SDK has no process
/// support).
#[test]
fn the_profiles_taken_are_those_the_sdk_runs_a_process_for() {
    let p = "credential_process = PROCESS";
    let role = "role_arn = arn:aws:iam::123456789012:role/r";
    let keys = "aws_access_key_id = AKID\naws_secret_access_key = secret";
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("[default]\n{p} default\n"), "", "default"),
        (format!("[profile a]\n{p} a\n"), "", "a"),
        // In the credentials file, and both files together.
        (String::new(), "[c]\ncredential_process = PROCESS c\n", "c"),
        ("[profile c]\nregion = eu-west-1\n".to_string(), "[c]\ncredential_process = PROCESS c\n", "c"),
        // A role on top of a process, two roles, a role on itself.
        (format!("[profile r]\n{role}\nsource_profile = b\n[profile b]\n{p} b\n"), "", "r"),
        (format!("[profile r1]\n{role}\nsource_profile = r2\n[profile r2]\n{role}2\nsource_profile = b\n[profile b]\n{p} b\n"), "", "r1"),
        (format!("[default]\n{role}\nsource_profile = default\n{p} default\n"), "", "default"),
        // The selected profile's process wins over its keys; a source profile's keys win.
        (format!("[default]\n{keys}\n{p} default\n"), "", "default"),
        (format!("[profile r]\n{role}\nsource_profile = b\n[profile b]\n{keys}\n{p} b\n"), "", "r"),
        // Half a pair of keys is no keys.
        (format!("[profile r]\n{role}\nsource_profile = b\n[profile b]\naws_access_key_id = AKID\n{p} b\n"), "", "r"),
        // Earlier kinds of base win.
        (format!("[default]\n{role}\ncredential_source = Environment\n{p} default\n"), "", "default"),
        (format!("[profile r]\n{role}\nsource_profile = b\n[profile b]\ncredential_source = Environment\n{p} b\n"), "", "r"),
        (format!("[default]\n{role}\nweb_identity_token_file = /nonexistent\n{p} default\n"), "", "default"),
        (format!("[default]\nweb_identity_token_file = /nonexistent\n{p} default\n"), "", "default"),
        (format!("[default]\nsso_session = s\nsso_account_id = 1\nsso_role_name = r\n{p} default\n[sso-session s]\nsso_region = us-east-1\nsso_start_url = https://x.example/start\n"), "", "default"),
        (format!("[default]\nsso_start_url = https://x.example/start\n{p} default\n"), "", "default"),
        (format!("[default]\nlogin_session = arn:aws:iam::0123456789012:user/Admin\n{p} default\n"), "", "default"),
        // Chains the SDK refuses.
        (format!("[profile a]\n{role}\nsource_profile = b\n{p} a\n[profile b]\n{role}\nsource_profile = a\n{p} b\n"), "", "a"),
        (format!("[profile a]\n{role}\nsource_profile = missing\n{p} a\n"), "", "a"),
        (format!("[profile a]\n{role}\nsource_profile = a\ncredential_source = Environment\n{p} a\n"), "", "a"),
        (format!("[profile a]\n{role}\n{p} a\n"), "", "a"),
        (format!("[profile a]\n{p} a\n"), "", "default"),
        (format!("[profile a]\n{p} a\n"), "", "missing"),
        ("[default]\nregion = us-east-1\n".to_string(), "", "default"),
    ];
    for (config, credentials, selected) in &cases {
        let sdk = sdks(config, credentials, selected);
        let ours = ours(config, credentials, selected);
        let ours_name = ours.as_ref().map(|c| {
            c.base
                .command
                .expose()
                .trim_start_matches("PROCESS ")
                .to_string()
        });
        assert_eq!(
            sdk, ours_name,
            "{config}{credentials} as {selected}: the process the SDK ran, and ours"
        );
    }
}

#[test]
fn the_roles_of_a_chain_are_assumed_from_the_process_outwards() {
    let chain = ours(
        "[profile top]\nrole_arn = arn:aws:iam::1:role/top\nsource_profile = mid\nexternal_id = ext\n\
         [profile mid]\nrole_arn = arn:aws:iam::1:role/mid\nsource_profile = base\nrole_session_name = s\n\
         [profile base]\ncredential_process = /bin/creds --user me\naws_account_id = 111122223333\n",
        "",
        "top",
    )
    .expect("a process chain");
    assert_eq!(chain.base.command.expose(), "/bin/creds --user me");
    assert_eq!(chain.base.account_id.as_deref(), Some("111122223333"));
    let role = |arn: &str, external_id: Option<&str>, session_name: Option<&str>| Role {
        arn: arn.into(),
        external_id: external_id.map(Into::into),
        session_name: session_name.map(Into::into),
    };
    assert_eq!(
        chain.roles,
        [
            role("arn:aws:iam::1:role/mid", None, Some("s")),
            role("arn:aws:iam::1:role/top", Some("ext"), None),
        ]
    );
    // The command line never shows in Debug output: its arguments may be secrets.
    assert!(!format!("{chain:?}").contains("--user me"));
}

/// Each reply read by the SDK's own provider and by [`parse`]: the same credentials, or
/// an error from both.
#[test]
fn replies_are_read_as_the_sdk_reads_them() {
    use aws_config::credential_process::CredentialProcessProvider;
    let replies = [
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s","SessionToken":"t","Expiration":"2030-05-02T18:36:00Z","AccountId":"123456789012"}"#,
        r#"{"version":1,"accesskeyid":"AKID","SECRETACCESSKEY":"s","expiration":"2030-05-02T18:36:00.75+02:00"}"#,
        r#" {"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s","Other":{"AccessKeyId":"nested"},"List":[1,2]} "#,
        r#"{"Version":1,"AccessKeyId":"first","accessKeyId":"last","SecretAccessKey":"s"}"#,
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s","SessionToken":7}"#,
        // Refused by both.
        r#"{"AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
        r#"{"Version":2,"AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
        r#"{"Version":"1","AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
        r#"{"Version":1.5,"AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
        r#"{"Version":4294967297,"AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
        r#"{"Version":1,"SecretAccessKey":"s"}"#,
        r#"{"Version":1,"AccessKeyId":"AKID"}"#,
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s","Expiration":"tomorrow"}"#,
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s","Expiration":"2030-05-02 18:36:00Z"}"#,
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s"} {}"#,
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s""#,
        r#"["Version",1]"#,
        "",
    ];
    let now = SystemTime::now();
    let rt = runtime();
    let shown = |c: &Credentials| {
        (
            c.access_key_id().to_string(),
            c.secret_access_key().to_string(),
            c.session_token().map(str::to_string),
            c.expiry().map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .expect("after the epoch")
                    .as_secs()
            }),
            c.account_id().map(|a| a.as_str().to_string()),
        )
    };
    for reply in replies {
        let sdk = rt
            .block_on(
                CredentialProcessProvider::new(format!("printf '%s' '{reply}'"))
                    .provide_credentials(),
            )
            .map(|c| shown(&c));
        let ours = parse(reply, None, now).map(|c| shown(&c));
        match (&sdk, &ours) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{reply}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{reply}: SDK {sdk:?}, ours {ours:?}"),
        }
    }
    // The profile's account is the fallback.
    let c = parse(
        r#"{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s"}"#,
        Some("111122223333"),
        now,
    )
    .expect("credentials");
    assert_eq!(c.account_id().map(|a| a.as_str()), Some("111122223333"));
}

#[test]
fn a_refused_reply_says_why_without_quoting_it() {
    let now = SystemTime::now();
    for (reply, why) in [
        (
            "secret-canary",
            "expected a JSON document starting with `{`",
        ),
        (
            r#"{"Version":1,"AccessKeyId":"secret-canary" x}"#,
            "invalid JSON in response: syntax error at line 1 column",
        ),
        (
            r#"{"Version":1,"AccessKeyId":"secret-canary"}"#,
            "Expected field `SecretAccessKey`",
        ),
        (
            r#"{"Version":1,"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"secret-canary"}"#,
            "Invalid field in response: `Expiration`.",
        ),
        (
            r#"{"Version":3,"AccessKeyId":"secret-canary"}"#,
            "unknown version number: 3",
        ),
    ] {
        let e = parse(reply, None, now).unwrap_err().to_string();
        assert!(e.contains(why), "{reply}: {e}");
        assert!(!e.contains("secret-canary"), "{e}");
    }
    // An expiry past any clock is clamped, as every peer's.
    let c = parse(
        r#"{"Version":1,"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"9999-12-31T23:59:59Z"}"#,
        None,
        now,
    )
    .expect("credentials");
    assert!(c.expiry().expect("expiry") <= now + lifetime::HORIZON);
}

fn process(command: &str, within: Duration) -> CredentialProcess {
    CredentialProcess {
        base: Base {
            command: Secret::new(command.into()),
            account_id: None,
        },
        deadline: Deadline::after(within),
        now: SystemTime::now(),
    }
}

#[test]
fn a_failing_process_says_how_much_stderr_it_wrote_not_what() {
    let e = process(
        "echo 'password hunter2-canary' >&2; exit 3",
        Duration::from_secs(10),
    )
    .run()
    .unwrap_err();
    let text = crate::error::causes(&e);
    assert!(text.contains("exited with code exit status: 3"), "{text}");
    assert!(text.contains("Stderr: 24 bytes, not shown"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let c = process(
        r#"printf '{"Version":1,"AccessKeyId":"AKID","SecretAccessKey":"s"}'; echo noise >&2"#,
        Duration::from_secs(10),
    )
    .run()
    .expect("credentials");
    assert_eq!(c.access_key_id(), "AKID");
}

#[test]
fn a_process_printing_past_the_limit_is_refused() {
    let e = process("head -c 70000 /dev/zero; sleep 30", Duration::from_secs(10))
        .run()
        .unwrap_err();
    let text = crate::error::causes(&e);
    assert!(text.contains("printed more than 65536 bytes"), "{text}");
}

#[test]
fn a_process_out_of_time_is_a_time_out() {
    let started = std::time::Instant::now();
    let e = process("sleep 30", Duration::from_millis(300))
        .run()
        .unwrap_err();
    assert!(matches!(e, CredentialsError::ProviderTimedOut(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
