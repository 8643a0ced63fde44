//! HTTP for this backend, on [`keyring_net`] (hyper, rustls with ring, the system's roots)
//! like every backend's own calls.
//!
//! [`Backend::provide`](keyring_api::Backend::provide) is synchronous and makes at most
//! three or four sequential requests; they run in one [`keyring_net::session::Session`]
//! (a current-thread runtime, a client per route, one deadline) that [`Http::new`] builds
//! only when an ACR image misses the cache. ureq was used before; moving to keyring-net leaves one HTTP stack in the binary
//! (hyper, which the AWS SDK brings anyway), one proxy matcher and one trust-store policy.
//!
//! Rules here, for every request:
//! * one deadline for the whole `provide` ([`TOTAL_BUDGET`], cut to the invocation's
//!   deadline), each attempt bounded by [`PER_ATTEMPT`] and a short connect timeout;
//! * up to [`MAX_ATTEMPTS`] attempts on transient failures (timeouts, connection errors and
//!   the statuses the caller names), with backoff, jitter, and `Retry-After` honoured when it
//!   fits the deadline;
//! * no redirects (a redirect could carry a credential elsewhere; the 3xx is reported);
//! * bodies read up to [`MAX_BODY`], never logged;
//! * IMDS is reached without proxy (it is link-local, plain HTTP); other endpoints honour
//!   `HTTPS_PROXY`/`NO_PROXY` as the Go plugin does.

use std::time::Duration;

use keyring_api::Deadline;
use keyring_net::http::header;
use keyring_net::session::{self, Session};
use keyring_net::{Client, Failed, FetchError, Policy};

use crate::error::{Error, Stage};

/// Sent on every request.
pub const USER_AGENT: &str = concat!("kubelet-keyring/", env!("CARGO_PKG_VERSION"), " (acr)");
/// The whole `provide`, all stages and retries.
pub const TOTAL_BUDGET: Duration = Duration::from_secs(40);
/// One attempt of one request.
pub const PER_ATTEMPT: Duration = Duration::from_secs(10);
/// TCP (and proxy) connect.
pub const CONNECT: Duration = Duration::from_secs(3);
/// Connect to IMDS, which answers in microseconds when it is there at all.
pub const CONNECT_IMDS: Duration = Duration::from_secs(2);
/// Attempts per request.
pub const MAX_ATTEMPTS: u32 = 3;
/// Largest response body read.
pub const MAX_BODY: u64 = 1 << 20;

/// Registry and Entra ID requests.
const POLICY: Policy = Policy {
    connect: CONNECT,
    attempt: PER_ATTEMPT,
    max_body: MAX_BODY as usize,
    ..Policy::DEFAULT.with_attempts(MAX_ATTEMPTS)
};
/// IMDS requests.
const POLICY_IMDS: Policy = Policy {
    connect: CONNECT_IMDS,
    ..POLICY
};

/// The runtime, the clients and the deadline of one `provide` ([`Session`]).
pub struct Http {
    session: Session,
    budget: Duration,
}

/// Which client a request uses: [`Route::Direct`] for IMDS, [`Route::Proxied`] for the rest.
pub use keyring_net::Route;

/// A request body: GET, or a POST of a form (the only kinds this backend sends).
pub use keyring_net::session::Body;

/// One request, possibly retried.
pub struct Call<'a> {
    /// For errors.
    pub stage: Stage,
    /// The URL without query; safe to show.
    pub url: &'a str,
    /// Query parameters (never secrets).
    pub query: &'a [(&'a str, &'a str)],
    /// Extra headers.
    pub headers: &'a [(&'a str, &'a str)],
    /// Method and body.
    pub body: Body<'a>,
    /// Which client.
    pub route: Route,
    /// Statuses worth another attempt.
    pub retry_status: fn(u16) -> bool,
    /// The hint for transport failures and deadlines.
    pub hint: &'a str,
}

/// A response.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// All `WWW-Authenticate` values.
    pub www_authenticate: Vec<String>,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<Duration>,
    /// The body, at most [`MAX_BODY`] bytes. May hold a secret: never show it.
    pub body: keyring_api::Secret<Vec<u8>>,
}

impl Http {
    /// The runtime and clients for one `provide` call: [`TOTAL_BUDGET`] from now, cut to
    /// the invocation's `deadline` (which the cache lock wait has already drawn on).
    pub fn new(deadline: Deadline) -> Result<Self, Error> {
        Self::with_budget(deadline.cap(TOTAL_BUDGET))
    }

