//! The `identity:` section against the kubelet entries that run the plugin
//! (`validate-config`; no I/O): the hosts some entry must admit ([`Config::kubelet_hosts`]),
//! and for each rule an entry admits a host of, whether that entry sends the
//! service-account token the rule needs, for the rule's audience, with the annotation a
//! `podWhenAnnotated` rule reads and the `cacheType` a pass-through needs, and whether the
//! rule's endpoints are https.

use keyring_api::backend::{Finding, KubeletEntry};

use super::{Config, IdentityChoice, Method, Rule};

impl Config {
    /// Each rule `entry` admits a host of, against `entry`; see the module docs.
    pub fn kubelet_findings(&self, entry: &KubeletEntry<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.hosts.iter().any(|h| entry.admits(h)) {
                rule.kubelet_findings(&format!("identity.rules[{i}]"), entry, &mut out);
            }
        }
        out
    }

    /// Every rule's host patterns, with the setting that names each.
    pub fn kubelet_hosts(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.hosts
                    .iter()
                    .enumerate()
                    .map(move |(j, h)| (format!("identity.rules[{i}].hosts[{j}]"), h.clone()))
            })
            .collect()
    }
}

impl Rule {
    fn kubelet_findings(&self, at: &str, entry: &KubeletEntry<'_>, out: &mut Vec<Finding>) {
        let mut warn = |message: String| {
            out.push(Finding {
                warning: true,
                message: format!("{at} ({}): {message}", self.method.name()),
            })
        };
        for (field, url) in self.method.endpoints() {
            if url.starts_with("http://") {
                warn(format!(
                    "method.{}.{field} {url:?} is plain http: refused outside tests; use https://",
                    self.method.name()
                ));
            }
        }
        let Some(pod) = self.pod.as_ref().filter(|_| self.may_use_pod()) else {
            return;
        };
        let Some(attrs) = entry.token_attributes else {
            warn(match self.identity {
                IdentityChoice::PodWhenAnnotated => format!(
                    "reads the pod's token, but the entry has no tokenAttributes: the kubelet \
                     sends none, so every pod pulls as the node; add tokenAttributes with \
                     serviceAccountTokenAudience {:?}",
                    pod.audience
                ),
                _ => format!(
                    "needs the pod's token, but the entry has no tokenAttributes: the kubelet \
                     sends none and every pull fails; add tokenAttributes with \
                     serviceAccountTokenAudience {:?}",
                    pod.audience
                ),
            });
            return;
        };
        if attrs.audience != pod.audience {
            warn(format!(
                "the kubelet requests tokens for audience {:?} (tokenAttributes.\
                 serviceAccountTokenAudience), the rule accepts only {:?}: every pod token is \
                 refused",
                attrs.audience, pod.audience
            ));
        }
        if let Method::PassThrough(_) = self.method {
            if self.identity == IdentityChoice::Pod && attrs.cache_type != "Token" {
                warn(format!(
                    "passes the pod's token through as the password: tokenAttributes.cacheType \
                     must be Token (is {:?}); the kubelet drops an answer that echoes the \
                     token otherwise",
                    attrs.cache_type
                ));
            }
        }
        if let Some(key) = pod.annotation.as_deref() {
            if !attrs.passes_annotation(key) {
                warn(format!(
                    "reads the service-account annotation {key:?}, which the kubelet does not \
                     pass: add it to tokenAttributes.optionalServiceAccountAnnotationKeys; \
                     until then every pod pulls as the node"
                ));
            }
        }
        if self.identity == IdentityChoice::Pod && attrs.require_service_account != Some(true) {
            out.push(Finding {
                warning: false,
                message: format!(
                    "{at} ({}): pods without a service account (static pods) get no token with \
                     requireServiceAccount false, and this rule fails their pulls",
                    self.method.name()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::backend::KubeletTokenAttributes;

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    fn findings(
        c: &Config,
        images: &[&str],
        attrs: Option<KubeletTokenAttributes<'_>>,
    ) -> Vec<String> {
        let images: Vec<String> = images.iter().map(|s| s.to_string()).collect();
        let entry = KubeletEntry {
            match_images: &images,
            token_attributes: attrs,
        };
        c.kubelet_findings(&entry)
            .into_iter()
            .map(|f| format!("{} {}", if f.warning { "W" } else { "N" }, f.message))
            .collect()
    }

    fn attrs<'a>(
        audience: &'a str,
        cache_type: &'a str,
        optional: &'a [String],
    ) -> KubeletTokenAttributes<'a> {
        KubeletTokenAttributes {
            audience,
            cache_type,
            require_service_account: Some(true),
            required_annotations: &[],
            optional_annotations: optional,
        }
    }

    #[test]
    fn a_pod_rule_needs_the_entrys_token_for_its_audience_and_a_pass_through_needs_cache_type_token(
    ) {
        let c = config(
            r#"{"rules":[{"hosts":["harbor.example.com"],"identity":"pod","pod":{"audience":"harbor"},"method":{"passThrough":{}}}]}"#,
        );
        assert_eq!(
            findings(&c, &["*.example.com"], Some(attrs("harbor", "Token", &[]))),
            Vec::<String>::new()
        );
        // An entry that does not admit the rule's hosts is another entry's business.
        assert_eq!(findings(&c, &["quay.io"], None), Vec::<String>::new());
        let f = findings(&c, &["harbor.example.com"], None);
        assert!(f[0].contains("no tokenAttributes"), "{f:?}");
        assert_eq!(
            c.kubelet_hosts(),
            [(
                "identity.rules[0].hosts[0]".to_string(),
                "harbor.example.com".to_string()
            )]
        );
        let f = findings(
            &c,
            &["harbor.example.com"],
            Some(attrs("sts.amazonaws.com", "ServiceAccount", &[])),
        );
        assert!(
            f[0].contains("audience \"sts.amazonaws.com\"") && f[0].contains("only \"harbor\""),
            "{f:?}"
        );
        assert!(
            f[1].contains("cacheType must be Token (is \"ServiceAccount\")"),
            "{f:?}"
        );
    }

    #[test]
    fn pod_when_annotated_needs_its_annotation_passed_and_node_rules_need_no_token() {
        let c = config(
            r#"{"rules":[
              {"hosts":["q.example.com"],"identity":"podWhenAnnotated","pod":{"audience":"quay","annotation":"example.com/robot"},"node":{"tokenFile":"/t"},"method":{"quay":{"url":"https://q.example.com","robot":"org+r"}}},
              {"hosts":["n.example.com"],"identity":"node","node":{"tokenFile":"/t"},"method":{"tokenExchange":{"endpoint":"http://127.0.0.1:9/token","username":"u"}}}
            ]}"#,
        );
        let passed = vec!["example.com/robot".to_string()];
        let f = findings(
            &c,
            &["*.example.com"],
            Some(attrs("quay", "ServiceAccount", &passed)),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].starts_with("W identity.rules[1] (tokenExchange): method.tokenExchange.endpoint")
                && f[0].contains("plain http"),
            "{f:?}"
        );
        let f = findings(
            &c,
            &["*.example.com"],
            Some(attrs("quay", "ServiceAccount", &[])),
        );
        assert!(
            f[0].contains("annotation \"example.com/robot\", which the kubelet does not pass"),
            "{f:?}"
        );
    }
}
