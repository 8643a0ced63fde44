//! Bounded HTTP requests on hyper, the client stack gcp_auth itself runs on.
//!
//! Every request has a connect timeout and a whole-exchange timeout, and every body is read
//! through a size cap. Bodies are returned to the caller and never logged or quoted in
//! errors: a metadata or token response may carry a credential.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The User-Agent of every request we make ourselves.
pub(crate) const USER_AGENT: &str = concat!("kubelet-keyring/", env!("CARGO_PKG_VERSION"));

/// A response: status and (capped) body.
pub(crate) struct Fetched {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Why a GET produced no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The whole exchange took longer than allowed.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The TCP connection was not established in time (nothing listens there, or a
    /// firewall drops the packets).
    #[error("connect timed out")]
    ConnectTimeout,
    /// The connection failed or broke; the text is the innermost cause.
    #[error("{0}")]
    Transport(String),
    /// The body was larger than the cap.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
}

impl FetchError {
    /// Worth another attempt: a refused or broken connection, not a timeout or an oversized
    /// body (which would only repeat, and eat the deadline).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, FetchError::Transport(_))
    }
}

/// A plain-HTTP connector with a connect timeout.
pub(crate) fn http_connector(connect_timeout: Duration) -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(connect_timeout));
    c.set_nodelay(true);
    c
}

/// A client over `connector`, HTTP/1 only, no pooled idle connections kept around.
/// `B` is the request body type (`Empty` for GETs, `Full` for POSTs).
pub(crate) fn client<C, B>(connector: C) -> Client<C, B>
where
    C: Connect + Clone + Send + Sync + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

/// Sends `req` and reads at most `limit` body bytes, all within `timeout`.
pub(crate) async fn send<C, B>(
    client: &Client<C, B>,
    req: Request<B>,
    limit: usize,
    timeout: Duration,
) -> Result<Fetched, FetchError>
where
    C: Connect + Clone + Send + Sync + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| {
            if timed_out(&e) {
                FetchError::ConnectTimeout
            } else {
                FetchError::Transport(root_cause(&e))
            }
        })?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge(limit)
                } else {
                    FetchError::Transport(root_cause(&*e))
                }
            })?
            .to_bytes();
        Ok(Fetched { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| FetchError::Timeout(timeout))?
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
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
