//! HTTP proxies on 127.0.0.1 for the proxy tests: one that records and refuses, one that
//! tunnels (any CONNECT, or to one target only). Each sends every request head it receives
//! on a channel.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

/// A proxy on 127.0.0.1 that records each request head and refuses with 407, so nothing is
/// ever forwarded.
pub fn refusing() -> (u16, Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = conn.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n",
            );
            if tx
                .send(String::from_utf8_lossy(&head).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

/// An HTTP CONNECT proxy on 127.0.0.1 that tunnels every CONNECT to 127.0.0.1:`upstream`
/// whatever host it names, and sends each request head it receives on the channel.
pub fn tunnelling(upstream: u16) -> (u16, Receiver<String>) {
    proxy(None, upstream)
}

/// [`tunnelling`] for CONNECTs to `target` (`host:port`) only: any other is refused with 403
/// (its head is still sent on the channel).
pub fn tunnelling_only(target: &str, upstream: u16) -> (u16, Receiver<String>) {
    proxy(Some(target.to_string()), upstream)
}

/// The `host:port` each CONNECT head received so far asked for, in order.
pub fn connect_targets(heads: &Receiver<String>) -> Vec<String> {
    heads
        .try_iter()
        .filter_map(|head| {
            let line = head.lines().next()?.to_string();
            Some(
                line.strip_prefix("CONNECT ")?
                    .split(' ')
                    .next()?
                    .to_string(),
            )
        })
        .collect()
}

/// Every request head received until the proxy has been quiet for half a second.
pub fn heads_until_quiet(heads: &Receiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(h) = heads.recv_timeout(Duration::from_millis(500)) {
        out.push(h);
    }
    out
}

/// The first request head within 10 s, which must be a CONNECT to `target` (`host:port`):
/// the client went through the proxy, to that endpoint.
pub fn first_connect(heads: &Receiver<String>, target: &str) -> String {
    let head = heads
        .recv_timeout(Duration::from_secs(10))
        .expect("no CONNECT reached the proxy");
    assert!(
        head.starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")),
        "{head}"
    );
    head
}

/// Every head until the proxy is quiet ([`heads_until_quiet`]): at least one, and each a
/// CONNECT to `target` (`host:port`). `who` names the case in a failure.
pub fn assert_connects_only_to(heads: &Receiver<String>, target: &str, who: &str) {
    let seen = heads_until_quiet(heads);
    assert!(!seen.is_empty(), "{who}: the proxy was not asked");
    for head in seen {
        assert!(
            head.starts_with(&format!("CONNECT {target} ")),
            "{who}: {head}"
        );
    }
}

/// Bounded: 32 connections, each on its own thread; a client that sends no head within
/// 10 s is dropped. The threads end with the test process.
fn proxy(only: Option<String>, upstream: u16) -> (u16, Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming().take(32) {
            let Ok(client) = conn else { return };
            let (tx, only) = (tx.clone(), only.clone());
            std::thread::spawn(move || tunnel(client, upstream, only.as_deref(), &tx));
        }
    });
    (port, rx)
}

fn tunnel(mut client: TcpStream, upstream: u16, only: Option<&str>, tx: &Sender<String>) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_default()
        .to_string();
    let _ = tx.send(head);
    if only.is_some_and(|t| t != target) {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let _ = client.set_read_timeout(None);
    let pipe = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        })
    };
    if let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) {
        pipe(client, s2);
        pipe(server, c2);
    }
}
