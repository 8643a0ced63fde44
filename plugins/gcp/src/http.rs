//! Bounded HTTP requests on hyper, the client stack gcp_auth itself runs on.
//!
//! Every request has a connect timeout and a whole-exchange timeout, and every body is read
//! through a size cap. Bodies are returned to the caller and never logged or quoted in
//! errors: a metadata or token response may carry a credential.
//!
//! Requests to Google APIs (`https://`) go through the proxy named by `HTTPS_PROXY` /
//! `ALL_PROXY` unless `NO_PROXY` excludes the host, with an HTTP CONNECT tunnel (curl's
//! rules, via hyper-util's matcher and tunnel), as the AWS SDK and the ACR backend do. The
//! metadata server is always reached directly ([`http_connector`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower_service::Service;

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
    /// TLS refused the server (its certificate, most often): trying again changes nothing.
    #[error("{0}")]
    Tls(String),
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

/// The TCP connector under TLS for `https://` endpoints: direct, or through an HTTP CONNECT
/// tunnel when the environment's proxy settings say so for the destination.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl ProxyConnector {
    /// Proxy settings from `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` (and lower-case forms).
    pub(crate) fn from_env(connect_timeout: Duration) -> Self {
        Self::new(connect_timeout, Matcher::from_env())
    }

    /// With the given proxy rules.
    pub(crate) fn new(connect_timeout: Duration, proxies: Matcher) -> Self {
        let mut direct = http_connector(connect_timeout);
        // Plain TCP under the TLS layer, which checks the scheme itself.
        direct.enforce_http(false);
        ProxyConnector {
            direct,
            proxies: Arc::new(proxies),
        }
    }
}

impl Service<Uri> for ProxyConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        // Only HTTPS goes through a tunnel: plain HTTP here is a loopback or test endpoint,
        // and a proxy would want absolute-form requests for it, not CONNECT.
        let via = match dst.scheme_str() {
            Some("https") => self.proxies.intercept(&dst),
            _ => None,
        };
        let Some(via) = via else {
            let connecting = self.direct.call(dst);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        if via.uri().scheme_str() != Some("http") {
            let proxy = format!(
                "{}://{}",
                via.uri().scheme_str().unwrap_or(""),
                via.uri().authority().map_or("", |a| a.host())
            );
            return Box::pin(async move {
                Err(format!(
                    "proxy {proxy} is not supported: give HTTPS_PROXY as http://host:port (the tunnel is TLS end to end)"
                )
                .into())
            });
        }
        let mut tunnel = Tunnel::new(via.uri().clone(), self.direct.clone());
        if let Some(auth) = via.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(async move { tunnel.call(dst).await.map_err(Into::into) })
    }
}

/// An HTTPS client (rustls on ring, the system's roots; `http://` allowed for loopback
/// fakes) over [`ProxyConnector::from_env`].
pub(crate) fn https_connector(
    connect_timeout: Duration,
) -> Result<hyper_rustls::HttpsConnector<ProxyConnector>, std::io::Error> {
    https_connector_with(ProxyConnector::from_env(connect_timeout))
}

fn https_connector_with(
    tcp: ProxyConnector,
) -> Result<hyper_rustls::HttpsConnector<ProxyConnector>, std::io::Error> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp))
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
            } else if tls_refused(&e) {
                FetchError::Tls(root_cause(&e))
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
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Empty;
    use std::net::TcpListener;

    /// A port on 127.0.0.1 with nothing listening.
    fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    /// GETs `url` over a client with the given proxy rules; the error text on failure.
    fn get(url: &str, proxies: Matcher) -> Result<StatusCode, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let connector =
                https_connector_with(ProxyConnector::new(Duration::from_secs(2), proxies))
                    .map_err(|e| e.to_string())?;
            let client = client(connector);
            let req = Request::get(url).body(Empty::<Bytes>::new()).unwrap();
            send(&client, req, 1024, Duration::from_secs(5))
                .await
                .map(|f| f.status)
                .map_err(|e| e.to_string())
        })
    }

    #[test]
    fn https_endpoints_are_dialled() {
        // A TCP connector that enforces http:// refuses every https:// URL before dialling
        // ("invalid URL, scheme is not http"); this one must get as far as the socket.
        // Proxy routing, credentials and NO_PROXY are tested on the binary (tests/gcp.rs).
        let e = get(
            &format!("https://127.0.0.1:{}/v1/token", closed_port()),
            Matcher::builder().build(),
        )
        .unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }

    #[test]
    fn an_https_proxy_is_refused_with_the_fix() {
        let e = get(
            "https://sts.example.invalid/v1/token",
            Matcher::builder().https("https://127.0.0.1:9").build(),
        )
        .unwrap_err();
        assert!(e.contains("give HTTPS_PROXY as http://host:port"), "{e}");
    }
}
