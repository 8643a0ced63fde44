//! Vault / OpenBao: log in with the token, then read the registry credential from KV v2.
//!
//! 1. `POST <address>/v1/auth/<mount>/login` with JSON `{"role": ..., "jwt": ...}`: the same
//!    body for the `jwt` and the `kubernetes` auth methods (Vault API docs, "JWT/OIDC auth
//!    method" and "Kubernetes auth method", Login); for the `aws` method (IAM type, "AWS auth
//!    method", Login) `{"role", "iam_http_request_method": "POST", "iam_request_url",
//!    "iam_request_body", "iam_request_headers"}`, the node's signed STS `GetCallerIdentity`
//!    (URL, body, and the headers as a JSON object of lists, each base64-encoded), which Vault
//!    replays to STS to learn the node's role. Answer `{"auth": {"client_token": ...}}`.
//! 2. `GET <address>/v1/<kvMount>/data/<path>` with `X-Vault-Token: <client_token>` (KV
//!    secrets engine version 2, "Read secret version"); answer `{"data": {"data": {<fields>},
//!    "metadata": {...}}}`; the configured fields are the registry user and password.
//!
//! `X-Vault-Namespace` is sent on both when configured. The Vault token lives only for this
//! exchange. The credential is a stored secret: it is reused like a docker config's, five
//! minutes, and a change in Vault is seen within that.

use std::collections::BTreeMap;

use keyring_api::Secret;
use keyring_net::Route;
use serde::{Deserialize, Serialize};

use super::{json_body, json_reply, Issued, Validity};
use base64::Engine as _;

use crate::config::{Vault, VaultAuth};
use crate::error::{Error, Stage};
use crate::http::{Body, Call, Http};
use crate::identity::Proof;

/// The login body of the `jwt` and `kubernetes` auth methods.
#[derive(Serialize)]
struct LoginRequest<'a> {
    role: &'a str,
    jwt: &'a str,
}

/// The login body of the `aws` auth method, IAM type.
#[derive(Serialize)]
struct AwsLoginRequest<'a> {
    role: &'a str,
    iam_http_request_method: &'a str,
    iam_request_url: String,
    iam_request_body: String,
    iam_request_headers: String,
}

/// The login body for `proof` (a token, or the signed AWS request for `aws`).
fn login_body(v: &Vault, proof: &Proof) -> Result<Secret<String>, Error> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match (v.auth, proof) {
        (VaultAuth::Jwt | VaultAuth::Kubernetes, Proof::Token { token, .. }) => {
            Ok(json_body(&LoginRequest {
                role: &v.role,
                jwt: token.expose(),
            }))
        }
        (VaultAuth::Aws, Proof::Aws(signed)) => {
            // Go's http.Header: each canonical name to a list of values.
            let headers: BTreeMap<String, [&str; 1]> = signed
                .headers
                .iter()
                .map(|(k, v)| (go_canonical(k), [v.expose().as_str()]))
                .collect();
            let headers = json_body(&headers);
            Ok(json_body(&AwsLoginRequest {
                role: &v.role,
                iam_http_request_method: signed.method,
                iam_request_url: b64(signed.url.as_bytes()),
                iam_request_body: b64(signed.body.as_bytes()),
                iam_request_headers: b64(headers.expose().as_bytes()),
            }))
        }
        _ => Err(super::wrong_proof("vault")),
    }
}

#[derive(Deserialize)]
struct Login {
    auth: Option<Auth>,
}

#[derive(Deserialize)]
struct Auth {
    client_token: Option<Secret<String>>,
}

#[derive(Deserialize)]
struct Read {
    data: Option<KvData>,
}

#[derive(Deserialize)]
struct KvData {
    data: Option<BTreeMap<String, serde_json::Value>>,
}

