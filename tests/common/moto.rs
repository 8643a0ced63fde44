//! `moto_server` (PyPI's `moto[server]`): a real AWS API on 127.0.0.1, for the ECR backend's
//! tests and the Go ECR credential helper's. One per test, on a free port, with moto's
//! request recorder on; killed when dropped. A peer: its tests are
//! `#[ignore = "needs moto_server"]` (see [`super::peer`]).
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto_server.
pub struct Moto {
    child: Child,
    pub port: u16,
    /// Its log (`moto.log`) and request recording (`recording.jsonl`, one JSON object a
    /// request).
    pub dir: tempfile::TempDir,
    tls: bool,
}

impl Moto {
    /// moto over plain HTTP.
    pub fn start() -> Moto {
        Moto::launch(None)
    }

    /// moto over HTTPS with the certificate `cert` and its key `key` (PEM files).
    pub fn start_tls(cert: &Path, key: &Path) -> Moto {
        Moto::launch(Some((cert, key)))
    }

    fn launch(tls: Option<(&Path, &Path)>) -> Moto {
        let bin = super::peer("moto_server", "moto[server] from PyPI");
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            // The port is free when we look; another process may take it before moto binds, so
            // try a few.
            let port = super::free_port();
            let log = std::fs::File::create(dir.path().join("moto.log")).expect("log");
            let mut cmd = Command::new(&bin);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                // moto dates its fixed ECR token expiry in local time.
                .env("TZ", "UTC")
                .env("MOTO_ENABLE_RECORDING", "true")
                .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording.jsonl"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log);
            if let Some((cert, key)) = tls {
                cmd.arg("-c").arg(cert).arg("-k").arg(key);
            }
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut moto = Moto {
                child,
                port,
                dir,
                tls: tls.is_some(),
            };
            if moto.wait_ready(Duration::from_secs(30)) {
                return moto;
            }
            // Drop kills it; try another port.
        }
        panic!("moto_server did not come up on 127.0.0.1 (see its log above)");
    }

    /// Polls until moto answers (HTTP: its API; HTTPS: a connection), or it exits, or
    /// `limit` passes.
    fn wait_ready(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("moto_server exited with {status}: {}", self.log());
                return false;
            }
            let ready = if self.tls {
                TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            } else {
                super::http::call(self.port, "GET", "/moto-api/", &[], "")
                    .is_ok_and(|(status, _)| status == 200)
            };
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("moto_server not ready after {limit:?}: {}", self.log());
        false
    }

    /// What moto wrote to its log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT` (plain HTTP only).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
