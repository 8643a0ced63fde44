//! The HTTP client: hyper on the route's connector (plain, proxied TLS, pinned TLS), each
//! attempt bounded, transient failures retried within the deadline, bodies capped.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use keyring_api::Deadline;

use crate::error::{classify, root_cause, Failed, FetchError};
use crate::proxy::{self, ProxyConnector};
use crate::retry;
use crate::tls::{self, TlsSetupError};
use crate::{Fetched, Policy, Req, Route};

#[derive(Clone)]
enum Inner {
    Plain(HyperClient<HttpConnector, Full<Bytes>>),
    Tls(HyperClient<hyper_rustls::HttpsConnector<ProxyConnector>, Full<Bytes>>),
    Pinned(HyperClient<hyper_rustls::HttpsConnector<proxy::PinnedConnector>, Full<Bytes>>),
}

/// An HTTP client with a [`Policy`] and a [`Route`]. Cheap to build for plain HTTP; the
/// first [`Route::Proxied`] client of a process loads the system's roots. Must be used
/// inside a tokio runtime (with I/O and time enabled).
#[derive(Clone)]
pub struct Client {
    inner: Inner,
    policy: Policy,
}

impl Client {
    /// A client for `route`; proxy settings are read from the environment now.
    pub fn new(route: Route, policy: Policy) -> Result<Client, TlsSetupError> {
        Ok(match route {
            Route::Direct => Self::direct(policy),
            Route::Proxied => Self::with_proxies(policy, ProxyConnector::from_env(policy.connect))?,
        })
    }

    /// A plain-HTTP client without proxy ([`Route::Direct`]).
    pub fn direct(policy: Policy) -> Client {
        Client {
            inner: Inner::Plain(builder().build(proxy::tcp(policy.connect, true))),
            policy,
        }
    }

    /// A [`Route::Proxied`] client with the given proxy rules (tests, or a caller that read
    /// them itself).
    pub fn with_proxies(policy: Policy, tcp: ProxyConnector) -> Result<Client, TlsSetupError> {
        let config = (*tls::client_config()?).clone();
        Ok(Self::proxied(policy, config, tcp))
    }

    /// A [`Route::Proxied`] client that trusts only `roots` (a cluster's own CA, for its API
    /// server) instead of the system's roots.
    pub fn with_roots(
        policy: Policy,
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Client, TlsSetupError> {
        let config = tls::config_trusting_only(roots)?;
        Ok(Self::proxied(
            policy,
            config,
            ProxyConnector::from_env(policy.connect),
        ))
    }

    /// A [`Route::Proxied`] client on `tcp` speaking TLS with `config`.
    fn proxied(policy: Policy, config: rustls::ClientConfig, tcp: ProxyConnector) -> Client {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Client {
            inner: Inner::Tls(builder().build(https)),
            policy,
        }
    }

    /// An `https://` client that dials `ip` whatever the URL's host (the TLS server name) and
    /// trusts only `roots`, never through a proxy: for an endpoint whose address and CA the
    /// caller knows (a cluster's API server), as the Go plugins do with a custom dialer.
    pub fn pinned(
        policy: Policy,
        ip: std::net::IpAddr,
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Client, TlsSetupError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::config_trusting_only(roots)?)
            .https_only()
            .enable_http1()
            .wrap_connector(proxy::PinnedConnector::new(ip, policy.connect));
        Ok(Client {
            inner: Inner::Pinned(builder().build(https)),
            policy,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// One attempt: sends `req` and reads at most `limit` body bytes, all within `timeout`.
    pub async fn send_once(
        &self,
        req: Req,
        timeout: Duration,
        limit: usize,
    ) -> Result<Fetched, FetchError> {
        let exchange = async {
            let resp = match &self.inner {
                Inner::Plain(c) => c.request(req).await,
                Inner::Tls(c) => c.request(req).await,
                Inner::Pinned(c) => c.request(req).await,
            }
            .map_err(|e| classify(&e))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, limit)
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
            Ok(Fetched {
                status: parts.status,
                headers: parts.headers,
                body,
                attempts: 1,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
    }

    /// Sends the request `make` builds (once per attempt), retrying transient failures and
    /// the statuses `retry_status` names while the policy and `deadline` allow. The final
    /// response is returned whatever its status.
    pub async fn send(
        &self,
        deadline: Deadline,
        make: &(dyn Fn() -> Result<Req, http::Error> + Sync),
        retry_status: &(dyn Fn(StatusCode) -> bool + Sync),
    ) -> Result<Fetched, Failed> {
        self.send_capped(deadline, make, retry_status, self.policy.max_body)
            .await
    }

    /// [`Client::send`] with a body cap of its own for this request.
    pub async fn send_capped(
        &self,
        deadline: Deadline,
        make: &(dyn Fn() -> Result<Req, http::Error> + Sync),
        retry_status: &(dyn Fn(StatusCode) -> bool + Sync),
        limit: usize,
    ) -> Result<Fetched, Failed> {
        let backoff = self.policy.backoff;
        let mut attempt = 0;
        loop {
            let remaining = deadline.remaining();
            if attempt == 0 && remaining < backoff.min_attempt {
                return Err(Failed {
                    cause: FetchError::OutOfTime,
                    attempts: 0,
                });
            }
            attempt += 1;
            let req = make().map_err(|e| Failed {
                cause: FetchError::Request(e.to_string()),
                attempts: attempt - 1,
            })?;
            if matches!(self.inner, Inner::Plain(_)) && req.uri().scheme_str() != Some("http") {
                return Err(Failed {
                    cause: FetchError::Request(
                        "this endpoint is reached directly and must be http://".into(),
                    ),
                    attempts: attempt - 1,
                });
            }
            let result = self
                .send_once(req, self.policy.attempt.min(remaining), limit)
                .await;
            let (retry, retry_after) = match &result {
                Ok(f) => (retry_status(f.status), f.retry_after()),
                Err(e) => (e.is_transient(&self.policy), None),
            };
            let wait = if retry {
                backoff.wait(attempt, deadline.remaining(), retry_after, retry::jitter())
            } else {
                None
            };
            let Some(wait) = wait else {
                return match result {
                    Ok(mut f) => {
                        f.attempts = attempt;
                        Ok(f)
                    }
                    Err(cause) => Err(Failed {
                        cause,
                        attempts: attempt,
                    }),
                };
            };
            match &result {
                Ok(f) => {
                    tracing::debug!(status = %f.status, attempt, ?wait, "transient status; retrying")
                }
                Err(e) => tracing::debug!(attempt, ?wait, "{e}; retrying"),
            }
            tokio::time::sleep(wait).await;
        }
    }
}

fn builder() -> hyper_util::client::legacy::Builder {
    let mut b = HyperClient::builder(TokioExecutor::new());
    // One process, a handful of sequential requests: no idle connections kept around.
    b.pool_max_idle_per_host(0);
    b
}
