use super::*;
use crate::kubelet::{FeatureGates, KubeletVersion};

fn kubelet(minor: u32) -> Kubelet {
    Kubelet::new(KubeletVersion::new(minor), &FeatureGates::default()).0
}

fn dec(text: &str) -> Decoded {
    decode(text, &kubelet(35))
}

fn errors(d: &Decoded) -> Vec<String> {
    d.errors
        .iter()
        .map(|p| match &p.field {
            Some(f) => format!("{f}: {}", p.message),
            None => p.message.clone(),
        })
        .collect()
}

const V1ALPHA1: &str =
    "apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: CredentialProviderConfig\n";
const V1BETA1: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\n";
const V1: &str = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n";
const PROVIDER: &str = "providers:\n- name: test\n  matchImages: [\"registry.io/foobar\"]\n  defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1alpha1\n";

#[test]
fn decodes_every_field() {
    let text = format!(
        "{V1}providers:\n- name: test\n  matchImages: [\"registry.io/foobar\", \"*.io\"]\n  \
         defaultCacheDuration: 10m\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  \
         args: [get-credentials, -v]\n  env:\n  - name: A\n    value: \"1\"\n  - {{name: B, value: s3cret-value}}\n  \
         tokenAttributes:\n    serviceAccountTokenAudience: aud\n    cacheType: Token\n    \
         requireServiceAccount: true\n    requiredServiceAccountAnnotationKeys: [a]\n    \
         optionalServiceAccountAnnotationKeys: [b, c]\n"
    );
    let d = dec(&text);
    assert!(
        d.errors.is_empty() && d.warnings.is_empty() && !d.fatal,
        "{d:?}"
    );
    assert_eq!(d.version.as_deref(), Some("v1"));
    let p = &d.providers[0];
    assert_eq!(p.name, "test");
    assert_eq!(p.match_images, ["registry.io/foobar", "*.io"]);
    assert_eq!(p.default_cache_duration, Some(600_000_000_000));
    assert_eq!(p.api_version, "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(p.args, ["get-credentials", "-v"]);
    assert_eq!(p.env.len(), 2);
    assert_eq!(
        (p.env[1].name.as_str(), p.env[1].value.expose().as_str()),
        ("B", "s3cret-value")
    );
    let t = p.token_attributes.as_ref().unwrap();
    assert_eq!(t.service_account_token_audience, "aud");
    assert_eq!(t.cache_type, "Token");
    assert_eq!(t.require_service_account, Some(true));
    assert_eq!(t.required_service_account_annotation_keys, ["a"]);
    assert_eq!(t.optional_service_account_annotation_keys, ["b", "c"]);
    // Debug never shows an env value.
    assert!(!format!("{p:?}").contains("s3cret"));
}

#[test]
fn json_decodes_like_yaml() {
    let json = r#"{"apiVersion":"kubelet.config.k8s.io/v1beta1","kind":"CredentialProviderConfig",
        "providers":[{"name":"test","matchImages":["registry.io"],"defaultCacheDuration":"0s",
        "apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","env":[{"name":"on","value":"yes"}]}]}"#;
    let d = dec(json);
    assert!(d.errors.is_empty() && d.warnings.is_empty(), "{d:?}");
    assert_eq!(d.providers[0].default_cache_duration, Some(0));
}

