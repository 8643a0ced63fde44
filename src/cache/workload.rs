//! The workload a token-mode request speaks for (KEP-4412), as a cache key.
//!
//! With `tokenAttributes`, the kubelet sends the pod's service-account token and the
//! service account's chosen annotations, and the backends answer for that service account
//! (an assumed role, a federated identity), not for the node. Such an answer may only be
//! served again to the same service account, so the cache is keyed by it:
//!
//! * The identity comes from the token's payload, read **without verifying the signature**
//!   ([`keyring_api::jwt`]):
//!   the kubelet minted the token a moment ago for this very pod. What that trusts: on a
//!   cache hit nothing checks the token, so a caller with a forged token naming another
//!   service account would be served that account's cached credential. Only the kubelet
//!   calls us, and anyone else able to run us as the cache's owner can already read its
//!   0600 entries; the kubelet's own `ServiceAccount` cache trusts the same way. On a miss the
//!   backend exchanges the token, so a forged one gets nothing, and nothing is cached.
//! * The claims used: `iss`, `aud`, and the service account's namespace, name and UID from
//!   the `kubernetes.io` claim; for tokens without that claim, namespace and name from `sub`
//!   (`system:serviceaccount:<namespace>:<name>`). Never the pod, the expiry, the issue time
//!   or the token's ID: tokens rotate (about hourly, and per pod), and the same service
//!   account with a fresh token must find its entry. A service account deleted and
//!   re-created under the same name has a new UID and starts afresh, as the kubelet's own
//!   `ServiceAccount` cache key does.
//! * Plus every annotation the kubelet passed, sorted by key: they choose the cloud identity
//!   (role ARN, client ID, Google service account), so a changed annotation is a new key.
//! * All of it is hashed (SHA-256, length-prefixed fields) into [`Workload::digest`], which
//!   [`super::DiskCache::for_workload`] folds into every file and lock name. The token itself
//!   is never stored or hashed; the label `namespace/name` goes into the entry (mode 0600)
//!   for `cache list`, never into a file name.
//!
//! A token whose payload cannot be read this way (not a JWT, no such claims) gets no key:
//! the caller then bypasses the cache for that request rather than guess.

use std::collections::BTreeMap;

use keyring_api::jwt::{unverified_claims, ClaimsError};
use keyring_api::Secret;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The service account a request speaks for, as a cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `namespace/name`, for `cache list` and logs (not secret).
    pub label: String,
    /// SHA-256 of the identity claims and the annotations.
    pub digest: [u8; 32],
}

/// Why a token yields no workload key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoWorkload {
    /// Not three dot-separated segments.
    #[error("the service-account token is not a JWT")]
    NotJwt,
    /// The payload is not base64url JSON of the expected claims (or the token is too large).
    #[error("the service-account token's payload is not base64url-encoded JSON")]
    Payload,
    /// Neither a `kubernetes.io` claim nor a `system:serviceaccount:` subject.
    #[error("the service-account token names no service account (no kubernetes.io claim, no system:serviceaccount: subject)")]
    NoServiceAccount,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<KubernetesClaim>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct KubernetesClaim {
    namespace: Option<String>,
    serviceaccount: Option<ObjectRef>,
}

#[derive(Deserialize)]
struct ObjectRef {
    name: Option<String>,
    uid: Option<String>,
}

impl Workload {
    /// The workload of a token and the annotations sent with it.
    pub fn from_token(
        token: &Secret<String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Workload, NoWorkload> {
        let claims: Claims = unverified_claims(token.expose().trim()).map_err(|e| match e {
            ClaimsError::NotJwt => NoWorkload::NotJwt,
            ClaimsError::TooLarge | ClaimsError::Base64 | ClaimsError::Json => NoWorkload::Payload,
        })?;
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        let from_claim = claims.kubernetes.and_then(|k| {
            let sa = k.serviceaccount?;
            Some((non_empty(k.namespace)?, non_empty(sa.name)?, sa.uid))
        });
        let (namespace, name, uid) = match from_claim {
            Some(found) => found,
            None => {
                let sub = claims.sub.unwrap_or_default();
                let rest = sub
                    .strip_prefix("system:serviceaccount:")
                    .ok_or(NoWorkload::NoServiceAccount)?;
                match rest.split_once(':') {
                    Some((ns, name))
                        if !ns.is_empty() && !name.is_empty() && !name.contains(':') =>
                    {
                        (ns.to_string(), name.to_string(), None)
                    }
                    _ => return Err(NoWorkload::NoServiceAccount),
                }
            }
        };
        let mut audiences = match claims.aud {
            None => Vec::new(),
            Some(Audience::One(a)) => vec![a],
            Some(Audience::Many(a)) => a,
        };
        audiences.sort();
        audiences.dedup();

        let mut h = Sha256::new();
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        };
        field(b"kubelet-keyring workload v1");
        field(claims.iss.unwrap_or_default().as_bytes());
        field(&(audiences.len() as u64).to_be_bytes());
        for a in &audiences {
            field(a.as_bytes());
        }
        field(namespace.as_bytes());
        field(name.as_bytes());
        field(uid.unwrap_or_default().as_bytes());
        field(&(annotations.len() as u64).to_be_bytes());
        for (k, v) in annotations {
            field(k.as_bytes());
            field(v.as_bytes());
        }
        Ok(Workload {
            label: format!("{}/{}", printable(&namespace), printable(&name)),
            digest: h.finalize().into(),
        })
    }
}

