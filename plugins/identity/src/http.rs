//! HTTP for this backend, on [`keyring_net`] (hyper, rustls on ring, the system's roots,
//! `HTTPS_PROXY`/`NO_PROXY`) like every backend's own calls.
//!
//! * One current-thread runtime ([`keyring_net::Blocking`]) per `provide`, built only on a
//!   cache miss of an image a rule serves: a hit builds no runtime, client or TLS config.
//! * One budget: [`TOTAL_BUDGET`] cut to the invocation's deadline, shared by every request
//!   of the exchange (metadata, login, read), each attempt bounded by the policy; a silent
//!   endpoint is a one-line [`Error::Deadline`] or [`Error::Transport`], never a hang.
//! * Tokens go only over TLS: [`Http::send`] refuses a `http://` URL on the proxied route
//!   (every endpoint that receives a token or credential) unless its host is a loopback
//!   address **and** [`PLAIN_HTTP_ENV`] is `1` in a debug build, the explicit test setting; a
//!   release build never reads it. The link-local metadata endpoints (GCE, Azure IMDS) are
//!   plain HTTP on the direct route, as every cloud SDK reaches them; they receive no token.
//! * No redirects; bodies capped and never logged; a body is never quoted in an error.

use std::time::Duration;

use keyring_api::{Deadline, InvalidSetting, Secret};
use keyring_net::session::{self, Session};
use keyring_net::{Client, Failed, FetchError, Policy, Route};

use crate::error::{Error, Stage};

pub use keyring_net::session::Body;

/// The whole exchange of one `provide`, every request and retry.
pub const TOTAL_BUDGET: Duration = Duration::from_secs(30);

/// Test builds only: `1` lets tokens go over plain `http://` to a loopback address.
pub const PLAIN_HTTP_ENV: &str = "KUBELET_KEYRING_TEST_PLAIN_HTTP";

/// Endpoints that receive a token.
const POLICY: Policy = Policy::DEFAULT.with_max_body(256 << 10);
/// Link-local metadata endpoints.
const POLICY_METADATA: Policy = Policy::LINK_LOCAL.with_max_body(64 << 10);

/// One request.
pub struct Call<'a> {
    /// For errors.
    pub stage: Stage,
    /// The URL; shown in errors without query or user-info.
    pub url: &'a str,
    /// Headers (may hold secrets: never logged).
    pub headers: &'a [(&'a str, &'a str)],
    /// Method and body.
    pub body: Body<'a>,
    /// `Direct` for link-local metadata endpoints, `Proxied` for the rest.
    pub route: Route,
    /// The likely fix when no answer comes.
    pub hint: &'a str,
}

/// A response: status and body (which may hold a secret: never show it).
pub struct Reply {
    /// The status.
    pub status: u16,
    /// The body.
    pub body: Secret<Vec<u8>>,
}

/// The [`keyring_net::session::Session`] of one `provide`.
pub struct Http {
    session: Session,
}

impl Http {
    /// The runtime for one `provide`: [`TOTAL_BUDGET`], cut to the invocation's `deadline`.
    pub fn new(deadline: Deadline) -> Result<Http, Error> {
        let session = Session::new(
            deadline.cap(TOTAL_BUDGET),
            POLICY_METADATA,
            POLICY,
            crate::USER_AGENT,
        )
        .map_err(|e| Error::Setup(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Http { session })
    }

    /// Every proxied request of this `provide` trusts only `roots` (PEM certificates).
    pub fn trust_only(
        &mut self,
        roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    ) -> Result<(), Error> {
        let client = {
            let _rt = self.session.enter();
            Client::with_roots(POLICY, roots)?
        };
        self.session.set_client(Route::Proxied, client);
        Ok(())
    }

    /// Sends the call, retrying transient failures within the deadline; the response is
    /// returned whatever its status.
    pub fn send(&self, call: &Call<'_>) -> Result<Reply, Error> {
        allowed(call.url, call.route)?;
        let mut headers = Vec::with_capacity(call.headers.len() + 1);
        headers.push(("accept", "application/json"));
        headers.extend_from_slice(call.headers);
        let fetched = self
            .session
            .send(&session::Request {
                url: call.url,
                headers: &headers,
                body: call.body,
                route: call.route,
                retry_status: &keyring_net::transient,
            })
            .map_err(|failed| self.failed(call, failed))?;
        Ok(Reply {
            status: fetched.status.as_u16(),
            body: Secret::new(fetched.body.to_vec()),
        })
    }

    fn failed(&self, call: &Call<'_>, failed: Failed) -> Error {
        let url = keyring_net::shown_url(call.url);
        match failed.cause {
            FetchError::OutOfTime => Error::Deadline {
                stage: call.stage,
                url,
                elapsed_ms: self.session.elapsed().as_millis(),
                hint: call.hint.to_string(),
            },
            FetchError::TlsSetup(e) => Error::Tls(e),
            _ => Error::Transport {
                stage: call.stage,
                url,
                attempts: failed.attempts,
                hint: call.hint.to_string(),
                source: failed,
            },
        }
    }
}

/// Whether a token may be sent to `url` on `route` (see the module docs).
fn allowed(url: &str, route: Route) -> Result<(), Error> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split('/').next().unwrap_or_default();
    let ok = match (route, scheme) {
        (Route::Direct, "http") => true,
        (Route::Proxied, "https") => true,
        (Route::Proxied, "http") => is_loopback(authority) && plain_http_for_tests(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(InvalidSetting::new(
            "identity endpoint",
            format!(
                "{} is refused: tokens and credentials go only over https://",
                keyring_net::shown_url(url)
            ),
        )
        .into())
    }
}

/// The test setting: only a debug build reads [`PLAIN_HTTP_ENV`].
fn plain_http_for_tests() -> bool {
    cfg!(debug_assertions) && std::env::var_os(PLAIN_HTTP_ENV).is_some_and(|v| v == "1")
}

/// Whether a URL authority (`host[:port]`) names a loopback address.
pub fn is_loopback(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A request `what` for messages: the URL without query or user-info.
pub fn shown(url: &str) -> String {
    keyring_net::shown_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_recognised_in_every_spelling() {
        for a in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:1",
            "[::1]:443",
            "::1",
            "127.9.9.9",
        ] {
            assert!(is_loopback(a), "{a}");
        }
        for a in [
            "10.0.0.1",
            "example.com",
            "127.0.0.1.nip.io",
            "[::2]:1",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(a), "{a}");
        }
    }

    #[test]
    fn tokens_go_only_over_tls_except_to_loopback_under_the_test_setting() {
        assert!(allowed("https://sts.example.com/token", Route::Proxied).is_ok());
        assert!(allowed("http://sts.example.com/token", Route::Proxied).is_err());
        assert!(allowed("ftp://sts.example.com/token", Route::Proxied).is_err());
        assert!(allowed("http://169.254.169.254/x", Route::Direct).is_ok());
        assert!(allowed("https://169.254.169.254/x", Route::Direct).is_err());
        // The unit tests never set the variable: loopback http is refused too.
        if std::env::var_os(PLAIN_HTTP_ENV).is_none() {
            let e = allowed("http://127.0.0.1:1/token?secret=1", Route::Proxied).unwrap_err();
            assert_eq!(
                e.to_string(),
                "identity endpoint: http://127.0.0.1:1/token is refused: tokens and credentials go only over https://"
            );
        }
    }
}
