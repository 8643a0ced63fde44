//! Failures of this backend, each one line naming the stage, what happened and the likely fix.
//!
//! Texts carry stage names, URLs (which never hold a secret here: secrets travel in form
//! bodies only), HTTP statuses and error *codes* picked out of error responses (`invalid_client`,
//! `AADSTS7000215`, `UNAUTHORIZED`), never a response body, a token, a secret or an assertion.

use std::fmt;

use keyring_api::ErrorKind;
use std::path::PathBuf;

/// The network stage that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The managed-identity token from IMDS.
    Imds,
    /// The managed-identity token from Azure Arc's agent.
    Arc,
    /// The Entra ID (AAD) token endpoint.
    Aad,
    /// `GET /v2/` on the registry, expecting a Bearer challenge.
    Challenge,
    /// `POST /oauth2/exchange` on the registry.
    Exchange,
    /// The AKS identity-binding endpoint (`--ib-sni-name`).
    IdentityBinding,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Imds => "IMDS managed-identity token",
            Stage::Arc => "Azure Arc managed-identity token",
            Stage::Aad => "AAD token",
            Stage::Challenge => "/v2/ challenge",
            Stage::Exchange => "ACR token exchange",
            Stage::IdentityBinding => "identity-binding token",
        })
    }
}

/// A failure of this backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Local set-up is wrong or incomplete (environment, annotations, `azure.json` fields).
    /// The text says what to set.
    #[error("{0}")]
    Setup(String),
    /// A local file could not be read.
    #[error("cannot read {what} {}; {hint}", path.display())]
    File {
        /// What the file is (`azure.json`, `federated token file`, ...).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What to check.
        hint: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A local file has the wrong content. The text never quotes the content.
    #[error("{what} {}: {problem}", path.display())]
    Content {
        /// What the file is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// No usable HTTP response (connect, TLS, timeout).
    #[error("{stage} {url} failed after {attempts} attempt(s) ({hint})")]
    Transport {
        /// The stage.
        stage: Stage,
        /// The URL, without query.
        url: String,
        /// How many times it was tried.
        attempts: u32,
        /// What to check.
        hint: String,
        /// The last attempt's error.
        #[source]
        source: keyring_net::Failed,
    },
    /// The total deadline ran out before the stage could be (re)tried.
    #[error("{stage} {url}: out of time ({elapsed_s} s spent of the {budget_s} s budget, kept under the kubelet's 60 s exec timeout); {hint}")]
    Deadline {
        /// The stage.
        stage: Stage,
        /// The URL.
        url: String,
        /// Seconds spent.
        elapsed_s: u64,
        /// The budget.
        budget_s: u64,
        /// What to check.
        hint: String,
    },
    /// An HTTP status other than the expected one.
    #[error("{stage} {url} returned HTTP {status}{}; {hint}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        /// The stage.
        stage: Stage,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// An error code from the body, when one was found and looks like a code.
        code: Option<String>,
        /// The likely fix.
        hint: String,
    },
    /// A response of the expected status with unusable content.
    #[error("{stage} {url}: {problem}")]
    Response {
        /// The stage.
        stage: Stage,
        /// The URL.
        url: String,
        /// What is wrong (never quoting the body) and what to do.
        problem: String,
    },
    /// Signing the client assertion failed.
    #[error("cannot sign the certificate's client assertion: {0}")]
    Sign(#[from] SignError),
}

/// Why a certificate's client assertion could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The clock is before 1970.
    #[error("system clock is before 1970")]
    Clock,
    /// The random generator failed.
    #[error("no randomness available for the assertion ID")]
    Random,
    /// ring refused to sign (key too small or large).
    #[error("RS256 signing failed")]
    Sign,
}

impl Error {
    /// What kind of failure this is (decides exit code and stale serving).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Setup(_) | Error::File { .. } | Error::Content { .. } | Error::Sign(_) => {
                ErrorKind::Misconfigured
            }
            Error::Transport { .. } | Error::Deadline { .. } => ErrorKind::Unavailable,
            Error::Status { status, .. } if transient(*status) => ErrorKind::Unavailable,
            Error::Status { .. } => ErrorKind::Denied,
            Error::Response { .. } => ErrorKind::Protocol,
        }
    }

    /// This error as the chain's error type.
    pub fn into_backend_error(self) -> keyring_api::BackendError {
        let message = self.to_string();
        keyring_api::BackendError::new(crate::NAME, self.kind(), message).with_source(self)
    }
}

/// The statuses worth another attempt, and that make a failure [`ErrorKind::Unavailable`]
/// when the last attempt still gets one: [`keyring_net::transient`]'s 408, 429, 500, 502, 503
/// and 504.
pub fn transient(status: u16) -> bool {
    keyring_net::http::StatusCode::from_u16(status).is_ok_and(keyring_net::transient)
}

/// Picks error codes out of an error response body: OAuth `error` (`invalid_client`), the
/// first Entra `error_codes` entry (`AADSTS7000215`), or the first registry `errors[].code`
/// (`UNAUTHORIZED`). Only strings shaped like codes are returned, so nothing else from the
/// body can reach a message.
pub fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let is_code = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    };
    let mut parts = Vec::new();
    if let Some(e) = v
        .get("error")
        .and_then(|e| e.as_str())
        .filter(|e| is_code(e))
    {
        parts.push(e.to_string());
    }
    if let Some(n) = v
        .get("error_codes")
        .and_then(|c| c.as_array())
        .and_then(|a| a.first())
        .and_then(|n| n.as_u64())
    {
        parts.push(format!("AADSTS{n}"));
    }
    if let Some(c) = v
        .get("errors")
        .and_then(|c| c.as_array())
        .and_then(|a| a.first())
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_str())
        .filter(|c| is_code(c))
    {
        parts.push(c.to_string());
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_throttling_and_server_errors_are_transient_and_the_rest_is_not() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(transient(s));
        }
        for s in [200, 400, 401, 403, 404, 501, 505] {
            assert!(!transient(s));
        }
    }

    #[test]
    fn only_code_shaped_strings_are_picked_out_of_an_error_body() {
        let aad = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. secret=hunter2","error_codes":[7000215],"trace_id":"x"}"#;
        assert_eq!(
            error_code(aad).as_deref(),
            Some("invalid_client AADSTS7000215")
        );
        let acr = br#"{"errors":[{"code":"UNAUTHORIZED","message":"token hunter2 rejected"}]}"#;
        assert_eq!(error_code(acr).as_deref(), Some("UNAUTHORIZED"));
        let imds = br#"{"error":"invalid_request","error_description":"Identity not found"}"#;
        assert_eq!(error_code(imds).as_deref(), Some("invalid_request"));
        assert_eq!(error_code(br#"{"error":"has spaces hunter2"}"#), None);
        assert_eq!(error_code(b"<html>hunter2</html>"), None);
        assert_eq!(error_code(br#"{"error":{"nested":"hunter2"}}"#), None);
    }

    #[test]
    fn a_status_error_is_one_line_with_stage_url_status_code_and_hint() {
        let e = Error::Status {
            stage: Stage::Aad,
            url: "https://login.microsoftonline.com/t/oauth2/v2.0/token".into(),
            status: 401,
            code: Some("invalid_client AADSTS7000215".into()),
            hint: "the client secret is wrong".into(),
        };
        assert_eq!(
            e.to_string(),
            "AAD token https://login.microsoftonline.com/t/oauth2/v2.0/token returned HTTP 401 invalid_client AADSTS7000215; the client secret is wrong"
        );
    }
}
