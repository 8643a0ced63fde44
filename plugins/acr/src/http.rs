//! HTTP for this backend: `ureq` (blocking, HTTP/1.1, rustls with ring, webpki roots).
//!
//! Why `ureq`: [`Provider::provide`](keyring_api::Provider::provide) is synchronous and makes
//! at most three or four sequential requests, so a blocking client avoids building a tokio
//! runtime per exec and keeps the dependency tree small (ureq 3 with only its `rustls`
//! feature: rustls + ring + webpki-roots, no aws-lc, no native-tls, no gzip).
//!
//! Rules here, for every request:
//! * one deadline for the whole `provide` ([`TOTAL_BUDGET`], well under the kubelet's 60 s),
//!   each attempt bounded by [`PER_ATTEMPT`] and a short connect timeout;
//! * up to [`MAX_ATTEMPTS`] attempts on transient failures (timeouts, connection errors and
//!   the statuses the caller names), with short backoff and `Retry-After` honoured when it
//!   fits the deadline;
//! * no redirects (a redirect could carry a credential elsewhere; the 3xx is reported);
//! * bodies read up to [`MAX_BODY`];
//! * IMDS is reached without proxy (it is link-local); other endpoints honour
//!   `HTTPS_PROXY`/`NO_PROXY` as the Go plugin does.

use keyring_api::Deadline;
use std::time::{Duration, Instant};

use crate::error::{Error, Stage};

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
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The agents and the deadline of one `provide`.
pub struct Http {
    direct: ureq::Agent,
    proxied: ureq::Agent,
    start: Instant,
    deadline: Instant,
}

/// Which agent a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// No proxy (IMDS).
    Direct,
    /// Environment proxy settings.
    Proxied,
}

/// A request body.
pub enum Body<'a> {
    /// GET, no body.
    Get,
    /// POST `application/x-www-form-urlencoded`.
    Form(&'a [(&'a str, &'a str)]),
}

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
    /// Which agent.
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

/// The usual transient statuses: 408, 429 and 5xx except 501/505.
pub fn transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

impl Http {
    /// Agents for one `provide` call: [`TOTAL_BUDGET`] from now, cut to the invocation's
    /// `deadline` (which the cache lock wait has already drawn on).
    pub fn new(deadline: Deadline) -> Self {
        Self::with_budget(deadline.cap(TOTAL_BUDGET))
    }