    /// The same with another total budget (tests).
    pub fn with_budget(budget: Duration) -> Result<Self, Error> {
        let session = Session::new(budget, POLICY_IMDS, POLICY, USER_AGENT)
            .map_err(|e| Error::Setup(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Http { session, budget })
    }

    /// A client whose every request dials `ip` (the URL's host stays the TLS server name)
    /// and trusts only `roots` (a cluster CA, not the system's roots), never through a proxy.
    /// Upstream does the same with a custom dialer and `RootCAs`.
    pub fn pinned(
        deadline: Deadline,
        ip: std::net::IpAddr,
        roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    ) -> Result<Self, Error> {
        let mut http = Self::new(deadline)?;
        let client = Client::pinned(POLICY, ip, roots)
            .map_err(|e| Error::Setup(format!("identity binding: {e}")))?;
        http.session.set_client(Route::Direct, client.clone());
        http.session.set_client(Route::Proxied, client);
        Ok(http)
    }

    /// What is left of this `provide`'s budget, for a further set of clients.
    pub fn deadline(&self) -> Deadline {
        self.session.deadline()
    }

    /// Sends the call, retrying transient failures within the deadline.
    pub fn send(&self, call: &Call<'_>) -> Result<Reply, Error> {
        let url = if call.query.is_empty() {
            call.url.to_string()
        } else {
            format!("{}?{}", call.url, keyring_net::form(call.query))
        };
        let retry = call.retry_status;
        let fetched = self
            .session
            .send(&session::Request {
                url: &url,
                headers: call.headers,
                body: call.body,
                route: call.route,
                retry_status: &|s| retry(s.as_u16()),
            })
            .map_err(|failed| match failed.cause {
                FetchError::OutOfTime => self.deadline_error(call),
                // No trust store is the node's configuration (no CA certificates, or
                // SSL_CERT_FILE naming none), not an authority that could not be reached.
                FetchError::TlsSetup(e) => {
                    Error::Setup(format!("{} {}: {e}", call.stage, call.url))
                }
                _ => self.transport_error(call, failed),
            })?;
        let www_authenticate = fetched
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        Ok(Reply {
            status: fetched.status.as_u16(),
            www_authenticate,
            retry_after: fetched.retry_after(),
            body: keyring_api::Secret::new(fetched.body.to_vec()),
        })
    }

    fn transport_error(&self, call: &Call<'_>, failed: Failed) -> Error {
        Error::Transport {
            stage: call.stage,
            url: call.url.to_string(),
            attempts: failed.attempts,
            hint: call.hint.to_string(),
            source: failed,
        }
    }

    fn deadline_error(&self, call: &Call<'_>) -> Error {
        Error::Deadline {
            stage: call.stage,
            url: call.url.to_string(),
            elapsed_s: self.session.elapsed().as_secs(),
            budget_s: self.budget.as_secs(),
            hint: call.hint.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::error::transient;

    fn call(url: &str, route: Route) -> Call<'_> {
        Call {
            stage: Stage::Imds,
            url,
            query: &[],
            headers: &[],
            body: Body::Get,
            route,
            retry_status: transient,
            hint: "check IMDS",
        }
    }

    #[test]
    fn a_spent_budget_is_reported_without_sending_anything() {
        let http = Http::with_budget(Duration::from_millis(0)).unwrap();
        let e = http
            .send(&call("http://127.0.0.1:9/never", Route::Direct))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("out of time") && e.contains("check IMDS"), "{e}");
    }

    /// ACR, Entra ID and the token exchange are HTTPS: the client must really speak TLS and
    /// check the certificate (a self-signed one here, which the system's roots refuse).
    #[test]
    fn https_is_spoken_and_certificates_are_checked() {
        let dir = std::env::temp_dir().join(format!("acr-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .args(["-keyout", "key.pem", "-out", "cert.pem"])
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the openssl CLI is needed (apt-get install openssl)");
        assert!(status.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-key", "key.pem", "-cert", "cert.pem"])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "s_server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let url = format!("https://127.0.0.1:{port}/v2/");
        let e = Http::with_budget(Duration::from_secs(5))
            .unwrap()
            .send(&call(&url, Route::Proxied))
            .err();
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(&dir);
        let e = e.expect("a self-signed certificate was accepted");
        let Error::Transport {
            source, attempts, ..
        } = &e
        else {
            panic!("{e}")
        };
        assert_eq!(*attempts, 1, "a TLS refusal is not retried");
        let text = source.to_string();
        assert!(
            text.to_ascii_lowercase().contains("certificate") || text.contains("UnknownIssuer"),
            "{text}"
        );
    }
}