#[test]
fn wrong_kind_and_api_version() {
    let d = dec(&format!(
        "apiVersion: kubelet.config.k8s.io/v1alpha1\nkind: WrongKind\n{PROVIDER}"
    ));
    assert!(d.fatal && d.providers.is_empty());
    assert!(
        errors(&d)[0].starts_with(
            r#"no kind "WrongKind" is registered for version "kubelet.config.k8s.io/v1alpha1""#
        ),
        "{:?}",
        errors(&d)
    );
    let d = dec(&format!(
        "apiVersion: foobar/v1alpha1\nkind: CredentialProviderConfig\n{PROVIDER}"
    ));
    assert!(d.fatal);
    assert!(errors(&d)[0].starts_with(
        r#"no kind "CredentialProviderConfig" is registered for version "foobar/v1alpha1""#
    ));
    // The protocol group in the file's apiVersion: a common mix-up, explained.
    let d =
        dec("apiVersion: credentialprovider.kubelet.k8s.io/v1\nkind: CredentialProviderConfig\n");
    assert!(
        errors(&d)[0].contains("each provider's apiVersion"),
        "{:?}",
        errors(&d)
    );
    // The kubelet's own config.
    let d = dec("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n");
    assert!(errors(&d)[0].starts_with(r#"failed to decode "KubeletConfiguration" (wrong Kind)"#));
    for (text, want) in [
        ("providers: []\n", "Object 'Kind' is missing"),
        (
            "kind: CredentialProviderConfig\n",
            "Object 'apiVersion' is missing",
        ),
        (
            "kind: CredentialProviderConfig\napiVersion: kubelet.config.k8s.io/\n",
            "Object 'apiVersion' is missing",
        ),
        (
            "kind: CredentialProviderConfig\napiVersion: a/b/c\n",
            "unexpected GroupVersion string: a/b/c",
        ),
        (
            "kind: CredentialProviderConfig\napiVersion: v1\n",
            r#"no kind "CredentialProviderConfig" is registered for version "v1""#,
        ),
        ("kind: 5\napiVersion: v1\n", "couldn't get version/kind"),
        ("", "Object 'Kind' is missing (the file is empty)"),
        ("# nothing\n", "Object 'Kind' is missing"),
        (
            "- a\n- b\n",
            "couldn't get version/kind; json parse error: the document is a array",
        ),
        ("a: [1,\n", "yaml: "),
        ("a: 1\na: 2\n", "yaml: duplicate entry with key \"a\""),
    ] {
        let d = dec(text);
        assert!(d.fatal, "{text:?}");
        assert!(
            errors(&d)[0].starts_with(want),
            "{text:?}: {:?}",
            errors(&d)
        );
    }
}

#[test]
fn config_versions_follow_the_kubelet_release() {
    let d = decode(&format!("{V1}{PROVIDER}"), &kubelet(25));
    assert!(d.fatal);
    assert_eq!(
        errors(&d)[0],
        r#"no kind "CredentialProviderConfig" is registered for version "kubelet.config.k8s.io/v1" (kubelet 1.25 reads kubelet.config.k8s.io v1alpha1, v1beta1; v1 needs kubelet 1.26+)"#
    );
    assert!(decode(&format!("{V1BETA1}{PROVIDER}"), &kubelet(23)).fatal);
    assert!(!decode(&format!("{V1BETA1}{PROVIDER}"), &kubelet(24)).fatal);
    assert!(!decode(&format!("{V1ALPHA1}{PROVIDER}"), &kubelet(20)).fatal);
}

#[test]
fn unknown_fields_are_strict_errors_with_their_paths() {
    let d = dec(&format!(
        "{V1ALPHA1}{PROVIDER}  unknownField: 1\n  env:\n  - name: A\n    valu: x\nextra: true\n"
    ));
    assert!(!d.fatal);
    assert_eq!(
        errors(&d),
        [
            r#"strict decoding error: unknown field "providers[0].unknownField""#,
            r#"strict decoding error: unknown field "providers[0].env[0].valu""#,
            r#"strict decoding error: unknown field "extra""#,
        ]
    );
    assert_eq!(d.errors[0].provider, Some(0));
    assert_eq!(d.errors[2].provider, None);
    // Field names are case-sensitive, and the error says so.
    let d = dec(&format!("{V1ALPHA1}providers:\n- matchimages: [a.io]\n"));
    assert_eq!(
        errors(&d),
        [
            r#"strict decoding error: unknown field "providers[0].matchimages" (field names are case-sensitive: did you mean "matchImages"?)"#
        ]
    );
}

#[test]
fn token_attributes_exist_only_in_v1_from_1_33() {
    let token = "  tokenAttributes:\n    serviceAccountTokenAudience: aud\n    requireServiceAccount: true\n    cacheType: Token\n";
    for header in [V1ALPHA1, V1BETA1] {
        let d = dec(&format!("{header}{PROVIDER}{token}"));
        let e = errors(&d);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with(r#"strict decoding error: unknown field "providers[0].tokenAttributes" (tokenAttributes exists only in apiVersion kubelet.config.k8s.io/v1)"#), "{e:?}");
        assert!(d.providers[0].token_attributes.is_none());
    }
    let v1 = format!("{V1}{PROVIDER}{token}");
    assert!(dec(&v1).errors.is_empty());
    let e = errors(&decode(&v1, &kubelet(32)));
    assert!(e[0].starts_with(r#"strict decoding error: unknown field "providers[0].tokenAttributes" (tokenAttributes needs kubelet 1.33+"#), "{e:?}");
    // 1.33 has tokenAttributes but no cacheType.
    let d = decode(&v1, &kubelet(33));
    assert_eq!(
        errors(&d),
        [
            r#"strict decoding error: unknown field "providers[0].tokenAttributes.cacheType" (cacheType needs kubelet 1.34+; this is kubelet 1.33)"#
        ]
    );
    assert_eq!(
        d.providers[0]
            .token_attributes
            .as_ref()
            .unwrap()
            .service_account_token_audience,
        "aud"
    );
}

#[test]
fn values_of_the_wrong_type_are_errors() {
    let d = dec(&format!(
        "{V1}providers:\n- name: 123\n  matchImages: [a.io, 5]\n  defaultCacheDuration: 0\n  \
         apiVersion: credentialprovider.kubelet.k8s.io/v1\n  args: x\n  env:\n  - name: A\n    value: 987654321\n  \
         tokenAttributes:\n    serviceAccountTokenAudience: aud\n    requireServiceAccount: \"true\"\n    cacheType: Token\n"
    ));
    assert!(!d.fatal);
    assert_eq!(
        errors(&d),
        [
            r#"providers[0].name: json: cannot unmarshal number into Go value of type string; quote it: "123""#,
            r#"providers[0].matchImages[1]: json: cannot unmarshal number into Go value of type string; quote it: "5""#,
            r#"providers[0].defaultCacheDuration: json: cannot unmarshal number into Go value of type string; quote it: "0""#,
            "providers[0].args: json: cannot unmarshal string into Go value of type []string",
            "providers[0].env[0].value: json: cannot unmarshal number into Go value of type string; quote the value",
            "providers[0].tokenAttributes.requireServiceAccount: json: cannot unmarshal string into Go value of type bool; write it without quotes: true",
        ]
    );
    // The env value (it may be a secret) is never repeated.
    assert!(!format!("{:?}", d.errors).contains("987654321"));
    let p = &d.providers[0];
    for f in ["name", "matchImages", "defaultCacheDuration", "args", "env"] {
        assert!(!p.decoded(f), "{f}");
    }
    assert!(p.decoded("apiVersion"));
    assert!(!p
        .token_attributes
        .as_ref()
        .unwrap()
        .decoded("requireServiceAccount"));
    // A provider list that is not a list: the providers are unknown.
    let d = dec(&format!("{V1}providers: {{name: x}}\n"));
    assert!(d.fatal);
    assert_eq!(
        errors(&d),
        ["providers: json: cannot unmarshal object into Go value of type []CredentialProvider"]
    );
    // An entry that is not an object.
    let d = dec(&format!("{V1}providers: [x]\n"));
    assert!(!d.fatal && !d.providers[0].decoded("name"));
}

#[test]
fn durations_parse_like_go() {
    for (text, want) in [
        ("\"0\"", Some(0)),
        ("0s", Some(0)),
        ("1h30m", Some(5_400_000_000_000)),
        ("\"-1m\"", Some(-60_000_000_000)),
        ("null", None),
        ("~", None),
    ] {
        let d = dec(&format!(
            "{V1ALPHA1}providers:\n- defaultCacheDuration: {text}\n"
        ));
        assert!(d.errors.is_empty(), "{text}: {d:?}");
        assert_eq!(d.providers[0].default_cache_duration, want, "{text}");
    }
    let d = dec(&format!(
        "{V1ALPHA1}providers:\n- defaultCacheDuration: 1d\n"
    ));
    assert_eq!(
        errors(&d),
        [r#"providers[0].defaultCacheDuration: time: unknown unit "d" in duration "1d""#]
    );
    let d = dec(&format!(
        "{V1ALPHA1}providers:\n- defaultCacheDuration: \"\"\n"
    ));
    assert_eq!(
        errors(&d),
        [r#"providers[0].defaultCacheDuration: time: invalid duration """#]
    );
}

#[test]
fn null_means_absent() {
    let d = dec(&format!("{V1}providers:\n- name: null\n  matchImages: null\n  env: [null]\n  tokenAttributes: null\n- null\n"));
    assert!(d.errors.is_empty(), "{d:?}");
    assert_eq!(d.providers.len(), 2);
    assert!(d.providers[0].name.is_empty() && d.providers[0].match_images.is_empty());
    assert!(d.providers[0].token_attributes.is_none());
    assert_eq!(d.providers[0].env.len(), 1);
    let d = dec(&format!("{V1}providers: null\n"));
    assert!(!d.fatal && d.providers.is_empty() && d.errors.is_empty());
}

#[test]
fn only_the_first_yaml_document_counts_aliases_resolve_and_yaml_1_1_words_warn() {
    // Only the first document counts.
    let d = dec(&format!("{V1ALPHA1}{PROVIDER}---\nkind: Other\n---\n"));
    assert!(d.errors.is_empty());
    assert_eq!(d.warnings.len(), 1);
    assert!(d.warnings[0].message.contains("1 more YAML document"));
    // Anchors, aliases and merge keys.
    let d = dec(&format!(
        "{V1ALPHA1}providers:\n- &p\n  name: a\n  matchImages: [a.io]\n  defaultCacheDuration: 1m\n  \
         apiVersion: credentialprovider.kubelet.k8s.io/v1alpha1\n- <<: *p\n  name: b\n"
    ));
    assert!(d.errors.is_empty(), "{d:?}");
    assert_eq!(d.providers[1].name, "b");
    assert_eq!(d.providers[1].match_images, ["a.io"]);
    // Words the kubelet's YAML 1.1 parser reads as booleans or numbers.
    let d = dec(&format!("{V1ALPHA1}providers:\n- name: on\n  args: [\"010\", \"5000\", yes]\n  env:\n  - name: X\n    value: off\n"));
    assert!(d.errors.is_empty());
    let w: Vec<(Option<&str>, &str)> = d
        .warnings
        .iter()
        .map(|w| (w.field.as_deref(), w.message.as_str()))
        .collect();
    assert_eq!(w.len(), 4, "{w:?}");
    assert_eq!(w[0].0, Some("providers[0].name"));
    assert!(w[0].1.starts_with(
        "if \"on\" is written without quotes, the kubelet's YAML 1.1 parser reads it as a boolean"
    ));
    assert!(w[1].1.contains("\"010\"") && w[1].1.contains("a number"));
    assert_eq!(w[2].0, Some("providers[0].args[2]"));
    assert!(w[3].1.starts_with("if the value is written") && !w[3].1.contains("off"));
}
