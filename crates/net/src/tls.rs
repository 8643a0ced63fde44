//! The one trust-store policy: rustls on the ring provider with the **system's** roots.
//!
//! Why the system's roots and not a compiled-in webpki bundle: the node's CA bundle is what
//! its operators manage (a TLS-inspecting proxy's CA, a private cloud's CA, revocations by
//! distribution update), `SSL_CERT_FILE` / `SSL_CERT_DIR` point at another bundle without a
//! rebuild, and it is what the AWS SDK and the Go plugins we replace use. They are found as
//! Go finds them (one bundle file, not a whole directory; see [`BUNDLES`]). The cost,
//! reading and parsing the bundle (1 to 3 ms), is paid once per process and only by a call
//! that goes to the network, never on a cache hit. A node without any CA certificate gets a
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
    let (certs, error) = system_roots();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        let why = error.map(|e| format!(": {e}")).unwrap_or_default();
        return Err(TlsSetupError(format!(
            "no CA certificates found{why}; install the CA certificates (ca-certificates) or set SSL_CERT_FILE"
        )));
    }
    let config = config_with_roots(roots)?;
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// A client configuration on ring trusting `roots` only, without client authentication.
pub(crate) fn config_with_roots(
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsSetupError(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// A client configuration on ring trusting only `roots` (a cluster's own CA), not the
/// system's: an error when none of them is a usable certificate.
pub(crate) fn config_trusting_only(
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut store = rustls::RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(roots);
    if added == 0 {
        return Err(TlsSetupError::new("no usable CA certificate".into()));
    }
    config_with_roots(store)
}

/// The bundle files Go's `crypto/x509` looks for on Linux, in its order.
const BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Checks a PEM bundle that is to replace the roots (the AWS SDK's `AWS_CA_BUNDLE`): every
/// `CERTIFICATE` block must decode and parse as a trust anchor, and there must be one. The
/// count of roots, or what is wrong. The SDK's own TLS set-up panics on a bundle it cannot
/// parse, so its callers check first.
pub fn check_pem_roots(pem: &[u8]) -> Result<usize, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert
            .map_err(|e| TlsSetupError(format!("certificate {} is not valid PEM: {e}", i + 1)))?;
        roots
            .add(cert)
            .map_err(|e| TlsSetupError(format!("certificate {} does not parse: {e}", i + 1)))?;
    }
    match roots.len() {
        0 => Err(TlsSetupError(
            "no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        )),
        n => Ok(n),
    }
}

/// The system's roots as Go finds them: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set
/// (rustls-native-certs reads exactly those), else the first bundle file of [`BUNDLES`] that
/// exists, else whatever rustls-native-certs probes. Reading one bundle instead of the
/// probed file *and* every file of `/etc/ssl/certs` saves about 5 ms of CPU per process.
fn system_roots() -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    Option<String>,
) {
    use rustls::pki_types::pem::PemObject;
    let set = |v: &str| std::env::var_os(v).is_some_and(|v| !v.is_empty());
    if !set("SSL_CERT_FILE") && !set("SSL_CERT_DIR") {
        for path in BUNDLES {
            if let Ok(iter) = rustls::pki_types::CertificateDer::pem_file_iter(path) {
                let certs: Vec<_> = iter.filter_map(Result::ok).collect();
                if !certs.is_empty() {
                    return (certs, None);
                }
            }
        }
    }
    let loaded = rustls_native_certs::load_native_certs();
    (loaded.certs, loaded.errors.first().map(|e| e.to_string()))
}

/// TLS could not be set up (no roots).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsSetupError(String);

impl TlsSetupError {
    /// An error saying `why`.
    pub(crate) fn new(why: String) -> Self {
        TlsSetupError(why)
    }
}
