//! The call that turns the identity into the registry credential, one module per kind of
//! exchange, each following its vendor's documented request and answer:
//!
//! | method | module | request | credential |
//! |---|---|---|---|
//! | `passThrough` | here | none | the identity token itself |
//! | `tokenExchange` | [`oauth`] | RFC 8693 form POST to the endpoint | `access_token` |
//! | `quay` | [`vendors`] | `GET /oauth2/federation/robot/token`, Basic `robot:token` | `token`, user the robot |
//! | `artifactoryOidc` | [`vendors`] | `POST /access/api/v1/oidc/token` (JSON) | `access_token`, user `username` |
//! | `artifactoryAws` | [`vendors`] | `POST /access/api/v1/aws/token` with the signed STS headers | `access_token`, user `username` |
//! | `cloudsmith` | [`vendors`] | `POST /openid/<org>/` `{oidc_token, service_slug}` | `token` |
//! | `vault` | [`vault`] | `POST /v1/auth/<mount>/login` (a token, or for `aws` the signed STS request), then `GET /v1/<kv>/data/<path>` | the secret's two fields |
//! | `kubernetesSecret` | [`kube`] | `GET /api/v1/namespaces/<ns>/secrets/<name>` with the pod's token | the matching `auths` entry |
//!
//! The identity's token goes only to the matched rule's endpoint (and nowhere for
//! `passThrough`); each exchange is one HTTPS request (Vault: two), no discovery round trip.

pub mod kube;
pub mod oauth;
pub mod vault;
pub mod vendors;

use std::time::SystemTime;

use keyring_api::backend::Query;
use keyring_api::{lifetime, Secret};
use keyring_net::Route;
use serde::de::DeserializeOwned;

use crate::config::Method;
use crate::error::{oauth_code, Error, Stage};
use crate::http::{Body, Call, Http, Reply};
use crate::identity::{jwt, Proof};

/// How long an issued credential is good for, as far as we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Until this time (`expires_in`, `exp`).
    Until(SystemTime),
    /// A short-lived token whose issuer did not say.
    Unknown,
    /// A stored secret (Vault KV, a Kubernetes Secret): good until someone changes it.
    Stored,
    /// The pod's own token: never cached by anyone.
    PodToken,
}

/// A registry credential.
pub struct Issued {
    /// The registry user name.
    pub username: String,
    /// The password or token.
    pub password: Secret<String>,
    /// How long it is good for.
    pub validity: Validity,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("username", &self.username)
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

/// Exchanges `proof` by `method` for `query`'s image.
pub fn exchange(
    method: &Method,
    proof: &Proof,
    query: &Query,
    http: &mut Http,
) -> Result<Issued, Error> {
    let now = query.clock.now();
    match method {
        Method::PassThrough(p) => {
            let Proof::Token {
                token,
                expires_at,
                pod,
            } = proof
            else {
                return Err(wrong_proof("passThrough"));
            };
            Ok(Issued {
                username: p.username.clone(),
                password: token.clone(),
                validity: match (pod, expires_at) {
                    (Some(_), _) => Validity::PodToken,
                    (None, Some(t)) => Validity::Until(*t),
                    (None, None) => Validity::Stored,
                },
            })
        }
        Method::TokenExchange(t) => {
            oauth::exchange(t, token_of(proof, "tokenExchange")?, http, now)
        }
        Method::Quay(q) => vendors::quay(q, token_of(proof, "quay")?, http, now),
        Method::ArtifactoryOidc(a) => {
            vendors::artifactory_oidc(a, token_of(proof, "artifactoryOidc")?, http, now)
        }
        Method::ArtifactoryAws(a) => match proof {
            Proof::Aws(signed) => vendors::artifactory_aws(a, signed, http, now),
            Proof::Token { .. } => Err(wrong_proof("artifactoryAws")),
        },
        Method::Cloudsmith(c) => vendors::cloudsmith(c, token_of(proof, "cloudsmith")?, http, now),
        Method::Vault(v) => vault::read(v, proof, http),
        Method::KubernetesSecret(k) => match proof {
            Proof::Token {
                token,
                pod: Some(pod),
                ..
            } => kube::read(k, token, pod, query, http),
            _ => Err(wrong_proof("kubernetesSecret")),
        },
    }
}

fn token_of<'a>(proof: &'a Proof, method: &str) -> Result<&'a Secret<String>, Error> {
    match proof {
        Proof::Token { token, .. } => Ok(token),
        Proof::Aws(_) => Err(wrong_proof(method)),
    }
}

