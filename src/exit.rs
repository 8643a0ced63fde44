//! How a run fails: the one line printed on stderr and the exit code.

use std::process::ExitCode;

/// A failed run.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The input was wrong (request, image, flags, files named on the command line): exit 2.
    #[error("{0}")]
    BadInput(String),
    /// A backend could not get credentials for a registry it is responsible for: exit 1.
    #[error(transparent)]
    Backend(#[from] keyring_api::BackendError),
    /// Anything else (stdout closed, ...): exit 1.
    #[error("{0}")]
    Internal(String),
}

impl Failure {
    /// The exit code: 2 for bad input, a backend failure's by its kind
    /// ([`keyring_api::ErrorKind::exit_code`]), 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::BadInput(_) => ExitCode::from(2),
            Failure::Backend(e) => ExitCode::from(e.kind.exit_code()),
            Failure::Internal(_) => ExitCode::from(1),
        }
    }

    /// The error and its causes on one line, `a: b: c`, as the kubelet appends stderr to its
    /// own one-line error.
    pub fn one_line(&self) -> String {
        let mut out = format!("error: {self}");
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            let text = s.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            source = s.source();
        }
        out.replace(['\n', '\r'], " ")
    }
}
