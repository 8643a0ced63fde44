use super::*;

fn auth(s: &str) -> Result<(String, String), AuthError> {
    decode_auth(s).map(|(u, p)| (u, p.expose().clone()))
}

#[test]
fn auth_vectors_of_the_spec() {
    let ok: &[(&str, &str, &str)] = &[
        ("Zm9vOmJhcg==", "foo", "bar"),
        ("Zm9vOmJhcg", "foo", "bar"),
        ("Zm9vOm\nJhcg==\n", "foo", "bar"),
        ("Zm9vOmJhcgo=", "foo", "bar\n"),
        ("OmJhcg==", "", "bar"),
        ("Zm9vOg==", "foo", ""),
        ("dXNlcjpwYTpzczp3b3Jk", "user", "pa:ss:word"),
        ("Zm9vOmJh\r\ncg", "foo", "bar"),
    ];
    for &(input, u, p) in ok {
        assert_eq!(auth(input), Ok((u.into(), p.into())), "{input:?}");
    }
    assert_eq!(auth("cGFudHM="), Err(AuthError::NoColon));
    for bad in [
        "Zm9vOmJhcg== ",
        "pants",
        " Zm9vOmJhcg==",
        "Zm9vOmJhcg=",
        "Zm9v-mJhcg",
    ] {
        assert_eq!(auth(bad), Err(AuthError::Base64), "{bad:?}");
    }
}

fn entry(json: &str) -> Result<(String, String, String), String> {
    let doc = format!("{{\"r\":{json}}}");
    parse_dockercfg(doc.as_bytes())
        .map(|mut e| {
            let (_, e) = e.remove(0);
            (e.username, e.password.expose().clone(), e.email)
        })
        .map_err(|e| e.to_string())
}

