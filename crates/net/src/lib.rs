//! The one network layer of kubelet-keyring: every HTTP request a backend makes itself goes
//! through a [`Client`] of this crate, on hyper (the stack the AWS SDK already brings).
//!
//! The contract, for every request:
//!
//! * **Proxy.** `https://` endpoints honour `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY` (upper
//!   or lower case, curl's rules, through an HTTP CONNECT tunnel; see [`proxy`]). Link-local
//!   metadata endpoints (GCE metadata, Azure IMDS) use [`Route::Direct`]: plain HTTP, never a
//!   proxy, as every cloud SDK does.
//! * **Trust.** One policy: rustls on ring with the system's roots ([`tls`]).
//! * **Time.** A connect timeout and a per-attempt timeout ([`Policy`]), every attempt cut
//!   to what is left of the invocation's [`Deadline`]; retries with backoff and jitter for
//!   transient failures, only while they fit before it ([`retry`]).
//! * **Size.** Every body is read through a cap ([`Policy::max_body`]).
//! * **Secrets.** Bodies are handed to the caller and never logged, quoted in errors or shown
//!   by `Debug`; error texts carry the innermost cause (`Connection refused`), never a body.
//! * **No hot-path cost.** Nothing here runs before a backend decides it must go to the
//!   network: a cache hit or a docker-config answer builds no client, TLS configuration or
//!   runtime. The TLS configuration is built once per process, on the first `https://` call.
//! * No redirects are followed (a redirect could carry a credential elsewhere); HTTP/1.1.
//!
//! **Where the AWS SDK differs.** ECR's calls go through the SDK's own smithy client (hyper
//! too), configured from this policy in `keyring-ecr`: [`Policy::DEFAULT`]'s connect timeout
//! and number of attempts, the system's roots on ring, the same proxy variables
//! (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read by smithy's own matcher with
//! the same rules), [`Policy::DEFAULT`]'s body cap on every answer the SDK reads (a wrapper
//! of its HTTP client), and the invocation deadline over the whole call. What differs: the SDK
//! retries with its own standard strategy (exponential backoff with full jitter and a
//! client-side token bucket) instead of [`retry`]; its attempt timeout is 5 s (one small JSON
//! call) under a 15 s operation timeout; its IMDS client has 1 s timeouts and 2 attempts; and
//! `AWS_CA_BUNDLE` replaces the system's roots there (as in the Go SDK). The SDK is kept for ECR because SigV4 signing and the credential chain (profiles,
//! `credential_process`, SSO, web identity, ECS/EKS Pod Identity, IMDSv2) are most of its
//! value; its HTTP is hyper either way, so the binary still has one HTTP stack.
//!
//! [`jwt`] signs the RS256 client assertions those token endpoints take.
//!
//! Users: `keyring-gcp` (metadata server, OAuth token endpoints for key files and gcloud
//! credentials, STS and IAM credentials, `google-dockercfg-url`) and `keyring-acr` (IMDS,
//! Entra ID, the registry's challenge and token exchange, through [`Blocking`]).

pub mod jwt;
pub mod proxy;
pub mod retry;
pub mod tls;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use keyring_api::Deadline;

pub use http;
pub use proxy::ProxyConnector;
pub use retry::Backoff;
pub use tls::TlsSetupError;

/// A request as this crate sends it.
pub type Req = Request<Full<Bytes>>;

/// The User-Agent of every request we make ourselves; backends may add a suffix.
pub const USER_AGENT: &str = concat!("kubelet-keyring/", env!("CARGO_PKG_VERSION"));

/// Timeouts, retries and size cap of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// TCP connect (to the endpoint, or to the proxy).
    pub connect: Duration,
    /// One attempt: connect, request, response and body; cut to the deadline.
    pub attempt: Duration,
    /// Largest body read.
    pub max_body: usize,
    /// Retries of transient failures.
    pub backoff: Backoff,
    /// Whether a timed-out attempt is transient. Off for endpoints that black-hole when
    /// absent (metadata servers off their cloud), where waiting again only eats the deadline.
    pub retry_timeouts: bool,
}

impl Policy {
    /// Cloud APIs over the internet (token endpoints, registries).
    pub const DEFAULT: Policy = Policy {
        connect: Duration::from_secs(3),
        attempt: Duration::from_secs(10),
        max_body: 1 << 20,
        backoff: Backoff {
            attempts: 3,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(2),
            min_attempt: Duration::from_millis(500),
        },
        retry_timeouts: true,
    };

