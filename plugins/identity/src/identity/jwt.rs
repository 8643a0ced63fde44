//! Reading a JWT's claims **without verifying it**: the audience of the pod's token before
//! it is sent anywhere, its namespace for the Secret path, and the `exp` of a token for its
//! lifetime. Nothing here trusts a token: the party it goes to verifies it.

use base64::Engine as _;
use keyring_api::Secret;
use serde::Deserialize;

/// Largest payload decoded; service-account tokens are about 1 KiB.
const MAX_PAYLOAD: usize = 64 << 10;

/// The claims this backend reads.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    /// `aud`: one string or a list.
    #[serde(default)]
    pub aud: Option<Audience>,
    /// `exp`, Unix seconds.
    #[serde(default)]
    pub exp: Option<i64>,
    /// `sub`.
    #[serde(default)]
    pub sub: Option<String>,
    /// Kubernetes' own claim.
    #[serde(default, rename = "kubernetes.io")]
    pub kubernetes: Option<KubernetesClaim>,
}

/// `aud`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// The `kubernetes.io` claim of a service-account token.
#[derive(Debug, Default, Deserialize)]
pub struct KubernetesClaim {
    /// The namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The service account.
    #[serde(default)]
    pub serviceaccount: Option<Named>,
}

/// `{name}`.
#[derive(Debug, Default, Deserialize)]
pub struct Named {
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Why a token's claims cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotJwt {
    /// Not `header.payload.signature`.
    #[error("it is not a JWT (header.payload.signature)")]
    Shape,
    /// The payload is not base64url JSON.
    #[error("its payload is not base64url-encoded JSON")]
    Payload,
}

impl Claims {
    /// The claims of `token`.
    pub fn read(token: &str) -> Result<Claims, NotJwt> {
        let mut parts = token.trim().split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(NotJwt::Shape);
        };
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return Err(NotJwt::Payload);
        }
        // Wiped on drop: the payload is part of a credential.
        let bytes = Secret::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .map_err(|_| NotJwt::Payload)?,
        );
        serde_json::from_slice(bytes.expose()).map_err(|_| NotJwt::Payload)
    }

    /// Whether `aud` names `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        match &self.aud {
            Some(Audience::One(a)) => a == audience,
            Some(Audience::Many(list)) => list.iter().any(|a| a == audience),
            None => false,
        }
    }

    /// The audiences, for a message (they are not secret).
    pub fn audiences(&self) -> Vec<&str> {
        match &self.aud {
            Some(Audience::One(a)) => vec![a.as_str()],
            Some(Audience::Many(list)) => list.iter().map(String::as_str).collect(),
            None => Vec::new(),
        }
    }

    /// The service account's namespace and name: the `kubernetes.io` claim, else the
    /// `system:serviceaccount:<namespace>:<name>` subject.
    pub fn service_account(&self) -> Option<(String, String)> {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        if let Some(k) = &self.kubernetes {
            let name = k.serviceaccount.as_ref().and_then(|s| non_empty(&s.name));
            if let (Some(ns), Some(name)) = (non_empty(&k.namespace), name) {
                return Some((ns, name));
            }
        }
        let rest = self
            .sub
            .as_deref()?
            .strip_prefix("system:serviceaccount:")?;
        let (ns, name) = rest.split_once(':')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains(':'))
            .then(|| (ns.to_string(), name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", e(r#"{"alg":"RS256"}"#), e(claims))
    }

    #[test]
    fn claims_of_a_service_account_token() {
        let c = Claims::read(&jwt(
            r#"{"aud":["a","harbor.example.com"],"exp":1700003600,"sub":"system:serviceaccount:team:puller","kubernetes.io":{"namespace":"team","serviceaccount":{"name":"puller","uid":"u"}}}"#,
        ))
        .unwrap();
        assert!(c.has_audience("harbor.example.com") && !c.has_audience("harbor"));
        assert_eq!(c.exp, Some(1_700_003_600));
        assert_eq!(c.service_account(), Some(("team".into(), "puller".into())));
        let c = Claims::read(&jwt(r#"{"aud":"x","sub":"system:serviceaccount:ns:sa"}"#)).unwrap();
        assert!(c.has_audience("x"));
        assert_eq!(c.service_account(), Some(("ns".into(), "sa".into())));
        let c = Claims::read(&jwt(r#"{"sub":"system:serviceaccount:ns:sa:extra"}"#)).unwrap();
        assert_eq!(c.service_account(), None);
    }

    #[test]
    fn what_is_not_a_jwt_is_named_without_its_content() {
        assert_eq!(Claims::read("opaque-token").unwrap_err(), NotJwt::Shape);
        assert_eq!(Claims::read("a.%%%.c").unwrap_err(), NotJwt::Payload);
        assert_eq!(Claims::read(&jwt("[1]")).unwrap_err(), NotJwt::Payload);
    }
}