    /// The same with another total budget (tests).
    pub fn with_budget(budget: Duration) -> Self {
        let agent = |proxy: Option<ureq::Proxy>, connect: Duration| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .max_redirects_will_error(false)
                .proxy(proxy)
                .user_agent(crate::USER_AGENT)
                .timeout_connect(Some(connect))
                .max_idle_connections_per_host(2)
                .build()
                .new_agent()
        };
        let start = Instant::now();
        Http {
            direct: agent(None, CONNECT_IMDS),
            proxied: agent(ureq::Proxy::try_from_env(), CONNECT),
            start,
            deadline: start + budget,
        }
    }

    /// Agents for the identity-binding endpoint: every host name is dialled at `ip` (the
    /// URL's port kept), TLS verifies the server name of the URL against `roots` only (the
    /// cluster CA, not the web PKI), never through a proxy. Upstream does the same with a
    /// custom dialer and `RootCAs`.
    pub fn pinned(
        deadline: Deadline,
        ip: std::net::IpAddr,
        roots: &[ureq::tls::Certificate<'static>],
    ) -> Self {
        let budget = deadline.cap(TOTAL_BUDGET);
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(roots))
            .build();
        let agent = || {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .max_redirects_will_error(false)
                .proxy(None)
                .user_agent(crate::USER_AGENT)
                .timeout_connect(Some(CONNECT))
                .tls_config(tls.clone())
                .build();
            ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::new(),
                Pinned(ip),
            )
        };
        let start = Instant::now();
        Http {
            direct: agent(),
            proxied: agent(),
            start,
            deadline: start + budget,
        }
    }

    /// What is left of this `provide`'s budget, for a further set of agents.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.deadline.saturating_duration_since(Instant::now()))
    }

    /// Sends the call, retrying transient failures within the deadline.
    pub fn send(&self, call: &Call<'_>) -> Result<Reply, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining < Duration::from_millis(100) {
                return Err(self.deadline_error(call));
            }
            let timeout = remaining.min(PER_ATTEMPT);
            match self.attempt(call, timeout) {
                Ok(reply) => {
                    if attempt < MAX_ATTEMPTS && (call.retry_status)(reply.status) {
                        let wait = backoff(attempt)
                            .max(reply.retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
                        if self.sleep_within_deadline(wait) {
                            tracing::debug!(
                                stage = %call.stage,
                                status = reply.status,
                                attempt,
                                "transient status, retrying"
                            );
                            continue;
                        }
                    }
                    return Ok(reply);
                }
                Err(source) => {
                    if attempt < MAX_ATTEMPTS
                        && retryable(&source)
                        && self.sleep_within_deadline(backoff(attempt))
                    {
                        tracing::debug!(stage = %call.stage, attempt, "transport error, retrying: {source}");
                        continue;
                    }
                    return Err(Error::Transport {
                        stage: call.stage,
                        url: call.url.to_string(),
                        attempts: attempt,
                        hint: call.hint.to_string(),
                        source,
                    });
                }
            }
        }
    }

    fn attempt(&self, call: &Call<'_>, timeout: Duration) -> Result<Reply, ureq::Error> {
        let agent = match call.route {
            Route::Direct => &self.direct,
            Route::Proxied => &self.proxied,
        };
        let mut response = match call.body {
            Body::Get => {
                let mut req = agent.get(call.url);
                for (k, v) in call.query {
                    req = req.query(*k, *v);
                }
                for (k, v) in call.headers {
                    req = req.header(*k, *v);
                }
                req.config().timeout_global(Some(timeout)).build().call()?
            }
            Body::Form(form) => {
                let mut req = agent.post(call.url);
                for (k, v) in call.query {
                    req = req.query(*k, *v);
                }
                for (k, v) in call.headers {
                    req = req.header(*k, *v);
                }
                req.config()
                    .timeout_global(Some(timeout))
                    .build()
                    .send_form(form.iter().copied())?
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers();
        let www_authenticate = headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()?;
        Ok(Reply {
            status,
            www_authenticate,
            retry_after,
            body: keyring_api::Secret::new(body),
        })
    }

    /// Sleeps `wait` if the deadline leaves time for the sleep and one more short attempt.
    fn sleep_within_deadline(&self, wait: Duration) -> bool {
        let now = Instant::now();
        if now + wait + Duration::from_millis(500) >= self.deadline {
            return false;
        }
        std::thread::sleep(wait);
        true
    }

    fn deadline_error(&self, call: &Call<'_>) -> Error {
        Error::Deadline {
            stage: call.stage,
            url: call.url.to_string(),
            elapsed_s: self.start.elapsed().as_secs(),
            budget_s: self.deadline.duration_since(self.start).as_secs(),
            hint: call.hint.to_string(),
        }
    }
}

/// A resolver that answers every name with one address (the URL's port, or the scheme's).
#[derive(Debug)]
struct Pinned(std::net::IpAddr);

impl ureq::unversioned::resolver::Resolver for Pinned {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        let mut out = self.empty();
        out.push(std::net::SocketAddr::new(self.0, port));
        Ok(out)
    }
}

/// 250 ms, 1 s, 2 s, ...
fn backoff(attempt: u32) -> Duration {
    match attempt {
        0 | 1 => Duration::from_millis(250),
        2 => Duration::from_secs(1),
        _ => Duration::from_secs(2),
    }
}

/// Worth another attempt: timeouts and connection-level failures, not DNS, TLS or bad URLs.
fn retryable(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Timeout(_) | ureq::Error::Io(_) | ureq::Error::ConnectionFailed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_statuses() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(transient(s));
        }
        for s in [200, 400, 401, 403, 404, 501, 505] {
            assert!(!transient(s));
        }
    }

    #[test]
    fn backoff_grows() {
        assert!(backoff(1) < backoff(2) && backoff(2) < backoff(3));
        assert!(backoff(1) + backoff(2) < Duration::from_secs(2));
    }

    #[test]
    fn deadline_is_reported_without_sending() {
        let http = Http::with_budget(Duration::from_millis(0));
        let call = Call {
            stage: Stage::Imds,
            url: "http://127.0.0.1:9/never",
            query: &[],
            headers: &[],
            body: Body::Get,
            route: Route::Direct,
            retry_status: transient,
            hint: "check IMDS",
        };
        let e = http.send(&call).err().unwrap().to_string();
        assert!(e.contains("out of time") && e.contains("check IMDS"), "{e}");
    }

    /// ACR, Entra ID and the token exchange are HTTPS: the agent must really speak TLS and
    /// check the certificate (a self-signed one here, which webpki's roots refuse).
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
        let call = Call {
            stage: Stage::Imds,
            url: &url,
            query: &[],
            headers: &[],
            body: Body::Get,
            route: Route::Direct,
            retry_status: transient,
            hint: "hint",
        };
        let e = Http::with_budget(Duration::from_secs(5))
            .attempt(&call, Duration::from_secs(5))
            .err()
            .map(|e| e.to_string());
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(&dir);
        let e = e.expect("a self-signed certificate was accepted");
        assert!(
            e.to_ascii_lowercase().contains("certificate") || e.contains("UnknownIssuer"),
            "{e}"
        );
    }
}
