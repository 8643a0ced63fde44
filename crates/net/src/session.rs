//! The HTTP of one synchronous call into a backend (`Backend::provide` is synchronous): a
//! current-thread runtime ([`Blocking`]), one client per [`Route`] built on first use, one
//! deadline for every request and retry of the call, and requests described as data
//! ([`Request`]: URL, headers, method and body, route, the statuses worth another attempt).
//!
//! Built only when a backend must go to the network, never on a cache hit. Request bodies
//! are held as [`Secret`]s and never logged. What a response or a failure means, and how a
//! message words it, is the backend's: [`Session::send`] returns the [`Fetched`] response
//! whatever its status, or the [`Failed`] request (a client that could not be set up is a
//! failure of no attempt, [`FetchError::TlsSetup`]).

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use http::{header, Method, StatusCode};
use keyring_api::{Deadline, Secret};

use crate::{form, Blocking, Client, Failed, FetchError, Fetched, Policy, Route, TlsSetupError};

/// A request body.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    /// GET, no body.
    Get,
    /// POST `application/x-www-form-urlencoded` of these pairs.
    Form(&'a [(&'a str, &'a str)]),
    /// POST `application/json`, serialized by the caller (it may hold a token).
    Json(&'a str),
}

impl Body<'_> {
    /// The method, the body text and its content type.
    fn parts(self) -> (Method, Option<Secret<String>>, Option<&'static str>) {
        match self {
            Body::Get => (Method::GET, None, None),
            Body::Form(pairs) => (
                Method::POST,
                Some(Secret::new(form(pairs))),
                Some("application/x-www-form-urlencoded"),
            ),
            Body::Json(json) => (
                Method::POST,
                Some(Secret::new(json.to_string())),
                Some("application/json"),
            ),
        }
    }
}

/// One request, retried while its failures are transient and the deadline allows.
pub struct Request<'a> {
    /// The whole URL, query included.
    pub url: &'a str,
    /// Headers besides User-Agent and Content-Type (may hold secrets: never logged).
    pub headers: &'a [(&'a str, &'a str)],
    /// Method and body.
    pub body: Body<'a>,
    /// Which client: [`Route::Direct`] for link-local metadata endpoints.
    pub route: Route,
    /// The statuses worth another attempt.
    pub retry_status: &'a (dyn Fn(StatusCode) -> bool + Sync),
}

/// The runtime, the clients and the deadline of one call into a backend.
pub struct Session {
    rt: Blocking,
    user_agent: &'static str,
    direct_policy: Policy,
    proxied_policy: Policy,
    direct: OnceCell<Client>,
    proxied: OnceCell<Result<Client, TlsSetupError>>,
    start: Instant,
    deadline: Deadline,
}

impl Session {
    /// A session of `budget` from now (the caller cuts it to the invocation's deadline),
    /// sending `user_agent`; [`Route::Direct`] requests under `direct`, the others under
    /// `proxied`. `Err` when the runtime cannot start.
    pub fn new(
        budget: Duration,
        direct: Policy,
        proxied: Policy,
        user_agent: &'static str,
    ) -> std::io::Result<Session> {
        Ok(Session {
            rt: Blocking::new()?,
            user_agent,
            direct_policy: direct,
            proxied_policy: proxied,
            direct: OnceCell::new(),
            proxied: OnceCell::new(),
            start: Instant::now(),
            deadline: Deadline::after(budget),
        })
    }

    /// Sends every later request of `route` through `client` (one that trusts a cluster's
    /// own CA, or dials a pinned address) instead of the one the session would build.
    pub fn set_client(&mut self, route: Route, client: Client) {
        match route {
            Route::Direct => self.direct = OnceCell::from(client),
            Route::Proxied => self.proxied = OnceCell::from(Ok(client)),
        }
    }

    /// Enters the runtime's context, to build a [`Client`] for [`Session::set_client`].
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.rt.enter()
    }

    /// What is left of the session's budget.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Time since the session began.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Sends `req`, retrying transient failures within the deadline; the response is
    /// returned whatever its status.
    pub fn send(&self, req: &Request<'_>) -> Result<Fetched, Failed> {
        let _rt = self.rt.enter();
        let client = match req.route {
            Route::Direct => self
                .direct
                .get_or_init(|| Client::direct(self.direct_policy)),
            Route::Proxied => self
                .proxied
                .get_or_init(|| Client::new(Route::Proxied, self.proxied_policy))
                .as_ref()
                .map_err(|e| Failed {
                    cause: FetchError::TlsSetup(e.clone()),
                    attempts: 0,
                })?,
        };
        let (method, body, content_type) = req.body.parts();
        let user_agent = self.user_agent;
        let make = || {
            let mut builder = http::Request::builder()
                .method(method.clone())
                .uri(req.url)
                .header(header::USER_AGENT, user_agent);
            if let Some(content_type) = content_type {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            for (k, v) in req.headers {
                builder = builder.header(*k, *v);
            }
            builder.body(
                body.as_ref()
                    .map(|b| b.expose().clone())
                    .unwrap_or_default()
                    .into(),
            )
        };
        self.rt
            .block_on(client.send(self.deadline, &make, req.retry_status))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::transient;

    /// A server that answers one request `200 ok` and hands over what it received.
    fn recorder() -> (u16, std::sync::mpsc::Receiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut conn, _)) = l.accept() else {
                return;
            };
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while !got.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                got.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap_or(0));
            let mut body = vec![0u8; length];
            let _ = conn.read_exact(&mut body);
            got.extend(body);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            let _ = tx.send(String::from_utf8_lossy(&got).into_owned());
        });
        (port, rx)
    }

    fn session(budget: Duration) -> Session {
        Session::new(budget, Policy::LINK_LOCAL, Policy::DEFAULT, "agent/1").unwrap()
    }

    #[test]
    fn a_form_is_posted_with_the_sessions_user_agent_and_the_callers_headers() {
        let (port, rx) = recorder();
        let url = format!("http://127.0.0.1:{port}/token");
        let fetched = session(Duration::from_secs(10))
            .send(&Request {
                url: &url,
                headers: &[("metadata", "true")],
                body: Body::Form(&[("grant_type", "client_credentials"), ("scope", "a b")]),
                route: Route::Direct,
                retry_status: &transient,
            })
            .unwrap();
        assert_eq!(
            (fetched.status.as_u16(), &fetched.body[..]),
            (200, &b"ok"[..])
        );
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let lower = got.to_ascii_lowercase();
        assert!(got.starts_with("POST /token HTTP/1.1\r\n"), "{got}");
        assert!(lower.contains("user-agent: agent/1\r\n"), "{got}");
        assert!(
            lower.contains("content-type: application/x-www-form-urlencoded\r\n"),
            "{got}"
        );
        assert!(lower.contains("metadata: true\r\n"), "{got}");
        assert!(
            got.ends_with("\r\n\r\ngrant_type=client_credentials&scope=a+b"),
            "{got}"
        );
    }

    #[test]
    fn a_spent_budget_sends_nothing_and_says_so() {
        let failed = session(Duration::ZERO)
            .send(&Request {
                url: "http://127.0.0.1:9/never",
                headers: &[],
                body: Body::Get,
                route: Route::Direct,
                retry_status: &transient,
            })
            .unwrap_err();
        assert!(matches!(failed.cause, FetchError::OutOfTime), "{failed}");
        assert_eq!(failed.attempts, 0);
    }
}
