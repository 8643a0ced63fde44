//! The TCP connector under TLS: direct, or through an HTTP CONNECT tunnel when the
//! environment's proxy settings say so for the destination.
//!
//! The rules are hyper-util's [`Matcher::from_env`] (curl's): `HTTPS_PROXY` for `https://`,
//! `HTTP_PROXY` for `http://` (ignored when `REQUEST_METHOD` is set, as in a CGI), `ALL_PROXY`
//! as the fallback, `NO_PROXY` for exceptions, each upper or lower case. Only `https://`
//! destinations are tunnelled: plain HTTP here is a link-local metadata endpoint or a
//! loopback test endpoint, and a proxy would want absolute-form requests for it, not CONNECT.
//! The tunnel is TLS end to end; the proxy sees the host and port only, and its own
//! credentials (`http://user:pass@proxy`) travel in `Proxy-Authorization` and nowhere else.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A plain-TCP connector with a connect timeout.
pub(crate) fn tcp(connect_timeout: Duration, enforce_http: bool) -> HttpConnector {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(connect_timeout));
    c.set_nodelay(true);
    c.enforce_http(enforce_http);
    c
}

/// Direct TCP, or a CONNECT tunnel through the proxy the rules name for the destination.
#[derive(Clone)]
pub struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

impl ProxyConnector {
    /// Proxy settings from the environment (see the module docs).
    pub fn from_env(connect_timeout: Duration) -> Self {
        Self::new(connect_timeout, Matcher::from_env())
    }

    /// With the given proxy rules.
    pub fn new(connect_timeout: Duration, proxies: Matcher) -> Self {
        ProxyConnector {
            // Plain TCP under the TLS layer, which checks the scheme itself.
            direct: tcp(connect_timeout, false),
            proxies: Arc::new(proxies),
        }
    }

    /// The proxy `dst` goes through, `scheme://host:port` without credentials; `None` for a
    /// direct connection. For messages and tests.
    pub fn proxy_for(&self, dst: &Uri) -> Option<String> {
        let via = self.intercept(dst)?;
        let u = via.uri();
        Some(format!(
            "{}://{}{}",
            u.scheme_str().unwrap_or(""),
            u.host().unwrap_or(""),
            u.port_u16().map(|p| format!(":{p}")).unwrap_or_default()
        ))
    }
}

impl ProxyConnector {
    /// The proxy the rules name for `dst`; only `https://` destinations are tunnelled.
    fn intercept(&self, dst: &Uri) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        match dst.scheme_str() {
            Some("https") => self.proxies.intercept(dst),
            _ => None,
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
        let Some(via) = self.intercept(&dst) else {
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

/// TCP to one fixed address whatever the URL's host, which stays the TLS server name: an
/// endpoint reached at an address the caller resolved itself (the AKS identity binding,
/// dialled at the API server's IP under its SNI name), never through a proxy.
#[derive(Clone)]
pub struct PinnedConnector {
    ip: std::net::IpAddr,
    tcp: HttpConnector,
}

impl PinnedConnector {
    /// Connects to `ip` (the URL's port, 443 by default) with `connect_timeout`.
    pub fn new(ip: std::net::IpAddr, connect_timeout: Duration) -> Self {
        PinnedConnector {
            ip,
            tcp: tcp(connect_timeout, true),
        }
    }
}

impl Service<Uri> for PinnedConnector {
    type Response = <HttpConnector as Service<Uri>>::Response;
    type Error = <HttpConnector as Service<Uri>>::Error;
    type Future = <HttpConnector as Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.tcp.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let port = dst.port_u16().unwrap_or(443);
        let addr = std::net::SocketAddr::new(self.ip, port);
        // An address is always a valid authority.
        let uri = Uri::builder()
            .scheme("http")
            .authority(addr.to_string())
            .path_and_query("/")
            .build()
            .unwrap_or(dst);
        self.tcp.call(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(https: &str, no: &str) -> ProxyConnector {
        ProxyConnector::new(
            Duration::from_secs(1),
            Matcher::builder().https(https).no(no).build(),
        )
    }

    #[test]
    fn no_proxy_and_plain_http_go_direct() {
        let p = rules(
            "http://u:pw@127.0.0.1:3128",
            "metadata.google.internal,.corp.example",
        );
        let via = |u: &str| p.proxy_for(&u.parse().unwrap());
        assert_eq!(
            via("https://sts.googleapis.com/v1/token").as_deref(),
            Some("http://127.0.0.1:3128"),
            "credentials are not shown"
        );
        assert_eq!(via("https://metadata.google.internal/x"), None);
        assert_eq!(via("https://acr.corp.example/v2/"), None);
        // Plain HTTP (IMDS, metadata, loopback fakes) is never tunnelled.
        assert_eq!(via("http://169.254.169.254/metadata"), None);
    }
}
