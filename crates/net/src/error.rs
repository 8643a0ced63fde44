//! Why a request produced no response, and the innermost cause of a hyper error as the one
//! line a message shows.

use std::time::Duration;

use crate::tls::TlsSetupError;
use crate::Policy;

/// Why a request produced no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The attempt took longer than allowed.
    #[error("no answer within {}", secs(.0))]
    Timeout(Duration),
    /// The TCP connection (to the endpoint or the proxy) was not established in time.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The connection failed or broke; the text is the innermost cause.
    #[error("{0}")]
    Transport(String),
    /// The body was larger than the cap.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// TLS refused the server (its certificate, most often): trying again changes nothing.
    #[error("{0}")]
    Tls(String),
    /// TLS could not be set up on this node.
    #[error(transparent)]
    TlsSetup(#[from] TlsSetupError),
    /// The request could not be built (a bad URL or header), or the route cannot carry it.
    #[error("bad request: {0}")]
    Request(String),
    /// The invocation's deadline left no time for an attempt.
    #[error("out of time before the request could be sent")]
    OutOfTime,
}

impl FetchError {
    /// Worth another attempt under `policy`: a refused or broken connection, and timeouts
    /// when the policy says so; never TLS, size or request errors (which would only repeat).
    pub fn is_transient(&self, policy: &Policy) -> bool {
        match self {
            FetchError::Transport(_) => true,
            FetchError::Timeout(_) | FetchError::ConnectTimeout => policy.retry_timeouts,
            _ => false,
        }
    }

    /// Whether it is a timeout of some kind (for hints).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            FetchError::Timeout(_) | FetchError::ConnectTimeout | FetchError::OutOfTime
        )
    }
}

/// A request that failed, and how many attempts were made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{cause}")]
pub struct Failed {
    /// The last attempt's error.
    #[source]
    pub cause: FetchError,
    /// Attempts made (0 when the deadline left no time for one).
    pub attempts: u32,
}

pub(crate) fn classify(e: &hyper_util::client::legacy::Error) -> FetchError {
    if timed_out(e) {
        FetchError::ConnectTimeout
    } else if tls_refused(e) {
        FetchError::Tls(root_cause(e))
    } else {
        FetchError::Transport(root_cause(e))
    }
}

/// Whether rustls refused the connection somewhere in the chain. It arrives wrapped in I/O
/// errors (by the TLS stream, again by the connector), whose `source()` skips their content,
/// so each is unwrapped by hand.
fn tls_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.get_ref().is_some_and(|inner| is_tls(inner));
        }
        false
    }
    let mut cur = Some(e);
    while let Some(err) = cur {
        if is_tls(err) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Whether an I/O timeout is somewhere in the chain (hyper's connect timeout).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The innermost error's text: `Connection refused (os error 111)` rather than hyper's
/// `client error (Connect)`.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A timeout for a message: whole seconds as `10s`, else to the millisecond (`4.472s`), never
/// the nanoseconds a budget's remainder has.
fn secs(d: &Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}
