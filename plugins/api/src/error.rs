//! The one error type every backend returns, and the kinds that decide what happens next.
//!
//! A backend that owns an image and fails returns a [`ProviderError`] of one [`ErrorKind`].
//! The kind alone decides, in one place each, the consequences the rest of the program draws:
//!
//! | kind            | exit code | stale cached answer served | meaning                                  |
//! |-----------------|-----------|----------------------------|------------------------------------------|
//! | `Misconfigured` | 2         | no                         | local set-up: config, env, files, flags  |
//! | `Denied`        | 1         | no                         | the cloud refused our identity           |
//! | `Unavailable`   | 1         | yes                        | no usable answer in time (network, 5xx)  |
//! | `Protocol`      | 1         | yes                        | an answer came that makes no sense       |
//!
//! "Not mine" is not an error: it is [`Outcome::NotApplicable`](crate::Outcome).
//!
//! A denial is not answered from a stale entry: someone revoked or changed a permission, and a
//! pull that keeps working on an old token for hours hides that from the operator. A missing
//! answer (network, throttling, a broken peer) is exactly what a still-valid entry is kept for.
//!
//! Messages are one line, never quote a response body, a token or a file's content.

use std::fmt;

/// What went wrong, as far as the rest of the program needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The local set-up is wrong or incomplete: plugin config, environment, files, flags,
    /// annotations. Retrying cannot help; the operator must change something.
    Misconfigured,
    /// The registry or the cloud's identity service refused our identity (401/403,
    /// `invalid_client`, an unknown role).
    Denied,
    /// No usable answer within the deadline: connect, TLS, timeouts, 5xx, throttling.
    Unavailable,
    /// An answer came but is unusable: malformed token, missing field, protocol violation.
    Protocol,
}

impl ErrorKind {
    /// Every kind, for tables and metrics.
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Misconfigured,
        ErrorKind::Denied,
        ErrorKind::Unavailable,
        ErrorKind::Protocol,
    ];

    /// A stable lower-case name (`misconfigured`, ...), for logs, `explain` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Misconfigured => "misconfigured",
            ErrorKind::Denied => "denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Protocol => "protocol",
        }
    }

    /// The process exit code: 2 for what the operator must fix, 1 for the rest.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Misconfigured => 2,
            ErrorKind::Denied | ErrorKind::Unavailable | ErrorKind::Protocol => 1,
        }
    }

    /// Whether a cached answer past its refresh time, whose credential still works, may be
    /// served instead of this failure (see the module docs for why not on a denial).
    pub fn serves_stale(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Protocol)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider failed for a registry it is responsible for.
///
/// Displayed as `provider: message` (the registry is part of the message where it helps;
/// the hint follows after `; `).
#[derive(Debug, thiserror::Error)]
pub struct ProviderError {
    /// The provider's name.
    pub provider: &'static str,
    /// What kind of failure; decides exit code and stale serving.
    pub kind: ErrorKind,
    /// One line: what failed. Never a secret.
    pub message: String,
    /// The likely fix, when the backend knows one.
    pub hint: Option<String>,
    /// The underlying cause.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.provider, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl ProviderError {
    /// An error of `kind` with a message and no further cause.
    pub fn new(provider: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            provider,
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// A [`ErrorKind::Misconfigured`] error.
    pub fn misconfigured(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::Misconfigured, message)
    }

    /// A [`ErrorKind::Denied`] error.
    pub fn denied(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::Denied, message)
    }

    /// A [`ErrorKind::Unavailable`] error.
    pub fn unavailable(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::Unavailable, message)
    }

    /// A [`ErrorKind::Protocol`] error.
    pub fn protocol(provider: &'static str, message: impl Into<String>) -> Self {
        Self::new(provider, ErrorKind::Protocol, message)
    }

    /// The same error with a cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The same error with a hint (the likely fix).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_decides_exit_and_stale() {
        let table: Vec<_> = ErrorKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.exit_code(), k.serves_stale()))
            .collect();
        assert_eq!(
            table,
            [
                ("misconfigured", 2, false),
                ("denied", 1, false),
                ("unavailable", 1, true),
                ("protocol", 1, true)
            ]
        );
    }

    #[test]
    fn display_with_hint() {
        let e = ProviderError::denied("ecr", "GetAuthorizationToken returned 403")
            .with_hint("grant ecr:GetAuthorizationToken");
        assert_eq!(
            e.to_string(),
            "ecr: GetAuthorizationToken returned 403; grant ecr:GetAuthorizationToken"
        );
        assert_eq!(ProviderError::unavailable("gcp", "x").to_string(), "gcp: x");
    }
}
