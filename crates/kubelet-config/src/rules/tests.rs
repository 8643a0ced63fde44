use super::*;
use crate::decode::TokenAttributes;
use crate::kubelet::KubeletVersion;

const ALPHA: &str = "credentialprovider.kubelet.k8s.io/v1alpha1";
const BETA: &str = "credentialprovider.kubelet.k8s.io/v1beta1";
const OPTS: Options = Options {
    duplicate_names: true,
    empty_list: true,
};
const GATE_OFF: &str = "providers.tokenAttributes: Forbidden: tokenAttributes is not \
    supported when KubeletServiceAccountTokenForCredentialProviders feature gate is disabled";
const ONLY_V1: &str = "providers.tokenAttributes: Forbidden: tokenAttributes is only \
    supported for credentialprovider.kubelet.k8s.io/v1 API version";
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or \
    '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
    'my.name',  or '123-abc', regex used for validation is \
    '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// The base provider of spec 2.5.
fn base() -> Provider {
    Provider {
        name: "foobar".into(),
        match_images: vec!["foobar.registry.io".into()],
        default_cache_duration: Some(60_000_000_000),
        api_version: ALPHA.into(),
        ..Provider::default()
    }
}

/// The base provider with a complete, valid tokenAttributes (v1).
fn with_token(f: impl FnOnce(&mut TokenAttributes)) -> Provider {
    let mut t = TokenAttributes {
        service_account_token_audience: "audience".into(),
        cache_type: "ServiceAccount".into(),
        require_service_account: Some(true),
        ..TokenAttributes::default()
    };
    f(&mut t);
    Provider {
        api_version: V1.into(),
        token_attributes: Some(t),
        ..base()
    }
}

fn kubelet(minor: u32, sa_gate: bool) -> Kubelet {
    Kubelet {
        version: KubeletVersion::new(minor),
        providers_gate: true,
        sa_token_gate: sa_gate,
    }
}

fn run(providers: &[Provider], k: &Kubelet) -> Vec<String> {
    let refs: Vec<&Provider> = providers.iter().collect();
    validate(&refs, k, OPTS)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn vector(name: &str, providers: Vec<Provider>, sa_gate: bool, want: &[&str]) {
    let got = run(&providers, &kubelet(35, sa_gate));
    assert_eq!(got, want, "{name}");
}

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| s.to_string()).collect()
}

