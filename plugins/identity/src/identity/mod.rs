//! Whom we authenticate as: the pod's service-account token (KEP-4412) or the node's own
//! identity, per rule.
//!
//! * [`choose`] decides from the rule and the request alone (no I/O): `pod` needs the
//!   request's token; `node` never uses one; `podWhenAnnotated` uses the pod's token when the
//!   service account carries the rule's annotation (any value but `false`), the node's
//!   identity otherwise. A pod without a token (static pods, `requireServiceAccount: false`)
//!   gets the node's identity under `podWhenAnnotated`, an error under `pod`.
//! * [`obtain`] produces the [`Proof`]. The pod's token is checked first, before it goes
//!   anywhere: its `aud` must name the rule's `pod.audience` (a token minted for another
//!   audience is refused, never forwarded: whoever receives it could replay it there), it must
//!   not have expired, and it must name its service account (namespace and name). The node's
//!   identity comes from [`node`] (a token file, GCE metadata, Azure IMDS) or [`aws`] (a
//!   SigV4-signed STS `GetCallerIdentity` request).

pub mod aws;
pub mod jwt;
pub mod node;

use std::time::SystemTime;

use keyring_api::backend::Query;
use keyring_api::{lifetime, InvalidSetting, Secret};

use crate::config::{IdentityChoice, Method, NodeSource, Rule};
use crate::error::Error;
use crate::http::Http;

/// The identity a rule uses for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    /// The pod's service-account token.
    Pod,
    /// The node's identity.
    Node,
}

/// The pod a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account's name.
    pub service_account: String,
}

/// What proves the identity to the exchange.
#[derive(Debug)]
pub enum Proof {
    /// A bearer token (a JWT for every source but some static token files).
    Token {
        /// The token.
        token: Secret<String>,
        /// Its `exp` (or the issuer's `expires_in`), when known.
        expires_at: Option<SystemTime>,
        /// Set when it is the pod's own token.
        pod: Option<Pod>,
    },
    /// A signed STS `GetCallerIdentity` request.
    Aws(aws::Signed),
}

impl Proof {
    /// One line on whom it proves; never a secret.
    pub fn describe(&self) -> String {
        match self {
            Proof::Token { pod: Some(p), .. } => {
                format!("service account {}/{}", p.namespace, p.service_account)
            }
            Proof::Token { pod: None, .. } => "the node's token".into(),
            Proof::Aws(s) => format!("the node's AWS identity ({})", s.access_key_hint),
        }
    }
}

/// Which identity `rule` uses for `query` (see the module docs); `at` names the rule.
pub fn choose(rule: &Rule, query: &Query, at: &str) -> Result<Whom, Error> {
    let token = query.service_account_token.is_some();
    match rule.identity {
        IdentityChoice::Node => Ok(Whom::Node),
        IdentityChoice::Pod if token => Ok(Whom::Pod),
        IdentityChoice::Pod => Err(InvalidSetting::new(
            format!("{at}.identity"),
            format!(
                "pod needs the pod's service-account token, and the request has none: give the kubelet's provider entry apiVersion credentialprovider.kubelet.k8s.io/v1 and tokenAttributes with serviceAccountTokenAudience {:?}",
                rule.pod.as_ref().map(|p| p.audience.as_str()).unwrap_or_default()
            ),
        )
        .into()),
        IdentityChoice::PodWhenAnnotated => {
            let annotation = rule.pod.as_ref().and_then(|p| p.annotation.as_deref());
            let asked = annotation
                .and_then(|a| query.service_account_annotations.get(a))
                .is_some_and(|v| !v.trim().eq_ignore_ascii_case("false"));
            Ok(if token && asked { Whom::Pod } else { Whom::Node })
        }
    }
}

/// The proof of `whom` for `rule`, at the query's time.
pub fn obtain(
    rule: &Rule,
    whom: Whom,
    query: &Query,
    http: &Http,
    at: &str,
) -> Result<Proof, Error> {
    let now = query.clock.now();
    match whom {
        Whom::Pod => {
            let audience = rule
                .pod
                .as_ref()
                .map(|p| p.audience.as_str())
                .unwrap_or_default();
            let token = query.service_account_token.as_ref().ok_or_else(|| {
                InvalidSetting::new(
                    format!("{at}.identity"),
                    "no service-account token in the request",
                )
            })?;
            pod_token(token, audience, now, at)
        }
        Whom::Node => match rule.node.as_ref() {
            Some(NodeSource::TokenFile(path)) => node::token_file(path, now),
            Some(NodeSource::Gcp(g)) => node::gcp(g, http, now),
            Some(NodeSource::Azure(a)) => node::azure(a, http, now),
            Some(NodeSource::Aws(a)) => {
                // The form the receiver replays: Vault's aws method takes only POST.
                let form = match &rule.method {
                    Method::Vault(v) => aws::Form::Post {
                        server_id: v.iam_server_id.as_deref(),
                    },
                    _ => aws::Form::Get,
                };
                aws::sign(a, form, query.deadline, now).map(Proof::Aws)
            }
            None => Err(InvalidSetting::new(format!("{at}.node"), "no node source").into()),
        },
    }
}

/// The pod's token, checked: audience, expiry, service account.
pub fn pod_token(
    token: &Secret<String>,
    audience: &str,
    now: SystemTime,
    at: &str,
) -> Result<Proof, Error> {
    let refuse = |problem: String| -> Error {
        InvalidSetting::new(
            "the pod's service-account token",
            format!("{problem}; refused, not sent ({at})"),
        )
        .into()
    };
    let claims = jwt::Claims::read(token.expose()).map_err(|e| refuse(e.to_string()))?;
    if !claims.has_audience(audience) {
        return Err(refuse(format!(
            "its audience is {:?}, the rule's pod.audience is {audience:?}: set the kubelet's tokenAttributes.serviceAccountTokenAudience to {audience:?}",
            claims.audiences()
        )));
    }
    let expires_at = claims.exp.map(|exp| lifetime::expiry_at_unix(now, exp));
    if expires_at.is_some_and(|t| t <= now) {
        return Err(refuse("it has expired (check the node's clock)".into()));
    }
    let Some((namespace, service_account)) = claims.service_account() else {
        return Err(refuse("it names no service account (no kubernetes.io claim, no system:serviceaccount: subject)".into()));
    };
    // Unverified claims go into URL paths (a namespace Secret) and cache labels: only what
    // Kubernetes itself allows (a DNS-1123 label, a DNS-1123 subdomain) gets that far.
    if !dns1123(&namespace, 63, false) || !dns1123(&service_account, 253, true) {
        return Err(refuse(
            "its namespace or service account is not a valid Kubernetes name".into(),
        ));
    }
    Ok(Proof::Token {
        token: token.clone(),
        expires_at,
        pod: Some(Pod {
            namespace,
            service_account,
        }),
    })
}

/// A DNS-1123 label (or, with `dots`, subdomain) of at most `max` bytes.
fn dns1123(s: &str, max: usize, dots: bool) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= max
        && if dots {
            s.split('.').all(label)
        } else {
            label(s)
        }
}

#[cfg(test)]
mod tests {
    use super::dns1123;

    #[test]
    fn only_kubernetes_names_pass() {
        assert!(dns1123("team-a", 63, false) && dns1123("sa.v1", 253, true));
        for bad in ["", "Team", "../x", "a/b", "a?b", "-a", "a-", "a.b"] {
            assert!(!dns1123(bad, 63, false), "{bad}");
        }
        assert!(!dns1123(&"a".repeat(64), 63, false));
    }
}
