//! The backend's errors and their one-line wording: the stage that failed, the cause, the
//! likely fix; never a token, a credential, a client secret or a response body.
//!
//! | variant        | kind                                   |
//! |----------------|----------------------------------------|
//! | `Setting`      | `Misconfigured` (exit 2)               |
//! | `Refused`      | by status: 401/403 and OAuth `invalid_grant`/`invalid_client`/`unauthorized_client`/`access_denied` `Denied`; 408/429/5xx `Unavailable`; the rest `Protocol` |
//! | `Transport`    | `Unavailable`                          |
//! | `Deadline`     | `Unavailable`                          |
//! | `Response`     | `Protocol`                             |
//! | `Tls`          | `Misconfigured` (no usable CA certificate: the node's or `SSL_CERT_FILE` / `SSL_CERT_DIR`'s) |
//! | `AwsClient`    | `Misconfigured` (the AWS SDK's HTTP client: `AWS_CA_BUNDLE`, the TLS set-up) |
//! | `AwsFile`      | `Misconfigured` (a file the AWS SDK would read whole is no regular file, or too large) |
//! | `Setup`        | `Unavailable` (no I/O runtime) |

use keyring_api::{BackendError, ErrorKind, InvalidSetting};

/// Which step of the plan failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The pod's service-account token.
    PodToken,
    /// The node's token file.
    TokenFile,
    /// The GCE metadata server's identity token.
    GcpMetadata,
    /// Azure IMDS.
    AzureImds,
    /// The node's AWS credentials and the signed request.
    Aws,
    /// The exchange at the rule's endpoint.
    Exchange,
    /// Vault's login.
    VaultLogin,
    /// Vault's KV read.
    VaultRead,
    /// The namespace Secret.
    Secret,
}

