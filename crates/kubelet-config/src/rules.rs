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
mod tests;
