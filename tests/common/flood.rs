//! A hostile HTTP peer: one that answers every request with `200` and a body far past any
//! cap ([`FLOOD`] bytes), for the tests that every answer a backend reads stops at the cap.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a flooding peer offers in one answer: far past any cap.
pub const FLOOD: usize = 64 << 20;
/// The most one connection may have taken of it: the 1 MiB cap plus what the kernel's socket
/// buffers accept before the reader hangs up.
pub const MOST_TAKEN: u64 = 16 << 20;

/// Answers every request on 127.0.0.1 with `200`, its content type, a `Content-Length` of
/// [`FLOOD`] and that many bytes (`prefix`, then `A`s), written in 64 KiB pieces until the
/// reader hangs up; records how many bytes each connection took. Stops when dropped.
pub struct Flood {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    taken: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    pub fn start(content_type: &'static str, prefix: &'static str) -> Flood {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (taken, stop) = (taken.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut workers = Vec::new();
                while !stop.load(Ordering::SeqCst)
                    && workers.len() < 20
                    && started.elapsed() < Duration::from_secs(60)
                {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let taken = taken.clone();
                            workers.push(std::thread::spawn(move || {
                                let n = flood(conn, content_type, prefix);
                                taken.lock().expect("lock").push(n);
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
        Flood {
            base,
            taken,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops serving and returns what each connection took.
    pub fn taken(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.taken.lock().expect("lock").clone()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request and answers it with the flood; the bytes the reader took.
fn flood(conn: TcpStream, content_type: &str, prefix: &str) -> u64 {
    conn.set_nonblocking(false).expect("blocking");
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    // A reader that stops reading but holds the connection must not hold the test forever.
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return 0;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let mut conn = conn;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {FLOOD}\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(head.as_bytes()).is_err() || conn.write_all(prefix.as_bytes()).is_err() {
        return 0;
    }
    let mut sent = prefix.len();
    let piece = vec![b'A'; 64 << 10];
    while sent < FLOOD {
        let n = piece.len().min(FLOOD - sent);
        match conn.write(&piece[..n]) {
            Ok(0) | Err(_) => break,
            Ok(k) => sent += k,
        }
    }
    sent as u64
}