/// A header name as Go's `http.CanonicalHeaderKey` writes it (`X-Amz-Date`), so that the
/// receiver's lookups find it whether or not it canonicalizes what it decodes.
fn go_canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Logs in with `proof` and reads the secret.
pub fn read(v: &Vault, proof: &Proof, http: &Http) -> Result<Issued, Error> {
    let base = v.address.trim_end_matches('/');
    let mount = v
        .auth_mount
        .as_deref()
        .unwrap_or(v.auth.default_mount())
        .trim_matches('/');
    let login_url = format!("{base}/v1/auth/{mount}/login");
    let body = login_body(v, proof)?;
    let ns: Vec<(&str, &str)> = v
        .namespace
        .iter()
        .map(|n| ("X-Vault-Namespace", n.as_str()))
        .collect();
    let hint = "check the auth method's mount, the role, and that the role binds this service account (or the token's issuer)";
    let reply = http.send(&Call {
        stage: Stage::VaultLogin,
        url: &login_url,
        headers: &ns,
        body: Body::Json(body.expose()),
        route: Route::Proxied,
        hint,
    })?;
    let login: Login = json_reply(&reply, Stage::VaultLogin, &login_url, hint)?;
    let client = login
        .auth
        .and_then(|a| a.client_token)
        .filter(|t| !t.expose().is_empty())
        .ok_or_else(|| Error::Response {
            stage: Stage::VaultLogin,
            url: crate::http::shown(&login_url),
            problem: "the answer has no auth.client_token".into(),
        })?;

    let read_url = format!(
        "{base}/v1/{}/data/{}",
        v.kv_mount.trim_matches('/'),
        v.path.trim_matches('/')
    );
    let mut headers = ns.clone();
    headers.push(("X-Vault-Token", client.expose()));
    let hint = "check the KV v2 mount and path, and that the role's policy may read them";
    let reply = http.send(&Call {
        stage: Stage::VaultRead,
        url: &read_url,
        headers: &headers,
        body: Body::Get,
        route: Route::Proxied,
        hint,
    })?;
    let read: Read = json_reply(&reply, Stage::VaultRead, &read_url, hint)?;
    let fields = read.data.and_then(|d| d.data).unwrap_or_default();
    let field = |name: &str| -> Result<Secret<String>, Error> {
        match fields.get(name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Secret::new(s.clone())),
            _ => Err(Error::Response {
                stage: Stage::VaultRead,
                url: crate::http::shown(&read_url),
                problem: format!("the secret has no string field {name:?}"),
            }),
        }
    };
    let username = field(&v.username_field)?;
    let password = field(&v.password_field)?;
    Ok(Issued {
        username: username.expose().clone(),
        password,
        validity: Validity::Stored,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::identity::aws;

    #[test]
    fn the_aws_login_carries_the_signed_post_base64_encoded_with_go_header_names() {
        let creds =
            aws_credential_types::Credentials::new("AKIDEXAMPLE1234", "secret", None, None, "t");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let form = aws::Form::Post {
            server_id: Some("vault.example.com"),
        };
        let signed = aws::sign_with(&creds, aws::STS, aws::REGION, form, now).unwrap();
        let v: Vault = serde_json::from_str(
            r#"{"address":"https://v.example.com","auth":"aws","role":"puller","path":"p"}"#,
        )
        .unwrap();
        let body = login_body(&v, &Proof::Aws(signed)).unwrap();
        let body: serde_json::Value = serde_json::from_str(body.expose()).unwrap();
        let b64 = |k: &str| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(body[k].as_str().unwrap())
                .unwrap();
            String::from_utf8(raw).unwrap()
        };
        assert_eq!(body["role"], "puller");
        assert_eq!(body["iam_http_request_method"], "POST");
        assert_eq!(b64("iam_request_url"), "https://sts.amazonaws.com/");
        assert_eq!(
            b64("iam_request_body"),
            "Action=GetCallerIdentity&Version=2011-06-15"
        );
        let headers: serde_json::Value = serde_json::from_str(&b64("iam_request_headers")).unwrap();
        assert_eq!(headers["Host"], serde_json::json!(["sts.amazonaws.com"]));
        assert_eq!(
            headers["Content-Type"],
            serde_json::json!(["application/x-www-form-urlencoded; charset=utf-8"])
        );
        assert_eq!(
            headers["X-Vault-Aws-Iam-Server-Id"],
            serde_json::json!(["vault.example.com"])
        );
        assert_eq!(
            headers["X-Amz-Date"],
            serde_json::json!(["20231114T221320Z"])
        );
        assert!(headers["Authorization"][0]
            .as_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 "));
        // A token for the aws method, or the signed request for jwt, is refused.
        let token = Proof::Token {
            token: Secret::new("t".into()),
            expires_at: None,
            pod: None,
        };
        assert!(login_body(&v, &token).is_err());
    }
}
