use super::*;

#[test]
fn label_globs_ports_and_paths() {
    let cases: &[(&str, &str, bool)] = &[
        // Same label count, one label per *.
        ("*.registry.io", "a.registry.io/app", true),
        ("*.registry.io", "registry.io/app", false),
        ("*.registry.io", "a.b.registry.io/app", false),
        ("*", "registry/app", true),
        ("*", "registry.io/app", false),
        ("*.*", "registry.io/app", true),
        ("*.*.*", "123.dkr.ecr.us-east-1.amazonaws.com/x", false),
        (
            "*.dkr.ecr.*.amazonaws.com",
            "123.dkr.ecr.us-east-1.amazonaws.com/x",
            true,
        ),
        (
            "*.dkr.ecr.*.amazonaws.com",
            "123.dkr.ecr.us-east-1.amazonaws.com.cn/x",
            false,
        ),
        // Partial-label globs and classes.
        ("*kubernetes.io", "k8s.io", false),
        ("*kubernetes.io", "kubernetes.io", true),
        ("*kubernetes.io", "prefix-kubernetes.io", true),
        ("*.*.*.kubernetes.io", "a.b.c.kubernetes.io", true),
        ("reg[0-9].io", "reg7.io/x", true),
        ("reg[^0-9].io", "reg7.io/x", false),
        ("reg[.io", "reg[.io/x", false), // malformed glob: no match
        // Ports must be equal, empty only equals empty.
        ("registry.io", "registry.io:5000/app", false),
        ("registry.io:5000", "registry.io/app", false),
        ("registry.io:5000", "registry.io:5000/app", true),
        ("registry.io:5000", "registry.io:5001/app", false),
        ("*.io:5000", "registry.io:5000/app", true),
        ("registry.io:", "registry.io/app", true),
        // Paths are raw byte prefixes, no segment boundary.
        ("registry.io/team", "registry.io/team/app", true),
        ("registry.io/team", "registry.io/teamz/app", true),
        ("registry.io/team/", "registry.io/team", false),
        ("registry.io/*", "registry.io/app", false),
        // Case-sensitive everywhere.
        ("Registry.io", "registry.io/app", false),
        ("registry.io/App", "registry.io/app", false),
        // Schemes are not stripped in patterns.
        ("https://registry.io", "registry.io/app", false),
        // Docker Hub: only docker.io matches normalized names.
        ("docker.io", "docker.io/library/nginx", true),
        ("*.docker.io", "docker.io/library/nginx", false),
        ("index.docker.io", "docker.io/library/nginx", false),
        // IPv6 literals.
        ("[::1]:5000", "[::1]:5000/foo", true),
        ("[::1]", "[::1]:5000/foo", false),
        // Unparsable patterns never match.
        ("%invalid%", "registry.io/app", false),
        ("registry.io:abc", "registry.io/app", false),
        ("", "registry.io/app", false),
    ];
    for &(pattern, target, want) in cases {
        assert_eq!(
            urls_match(pattern, target),
            want,
            "{pattern:?} vs {target:?}"
        );
        assert_eq!(
            Target::new(target).matched_by(pattern),
            want,
            "{pattern:?} vs {target:?}"
        );
    }
}

// Error texts, found by the differential test against Go (fuzz/differential); the
// expected strings are what Go 1.19's url.Parse printed for the same entries.
fn err_text(entry: &str) -> Option<String> {
    validate_match_image(entry).err().map(|e| e.to_string())
}

