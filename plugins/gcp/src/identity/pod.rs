//! KEP-4412 on Google Cloud, the decision: whether a request that carries the pod's
//! service-account token pulls as that service account or as the node. No I/O; the exchange
//! itself is the `token` module's.
//!
//! [`decide`]: a request without a token uses the node's identity. A request with one uses
//! the exchange when the service account opted in, i.e. carries the annotation
//! [`OPT_IN_ANNOTATION`]`: "true"` (upstream's rule; the kubelet must pass that key, see
//! `optionalServiceAccountAnnotationKeys`), or when `gcp.workloadIdentity.optIn` is `all`.
//! Otherwise the node's identity answers, or, with `gcp.nodeIdentityFallback: false`, the
//! request fails. An opted-in request never falls back to the node once the exchange is
//! configured: if it cannot be made (refused, unreachable) the request fails with one line.
//!
//! Opted in but `gcp.workloadIdentity` not configured: under the own name an error (the
//! service account asked for its own identity; the node's would be a silent change of
//! identity); under auth-provider-gcp's names the node's identity, as upstream does when the
//! kubelet passes no `--identity-provider` (a service account annotated for a later kubelet
//! must keep pulling through the swap).
//!
//! A Google service account named by [`GSA_ANNOTATION`] is impersonated after the exchange
//! when `gcp.workloadIdentity.impersonate` allows it (by default under the own name: the
//! impersonation succeeds only if that Google service account lets the pod's principal act
//! as it; never under upstream's names unless the plugin config says `impersonate: true`,
//! since upstream never reads the annotation); its name must be an e-mail address whose
//! characters are safe in a URL path.

use keyring_api::backend::Query;
use keyring_api::Secret;

use crate::config::{Config, OptIn, WorkloadIdentity};
use crate::error::Error;

/// The annotation a service account opts in to workload identity image pulls with.
pub const OPT_IN_ANNOTATION: &str = "iam.gke.io/enable-wi-image-pull";
/// The annotation naming the Google service account to impersonate.
pub const GSA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// What a query gets.
pub(crate) enum Decision<'a> {
    /// The node's identity (key file, ADC or metadata server).
    Node,
    /// The pod's token exchanged at STS, then optionally a Google service account.
    Exchange {
        wi: &'a WorkloadIdentity,
        token: &'a Secret<String>,
        impersonate: Option<String>,
    },
}

/// Decides, from the config and the request alone (no I/O), how this query is answered.
pub(crate) fn decide<'a>(config: &'a Config, query: &'a Query) -> Result<Decision<'a>, Error> {
    let Some(token) = &query.service_account_token else {
        return Ok(Decision::Node);
    };
    let annotations = &query.service_account_annotations;
    let annotated = annotations
        .get(OPT_IN_ANNOTATION)
        .is_some_and(|v| v == "true");
    let wi = config.workload_identity.as_ref();
    let opted_in = annotated || wi.is_some_and(|w| w.opt_in == OptIn::All);
    if !opted_in {
        if config.node_identity_fallback {
            tracing::debug!(
                "service-account token without {OPT_IN_ANNOTATION}: \"true\"; using the node's identity"
            );
            return Ok(Decision::Node);
        }
        return Err(Error::NotOptedIn {
            annotation: OPT_IN_ANNOTATION,
        });
    }
    let Some(wi) = wi else {
        if config.upstream.is_some() {
            tracing::debug!(
                "{OPT_IN_ANNOTATION}: \"true\" but no --identity-provider; using the node's identity, as upstream"
            );
            return Ok(Decision::Node);
        }
        return Err(Error::WorkloadIdentityNotConfigured {
            annotation: OPT_IN_ANNOTATION,
        });
    };
    let named = annotations.get(GSA_ANNOTATION).map(|v| v.trim());
    let impersonate = match named {
        Some(v) if !v.is_empty() && !wi.impersonates() => {
            tracing::debug!(
                "{GSA_ANNOTATION} is not used: gcp.workloadIdentity.impersonate is off"
            );
            None
        }
        None | Some("") => None,
        Some(email) if is_service_account_email(email) => Some(email.to_string()),
        Some(other) => {
            return Err(Error::ServiceAccountEmail {
                annotation: GSA_ANNOTATION,
                value: other.chars().take(120).collect(),
            })
        }
    };
    Ok(Decision::Exchange {
        wi,
        token,
        impersonate,
    })
}

