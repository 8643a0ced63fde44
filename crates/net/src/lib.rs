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
//!   to what is left of the invocation's [`Deadline`](keyring_api::Deadline); retries with
//!   backoff and jitter for transient failures, only while they fit before it ([`retry`]).
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
//! the same rules; as Go reads them, without `ALL_PROXY`, under `ecr-credential-provider`'s
//! name), [`Policy::DEFAULT`]'s body cap on every answer the SDK reads (a wrapper of its HTTP
//! client), and the invocation deadline over the whole call. What differs: the SDK retries
//! with its own standard strategy (exponential backoff with full jitter and a client-side
//! token bucket) instead of [`retry`]; its attempt timeout is upstream's 30 s, all attempts
//! within what the invocation has left (the credentials may take all of it but 10 s); its
//! IMDS client has 1 s timeouts and 2 attempts; and `AWS_CA_BUNDLE` replaces the system's
//! roots there (as in the Go SDK). The SDK is kept for ECR because SigV4 signing and the credential chain (profiles,
//! `credential_process`, SSO, web identity, ECS/EKS Pod Identity, IMDSv2) are most of its
//! value; its HTTP is hyper either way, so the binary still has one HTTP stack.
//!
//! [`jwt`] signs the RS256 client assertions those token endpoints take.
//!
//! [`session`] holds what a synchronous backend's call needs around a [`Client`]: the
//! runtime ([`Blocking`]), a client per route built on first use, one deadline, requests as
//! data.
//!
//! Users: `keyring-gcp` (metadata server, OAuth token endpoints for key files and gcloud
//! credentials, STS and IAM credentials, `google-dockercfg-url`, through [`Blocking`]),
//! `keyring-acr` (IMDS, Entra ID, the registry's challenge and token exchange, through a
//! [`session::Session`]) and `keyring-identity` (metadata endpoints, token exchanges).

mod blocking;
mod client;
mod error;
pub mod jwt;
pub mod proxy;
pub mod retry;
pub mod session;
pub mod tls;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;

pub use blocking::Blocking;
pub use client::Client;
pub use error::{root_cause, Failed, FetchError};
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

/// The usual transient statuses: 408, 429, 500, 502, 503 and 504 (not 501 or 505, which
/// another attempt cannot change, nor the rarer 506-511).
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

#[cfg(test)]
mod tests;
