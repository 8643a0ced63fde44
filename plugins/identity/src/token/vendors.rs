//! Registry vendors' own exchanges, each one HTTPS request as its documentation gives it.
//!
//! * **Quay** robot federation ("keyless authentication for robot accounts"): `GET
//!   <quay>/oauth2/federation/robot/token` with HTTP Basic `<org+robot>:<token>`; answer
//!   `{"token": "..."}`, the robot's short-lived token, used with the robot's name as the
//!   registry user (Red Hat Quay API reference, "Auth Federated Robot Token").
//! * **Artifactory OIDC**: `POST <jfrog>/access/api/v1/oidc/token`, JSON
//!   `{grant_type: urn:ietf:params:oauth:grant-type:token-exchange, subject_token_type:
//!   urn:ietf:params:oauth:token-type:id_token, subject_token, provider_name[, project_key]}`;
//!   answer `{access_token, token_type, expires_in, issued_token_type, username}` (JFrog
//!   Platform REST API, "Exchange OIDC token"; the same body jfrog-credentials-provider sends).
//! * **Artifactory AWS IAM**: `POST <jfrog>/access/api/v1/aws/token` carrying the signed STS
//!   `GetCallerIdentity` request's headers (`Authorization`, `X-Amz-Date`,
//!   `X-Amz-Security-Token`), JSON body `{}` or `{"expires_in": N}`; answer `{token_id,
//!   access_token, scope, token_type, expires_in, username}`.
//! * **Cloudsmith OIDC**: `POST <api>/openid/<org>/`, JSON `{oidc_token, service_slug}`;
//!   answer `{"token": "..."}` (Cloudsmith API, "Openid Create"); user name `token` by default.

use std::time::SystemTime;

use base64::Engine as _;
use keyring_api::Secret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{exchange_json, json_body, non_empty, validity, Issued};
use crate::config::{ArtifactoryAws, ArtifactoryOidc, Cloudsmith, Quay, CLOUDSMITH_API};
use crate::error::{Error, Stage};
use crate::http::{Body, Http};
use crate::identity::aws::Signed;

/// Quay's federation endpoint.
pub const QUAY_PATH: &str = "/oauth2/federation/robot/token";
/// Artifactory's OIDC exchange.
pub const ARTIFACTORY_OIDC_PATH: &str = "/access/api/v1/oidc/token";
/// Artifactory's AWS IAM exchange.
pub const ARTIFACTORY_AWS_PATH: &str = "/access/api/v1/aws/token";
/// `subject_token_type` Artifactory takes.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

#[derive(Serialize)]
struct OidcRequest<'a> {
    grant_type: &'a str,
    subject_token_type: &'a str,
    subject_token: &'a str,
    provider_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_key: Option<&'a str>,
}

#[derive(Serialize)]
struct CloudsmithRequest<'a> {
    oidc_token: &'a str,
    service_slug: &'a str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: Option<Secret<String>>,
}

#[derive(Deserialize)]
struct AccessAnswer {
    access_token: Option<Secret<String>>,
    #[serde(default, deserialize_with = "super::seconds")]
    expires_in: Option<f64>,
    #[serde(default)]
    username: Option<String>,
}

/// Quay robot federation.
pub fn quay(
    q: &Quay,
    token: &Secret<String>,
    http: &Http,
    now: SystemTime,
) -> Result<Issued, Error> {
    let url = join(&q.url, QUAY_PATH);
    let basic = Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", q.robot, token.expose()))
    ));
    let hint = "check the robot's federation (issuer and subject system:serviceaccount:<namespace>:<name>) and the robot name";
    let answer: TokenAnswer = exchange_json(
        http,
        &url,
        &[("Authorization", basic.expose())],
        Body::Get,
        hint,
    )?;
    let token = non_empty(answer.token, Stage::Exchange, &url, "token")?;
    Ok(Issued {
        username: q.robot.clone(),
        validity: validity(&token, None, now),
        password: token,
    })
}

/// The access token and user name of an Artifactory answer from `url`.
fn artifactory_answer(answer: AccessAnswer, url: &str, now: SystemTime) -> Result<Issued, Error> {
    let token = non_empty(answer.access_token, Stage::Exchange, url, "access_token")?;
    let username = answer
        .username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::Response {
            stage: Stage::Exchange,
            url: crate::http::shown(url),
            problem: "the answer has no username".into(),
        })?;
    Ok(Issued {
        username,
        validity: validity(&token, answer.expires_in, now),
        password: token,
    })
}

/// Artifactory OIDC token exchange.
pub fn artifactory_oidc(
    a: &ArtifactoryOidc,
    token: &Secret<String>,
    http: &Http,
    now: SystemTime,
) -> Result<Issued, Error> {
    let url = join(&a.url, ARTIFACTORY_OIDC_PATH);
    let body = json_body(&OidcRequest {
        grant_type: super::oauth::GRANT_TYPE,
        subject_token_type: ID_TOKEN_TYPE,
        subject_token: token.expose(),
        provider_name: &a.provider_name,
        project_key: a.project_key.as_deref(),
    });
    let hint =
        "check the OIDC integration (provider name, issuer, audience) and its identity mappings";
    let answer = exchange_json(http, &url, &[], Body::Json(body.expose()), hint)?;
    artifactory_answer(answer, &url, now)
}

/// Artifactory AWS IAM.
pub fn artifactory_aws(
    a: &ArtifactoryAws,
    signed: &Signed,
    http: &Http,
    now: SystemTime,
) -> Result<Issued, Error> {
    let url = join(&a.url, ARTIFACTORY_AWS_PATH);
    let body = match a.expires_in {
        Some(s) => json!({ "expires_in": s }),
        None => json!({}),
    }
    .to_string();
    // The signed request's headers, except Host (ours is the platform's).
    let headers: Vec<(&str, &str)> = signed
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
        .map(|(k, v)| (k.as_str(), v.expose().as_str()))
        .collect();
    let hint =
        "check that the node's IAM role is assigned to an Artifactory user (AWS IAM role mapping)";
    let answer = exchange_json(http, &url, &headers, Body::Json(&body), hint)?;
    let mut issued = artifactory_answer(answer, &url, now)?;
    // Never past the node's credentials, whose signature the token was traded for.
    if let (super::Validity::Until(t), Some(creds)) = (issued.validity, signed.expires_at) {
        issued.validity = super::Validity::Until(t.min(creds.max(now)));
    }
    Ok(issued)
}

/// Cloudsmith OIDC.
pub fn cloudsmith(
    c: &Cloudsmith,
    token: &Secret<String>,
    http: &Http,
    now: SystemTime,
) -> Result<Issued, Error> {
    let api = c.api_url.as_deref().unwrap_or(CLOUDSMITH_API);
    let url = join(api, &format!("/openid/{}/", c.org));
    let body = json_body(&CloudsmithRequest {
        oidc_token: token.expose(),
        service_slug: &c.service,
    });
    let hint =
        "check the organisation's OIDC provider settings (issuer, claims) and the service slug";
    let answer: TokenAnswer = exchange_json(http, &url, &[], Body::Json(body.expose()), hint)?;
    let token = non_empty(answer.token, Stage::Exchange, &url, "token")?;
    Ok(Issued {
        username: c.username.clone(),
        validity: validity(&token, None, now),
        password: token,
    })
}
