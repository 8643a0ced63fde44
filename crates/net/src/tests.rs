use super::*;
use hyper_util::client::proxy::matcher::Matcher;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use keyring_api::Deadline;

/// A port on 127.0.0.1 with nothing listening.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server answering the n-th connection (0-based) with `reply(n)`, or never when `None`.
fn server(reply: impl Fn(u32) -> Option<String> + Send + 'static) -> (u16, Arc<AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().take(16) {
            let Ok(mut conn) = conn else { return };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            match reply(n) {
                Some(r) => {
                    let _ = conn.write_all(r.as_bytes());
                }
                // Keep the connection open, unanswered, until the client gives up.
                None => {
                    std::thread::spawn(move || {
                        let _ = conn.read(&mut [0u8; 1]);
                    });
                }
            }
        }
    });
    (port, count)
}

fn status(code: u16, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {code} X\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

const FAST: Policy = Policy {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(1),
    max_body: 64,
    backoff: Backoff {
        attempts: 3,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(50),
        min_attempt: Duration::from_millis(100),
    },
    retry_timeouts: true,
};

fn get(client: &Client, url: &str, deadline: Deadline) -> Result<Fetched, Failed> {
    let rt = Blocking::new().unwrap();
    let url = url.to_string();
    rt.block_on(client.send(
        deadline,
        &|| Request::get(url.as_str()).body(Full::default()),
        &transient,
    ))
}

/// GETs `/` on 127.0.0.1:`port` with 10 s of deadline.
fn get_local(client: &Client, port: u16) -> Result<Fetched, Failed> {
    get(
        client,
        &format!("http://127.0.0.1:{port}/"),
        Deadline::after(Duration::from_secs(10)),
    )
}

fn in_rt<T>(f: impl FnOnce() -> T) -> T {
    let rt = Blocking::new().unwrap();
    let _g = rt.enter();
    f()
}

#[test]
fn transient_statuses_are_retried_then_answered() {
    let (port, count) = server(|n| {
        Some(if n < 2 {
            status(503, "", "busy")
        } else {
            status(200, "", "ok")
        })
    });
    let c = in_rt(|| Client::direct(FAST));
    let f = get_local(&c, port).unwrap();
    assert_eq!(
        (f.status.as_u16(), &f.body[..], f.attempts),
        (200, &b"ok"[..], 3)
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert!(!format!("{f:?}").contains("ok\""), "{f:?}");
}

#[test]
fn attempts_are_bounded_and_the_last_status_stands() {
    let (port, count) = server(|_| Some(status(503, "", "")));
    let c = in_rt(|| Client::direct(FAST));
    let f = get_local(&c, port).unwrap();
    assert_eq!((f.status.as_u16(), f.attempts), (503, 3));
    assert_eq!(count.load(Ordering::SeqCst), 3);
    // A status the caller does not name is not retried.
    let (port, count) = server(|_| Some(status(401, "", "")));
    let f = get_local(&c, port).unwrap();
    assert_eq!((f.status.as_u16(), f.attempts), (401, 1));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn refused_connections_are_retried() {
    let c = in_rt(|| Client::direct(FAST));
    let e = get(
        &c,
        &format!("http://127.0.0.1:{}/", closed_port()),
        Deadline::after(Duration::from_secs(10)),
    )
    .unwrap_err();
    assert_eq!(e.attempts, 3);
    assert!(e.to_string().contains("refused"), "{e}");
}

#[test]
fn the_deadline_bounds_a_hanging_server() {
    let (port, count) = server(|_| None);
    let slow = Policy {
        attempt: Duration::from_secs(30),
        ..FAST
    };
    let c = in_rt(|| Client::direct(slow));
    let started = Instant::now();
    let e = get(
        &c,
        &format!("http://127.0.0.1:{port}/"),
        Deadline::after(Duration::from_millis(700)),
    )
    .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e.cause, FetchError::Timeout(_)), "{e:?}");
    assert_eq!(e.attempts, 1, "no time was left for a retry");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    // A passed deadline sends nothing.
    let e = get(
        &c,
        &format!("http://127.0.0.1:{port}/"),
        Deadline::after(Duration::ZERO),
    )
    .unwrap_err();
    assert!(matches!(e.cause, FetchError::OutOfTime) && e.attempts == 0);
}

#[test]
fn timeouts_are_not_retried_when_the_policy_says_so() {
    let (port, count) = server(|_| None);
    let p = Policy {
        attempt: Duration::from_millis(200),
        retry_timeouts: false,
        ..FAST
    };
    let c = in_rt(|| Client::direct(p));
    let e = get_local(&c, port).unwrap_err();
    assert_eq!(e.attempts, 1);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn bodies_are_capped() {
    let (port, _) = server(|_| Some(status(200, "", &"x".repeat(65))));
    let c = in_rt(|| Client::direct(FAST));
    let e = get_local(&c, port).unwrap_err();
    assert!(matches!(e.cause, FetchError::TooLarge(64)), "{e:?}");
    assert_eq!(e.attempts, 1);
}

#[test]
fn retry_after_is_read() {
    let (port, _) = server(|n| {
        Some(if n == 0 {
            status(429, "retry-after: 1\r\n", "")
        } else {
            status(200, "", "")
        })
    });
    let c = in_rt(|| Client::direct(FAST));
    let started = Instant::now();
    let f = get_local(&c, port).unwrap();
    assert_eq!(f.attempts, 2);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
fn direct_clients_refuse_https() {
    let c = in_rt(|| Client::direct(FAST));
    let e = get(
        &c,
        "https://169.254.169.254/",
        Deadline::after(Duration::from_secs(10)),
    )
    .unwrap_err();
    assert!(matches!(e.cause, FetchError::Request(_)), "{e:?}");
}

#[test]
fn https_endpoints_are_dialled_and_https_proxies_refused() {
    // A TCP connector that enforces http:// refuses https:// before dialling; ours must get
    // as far as the socket.
    let c = in_rt(|| {
        Client::with_proxies(
            FAST,
            ProxyConnector::new(FAST.connect, Matcher::builder().build()),
        )
    })
    .unwrap();
    let e = get(
        &c,
        &format!("https://127.0.0.1:{}/v1/token", closed_port()),
        Deadline::after(Duration::from_secs(10)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    let proxies = Matcher::builder().https("https://127.0.0.1:9").build();
    let c =
        in_rt(|| Client::with_proxies(FAST, ProxyConnector::new(FAST.connect, proxies))).unwrap();
    let e = get(
        &c,
        "https://sts.example.invalid/v1/token",
        Deadline::after(Duration::from_secs(10)),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("give HTTPS_PROXY as http://host:port"),
        "{e}"
    );
}

#[test]
fn the_connect_request_names_the_host_and_carries_the_proxy_credentials() {
    // A proxy that records the CONNECT and refuses it: the request never leaves.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming().take(4) {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = conn.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        }
    });
    let proxies = Matcher::builder()
        .https(format!("http://user:pw@127.0.0.1:{port}"))
        .no("direct.example")
        .build();
    let c =
        in_rt(|| Client::with_proxies(FAST, ProxyConnector::new(FAST.connect, proxies))).unwrap();
    let e = get(
        &c,
        "https://oauth2.example.invalid/token",
        Deadline::after(Duration::from_secs(10)),
    )
    .unwrap_err();
    let head = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        head.starts_with("CONNECT oauth2.example.invalid:443 HTTP/1.1\r\n"),
        "{head}"
    );
    // base64("user:pw")
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic dxnlcjpwdw=="),
        "{head}"
    );
    assert!(!e.to_string().contains("pw"), "{e}");
}

#[test]
fn form_bodies_are_percent_encoded_with_plus_for_spaces() {
    assert_eq!(
        form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://x/.default a&b=c")
        ]),
        "grant_type=client_credentials&scope=https%3A%2F%2Fx%2F.default+a%26b%3Dc"
    );
    assert_eq!(form(&[]), "");
    assert_eq!(form(&[("k", "é~")]), "k=%C3%A9%7E");
}

#[test]
fn timeouts_read_in_seconds_or_milliseconds() {
    let t = |ms| FetchError::Timeout(Duration::from_millis(ms)).to_string();
    assert_eq!(t(10_000), "no answer within 10s");
    assert_eq!(t(4_471), "no answer within 4.471s");
    let nanos = FetchError::Timeout(Duration::from_nanos(4_471_940_507)).to_string();
    assert_eq!(nanos, "no answer within 4.471s");
}

#[test]
fn urls_are_shown_without_userinfo_query_or_fragment() {
    assert_eq!(
        shown_url("https://u:SECRET@h.example:8443/b/cfg.json?X-Goog-Signature=SIG#f"),
        "https://h.example:8443/b/cfg.json"
    );
    assert_eq!(
        shown_url("http://u:p@127.0.0.1:5000/x"),
        "http://127.0.0.1:5000/x"
    );
    assert_eq!(
        shown_url("https://vpce.example.com"),
        "https://vpce.example.com"
    );
    assert_eq!(shown_url("u@h:1"), "h:1");
    assert_eq!(shown_url("https://h/p?a=@b"), "https://h/p");
}
