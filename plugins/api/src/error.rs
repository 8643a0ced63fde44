//! The one error type every backend returns, and the kinds that decide what happens next.
//!
//! A backend that owns an image and fails returns a [`BackendError`] of one [`ErrorKind`].
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
//!
//! A check of one local value (a config field, a flag, an environment variable, a file)
//! returns an [`InvalidSetting`]: which setting, and what is wrong with its value. Such checks
//! run before any backend is asked (config loading, flag parsing) as well as inside a
//! backend, so the error names no backend; on the backend path
//! [`InvalidSetting::into_backend_error`] makes it a [`BackendError`], always of kind
//! `Misconfigured` (exit 2, no stale answer): a value the operator wrote is wrong, and no
//! retry or cached answer changes that.

use std::borrow::Cow;
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

impl ErrorKind {
    /// What `get-credentials` does about a failure of this kind, in words (for `explain`).
    pub fn consequence(self) -> &'static str {
        match self {
            ErrorKind::Misconfigured => "exit 2, no cached answer served: the set-up must change",
            ErrorKind::Denied => "exit 1, no cached answer served: a permission was refused",
            ErrorKind::Unavailable | ErrorKind::Protocol => {
                "exit 1, unless a cached answer whose credential still works is served instead"
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend failed for a registry it is responsible for.
///
/// Displayed as `backend: message` (the registry is part of the message where it helps;
/// the hint follows after `; `).
#[derive(Debug, thiserror::Error)]
pub struct BackendError {
    /// The backend's name.
    pub backend: &'static str,
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

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.backend, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl BackendError {
    /// An error of `kind` with a message and no further cause.
    pub fn new(backend: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        BackendError {
            backend,
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// A [`ErrorKind::Misconfigured`] error.
    pub fn misconfigured(backend: &'static str, message: impl Into<String>) -> Self {
        Self::new(backend, ErrorKind::Misconfigured, message)
    }

    /// A [`ErrorKind::Denied`] error.
    pub fn denied(backend: &'static str, message: impl Into<String>) -> Self {
        Self::new(backend, ErrorKind::Denied, message)
    }

    /// A [`ErrorKind::Unavailable`] error.
    pub fn unavailable(backend: &'static str, message: impl Into<String>) -> Self {
        Self::new(backend, ErrorKind::Unavailable, message)
    }

    /// A [`ErrorKind::Protocol`] error.
    pub fn protocol(backend: &'static str, message: impl Into<String>) -> Self {
        Self::new(backend, ErrorKind::Protocol, message)
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

/// A local setting has a value that cannot be used. Displayed as `setting: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct InvalidSetting {
    /// Which setting, as the operator writes it: a config field (`ecr.sessionName`,
    /// `ecr.mirrors[1] (host "a.example.com")`), a flag (`--registry-mirror`), an environment
    /// variable (`AWS_ECR_ROLE_ARN`), an annotation or a file (`azure.json`).
    pub setting: Cow<'static, str>,
    /// One line: what is wrong with the value and, where it helps, the expected form. May
    /// quote the value only when it is not secret.
    pub problem: String,
}

impl InvalidSetting {
    /// `setting` has a value with `problem`.
    pub fn new(setting: impl Into<Cow<'static, str>>, problem: impl Into<String>) -> Self {
        InvalidSetting {
            setting: setting.into(),
            problem: problem.into(),
        }
    }

    /// This error as `backend`'s failure: always [`ErrorKind::Misconfigured`], with the
    /// same text and this error as its source.
    pub fn into_backend_error(self, backend: &'static str) -> BackendError {
        BackendError::misconfigured(backend, self.to_string()).with_source(self)
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
    fn the_consequence_matches_the_rules() {
        for k in ErrorKind::ALL {
            let c = k.consequence();
            assert!(
                c.starts_with(&format!("exit {}", k.exit_code())),
                "{k}: {c}"
            );
            assert_eq!(
                c.contains("unless a cached answer"),
                k.serves_stale(),
                "{k}: {c}"
            );
        }
    }

    #[test]
    fn display_with_hint() {
        let e = BackendError::denied("ecr", "GetAuthorizationToken returned 403")
            .with_hint("grant ecr:GetAuthorizationToken");
        assert_eq!(
            e.to_string(),
            "ecr: GetAuthorizationToken returned 403; grant ecr:GetAuthorizationToken"
        );
        assert_eq!(BackendError::unavailable("gcp", "x").to_string(), "gcp: x");
    }

    #[test]
    fn invalid_setting_names_the_setting_and_is_misconfigured() {
        let e = InvalidSetting::new("ecr.sessionName", "\"a\" is not a session name");
        assert_eq!(
            e.to_string(),
            "ecr.sessionName: \"a\" is not a session name"
        );
        let owned = InvalidSetting::new(format!("ecr.mirrors[{}]", 1), "bad");
        assert_eq!(owned.to_string(), "ecr.mirrors[1]: bad");

        let p = e.clone().into_backend_error("ecr");
        assert_eq!(p.kind, ErrorKind::Misconfigured);
        assert_eq!(p.kind.exit_code(), 2);
        assert_eq!(p.backend, "ecr");
        assert_eq!(
            p.to_string(),
            "ecr: ecr.sessionName: \"a\" is not a session name"
        );
        let source = std::error::Error::source(&p)
            .and_then(|s| s.downcast_ref::<InvalidSetting>())
            .expect("the setting error is the source");
        assert_eq!(source, &e);
    }
}