/// Kubernetes names are DNS labels and subdomains; anything else in a token is shown as `?`
/// and cut, so a label can never carry control characters into a log line or a table.
fn printable(s: &str) -> String {
    s.chars()
        .take(253)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn jwt(claims: &str, signature: &str) -> Secret<String> {
        Secret::new(format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        ))
    }

    /// A token as the kubelet gets it from the TokenRequest API.
    fn bound(ns: &str, name: &str, uid: &str, pod: &str, iat: u64) -> Secret<String> {
        jwt(
            &format!(
                r#"{{"aud":["sts.amazonaws.com"],"exp":{},"iat":{iat},"iss":"https://oidc.example/id/1","jti":"{pod}-{iat}","kubernetes.io":{{"namespace":"{ns}","node":{{"name":"n1","uid":"u-n1"}},"pod":{{"name":"{pod}","uid":"u-{pod}"}},"serviceaccount":{{"name":"{name}","uid":"{uid}"}}}},"nbf":{iat},"sub":"system:serviceaccount:{ns}:{name}"}}"#,
                iat + 3600
            ),
            &format!("sig{iat}"),
        )
    }

    fn key(t: &Secret<String>, ann: &[(&str, &str)]) -> Workload {
        let ann = ann
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Workload::from_token(t, &ann).unwrap()
    }

    #[test]
    fn a_rotated_token_of_the_same_service_account_has_the_same_key() {
        let a = key(&bound("team", "puller", "uid-1", "web-1", 1000), &[]);
        // Another pod, later, another token ID and signature: same service account.
        let b = key(&bound("team", "puller", "uid-1", "web-2", 5000), &[]);
        assert_eq!(a, b);
        assert_eq!(a.label, "team/puller");
    }

    #[test]
    fn other_service_accounts_and_annotations_have_other_keys() {
        let base = key(&bound("team", "puller", "uid-1", "p", 1), &[("a/b", "1")]);
        for other in [
            key(&bound("team", "other", "uid-1", "p", 1), &[("a/b", "1")]),
            key(&bound("team2", "puller", "uid-1", "p", 1), &[("a/b", "1")]),
            // Deleted and re-created: a new UID.
            key(&bound("team", "puller", "uid-2", "p", 1), &[("a/b", "1")]),
            key(&bound("team", "puller", "uid-1", "p", 1), &[("a/b", "2")]),
            key(&bound("team", "puller", "uid-1", "p", 1), &[]),
            key(
                &bound("team", "puller", "uid-1", "p", 1),
                &[("a/b", "1"), ("c", "")],
            ),
        ] {
            assert_ne!(base.digest, other.digest);
        }
        // Length prefixes: moving a character between fields changes the key.
        assert_ne!(
            key(&bound("ab", "c", "u", "p", 1), &[]).digest,
            key(&bound("a", "bc", "u", "p", 1), &[]).digest
        );
        // Other issuer or audience (another cluster, another provider config).
        let t = |iss: &str, aud: &str| {
            jwt(
                &format!(
                    r#"{{"iss":"{iss}","aud":{aud},"sub":"system:serviceaccount:team:puller"}}"#
                ),
                "s",
            )
        };
        let k = key(&t("https://a", r#""x""#), &[]);
        assert_eq!(k, key(&t("https://a", r#"["x"]"#), &[]));
        assert_ne!(k.digest, key(&t("https://b", r#""x""#), &[]).digest);
        assert_ne!(k.digest, key(&t("https://a", r#""y""#), &[]).digest);
    }

    #[test]
    fn sub_alone_names_the_service_account() {
        let t = jwt(r#"{"sub":"system:serviceaccount:team:puller"}"#, "s1");
        let k = key(&t, &[]);
        assert_eq!(k.label, "team/puller");
        let t2 = jwt(
            r#"{"sub":"system:serviceaccount:team:puller","exp":99}"#,
            "s2",
        );
        assert_eq!(k, key(&t2, &[]));
    }

    #[test]
    fn unreadable_tokens_have_no_key() {
        let none = BTreeMap::new();
        let cases = [
            (
                Secret::new("sa-token-canary".to_string()),
                NoWorkload::NotJwt,
            ),
            (Secret::new("a.b.c.d".to_string()), NoWorkload::NotJwt),
            (Secret::new("a..c".to_string()), NoWorkload::Payload),
            (Secret::new("a.!!!.c".to_string()), NoWorkload::Payload),
            (jwt("not json", "s"), NoWorkload::Payload),
            (
                jwt(r#"{"sub":"user:alice"}"#, "s"),
                NoWorkload::NoServiceAccount,
            ),
            (
                jwt(r#"{"sub":"system:serviceaccount:team"}"#, "s"),
                NoWorkload::NoServiceAccount,
            ),
            (
                jwt(r#"{"sub":"system:serviceaccount::x"}"#, "s"),
                NoWorkload::NoServiceAccount,
            ),
            (
                jwt(r#"{"sub":"system:serviceaccount:a:b:c"}"#, "s"),
                NoWorkload::NoServiceAccount,
            ),
            (
                jwt(r#"{"kubernetes.io":{"namespace":"a"}}"#, "s"),
                NoWorkload::NoServiceAccount,
            ),
            (jwt("{}", "s"), NoWorkload::NoServiceAccount),
        ];
        for (t, want) in cases {
            assert_eq!(Workload::from_token(&t, &none), Err(want), "{t:?}");
        }
    }

    #[test]
    fn control_characters_in_a_label_are_shown_as_question_marks() {
        let t = jwt(r#"{"sub":"system:serviceaccount:te\nam:p\u001bx"}"#, "s");
        assert_eq!(key(&t, &[]).label, "te?am/p?x");
    }
}
