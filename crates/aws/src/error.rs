//! Why the client could not be built: each a local setting (the CA certificates, the TLS
//! set-up), which the backends map into their own errors, as misconfiguration. The texts
//! name files and variables, never a certificate's content.

/// A failure to build the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `AWS_CA_BUNDLE` cannot be read.
    #[error("cannot read AWS_CA_BUNDLE {path}: {cause}")]
    CaBundleRead {
        /// The file, as named.
        path: String,
        /// Why (a FIFO, a device or a directory is "not a regular file (...)", a bundle
        /// past [`MAX_CA_BUNDLE`](crate::MAX_CA_BUNDLE) "larger than ... bytes").
        cause: std::io::Error,
    },
    /// `AWS_CA_BUNDLE` holds no usable certificate.
    #[error("AWS_CA_BUNDLE {path}: {cause}")]
    CaBundle {
        /// The file, as named.
        path: String,
        /// What is wrong with its certificates.
        cause: keyring_net::TlsSetupError,
    },
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` hold no usable certificate (the error names them, the
    /// files read and the first that could not be).
    #[error(transparent)]
    EnvCa(keyring_net::TlsSetupError),
    /// The TLS set-up of the SDK's client failed. Shown with its causes on one line (the
    /// cause is not a `source`: the text holds it already); a backend may word it its own way.
    #[error("cannot set up TLS: {}", one_line(.0))]
    Tls(aws_smithy_http_client::HttpClientError),
}

/// An error and its sources, `a: b: c`, on one line of at most 300 characters.
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out.replace(['\n', '\r'], " ").chars().take(300).collect()
}
