//! Vault / OpenBao: log in with the token, then read the registry credential from KV v2.
//!
//! 1. `POST <address>/v1/auth/<mount>/login` with JSON `{"role": ..., "jwt": ...}`: the same
//!    body for the `jwt` and the `kubernetes` auth methods (Vault API docs, "JWT/OIDC auth
//!    method" and "Kubernetes auth method", Login); answer `{"auth": {"client_token": ...}}`.
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
use crate::config::Vault;
use crate::error::{Error, Stage};
use crate::http::{Body, Call, Http};

/// The login body of both auth methods.
#[derive(Serialize)]
struct LoginRequest<'a> {
    role: &'a str,
    jwt: &'a str,
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

/// Logs in and reads the secret.
pub fn read(v: &Vault, token: &Secret<String>, http: &Http) -> Result<Issued, Error> {
    let base = v.address.trim_end_matches('/');
    let mount = v
        .auth_mount
        .as_deref()
        .unwrap_or(v.auth.default_mount())
        .trim_matches('/');
    let login_url = format!("{base}/v1/auth/{mount}/login");
    let body = json_body(&LoginRequest {
        role: &v.role,
        jwt: token.expose(),
    });
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
