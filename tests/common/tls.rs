//! Real TLS in front of the plain-HTTP fakes: a CA and a server certificate made with the
//! openssl CLI, and a rustls front on 127.0.0.1 (ring, as in the binary); and the hostile
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` settings every backend's TLS must refuse at once.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// Runs the openssl CLI in `dir` and returns its stdout; fails loudly (with its stderr) when
/// it is missing or fails.
pub fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A self-signed certificate for `/CN=<cn>` with a new RSA key in `dir`: `<name>.key`
/// (PKCS#8, unencrypted) and `<name>.crt`.
pub fn self_signed(dir: &Path, name: &str, cn: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={cn}"),
    );
    openssl(
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-subj", &subj, "-days", "2",
        ],
        dir,
    );
}

/// A CA of its own in `dir`: `<name>.pem`, `<name>.key`.
pub fn ca(dir: &Path, name: &str) {
    let (subj, key, pem) = (
        format!("/CN={name}"),
        format!("{name}.key"),
        format!("{name}.pem"),
    );
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
            "-keyout",
            &key,
            "-out",
            &pem,
        ],
        dir,
    );
}

/// A server certificate for `san` (`IP:127.0.0.1`, `DNS:name`) signed by the CA `ca_name`
/// of [`ca`]: `srv.pem`, `srv.key` in `dir`.
pub fn server_cert(dir: &Path, ca_name: &str, san: &str) {
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=server",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext"),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .expect("write ext");
    let (ca_pem, ca_key) = (format!("{ca_name}.pem"), format!("{ca_name}.key"));
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "1",
            "-extfile",
            "ext",
        ],
        dir,
    );
}

/// A TLS front on 127.0.0.1 for a plain-HTTP fake: terminates TLS with `cert`/`key` (PEM
/// files) and forwards each connection's one request to `backend`, then its reply back.
/// Bounded: 32 connections; the thread ends with the test process.
pub fn tls_front(cert: &Path, key: &Path, backend: String) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::Read;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("cert")
        .collect::<Result<_, _>>()
        .expect("cert");
    let key = PrivateKeyDer::from_pem_file(key).expect("key");
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config"),
    );
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in l.incoming().take(32) {
            let Ok(tcp) = conn else { return };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(server) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            let mut tls = rustls::StreamOwned::new(server, tcp);
            // One request: the head, then Content-Length bytes of body.
            let mut req = Vec::new();
            let mut byte = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte) {
                    Ok(1) => req.push(byte[0]),
                    _ => break,
                }
            }
            if !req.ends_with(b"\r\n\r\n") {
                continue; // the handshake or the request failed: nothing to forward
            }
            let head = String::from_utf8_lossy(&req).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            if tls.read_exact(&mut body).is_err() {
                continue;
            }
            req.extend_from_slice(&body);
            let Ok(mut plain) = std::net::TcpStream::connect(&backend) else {
                continue;
            };
            let mut reply = Vec::new();
            // The fake answers with Connection: close, so its reply ends at EOF.
            if plain.write_all(&req).is_ok() && plain.read_to_end(&mut reply).is_ok() {
                let _ = tls.write_all(&reply);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        }
    });
    port
}

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` values that hold no usable certificate, made in `dir`:
/// a FIFO (`rustls-native-certs`, which read them for keyring-net and the AWS SDK, blocked on
/// it until the watchdog), `/dev/zero` (read whole: 24 GB and the OOM killer in a release
/// build), a file of text, and a directory of a FIFO, a 64 MiB sparse file and a link to
/// `/dev/zero` (every regular file read whole; the AWS SDK of a debug build then panicked,
/// exit 101, on finding no certificate).
pub fn hostile_ca_settings(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let fifo = dir.join("ca-fifo.pem");
    super::mkfifo(&fifo);
    let text = dir.join("ca-text.pem");
    std::fs::write(&text, "not a certificate\n").expect("write");
    let certs = dir.join("ca-dir");
    std::fs::create_dir(&certs).expect("mkdir");
    super::mkfifo(&certs.join("fifo.pem"));
    std::fs::File::create(certs.join("sparse.pem"))
        .and_then(|f| f.set_len(64 << 20))
        .expect("sparse file");
    std::os::unix::fs::symlink("/dev/zero", certs.join("zero.pem")).expect("symlink");
    let shown = |p: &std::path::Path| p.display().to_string();
    vec![
        ("SSL_CERT_FILE", shown(&fifo)),
        ("SSL_CERT_FILE", "/dev/zero".into()),
        ("SSL_CERT_FILE", shown(&text)),
        ("SSL_CERT_DIR", shown(&certs)),
    ]
}

/// The run given [`hostile_ca_settings`]' `var`=`value` (taking `took`): one line, exit 2,
/// at once, naming the variable.
pub fn assert_ca_refused(out: &std::process::Output, took: Duration, var: &str, value: &str) {
    assert_ne!(out.status.code(), Some(101), "{var}={value}: panicked");
    let line = super::assert_misconfigured(out, &[]);
    assert!(
        line.contains(var) && line.contains("CA certificate"),
        "{var}={value}: {line}"
    );
    assert!(
        took < Duration::from_secs(3),
        "{var}={value}: took {took:?}: {line}"
    );
}