    /// Link-local metadata endpoints, which answer in milliseconds when they are there at all.
    pub const LINK_LOCAL: Policy = Policy {
        connect: Duration::from_secs(2),
        attempt: Duration::from_secs(3),
        max_body: 1 << 20,
        backoff: Backoff {
            attempts: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            min_attempt: Duration::from_millis(200),
        },
        retry_timeouts: false,
    };

    /// The same with another body cap.
    pub const fn with_max_body(self, max_body: usize) -> Policy {
        Policy { max_body, ..self }
    }

    /// The same with another number of attempts.
    pub const fn with_attempts(self, attempts: u32) -> Policy {
        Policy {
            backoff: Backoff {
                attempts,
                ..self.backoff
            },
            ..self
        }
    }
}

/// How a client reaches its endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Plain HTTP, never through a proxy: link-local metadata endpoints.
    Direct,
    /// `https://` (or loopback `http://`), through the environment's proxy settings.
    Proxied,
}

/// A response: status, headers and the (capped) body.
pub struct Fetched {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most [`Policy::max_body`] bytes. May hold a secret: never show it.
    pub body: Bytes,
    /// How many attempts it took.
    pub attempts: u32,
}

impl Fetched {
    /// `Retry-After` in seconds, when sent as a number.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetched")
            .field("status", &self.status)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

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

/// The usual transient statuses: 408, 429 and 5xx except 501/505.
pub fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Never retry on a status.
pub fn never(_: StatusCode) -> bool {
    false
}

/// 5xx and 429: the metadata servers' and Google APIs' "try again".
pub fn server_error_or_throttled(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

enum Inner {
    Plain(HyperClient<HttpConnector, Full<Bytes>>),
    Tls(HyperClient<hyper_rustls::HttpsConnector<ProxyConnector>, Full<Bytes>>),
    Pinned(HyperClient<hyper_rustls::HttpsConnector<proxy::PinnedConnector>, Full<Bytes>>),
}

/// An HTTP client with a [`Policy`] and a [`Route`]. Cheap to build for plain HTTP; the
/// first [`Route::Proxied`] client of a process loads the system's roots. Must be used
/// inside a tokio runtime (with I/O and time enabled).
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
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls::client_config()?).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Client {
            inner: Inner::Tls(builder().build(https)),
            policy,
        })
    }

    /// A [`Route::Proxied`] client that trusts only `roots` (a cluster's own CA, for its API
    /// server) instead of the system's roots.
    pub fn with_roots(
        policy: Policy,
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Client, TlsSetupError> {
        let mut store = rustls::RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(roots);
        if added == 0 {
            return Err(TlsSetupError::new("no usable CA certificate".into()));
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::config_with_roots(store)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector::from_env(policy.connect));
        Ok(Client {
            inner: Inner::Tls(builder().build(https)),
            policy,
        })
    }

    /// An `https://` client that dials `ip` whatever the URL's host (the TLS server name) and
    /// trusts only `roots`, never through a proxy: for an endpoint whose address and CA the
    /// caller knows (a cluster's API server), as the Go plugins do with a custom dialer.
    pub fn pinned(
        policy: Policy,
        ip: std::net::IpAddr,
        roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    ) -> Result<Client, TlsSetupError> {
        let mut store = rustls::RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(roots);
        if added == 0 {
            return Err(TlsSetupError::new("no usable CA certificate".into()));
        }
        let config = tls::config_with_roots(store)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
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

/// A current-thread tokio runtime for a synchronous caller (`Backend::provide` is
/// synchronous). Built per call that goes to the network, never on a cache hit.
///
/// Dropped without waiting for its blocking pool, whose only work is hyper's name lookups
/// (getaddrinfo): after an answer, the idle resolver thread need not be woken and joined
/// first (0.3-0.5 ms of a cold ECR fetch, `bench/ecr.sh`), and after a timeout a lookup that
/// still hangs must not hold the invocation past its deadline (a plain runtime drop waits for
/// it without bound).
pub struct Blocking {
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
}

impl Blocking {
    /// A runtime with I/O and time.
    pub fn new() -> std::io::Result<Blocking> {
        Ok(Blocking {
            rt: Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()?,
            ),
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime is taken only when dropped")
    }

    /// Runs `f` to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt().block_on(f)
    }

    /// Enters the runtime's context (hyper clients need it to be built and dropped).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.rt().enter()
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// `application/x-www-form-urlencoded` of `pairs` (also a URL query).
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A URL fit for a message: `scheme://host[:port]/path` without user-info, query or fragment,
/// which can carry credentials or signatures.
pub fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// `Retry-After` in seconds, when sent as a number.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn classify(e: &hyper_util::client::legacy::Error) -> FetchError {
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

#[cfg(test)]
mod tests;