/// `name@domain`, of characters that are safe in a URL path segment.
fn is_service_account_email(s: &str) -> bool {
    let Some((name, domain)) = s.split_once('@') else {
        return false;
    };
    let ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    };
    ok(name) && ok(domain) && domain.contains('.') && s.len() <= 254
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::ImageName;

    fn query(token: Option<&str>, annotations: &[(&str, &str)]) -> Query {
        let mut q = Query::new(ImageName::parse("us-docker.pkg.dev/p/r/i").unwrap());
        q.service_account_token = token.map(|t| Secret::new(t.to_string()));
        q.service_account_annotations = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        q
    }

    fn config(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    const WI: &str = r#"{"workloadIdentity": {"projectId": "my-project", "identityProvider": "https://container.googleapis.com/v1/projects/my-project/locations/l/clusters/c"}}"#;

    #[test]
    fn only_opted_in_service_accounts_exchange_their_token() {
        let on = [(OPT_IN_ANNOTATION, "true")];
        let wi = config(WI);
        let none = config("{}");
        let is_node = |r: Result<Decision, Error>| matches!(r, Ok(Decision::Node));
        // No token: the node, always.
        assert!(is_node(decide(&wi, &query(None, &on))));
        // A token without opt-in: the node, unless the fallback is off.
        assert!(is_node(decide(&wi, &query(Some("t"), &[]))));
        assert!(is_node(decide(
            &wi,
            &query(Some("t"), &[(OPT_IN_ANNOTATION, "True ")])
        )));
        assert!(is_node(decide(&none, &query(Some("t"), &[]))));
        let strict = config(r#"{"nodeIdentityFallback": false}"#);
        let e = decide(&strict, &query(Some("secret-t"), &[]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(OPT_IN_ANNOTATION) && e.contains("nodeIdentityFallback"),
            "{e}"
        );
        assert!(!e.contains("secret-t"));
        // Opted in.
        match decide(&wi, &query(Some("t"), &on)).ok().unwrap() {
            Decision::Exchange {
                token, impersonate, ..
            } => {
                assert_eq!(token.expose(), "t");
                assert_eq!(impersonate, None);
            }
            Decision::Node => panic!("not exchanged"),
        }
        // Opted in without the section: an error, not the node.
        let e = decide(&none, &query(Some("t"), &on))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("gcp.workloadIdentity is not configured"), "{e}");
        // ... but the node under upstream's names, which had no --identity-provider.
        let upstream = Config {
            upstream: Some(crate::config::AuthFlow::Gcr),
            ..config("{}")
        };
        assert!(is_node(decide(&upstream, &query(Some("t"), &on))));
        // optIn: all.
        let all = config(r#"{"workloadIdentity": {"audience": "a", "optIn": "all"}}"#);
        assert!(matches!(
            decide(&all, &query(Some("t"), &[])),
            Ok(Decision::Exchange { .. })
        ));
        // Impersonation.
        let gsa = [
            (OPT_IN_ANNOTATION, "true"),
            (GSA_ANNOTATION, "puller@p.iam.gserviceaccount.com"),
        ];
        match decide(&wi, &query(Some("t"), &gsa)).ok().unwrap() {
            Decision::Exchange { impersonate, .. } => {
                assert_eq!(
                    impersonate.as_deref(),
                    Some("puller@p.iam.gserviceaccount.com")
                )
            }
            Decision::Node => panic!("not exchanged"),
        }
        // Impersonation off: the annotation is not read at all.
        let off = config(&WI.replace("\"projectId\"", "\"impersonate\": false, \"projectId\""));
        for name in ["puller@p.iam.gserviceaccount.com", "not an e-mail"] {
            match decide(
                &off,
                &query(
                    Some("t"),
                    &[(OPT_IN_ANNOTATION, "true"), (GSA_ANNOTATION, name)],
                ),
            )
            .ok()
            .unwrap()
            {
                Decision::Exchange { impersonate, .. } => assert_eq!(impersonate, None),
                Decision::Node => panic!("not exchanged"),
            }
        }
        for bad in [
            "puller",
            "a/b@p.iam.gserviceaccount.com",
            "x@y",
            "a@b.c?x",
            "@p.com",
        ] {
            let e = decide(
                &wi,
                &query(
                    Some("t"),
                    &[(OPT_IN_ANNOTATION, "true"), (GSA_ANNOTATION, bad)],
                ),
            )
            .err()
            .unwrap()
            .to_string();
            assert!(
                e.contains("is not a Google service account e-mail"),
                "{bad}: {e}"
            );
        }
    }
}
