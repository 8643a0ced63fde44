//! A tiny HTTP/1.1 server for fake cloud endpoints (GCP metadata and OAuth, AWS JSON APIs,
//! Azure IMDS, Entra ID and ACR) on 127.0.0.1: one request per connection, answered by a closure, every request recorded.
//! Bounded: at most 100 connections and 60 s, and it stops when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A request as received: method, path, headers (names lower-cased), body.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// What the handler answers.
pub enum Reply {
    /// Status and body.
    With(u16, Vec<u8>),
    /// Status, headers of this reply only (name, value), and body.
    WithHeaders(u16, Vec<(String, String)>, Vec<u8>),
    /// Read the request and never answer (until the server stops).
    Hang,
}

/// A server that accepts connections and never answers, like an IMDS behind a hop limit
/// that drops the reply; it stops with the test.
pub fn silent() -> Fake {
    Fake::start("", |_| Reply::Hang)
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (a real peer, such as moto): its status and body.
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A reply with `status` and the text `body`.
pub fn json(status: u16, body: &str) -> Reply {
    Reply::With(status, body.as_bytes().to_vec())
}

/// How long a server serves at most; a hanging reply holds its connection that long (or until
/// the server is dropped).
const LIFETIME: Duration = Duration::from_secs(60);

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

pub struct Fake {
    addr: SocketAddr,
    base: String,
    seen: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    /// Starts a server whose every reply carries `headers` (each `Name: value\r\n`) besides
    /// the length and `Connection: close`.
    pub fn start(
        headers: &'static str,
        handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Handler = Arc::new(handler);
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut served = 0;
                let mut workers = Vec::new();
                while !stop.load(Ordering::SeqCst) && served < 100 && started.elapsed() < LIFETIME {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            served += 1;
                            let (seen, stop, handler) =
                                (seen.clone(), stop.clone(), handler.clone());
                            workers.push(std::thread::spawn(move || {
                                serve(conn, headers, &seen, &stop, &*handler)
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Fake {
            addr,
            base: format!("http://{addr}"),
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Req> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    headers: &str,
    seen: &Mutex<Vec<Req>>,
    stop: &AtomicBool,
    handler: &dyn Fn(&Req) -> Reply,
) {
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let reply_headers = headers;
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let req = Req {
        method,
        path,
        headers,
        body,
    };
    seen.lock().expect("lock").push(req.clone());
    let mut conn = conn;
    match handler(&req) {
        Reply::With(status, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\n{reply_headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
        Reply::WithHeaders(status, extra, body) => {
            let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
            let head = format!(
                "HTTP/1.1 {status} X\r\n{reply_headers}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
        Reply::Hang => {
            let until = Instant::now() + LIFETIME;
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