/// Config checks keep this from happening; a message rather than a panic all the same.
fn wrong_proof(method: &str) -> Error {
    keyring_api::InvalidSetting::new(
        format!("method {method}"),
        "cannot use this rule's identity",
    )
    .into()
}

/// The answer of a JSON endpoint: `T` from a 200 (or 201), else a refusal naming `hint`.
pub fn json_reply<T: DeserializeOwned>(
    reply: &Reply,
    stage: Stage,
    url: &str,
    hint: &str,
) -> Result<T, Error> {
    if !matches!(reply.status, 200 | 201) {
        return Err(Error::Refused {
            stage,
            url: crate::http::shown(url),
            status: reply.status,
            code: oauth_code(reply.body.expose()),
            hint: hint.to_string(),
        });
    }
    serde_json::from_slice(reply.body.expose()).map_err(|e| Error::Response {
        stage,
        url: crate::http::shown(url),
        // Only the error's category and position: serde's own text quotes the offending
        // value ("invalid type: string \"...\""), which may be a credential.
        problem: format!(
            "the answer is not the documented JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ),
    })
}

/// The exchange's one request to the rule's endpoint (proxied, as every endpoint that
/// receives a token), its answer read by [`json_reply`].
pub fn exchange_json<T: DeserializeOwned>(
    http: &Http,
    url: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
    hint: &str,
) -> Result<T, Error> {
    let reply = http.send(&Call {
        stage: Stage::Exchange,
        url,
        headers,
        body,
        route: Route::Proxied,
        hint,
    })?;
    json_reply(&reply, Stage::Exchange, url, hint)
}

/// A lenient `expires_in`: a number, or a string holding one (some servers send strings);
/// anything else states no expiry.
pub fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::Deserialize as _;
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    })
}

/// How long an issued token lives: `expires_in` when sent, else its own `exp` when it is a
/// JWT, else unknown.
pub fn validity(token: &Secret<String>, expires_in: Option<f64>, now: SystemTime) -> Validity {
    if let Some(t) = expires_in.and_then(|s| lifetime::expiry_in_secs_f64(now, s)) {
        return Validity::Until(t);
    }
    match jwt::Claims::read(token.expose()).ok().and_then(|c| c.exp) {
        Some(exp) => Validity::Until(lifetime::expiry_at_unix(now, exp)),
        None => Validity::Unknown,
    }
}

/// `value` as a JSON request body, in wiped memory (it holds a token).
pub fn json_body<T: serde::Serialize>(value: &T) -> Secret<String> {
    Secret::new(serde_json::to_string(value).unwrap_or_default())
}

/// A non-empty token from an answer.
pub fn non_empty(
    token: Option<Secret<String>>,
    stage: Stage,
    url: &str,
    field: &str,
) -> Result<Secret<String>, Error> {
    token
        .filter(|t| !t.expose().trim().is_empty())
        .ok_or_else(|| Error::Response {
            stage,
            url: crate::http::shown(url),
            problem: format!("the answer has no {field}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_holds_no_credential() {
        let issued = Issued {
            username: "robot".into(),
            password: Secret::new("registry-password".into()),
            validity: Validity::Stored,
        };
        let proof = Proof::Token {
            token: Secret::new("pod-token".into()),
            expires_at: None,
            pod: None,
        };
        let shown = format!("{issued:?} {proof:?}");
        assert!(
            !shown.contains("registry-password") && !shown.contains("pod-token"),
            "{shown}"
        );
        assert!(shown.contains("robot"));
    }
}
