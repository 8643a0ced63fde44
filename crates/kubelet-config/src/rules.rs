//! The kubelet's validation of a decoded config (spec 2.3, `validateCredentialProviderConfig`).
//!
//! Every rule is checked and every error kept, as the kubelet aggregates them. Messages are
//! the kubelet's, field paths included (`providers.matchImages: Invalid value: ...`; the
//! kubelet's paths carry no index, so [`FieldError::provider`] says which entry it was).
//! Rules about a field that failed to decode are skipped: that field already has an error.

use std::collections::BTreeSet;
use std::fmt;

use crate::decode::Provider;
use crate::go_quote;
use crate::kubelet::Kubelet;

/// One validation error, as the kubelet's `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Index of the provider in the list validated.
    pub provider: Option<usize>,
    /// The kubelet's field path (`providers.tokenAttributes.cacheType`).
    pub path: String,
    /// The rest: `Required value`, `Invalid value: "x": why`, ...
    pub body: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.body)
    }
}

/// How much of the kubelet's flow to mirror.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Report repeated names as `Duplicate value`. Kubelets 1.34+ refuse them earlier, when
    /// merging the files, with their own message; the caller reports that instead.
    pub duplicate_names: bool,
    /// Report an empty provider list. Off when a file could not be decoded at all, since its
    /// providers are then unknown rather than absent.
    pub empty_list: bool,
}

struct Errors {
    list: Vec<FieldError>,
    provider: Option<usize>,
}

impl Errors {
    fn push(&mut self, path: &str, body: String) {
        self.list.push(FieldError {
            provider: self.provider,
            path: path.to_string(),
            body,
        });
    }

    fn required(&mut self, path: &str, detail: &str) {
        let body = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        self.push(path, body);
    }

    fn invalid(&mut self, path: &str, rendered_value: &str, detail: &str) {
        self.push(path, format!("Invalid value: {rendered_value}: {detail}"));
    }

    fn duplicate(&mut self, path: &str, value: &str) {
        self.push(path, format!("Duplicate value: {}", go_quote(value)));
    }

    fn not_supported(&mut self, path: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        self.push(
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                go_quote(value),
                list.join(", ")
            ),
        );
    }

    fn forbidden(&mut self, path: &str, detail: &str) {
        self.push(path, format!("Forbidden: {detail}"));
    }
}

/// The protocol version `tokenAttributes` requires.
const V1: &str = "credentialprovider.kubelet.k8s.io/v1";
/// `tokenAttributes.cacheType` values, sorted.
const CACHE_TYPES: [&str; 2] = ["ServiceAccount", "Token"];

