//! The one trust-store policy: rustls on the ring provider with the **system's** roots.
//!
//! Why the system's roots and not a compiled-in webpki bundle: the node's CA bundle is what
//! its operators manage (a TLS-inspecting proxy's CA, a private cloud's CA, revocations by
//! distribution update), `SSL_CERT_FILE` / `SSL_CERT_DIR` point at another bundle without a
//! rebuild, and it is what the AWS SDK and the Go plugins we replace use. The cost, reading
//! and parsing the bundle (a few ms), is paid once per process and only by a call that goes
//! to an `https://` endpoint, never on a cache hit. A node without any CA certificate gets a
//! one-line error naming the fix instead of a silent fallback.
//!
//! The AWS SDK builds its own TLS context (`AWS_CA_BUNDLE` replaces the roots there, as in
//! the Go SDK); see the crate docs.

use std::sync::{Arc, OnceLock};

/// The TLS client configuration of this process, built on first use.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let why = loaded
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(TlsSetupError(format!(
            "no CA certificates found{why}; install the CA certificates (ca-certificates) or set SSL_CERT_FILE"
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsSetupError(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// TLS could not be set up (no roots).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsSetupError(String);