#[test]
fn regression_userinfo_and_host_both_bad_reports_the_host() {
    assert_eq!(
        err_text("us er@*a.K. /v1"),
        Some(r#"parse "https://us er@*a.K. /v1": invalid character " " in host name"#.into())
    );
    assert_eq!(
        err_text("%zz@[%25]:abc/?"),
        Some(r#"parse "https://%zz@[%25]:abc/?": invalid port ":abc" after host"#.into())
    );
}

#[test]
fn regression_userinfo_escape_error_stops_at_the_first_colon() {
    assert_eq!(
        err_text("%!::@"),
        Some(r#"parse "https://%!::@": invalid URL escape "%!""#.into())
    );
    assert_eq!(
        err_text("%::@s'"),
        Some(r#"parse "https://%::@s'": invalid URL escape "%""#.into())
    );
    assert_eq!(
        err_text("u:%zz@reg.io"),
        Some(r#"parse "https://u:%zz@reg.io": invalid URL escape "%zz""#.into())
    );
}

#[test]
fn regression_error_url_drops_the_fragment_unless_the_fragment_failed() {
    assert_eq!(
        err_text("%e2%98%ba:٣#%zz"),
        Some(r#"parse "https://%e2%98%ba:٣": invalid port ":٣" after host"#.into())
    );
    assert_eq!(
        err_text("reg.io#%zz"),
        Some(r#"parse "https://reg.io#%zz": invalid URL escape "%zz""#.into())
    );
}

#[test]
fn regression_error_texts_quote_like_go_strconv_quote() {
    let cases = [
        (
            "a\tb",
            r#"parse "https://a\tb": net/url: invalid control character in URL"#,
        ),
        ("%2é", r#"parse "https://%2é": invalid URL escape "%2\xc3""#),
        (
            "\": 5/v1//\t%C3%A9",
            r#"parse "https://\": 5/v1//\t%C3%A9": net/url: invalid control character in URL"#,
        ),
        (
            "<9#(.%2\u{7f}&{[",
            r#"parse "https://<9#(.%2\x7f&{[": invalid URL escape "%2\x7f""#,
        ),
        (
            "a\u{a0}\u{85}\u{7f}",
            r#"parse "https://a\u00a0\u0085\x7f": net/url: invalid control character in URL"#,
        ),
    ];
    for (entry, want) in cases {
        assert_eq!(err_text(entry), Some(want.into()), "{entry:?}");
    }
}

#[test]
fn default_registry_match() {
    let cases = [
        ("foo/bar", true),
        ("docker.io/foo/bar", true),
        ("index.docker.io/foo/bar", true),
        ("foo", true),
        ("", false),
        ("registry.tld/foo/bar", false),
        ("registry:5000/foo/bar", false),
        ("myhostdocker.io/foo/bar", false),
        ("docker.io", true),
        ("a:1/c", false),
        ("registry-1.docker.io/x", false),
    ];
    for (image, want) in cases {
        assert_eq!(is_default_registry_match(image), want, "{image:?}");
    }
}

#[test]
fn keyring_keys_lose_the_http_scheme_credentials_query_and_api_version() {
    let cases: &[(&str, &str)] = &[
        ("reg.io", "reg.io"),
        ("https://reg.io", "reg.io"),
        ("http://reg.io/", "reg.io"),
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("index.docker.io/v2/", "index.docker.io"),
        ("reg.io/v2/team", "reg.io/team"),
        ("reg.io/v1", "reg.io/v1"),
        ("https://user:pw@reg.io:5000/x?q#f", "reg.io:5000/x"),
        ("oci://reg.io", "oci://reg.io"),
        ("HTTPS://reg.io", "HTTPS://reg.io"),
    ];
    for &(loc, want) in cases {
        assert_eq!(
            keyring_key(loc).map(|k| String::from_utf8(k).unwrap()),
            Ok(want.into()),
            "{loc:?}"
        );
    }
    assert!(keyring_key("reg.io:abc").is_err());
    assert!(keyring_key("%zz").is_err());
}

fn lookup(keys: &[&str], image: &str) -> (Vec<String>, MatchKind) {
    let mut k = Keyring::new();
    for &key in keys {
        let _ = k.add(key, key.to_string());
    }
    let (found, kind) = k.lookup(&Target::new(image));
    (found.iter().map(|e| e.value.clone()).collect(), kind)
}

#[test]
fn lookup_orders_most_specific_first_and_falls_back_to_hub() {
    let (found, kind) = lookup(
        &[
            "*.registry.io",
            "a.registry.io",
            "a.registry.io/team",
            "b.registry.io",
        ],
        "a.registry.io/team/app",
    );
    assert_eq!(
        found,
        ["a.registry.io/team", "a.registry.io", "*.registry.io"]
    );
    assert_eq!(kind, MatchKind::Direct);

    // /v1/ and scheme are normalized away; several raw keys may share a key.
    let (found, _) = lookup(&["https://quay.io/v1/", "http://quay.io"], "quay.io/x");
    assert_eq!(found.len(), 2);

    // Docker Hub fallback only when nothing matched directly.
    let (found, kind) = lookup(
        &["https://index.docker.io/v1/", "other.io"],
        "docker.io/library/nginx",
    );
    assert_eq!(found, ["https://index.docker.io/v1/"]);
    assert_eq!(kind, MatchKind::DockerHubFallback);
    let (found, kind) = lookup(
        &["https://index.docker.io/v1/", "docker.io/library"],
        "docker.io/library/nginx",
    );
    assert_eq!(found, ["docker.io/library"]);
    assert_eq!(kind, MatchKind::Direct);
    // Not for other registries.
    let (found, _) = lookup(&["https://index.docker.io/v1/"], "quay.io/x");
    assert!(found.is_empty());
    // Unparsable keys are skipped, the rest kept.
    let (found, _) = lookup(&["reg.io:abc", "reg.io"], "reg.io/x");
    assert_eq!(found, ["reg.io"]);
}

#[test]
fn host_match_ignores_paths() {
    let t = Target::new("reg.io/other/app");
    assert!(t.host_matched_by(b"reg.io/team"));
    assert!(!t.matched_by("reg.io/team"));
    assert!(!t.host_matched_by(b"reg.io:5000/team"));
}