/// Validates the merged provider list for `kubelet`.
pub fn validate(providers: &[&Provider], kubelet: &Kubelet, options: Options) -> Vec<FieldError> {
    let mut errs = Errors {
        list: Vec::new(),
        provider: None,
    };
    if providers.is_empty() && options.empty_list {
        errs.required("providers", "at least 1 item in plugins is required");
    }
    let api_versions = kubelet.provider_api_versions();
    let mut seen_names = BTreeSet::new();
    for (i, p) in providers.iter().enumerate() {
        errs.provider = Some(i);
        if p.decoded("name") {
            let name = p.name.as_str();
            let q = go_quote(name);
            if name.contains('/') {
                errs.invalid("providers.name", &q, "provider name cannot contain '/'");
            }
            // Only the ASCII space: the kubelet does not look for tabs or other white space.
            if name.contains(' ') {
                errs.invalid("providers.name", &q, "provider name cannot contain spaces");
            }
            if name == "." {
                errs.invalid("providers.name", &q, "provider name cannot be '.'");
            }
            if name == ".." {
                errs.invalid("providers.name", &q, "provider name cannot be '..'");
            }
            if !seen_names.insert(name) && options.duplicate_names {
                errs.duplicate("providers.name", name);
            }
        }
        if p.decoded("apiVersion") {
            if p.api_version.is_empty() {
                errs.required("providers.apiVersion", "");
            } else if !api_versions.contains(&p.api_version.as_str()) {
                errs.not_supported("providers.apiVersion", &p.api_version, &api_versions);
            }
        }
        if p.decoded("matchImages") {
            if p.match_images.is_empty() {
                errs.required(
                    "providers.matchImages",
                    "at least 1 item in matchImages is required",
                );
            }
            for entry in &p.match_images {
                if let Err(e) = keyring_api::pattern::validate_match_image(entry) {
                    errs.invalid(
                        "providers.matchImages",
                        &go_quote(entry),
                        &format!("match image is invalid: {e}"),
                    );
                }
            }
        }
        if p.decoded("defaultCacheDuration") {
            match p.default_cache_duration {
                None => errs.required("providers.defaultCacheDuration", ""),
                Some(n) if n < 0 => errs.invalid(
                    "providers.defaultCacheDuration",
                    &go_quote(&keyring_api::duration::format_nanos(n)),
                    "defaultCacheDuration must be greater than or equal to 0",
                ),
                Some(_) => {}
            }
        }
        if let (true, Some(t)) = (p.decoded("tokenAttributes"), &p.token_attributes) {
            let path = "providers.tokenAttributes";
            if !kubelet.sa_token_gate {
                errs.forbidden(
                    path,
                    "tokenAttributes is not supported when \
                     KubeletServiceAccountTokenForCredentialProviders feature gate is disabled",
                );
            }
            if t.decoded("serviceAccountTokenAudience")
                && t.service_account_token_audience.is_empty()
            {
                errs.required("providers.tokenAttributes.serviceAccountTokenAudience", "");
            }
            if t.decoded("requireServiceAccount") && t.require_service_account.is_none() {
                errs.required("providers.tokenAttributes.requireServiceAccount", "");
            }
            if p.decoded("apiVersion") && p.api_version != V1 {
                errs.forbidden(
                    path,
                    &format!("tokenAttributes is only supported for {V1} API version"),
                );
            }
            let required = &t.required_service_account_annotation_keys;
            let optional = &t.optional_service_account_annotation_keys;
            if t.require_service_account == Some(false) && !required.is_empty() {
                errs.forbidden(
                    "providers.tokenAttributes.requiredServiceAccountAnnotationKeys",
                    "requireServiceAccount cannot be false when \
                     requiredServiceAccountAnnotationKeys is set",
                );
            }
            annotation_keys(
                &mut errs,
                "providers.tokenAttributes.requiredServiceAccountAnnotationKeys",
                required,
            );
            annotation_keys(
                &mut errs,
                "providers.tokenAttributes.optionalServiceAccountAnnotationKeys",
                optional,
            );
            let required_set: BTreeSet<&String> = required.iter().collect();
            let both: Vec<&String> = optional
                .iter()
                .collect::<BTreeSet<_>>()
                .intersection(&required_set)
                .copied()
                .collect();
            if !both.is_empty() {
                // Newest kubelets render the list as JSON; 1.33 printed `[]string{"k"}`.
                let rendered = serde_json::to_string(&both).unwrap_or_default();
                errs.invalid(
                    path,
                    &rendered,
                    "annotation keys cannot be both required and optional",
                );
            }
            if kubelet.has_cache_type() && t.decoded("cacheType") {
                if t.cache_type.is_empty() {
                    errs.required(
                        "providers.tokenAttributes.cacheType",
                        &format!(
                            "cacheType is required to be set when tokenAttributes is specified. \
                             Supported values are: {}",
                            CACHE_TYPES.join(", ")
                        ),
                    );
                } else if !CACHE_TYPES.contains(&t.cache_type.as_str()) {
                    errs.not_supported(
                        "providers.tokenAttributes.cacheType",
                        &t.cache_type,
                        &CACHE_TYPES,
                    );
                }
            }
        }
    }
    errs.list
}

/// `validateServiceAccountAnnotationKeys`: each key a qualified name once lower-cased, no
/// key twice.
fn annotation_keys(errs: &mut Errors, path: &str, keys: &[String]) {
    let mut seen = BTreeSet::new();
    for k in keys {
        for msg in qualified_name_errors(&k.to_lowercase()) {
            errs.invalid(path, &go_quote(k), &msg);
        }
        if !seen.insert(k) {
            errs.duplicate(path, k);
        }
    }
}

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
                                  and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
    alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// apimachinery's `RegexError`, double spaces and all.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// apimachinery's `IsQualifiedName`: `[prefix/]name`, the prefix a DNS-1123 subdomain of at
/// most 253 characters, the name at most 63 characters of `QUALIFIED_NAME_FMT`.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > 253 {
                    errs.push("prefix part must be no more than 253 characters".to_string());
                }
                if !is_dns1123_subdomain(prefix) {
                    errs.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_MSG,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &examples)
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &examples)
        ));
    }
    errs
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => edge(f) && edge(l) && b.iter().all(|c| edge(c) || *c == b'-'),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
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
}