#[test]
fn spec_vectors_v1_to_v13() {
    let p = |f: fn(&mut Provider)| {
        let mut p = base();
        f(&mut p);
        vec![p]
    };
    vector(
        "V1",
        vec![],
        false,
        &["providers: Required value: at least 1 item in plugins is required"],
    );
    vector(
        "V2",
        p(|p| p.match_images.clear()),
        false,
        &["providers.matchImages: Required value: at least 1 item in matchImages is required"],
    );
    vector(
        "V3",
        p(|p| p.default_cache_duration = None),
        false,
        &["providers.defaultCacheDuration: Required value"],
    );
    vector(
        "V4",
        p(|p| p.name = "foo/../bar".into()),
        false,
        &[r#"providers.name: Invalid value: "foo/../bar": provider name cannot contain '/'"#],
    );
    vector(
        "V5",
        p(|p| p.name = ".".into()),
        false,
        &[r#"providers.name: Invalid value: ".": provider name cannot be '.'"#],
    );
    vector(
        "V6",
        p(|p| p.name = "..".into()),
        false,
        &[r#"providers.name: Invalid value: "..": provider name cannot be '..'"#],
    );
    vector(
        "V7",
        p(|p| p.name = "foo bar".into()),
        false,
        &[r#"providers.name: Invalid value: "foo bar": provider name cannot contain spaces"#],
    );
    vector(
        "V8",
        vec![base(), base()],
        false,
        &[r#"providers.name: Duplicate value: "foobar""#],
    );
    vector(
        "V9",
        p(|p| p.api_version.clear()),
        false,
        &["providers.apiVersion: Required value"],
    );
    vector(
        "V10",
        p(|p| p.api_version = "credentialprovider.kubelet.k8s.io/v1alpha0".into()),
        false,
        &[
            r#"providers.apiVersion: Unsupported value: "credentialprovider.kubelet.k8s.io/v1alpha0": supported values: "credentialprovider.kubelet.k8s.io/v1", "credentialprovider.kubelet.k8s.io/v1alpha1", "credentialprovider.kubelet.k8s.io/v1beta1""#,
        ],
    );
    vector(
        "V11",
        p(|p| p.default_cache_duration = Some(-60_000_000_000)),
        false,
        &[
            r#"providers.defaultCacheDuration: Invalid value: "-1m0s": defaultCacheDuration must be greater than or equal to 0"#,
        ],
    );
    vector(
        "V12",
        p(|p| p.match_images = vec!["%invalid%".into()]),
        false,
        &[
            r#"providers.matchImages: Invalid value: "%invalid%": match image is invalid: parse "https://%invalid%": invalid URL escape "%in""#,
        ],
    );
    vector("V13", vec![base()], false, &[]);
}

#[test]
fn spec_vectors_v14_to_v27() {
    vector("V14", vec![with_token(|_| {})], false, &[GATE_OFF]);
    vector(
        "V15",
        vec![with_token(|t| t.service_account_token_audience.clear())],
        true,
        &["providers.tokenAttributes.serviceAccountTokenAudience: Required value"],
    );
    vector(
        "V16",
        vec![with_token(|t| t.cache_type.clear())],
        true,
        &["providers.tokenAttributes.cacheType: Required value: cacheType is required to be set when tokenAttributes is specified. Supported values are: ServiceAccount, Token"],
    );
    vector(
        "V17",
        vec![with_token(|t| t.cache_type = "invalid-cache-type".into())],
        true,
        &[
            r#"providers.tokenAttributes.cacheType: Unsupported value: "invalid-cache-type": supported values: "ServiceAccount", "Token""#,
        ],
    );
    vector(
        "V18",
        vec![with_token(|t| t.require_service_account = None)],
        true,
        &["providers.tokenAttributes.requireServiceAccount: Required value"],
    );
    let bad = ["cantendwithadash-", "now-with-dashes/simple"];
    vector(
        "V19",
        vec![with_token(|t| {
            t.required_service_account_annotation_keys = keys(&bad)
        })],
        true,
        &[&format!(
            r#"providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Invalid value: "cantendwithadash-": {NAME_PART}"#
        )],
    );
    vector(
        "V20",
        vec![with_token(|t| {
            t.optional_service_account_annotation_keys = keys(&bad)
        })],
        true,
        &[&format!(
            r#"providers.tokenAttributes.optionalServiceAccountAnnotationKeys: Invalid value: "cantendwithadash-": {NAME_PART}"#
        )],
    );
    let dup = ["now-with-dashes/simple", "now-with-dashes/simple"];
    vector(
        "V21",
        vec![with_token(|t| {
            t.required_service_account_annotation_keys = keys(&dup)
        })],
        true,
        &[
            r#"providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Duplicate value: "now-with-dashes/simple""#,
        ],
    );
    vector(
        "V22",
        vec![with_token(|t| {
            t.optional_service_account_annotation_keys = keys(&dup)
        })],
        true,
        &[
            r#"providers.tokenAttributes.optionalServiceAccountAnnotationKeys: Duplicate value: "now-with-dashes/simple""#,
        ],
    );
    vector(
        "V23",
        vec![with_token(|t| {
            t.required_service_account_annotation_keys =
                keys(&["now-with-dashes/simple-1", "now-with-dashes/simple-2"]);
            t.optional_service_account_annotation_keys =
                keys(&["now-with-dashes/simple-2", "now-with-dashes/simple-3"]);
        })],
        true,
        &[
            r#"providers.tokenAttributes: Invalid value: ["now-with-dashes/simple-2"]: annotation keys cannot be both required and optional"#,
        ],
    );
    vector(
        "V24",
        vec![with_token(|t| {
            t.require_service_account = Some(false);
            t.required_service_account_annotation_keys = keys(&["now-with-dashes/simple"]);
        })],
        true,
        &["providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set"],
    );
    vector(
        "V25",
        vec![with_token(|t| {
            t.required_service_account_annotation_keys =
                keys(&["now-with-dashes/simple-1", "now-with-dashes/simple-2"]);
            t.optional_service_account_annotation_keys = keys(&["now-with-dashes/simple-3"]);
            t.cache_type = "Token".into();
        })],
        true,
        &[],
    );
    let mut v26 = with_token(|_| {});
    v26.api_version = ALPHA.into();
    vector("V26", vec![v26], true, &[ONLY_V1]);
    let mut v27 = with_token(|_| {});
    v27.api_version = BETA.into();
    vector("V27", vec![v27], true, &[ONLY_V1]);
}

#[test]
fn all_errors_are_aggregated_across_providers() {
    let mut a = base();
    a.name = "a/b c".into();
    a.match_images = vec!["ok.io".into(), "%zz".into(), "reg istry.io".into()];
    let mut b = base();
    b.name = "a/b c".into();
    b.api_version.clear();
    b.default_cache_duration = None;
    let refs = [&a, &b];
    let errs = validate(&refs, &kubelet(35, true), OPTS);
    let by: Vec<(Option<usize>, &str)> =
        errs.iter().map(|e| (e.provider, e.path.as_str())).collect();
    assert_eq!(
        by,
        [
            (Some(0), "providers.name"),
            (Some(0), "providers.name"),
            (Some(0), "providers.matchImages"),
            (Some(0), "providers.matchImages"),
            (Some(1), "providers.name"),
            (Some(1), "providers.name"),
            (Some(1), "providers.name"),
            (Some(1), "providers.apiVersion"),
            (Some(1), "providers.defaultCacheDuration"),
        ]
    );
    assert!(errs[3]
        .to_string()
        .contains(r#"Invalid value: "reg istry.io": match image is invalid: parse "https://reg istry.io": invalid character " " in host name"#));
}

#[test]
fn what_validation_lets_through() {
    // Empty names, tabs, any env and args, zero durations (spec 2.3 notes).
    let mut p = base();
    p.name = String::new();
    p.default_cache_duration = Some(0);
    p.args = vec!["".into(), "--x=\u{1}".into()];
    let mut q = base();
    q.name = "tab\tname".into();
    let mut r = base();
    r.name = "x".into();
    r.match_images = [
        "",
        "*",
        "registry.io/*",
        "https://gcr.io",
        "registry.io:",
        "host.io:99999",
        "[::1]:5000/x",
        "user:pw@host.io/x",
        "host.io/%20",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(run(&[p, q, r], &kubelet(35, true)), Vec::<String>::new());
}

#[test]
fn match_images_table_d_invalid_entries() {
    for bad in [
        "%invalid%",
        "registry.io:*",
        "registry.io:abc",
        "reg istry.io",
        "host.io/%zz",
        "ho%20st.io",
    ] {
        let mut p = base();
        p.match_images = vec![bad.into()];
        let errs = run(&[p], &kubelet(35, false));
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        assert!(
            errs[0].starts_with(&format!(
                "providers.matchImages: Invalid value: {}: match image is invalid: parse \"https://{bad}\": ",
                go_quote(bad)
            )),
            "{}",
            errs[0]
        );
    }
}

#[test]
fn duplicates_left_to_the_merge_step_on_newer_kubelets() {
    let refs = [&base(), &base()];
    let opts = Options {
        duplicate_names: false,
        ..OPTS
    };
    assert!(validate(&refs, &kubelet(35, true), opts).is_empty());
    let opts = Options {
        empty_list: false,
        ..OPTS
    };
    assert!(validate(&[], &kubelet(35, true), opts).is_empty());
}

#[test]
fn rules_follow_the_kubelet_release() {
    // 1.25 speaks v1alpha1 and v1beta1 only.
    let mut p = base();
    p.api_version = V1.into();
    assert_eq!(
        run(std::slice::from_ref(&p), &kubelet(25, false)),
        [
            r#"providers.apiVersion: Unsupported value: "credentialprovider.kubelet.k8s.io/v1": supported values: "credentialprovider.kubelet.k8s.io/v1alpha1", "credentialprovider.kubelet.k8s.io/v1beta1""#
        ]
    );
    assert!(run(&[p], &kubelet(26, false)).is_empty());
    // 1.33 has no cacheType, so nothing requires it.
    let p = with_token(|t| t.cache_type.clear());
    assert!(run(std::slice::from_ref(&p), &kubelet(33, true)).is_empty());
    assert_eq!(
        run(std::slice::from_ref(&p), &kubelet(33, false)),
        [GATE_OFF]
    );
    assert_eq!(run(&[p], &kubelet(34, true)).len(), 1);
}

#[test]
fn undecodable_fields_get_no_second_error() {
    let mut p = base();
    p.default_cache_duration = None;
    p.api_version.clear();
    p.undecodable = vec!["defaultCacheDuration", "apiVersion"];
    assert!(run(&[p], &kubelet(35, true)).is_empty());
    let mut p = base();
    p.name = String::new();
    p.match_images.clear();
    p.undecodable = vec!["*"];
    assert!(run(&[p.clone(), p], &kubelet(35, true)).is_empty());
}

#[test]
fn qualified_names_get_the_kubelets_own_error_messages() {
    let long_name = "a".repeat(63);
    let long_prefix = format!("{}.com", "a".repeat(249));
    for ok in [
        "a",
        "a1",
        "my.name",
        "123-abc",
        "MyName",
        "my_name",
        "example.com/name",
        "eks.amazonaws.com/ecr-role-arn",
        "kubernetes.azure.com/acr-client-id",
        long_name.as_str(),
        &format!("{long_prefix}/x"),
    ] {
        assert_eq!(qualified_name_errors(ok), Vec::<String>::new(), "{ok}");
    }
    let cases: &[(&str, &[&str])] = &[
        ("", &["name part must be non-empty", "name part must consist"]),
        ("-a", &["name part must consist"]),
        ("a-", &["name part must consist"]),
        ("a b", &["name part must consist"]),
        ("/a", &["prefix part must be non-empty"]),
        ("a/", &["name part must be non-empty", "name part must consist"]),
        ("Example.com/a", &["prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
        ("ex..com/a", &["prefix part a lowercase RFC 1123"]),
        ("a/b/c", &["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]),
        (&"a".repeat(64), &["name part must be no more than 63 characters"]),
        (&format!("{}.com/x", "a".repeat(250)), &["prefix part must be no more than 253 characters"]),
        ("caf\u{e9}", &["name part must consist"]),
    ];
    for (input, want) in cases {
        let got = qualified_name_errors(input);
        assert_eq!(got.len(), want.len(), "{input:?}: {got:?}");
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(g.starts_with(w), "{input:?}: {g}");
        }
    }
}

#[test]
fn annotation_keys_are_checked_lower_cased_but_reported_as_written() {
    // "Example.COM/Key" passes once lower-cased; "BAD_/x" fails on its prefix and is
    // reported as written.
    let p = with_token(|t| {
        t.required_service_account_annotation_keys = keys(&["Example.COM/Key", "BAD_/x"]);
    });
    let errs = run(&[p], &kubelet(35, true));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            r#"providers.tokenAttributes.requiredServiceAccountAnnotationKeys: Invalid value: "BAD_/x": prefix part a lowercase RFC 1123"#
        ),
        "{}",
        errs[0]
    );
}