impl Stage {
    /// How the stage is named in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PodToken => "pod service-account token",
            Stage::TokenFile => "node token file",
            Stage::GcpMetadata => "GCE metadata identity token",
            Stage::AzureImds => "Azure IMDS token",
            Stage::Aws => "AWS identity",
            Stage::Exchange => "exchange",
            Stage::VaultLogin => "Vault login",
            Stage::VaultRead => "Vault KV read",
            Stage::Secret => "namespace Secret",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of this backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local setting (config, annotation, file, the request's token) is wrong.
    #[error(transparent)]
    Setting(#[from] InvalidSetting),
    /// The endpoint answered with a refusal or an error status.
    #[error("{stage}: {url} answered {status}{}; {hint}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Refused {
        /// The stage.
        stage: Stage,
        /// The endpoint, without query or user-info.
        url: String,
        /// The HTTP status.
        status: u16,
        /// An OAuth/Vault error code, when one of the known codes was sent.
        code: Option<String>,
        /// The likely fix.
        hint: String,
    },
    /// No response: connect, TLS, timeout.
    #[error("{stage}: {url}: {source} (after {attempts} attempt{}); {hint}", if *attempts == 1 { "" } else { "s" })]
    Transport {
        /// The stage.
        stage: Stage,
        /// The endpoint.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The likely fix.
        hint: String,
        /// The cause.
        #[source]
        source: keyring_net::Failed,
    },
    /// The invocation's deadline ran out before the request could be (re)sent.
    #[error("{stage}: {url}: out of time within the invocation's deadline ({elapsed_ms} ms spent); {hint}")]
    Deadline {
        /// The stage.
        stage: Stage,
        /// The endpoint.
        url: String,
        /// Time spent in this backend.
        elapsed_ms: u128,
        /// The likely fix.
        hint: String,
    },
    /// An answer that cannot be used.
    #[error("{stage}: {url}: {problem}")]
    Response {
        /// The stage.
        stage: Stage,
        /// The endpoint.
        url: String,
        /// What is wrong with it (never its content).
        problem: String,
    },
    /// TLS could not be set up: no usable CA certificate (the node's configuration, not an
    /// endpoint that could not be reached).
    #[error("{0}")]
    Tls(#[from] keyring_net::TlsSetupError),
    /// The AWS SDK's HTTP client ([`keyring_aws::http_client`]) could not be built:
    /// `AWS_CA_BUNDLE` or the TLS set-up (the node's configuration). `SSL_CERT_FILE` /
    /// `SSL_CERT_DIR` are [`Error::Tls`], as for every other request.
    #[error("{}: {}", Stage::Aws, .0)]
    AwsClient(keyring_aws::Error),
    /// A file the AWS SDK's credentials chain would read whole (a profile file, a web
    /// identity token, ...) is a FIFO, a device, a directory or too large
    /// ([`keyring_aws::check_files`]): the node's configuration.
    #[error("{}: {}", Stage::Aws, .0)]
    AwsFile(#[from] keyring_aws::FileError),
    /// The HTTP runtime could not be set up.
    #[error("{0}")]
    Setup(String),
}

impl From<keyring_aws::Error> for Error {
    fn from(e: keyring_aws::Error) -> Self {
        match e {
            keyring_aws::Error::EnvCa(e) => Error::Tls(e),
            e => Error::AwsClient(e),
        }
    }
}

/// OAuth 2.0 / Vault error codes that are shown (fixed ASCII words, never free text).
const CODES: [&str; 8] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "access_denied",
];

/// The error code of an OAuth error body, when it is one of the known codes.
pub fn oauth_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = v.get("error")?.as_str()?;
    CODES.contains(&code).then(|| code.to_string())
}

impl Error {
    /// The kind that decides exit code and stale serving.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Setting(_) | Error::Tls(_) | Error::AwsClient(_) | Error::AwsFile(_) => {
                ErrorKind::Misconfigured
            }
            Error::Refused { status, code, .. } => match (*status, code.as_deref()) {
                (401 | 403, _) => ErrorKind::Denied,
                (
                    _,
                    Some(
                        "invalid_grant"
                        | "invalid_client"
                        | "unauthorized_client"
                        | "access_denied",
                    ),
                ) => ErrorKind::Denied,
                (408 | 429, _) | (500..=599, _) => ErrorKind::Unavailable,
                _ => ErrorKind::Protocol,
            },
            Error::Transport { .. } | Error::Deadline { .. } | Error::Setup(_) => {
                ErrorKind::Unavailable
            }
            Error::Response { .. } => ErrorKind::Protocol,
        }
    }

    /// As the binary's error, for `backend`.
    pub fn into_backend_error(self, backend: &'static str) -> BackendError {
        let kind = self.kind();
        let message = self.to_string();
        // A transport error's cause is in its message already, before the hint: attaching
        // it as the source too would print it twice on the one line.
        match self {
            Error::Setting(s) => BackendError::new(backend, kind, message).with_source(s),
            _ => BackendError::new(backend, kind, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, code: Option<&str>) -> Error {
        Error::Refused {
            stage: Stage::Exchange,
            url: "https://sts.example.com/token".into(),
            status,
            code: code.map(str::to_string),
            hint: "check the rule".into(),
        }
    }

    #[test]
    fn a_refusal_is_denied_throttling_is_unavailable_the_rest_is_protocol() {
        assert_eq!(refused(401, None).kind(), ErrorKind::Denied);
        assert_eq!(refused(403, None).kind(), ErrorKind::Denied);
        assert_eq!(
            refused(400, Some("invalid_grant")).kind(),
            ErrorKind::Denied
        );
        assert_eq!(
            refused(400, Some("invalid_request")).kind(),
            ErrorKind::Protocol
        );
        assert_eq!(refused(429, None).kind(), ErrorKind::Unavailable);
        assert_eq!(refused(503, None).kind(), ErrorKind::Unavailable);
        assert_eq!(
            refused(400, Some("invalid_grant")).to_string(),
            "exchange: https://sts.example.com/token answered 400 (invalid_grant); check the rule"
        );
    }

    #[test]
    fn only_known_oauth_codes_are_shown() {
        assert_eq!(
            oauth_code(br#"{"error":"invalid_grant","error_description":"tok"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(oauth_code(br#"{"error":"eyJhbGciOi.secret"}"#), None);
        assert_eq!(oauth_code(b"not json"), None);
    }
}
