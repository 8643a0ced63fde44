//! The one HTTP client of every AWS SDK call in kubelet-keyring (the ecr backend's ECR, ECR
//! Public and STS clients and its credentials chain; the identity backend's node AWS
//! identity), so that all of them read through the same policy, keyring-net's:
//!
//! * the SDK's own smithy client (hyper, the stack [`keyring_net`] also runs on), rustls on
//!   the ring provider, never aws-lc;
//! * the system's root certificates, those of `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (read
//!   bounded by [`keyring_net::tls::env_roots_pem`], not by the SDK's loader, which reads
//!   them whole and blocking) or, as in the Go SDK, only those of `AWS_CA_BUNDLE` (read
//!   bounded and checked here, since the SDK's TLS set-up panics on a bundle it cannot
//!   parse);
//! * `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` from the environment, or as
//!   Go's `net/http` reads them ([`proxy::proxy_config`]);
//! * every response body read through keyring-net's cap, [`MAX_BODY`]
//!   ([`cap`]), the clients the SDK builds by itself (IMDS, the container credentials
//!   endpoint) included.
//!
//! And the files the SDK reads by itself (the profiles, the web identity token, the SSO
//! token cache, ...), checked before any SDK chain reads them ([`files`], [`check_files`]):
//! a FIFO, a device, a directory or more than 4 MiB is a [`FileError`] naming the file.
//!
//! Built on a cache miss only, by the backend's call, and thrown away with the call's
//! runtime: the hot path (a cache hit, docker-config) never links a TLS config or a client
//! from here. Timeouts, retries and the credentials chain stay each backend's.

pub mod cap;
pub mod error;
pub mod files;
pub mod proxy;

use std::path::Path;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Connector;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

pub use cap::{TooLarge, MAX_BODY};
pub use error::Error;
pub use files::{check_files, FileError};
pub use proxy::proxy_config;

/// Largest `AWS_CA_BUNDLE` read: the cap [`check_files`] holds it to.
pub const MAX_CA_BUNDLE: u64 = files::MAX_FILE_BYTES;

/// The one HTTP client of a call (see the crate docs): rustls with ring, the environment's
/// proxies ([`proxy_config`]; `go_proxy_variables` as there), the system's roots (those of
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` when set), or only the certificates of `AWS_CA_BUNDLE`
/// when that is set (as the Go SDK does: the bundle replaces the system roots); every body
/// capped at [`MAX_BODY`].
pub fn http_client(go_proxy_variables: bool) -> Result<SharedHttpClient, Error> {
    let mut context = tls::TlsContext::builder();
    let ca_bundle = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty());
    if ca_bundle.is_none() {
        // The SDK would read these itself (rustls-native-certs), whole and blocking: a FIFO
        // hung the call, /dev/zero took all memory.
        if let Some(pem) = keyring_net::tls::env_roots_pem().map_err(Error::EnvCa)? {
            context = context.with_trust_store(
                tls::TrustStore::empty()
                    .with_native_roots(false)
                    .with_pem_certificate(pem),
            );
        }
    }
    if let Some(path) = ca_bundle {
        let shown = Path::new(&path).display().to_string();
        // A directory or a bundle past the cap is refused, not read cut short.
        let pem = keyring_api::file::read(Path::new(&path), MAX_CA_BUNDLE).map_err(|cause| {
            Error::CaBundleRead {
                path: shown.clone(),
                cause,
            }
        })?;
        // Checked here because the SDK's TLS set-up panics on a bundle it cannot parse.
        keyring_net::tls::check_pem_roots(&pem)
            .map_err(|cause| Error::CaBundle { path: shown, cause })?;
        context = context.with_trust_store(
            tls::TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(pem),
        );
    }
    let context = context.build().map_err(Error::Tls)?;
    // `build_with_connector_fn` is the smithy client builder's hook for a custom connector;
    // it is the only way to combine the ring provider with environment proxy settings (the
    // plain `build_https` never proxies).
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut builder = Connector::builder();
            builder.set_connector_settings(settings.cloned());
            builder.set_sleep_impl(components.and_then(|c| c.sleep_impl()));
            builder
                .proxy_config(proxy_config(go_proxy_variables, &|k| std::env::var(k).ok()))
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .tls_context(context.clone())
                .build()
        },
    );
    Ok(cap::capped(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aws_ca_bundle_past_its_cap_or_a_directory_is_refused_not_read_cut_short() {
        // The only test of this crate that touches the environment.
        let dir = std::env::temp_dir().join(format!("keyring-aws-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("bundle.pem");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_CA_BUNDLE + 1).unwrap();
        let refused = |path: &Path| {
            std::env::set_var("AWS_CA_BUNDLE", path);
            let err = http_client(false).unwrap_err();
            std::env::remove_var("AWS_CA_BUNDLE");
            err.to_string()
        };
        let (past, a_dir) = (refused(&big), refused(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            past,
            format!(
                "cannot read AWS_CA_BUNDLE {}: larger than {MAX_CA_BUNDLE} bytes",
                big.display()
            )
        );
        assert_eq!(
            a_dir,
            format!(
                "cannot read AWS_CA_BUNDLE {}: not a regular file (a directory)",
                dir.display()
            )
        );
    }
}