#[test]
fn entry_vectors_of_the_spec() {
    let ok: &[(&str, &str, &str, &str)] = &[
        (
            r#"{"username":"foo","password":"bar","email":"foo@example.com"}"#,
            "foo",
            "bar",
            "foo@example.com",
        ),
        (
            r#"{"auth":"Zm9vOmJhcg==","email":"foo@example.com"}"#,
            "foo",
            "bar",
            "foo@example.com",
        ),
        (
            r#"{"username":"foo","password":"bar","auth":"cGluZzpwb25n","email":"foo@example.com"}"#,
            "ping",
            "pong",
            "foo@example.com",
        ),
        (
            r#"{"identitytoken":"tok","registrytoken":"rt"}"#,
            "",
            "",
            "",
        ),
        (r#"{"auth":""}"#, "", "", ""),
        ("{}", "", "", ""),
        ("null", "", "", ""),
        (r#"{"Username":"up","PASSWORD":"pw"}"#, "up", "pw", ""),
        (r#"{"uſername":"long-s"}"#, "long-s", "", ""),
        (r#"{"username":"a","username":null}"#, "a", "", ""),
        (r#"{"username":"a","USERNAME":"b"}"#, "b", "", ""),
    ];
    for &(json, u, p, e) in ok {
        assert_eq!(entry(json), Ok((u.into(), p.into(), e.into())), "{json}");
    }
    for bad in [
        r#"{"auth":"pants","email":"foo@example.com"}"#,
        r#"{"email":false}"#,
        "\"x\"",
        "[]",
        "5",
    ] {
        assert!(entry(bad).is_err(), "{bad} should fail");
    }
}

#[test]
fn errors_never_quote_values() {
    for json in [
        r#"{"password":12345678}"#,
        r#"{"password":["s3cret-value"]}"#,
        r#"{"auth":"czNjcmV0LXZhbHVl"}"#,
        r#""s3cret-value""#,
    ] {
        let err = entry(json).unwrap_err();
        assert!(
            !err.contains("s3cret") && !err.contains("12345678") && !err.contains("czNj"),
            "{err}"
        );
    }
    let err = parse_config_json(br#"{"auths":"s3cret-value"}"#)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("s3cret"), "{err}");
}

fn keys(r: Result<Entries, ParseError>) -> Result<Vec<String>, String> {
    r.map(|e| e.into_iter().map(|(k, _)| k).collect())
        .map_err(|e| e.to_string())
}

#[test]
fn go_decodes_what_serde_json_alone_would_refuse() {
    // Differential findings against Go's encoding/json (fuzz/differential).
    let e = parse_config_json(br#"{"auths":{"r\ud800":{"username":"\udc00x"}}}"#).unwrap();
    assert_eq!(e[0].0, "r\u{FFFD}");
    assert_eq!(e[0].1.username, "\u{FFFD}x");
    let e = parse_dockercfg(br#"{"r\ud83d\ude00":{"username":"a\\ud800"}}"#).unwrap();
    assert_eq!(e[0].0, "r\u{1F600}", "a valid pair stays");
    assert_eq!(
        e[0].1.username, "a\\ud800",
        "an escaped backslash is not an escape"
    );
    assert!(parse_config_json(br#"{"credsStore\ud800":1}"#)
        .unwrap()
        .is_empty());
    // One U+FFFD per invalid byte, as Go.
    let e = parse_config_json(b"{\"auths\":{\"r\":{\"username\":\"a\xe2\x82b\"}}}").unwrap();
    assert_eq!(e[0].1.username, "a\u{FFFD}\u{FFFD}b");
    // Out-of-range numbers where the kubelet ignores the value.
    assert!(parse_config_json(br#"{"credHelpers":1e400}"#)
        .unwrap()
        .is_empty());
    let c = ConfigJson::parse(br#"{"credsStore":1e400,"auths":{"r":{}}}"#).unwrap();
    assert_eq!(c.entries.len(), 1);
    assert!(ConfigJson::parse(br#"{"credHelpers":{"gcr.io":1e400}}"#)
        .unwrap()
        .cred_helpers
        .is_empty());
}

#[test]
fn file_level_vectors_of_the_spec() {
    let cj = |s: &str| keys(parse_config_json(s.as_bytes()));
    let dc = |s: &str| keys(parse_dockercfg(s.as_bytes()));
    assert_eq!(
        cj(
            r#"{"auths":{"http://foo.example.com":{"username":"foo","password":"bar","email":"foo@example.com"},"http://bar.example.com":{"username":"bar","password":"baz","email":"bar@example.com"}}}"#
        ),
        Ok(vec![
            "http://foo.example.com".into(),
            "http://bar.example.com".into()
        ])
    );
    for empty in [
        "{}",
        r#"{"credsStore":"desktop"}"#,
        r#"{"auths":null}"#,
        r#"{"auths":{}}"#,
        "null",
        r#"{"reg.io":{"auth":"Zm9vOmJhcg=="}}"#,
    ] {
        assert_eq!(cj(empty), Ok(vec![]), "{empty}");
    }
    assert_eq!(
        cj(r#"{"Auths":{"reg.io":{"auth":"Zm9vOmJhcg=="}}}"#),
        Ok(vec!["reg.io".into()])
    );
    assert_eq!(
        cj(r#"{"auths":{"reg.io":{"auth":"Zm9vOmJhcg=="}},"credHelpers":{"gcr.io":"gcloud"}}"#),
        Ok(vec!["reg.io".into()])
    );
    assert_eq!(
        cj(r#"{"auths":{"a":{}},"AUTHS":{"b":{}}}"#),
        Ok(vec!["a".into(), "b".into()])
    );
    for bad in [
        r#"{"auths":{"reg.io":{"auth":"pants"}}}"#,
        r#"{"auths":{}}} trailing"#,
        r#"{"auths":{},"HttpHeaders":{"A":1}}"#,
        "[]",
        "\u{feff}{}",
        "",
    ] {
        assert!(cj(bad).is_err(), "{bad} should fail");
    }
    assert_eq!(dc("null"), Ok(vec![]));
    assert!(dc("[]").is_err());
    assert_eq!(
        dc(r#"{"auths":{"reg.io":{"auth":"Zm9vOmJhcg=="}}}"#),
        Ok(vec!["auths".into()])
    );
    // Invalid UTF-8 inside a string is accepted, as in Go.
    let mut raw = br#"{"auths":{"reg.io":{"username":"u"#.to_vec();
    raw.push(0xff);
    raw.extend_from_slice(br#""}}}"#);
    assert_eq!(keys(parse_config_json(&raw)), Ok(vec!["reg.io".into()]));
}

fn helpers(json: &str) -> (Vec<(String, String)>, Option<String>, Vec<String>) {
    let c = ConfigJson::parse(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
    (
        c.cred_helpers.into_iter().collect(),
        c.creds_store,
        c.warnings,
    )
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn cred_helpers_and_creds_store_are_read() {
    let (h, s, w) = helpers(
        r#"{"auths":{"reg.io":{}},"credHelpers":{"123456789012.dkr.ecr.us-east-1.amazonaws.com":"ecr-login","gcr.io":"gcloud"},"credsStore":"desktop"}"#,
    );
    assert_eq!(
        h,
        pairs(&[
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "ecr-login"),
            ("gcr.io", "gcloud")
        ])
    );
    assert_eq!(s.as_deref(), Some("desktop"));
    assert!(w.is_empty(), "{w:?}");
    // Go's key folding; repeated objects merge, later values win; null clears; a null
    // entry is an empty name; null leaves credsStore unchanged; "" is unset.
    assert_eq!(
        helpers(
            r#"{"CREDHELPERS":{"a":"x","b":"y"},"credhelpers":{"a":"z","c":null},"CredsStore":"s","credsstore":null}"#
        ),
        (
            pairs(&[("a", "z"), ("b", "y"), ("c", "")]),
            Some("s".into()),
            vec![]
        )
    );
    assert_eq!(
        helpers(r#"{"credHelpers":{"a":"x"},"credHelpers":null,"credsStore":""}"#),
        (vec![], None, vec![])
    );
    assert_eq!(helpers("null"), (vec![], None, vec![]));
    // .dockercfg has no such settings: the keys are registries there.
    assert_eq!(
        parse_dockercfg(br#"{"credsStore":{}}"#)
            .map(|e| e.len())
            .ok(),
        Some(1)
    );
}

#[test]
fn wrong_types_are_ignored_with_a_warning_not_a_failure() {
    let (h, s, w) = helpers(
        r#"{"auths":{"reg.io":{"auth":"Zm9vOmJhcg=="}},"credHelpers":{"ok.io":"good","n.io":12345678,"o.io":{"s3cret":"v"},"a.io":["s3cret"],"b.io":true},"credsStore":["s3cret-value"]}"#,
    );
    assert_eq!(h, pairs(&[("ok.io", "good")]));
    assert_eq!(s, None);
    assert_eq!(
        w,
        [
            r#"credHelpers entry "n.io" is a number, not a string; ignored"#,
            r#"credHelpers entry "o.io" is an object, not a string; ignored"#,
            r#"credHelpers entry "a.io" is an array, not a string; ignored"#,
            r#"credHelpers entry "b.io" is a boolean, not a string; ignored"#,
            "credsStore is an array, not a string; ignored",
        ]
    );
    for (bad_helpers, bad_store) in [
        (r#""ecr-login""#, "5"),
        ("5", "true"),
        ("true", r#"{"ecr-login":1}"#),
        (r#"["a",{"b":[1,2]}]"#, r#"["a",{"b":[1,2]}]"#),
    ] {
        let doc = format!(
            r#"{{"credHelpers":{{"keep.io":"k"}},"credHelpers":{bad_helpers},"credsStore":"first","credsStore":{bad_store},"auths":{{"reg.io":{{}}}}}}"#
        );
        let c = ConfigJson::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert_eq!(c.entries.len(), 1, "{doc}");
        assert_eq!(
            c.cred_helpers.len(),
            1,
            "{doc}: a bad value keeps what came before"
        );
        assert_eq!(c.creds_store.as_deref(), Some("first"), "{doc}");
        assert_eq!(c.warnings.len(), 2, "{doc}: {:?}", c.warnings);
        assert!(
            c.warnings.iter().all(|w| !w.contains("ecr-login")),
            "{:?}",
            c.warnings
        );
    }
    // The kubelet's view is unchanged by these keys.
    assert_eq!(
        keys(parse_config_json(
            br#"{"credHelpers":7,"credsStore":{},"auths":{"r":{}}}"#
        )),
        Ok(vec!["r".into()])
    );
    // Syntax errors still fail the file.
    assert!(ConfigJson::parse(br#"{"credHelpers":{"a":}}"#).is_err());
}

#[test]
fn a_files_helper_warnings_are_capped_and_each_is_short() {
    let entries: Vec<String> = (0..50).map(|i| format!(r#""r{i}.io":{i}"#)).collect();
    let doc = format!(r#"{{"credHelpers":{{{}}}}}"#, entries.join(","));
    let w = helpers(&doc).2;
    assert_eq!(w.len(), MAX_WARNINGS + 1);
    assert_eq!(
        w[MAX_WARNINGS],
        "42 more credHelpers/credsStore problems ignored"
    );
    let long = "h".repeat(300);
    let w = helpers(&format!(r#"{{"credHelpers":{{"{long}":1}}}}"#)).2;
    assert!(w[0].chars().count() < 160, "{}", w[0]);
}
