//! The one trust-store policy: rustls on the ring provider with the **system's** roots.
//!
//! Why the system's roots and not a compiled-in webpki bundle: the node's CA bundle is what
//! its operators manage (a TLS-inspecting proxy's CA, a private cloud's CA, revocations by
//! distribution update), `SSL_CERT_FILE` / `SSL_CERT_DIR` point at another bundle without a
//! rebuild, and it is what the AWS SDK and the Go plugins we replace use. They are found as
//! Go finds them ([`system_roots`]): the certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR`
//! when either is set ([`env_roots`]), else one bundle file (not a whole directory; see
//! [`BUNDLES`]), else what `rustls-native-certs` probes. The cost, reading and parsing the
//! bundle (1 to 3 ms), is paid once per process and only when a client is built, by a call
//! that goes to the network, never on a cache hit. A node without any CA certificate gets a
//! one-line error naming the fix instead of a silent fallback.
//!
//! The files the variables name are files named by others (whoever wrote the kubelet's
//! provider `env`), read by [`keyring_api::file::ca_files`]: without blocking on a FIFO,
//! never a device, each file and all of them bounded. A setting that yields no usable
//! certificate is a [`TlsSetupError`] naming it, never a fallback to the system's roots.
//! Without the variables, the bundle files and `rustls-native-certs`' default paths
//! (`openssl-probe`'s) are the distribution's, owned by root: read as that crate reads them.
//!
//! The AWS SDK builds its own TLS context (`AWS_CA_BUNDLE` replaces the roots there, as in
//! the Go SDK), from the same [`env_roots`]; see the crate docs.

use std::sync::{Arc, OnceLock};

/// The TLS client configuration of this process, built on first use.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let (certs, error) = system_roots()?;
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

/// The system's roots as Go finds them: those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when
/// either is set ([`env_roots`]: an error when they hold none), else the first bundle file
/// of [`BUNDLES`] that exists, else whatever `rustls-native-certs` probes (the variables are
/// unset or empty then, so it reads only its default paths). Reading one bundle instead of
/// the probed file *and* every file of `/etc/ssl/certs` saves about 5 ms of CPU per process.
/// The certificates, and the first error met when they may be none.
fn system_roots() -> Result<
    (
        Vec<rustls::pki_types::CertificateDer<'static>>,
        Option<String>,
    ),
    TlsSetupError,
> {
    use rustls::pki_types::pem::PemObject;
    if let Some(certs) = env_roots()? {
        return Ok((certs, None));
    }
    for path in BUNDLES {
        if let Ok(iter) = rustls::pki_types::CertificateDer::pem_file_iter(path) {
            let certs: Vec<_> = iter.filter_map(Result::ok).collect();
            if !certs.is_empty() {
                return Ok((certs, None));
            }
        }
    }
    let loaded = rustls_native_certs::load_native_certs();
    Ok((loaded.certs, loaded.errors.first().map(|e| e.to_string())))
}

/// The certificates of `SSL_CERT_FILE` / `SSL_CERT_DIR` that are usable trust anchors, read
/// by [`keyring_api::file::ca_files_from_env`]: `None` when neither is set (empty counts as
/// unset), and an error naming the settings, how many files were read and the first that
/// could not be, when they hold no usable certificate (a FIFO, `/dev/zero`, a directory or
/// text in the file's place). Every TLS client of this program takes these as its roots,
/// the AWS SDK's included.
pub fn env_roots() -> Result<Option<Vec<rustls::pki_types::CertificateDer<'static>>>, TlsSetupError>
{
    let Some(ca) = keyring_api::file::ca_files_from_env() else {
        return Ok(None);
    };
    let shown = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(|v| format!("{var}={}", std::path::Path::new(&v).display()))
    };
    let set = [
        keyring_api::file::SSL_CERT_FILE,
        keyring_api::file::SSL_CERT_DIR,
    ]
    .into_iter()
    .filter_map(shown)
    .collect::<Vec<_>>()
    .join(", ");
    usable_roots(ca, &set).map(Some)
}

/// [`env_roots`] as PEM, for a TLS stack that takes its roots so (the AWS SDK's smithy
/// client): each usable certificate re-encoded, nothing else of the files.
pub fn env_roots_pem() -> Result<Option<Vec<u8>>, TlsSetupError> {
    Ok(env_roots()?.map(|certs| to_pem(&certs)))
}

/// `certs` as PEM `CERTIFICATE` blocks.
fn to_pem(certs: &[rustls::pki_types::CertificateDer<'_>]) -> Vec<u8> {
    use base64::Engine as _;
    let mut pem = Vec::new();
    for der in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// The certificates of `ca` that parse as trust anchors, or the error of `set` (the
/// settings they came from, as `VAR=value`) holding none.
fn usable_roots(
    ca: keyring_api::file::CaFiles,
    set: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&ca.pem)
        .filter_map(Result::ok)
        .filter(|der| store.add(der.clone()).is_ok())
        .collect();
    if !certs.is_empty() {
        return Ok(certs);
    }
    let read = match ca.files {
        1 => "1 file read".to_string(),
        n => format!("{n} files read"),
    };
    let problem = ca
        .problems
        .first()
        .map(|(path, e)| format!("; {}: {e}", path.display()))
        .unwrap_or_default();
    Err(TlsSetupError(format!(
        "no usable CA certificate in {set} ({read}{problem}); fix the setting in the \
         credential provider's env, or remove it to trust the system's certificates"
    )))
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

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::file::CaFiles;

    #[test]
    fn settings_without_a_usable_certificate_are_an_error_naming_them_and_the_first_problem() {
        // A PEM block that is no certificate is skipped, as text around it is.
        let pem = b"text\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let ca = CaFiles {
            pem: pem.to_vec(),
            files: 1,
            problems: vec![(
                "/etc/certs/fifo.pem".into(),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file (a FIFO)",
                ),
            )],
        };
        let e = usable_roots(ca, "SSL_CERT_DIR=/etc/certs").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot set up TLS: no usable CA certificate in SSL_CERT_DIR=/etc/certs (1 file \
             read; /etc/certs/fifo.pem: not a regular file (a FIFO)); fix the setting in the \
             credential provider's env, or remove it to trust the system's certificates"
        );
        let e = usable_roots(CaFiles::default(), "SSL_CERT_FILE=/x").unwrap_err();
        assert!(
            e.to_string().contains("in SSL_CERT_FILE=/x (0 files read)"),
            "{e}"
        );
    }

    #[test]
    fn the_usable_certificates_of_the_settings_are_kept_and_the_rest_dropped() {
        let bundle = BUNDLES
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .expect("a CA bundle of the distribution (ca-certificates)");
        let mut pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
        pem.extend_from_slice(&bundle);
        let all = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::pem_slice_iter(&bundle).count()
        };
        let ca = CaFiles {
            pem,
            files: 2,
            problems: Vec::new(),
        };
        let roots = usable_roots(ca, "SSL_CERT_FILE=/x").unwrap();
        assert!(
            !roots.is_empty() && roots.len() <= all,
            "{} of {all}",
            roots.len()
        );
        // Their PEM form reads back as the same certificates.
        let again: Vec<_> = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::pem_slice_iter(&to_pem(&roots))
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(again, roots);
        assert!(config_trusting_only(roots).is_ok());
    }
}
