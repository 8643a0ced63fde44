//! The node's own identity as a token: a token file, a GCE metadata identity token, an
//! Azure IMDS managed-identity token.
//!
//! * **Token file** (projected or static): opened with [`keyring_api::file::open`] (a FIFO
//!   or device is refused, never waited on), at most [`MAX_TOKEN_FILE`] bytes, trimmed. Its
//!   `exp`, when it is a JWT, bounds the answer's lifetime.
//! * **GCE metadata**: `GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=<aud>&format=full`
//!   with `Metadata-Flavor: Google`, at `GCE_METADATA_HOST` (default `169.254.169.254`),
//!   directly, never through a proxy; the body is the JWT
//!   (<https://cloud.google.com/compute/docs/instances/verifying-instance-identity>).
//! * **Azure IMDS**: `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=<r>[&client_id=<id>]`
//!   with `Metadata: true`; JSON `access_token`, `expires_in`
//!   (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>).

use std::path::Path;
use std::time::SystemTime;

use keyring_api::{lifetime, InvalidSetting, Secret};
use keyring_net::Route;
use serde::Deserialize;

use super::{jwt, Proof};
use crate::config::{AzureSource, GcpSource};
use crate::error::{Error, Stage};
use crate::http::{Body, Call, Http};

/// The largest token file read.
pub const MAX_TOKEN_FILE: u64 = 64 << 10;
/// The default GCE metadata host.
pub const GCE_METADATA_HOST: &str = "169.254.169.254";
/// The default Azure IMDS token URL.
pub const AZURE_IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// The token in `path`.
pub fn token_file(path: &Path, now: SystemTime) -> Result<Proof, Error> {
    let token = crate::read_secret_file(path, MAX_TOKEN_FILE, "node token file")?;
    if token.expose().is_empty() || token.expose().contains(char::is_whitespace) {
        return Err(InvalidSetting::new(
            format!("node token file {}", path.display()),
            "it must hold one token and nothing else",
        )
        .into());
    }
    Ok(node_token(token, None, now))
}

/// A node token with its expiry: `expires_in` when the issuer said, else the JWT's `exp`.
fn node_token(token: Secret<String>, expires_at: Option<SystemTime>, now: SystemTime) -> Proof {
    let expires_at = expires_at.or_else(|| {
        jwt::Claims::read(token.expose())
            .ok()
            .and_then(|c| c.exp)
            .map(|exp| lifetime::expiry_at_unix(now, exp))
    });
    Proof::Token {
        token,
        expires_at,
        pod: None,
    }
}

fn status_error(stage: Stage, url: &str, status: u16, hint: &str) -> Error {
    Error::Refused {
        stage,
        url: crate::http::shown(url),
        status,
        code: None,
        hint: hint.into(),
    }
}

/// A GCE metadata identity token for `source.audience`.
pub fn gcp(source: &GcpSource, http: &Http, now: SystemTime) -> Result<Proof, Error> {
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| GCE_METADATA_HOST.into());
    if host.contains(['/', '?', '#', '@']) {
        return Err(InvalidSetting::new(
            "GCE_METADATA_HOST",
            format!("{host:?} is not host[:port]"),
        )
        .into());
    }
    let base =
        format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/identity");
    let url = format!(
        "{base}?{}",
        keyring_net::form(&[("audience", &source.audience), ("format", "full")])
    );
    let hint = "is this node on GCE with a service account? (GCE_METADATA_HOST overrides the metadata server)";
    let reply = http.send(&Call {
        stage: Stage::GcpMetadata,
        url: &url,
        headers: &[("Metadata-Flavor", "Google")],
        body: Body::Get,
        route: Route::Direct,
        hint,
    })?;
    if reply.status != 200 {
        return Err(status_error(Stage::GcpMetadata, &base, reply.status, hint));
    }
    let token = std::str::from_utf8(reply.body.expose())
        .ok()
        .map(str::trim)
        .filter(|t| jwt::Claims::read(t).is_ok())
        .ok_or_else(|| Error::Response {
            stage: Stage::GcpMetadata,
            url: base.clone(),
            problem: "the answer is not an identity token (JWT)".into(),
        })?;
    Ok(node_token(Secret::new(token.to_string()), None, now))
}

#[derive(Deserialize)]
struct ImdsToken {
    access_token: Secret<String>,
    /// A string in IMDS answers, a number in some emulators.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// An Azure IMDS token for `source.resource`.
pub fn azure(source: &AzureSource, http: &Http, now: SystemTime) -> Result<Proof, Error> {
    let base = source.imds.clone().unwrap_or_else(|| AZURE_IMDS.into());
    let mut query = vec![
        ("api-version", "2018-02-01"),
        ("resource", source.resource.as_str()),
    ];
    if let Some(id) = &source.client_id {
        query.push(("client_id", id.as_str()));
    }
    let url = format!("{base}?{}", keyring_net::form(&query));
    let hint = "is this node an Azure VM with a managed identity (and clientId right for a user-assigned one)?";
    let reply = http.send(&Call {
        stage: Stage::AzureImds,
        url: &url,
        headers: &[("Metadata", "true")],
        body: Body::Get,
        route: Route::Direct,
        hint,
    })?;
    if reply.status != 200 {
        return Err(status_error(Stage::AzureImds, &base, reply.status, hint));
    }
    let parsed: ImdsToken =
        serde_json::from_slice(reply.body.expose()).map_err(|_| Error::Response {
            stage: Stage::AzureImds,
            url: crate::http::shown(&base),
            problem: "the answer has no access_token".into(),
        })?;
    let secs = parsed.expires_in.and_then(|v| match v {
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
        serde_json::Value::Number(n) => n.as_f64(),
        _ => None,
    });
    let expires_at = secs.and_then(|s| lifetime::expiry_in_secs_f64(now, s));
    Ok(node_token(parsed.access_token, expires_at, now))
}
