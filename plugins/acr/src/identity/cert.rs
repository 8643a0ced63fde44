//! A service principal's certificate credential: a PEM file with the certificate (and maybe
//! its chain) and the unencrypted RSA private key, PKCS#8 (`PRIVATE KEY`) or PKCS#1
//! (`RSA PRIVATE KEY`), the format `azidentity` and `az` accept for certificate files, and
//! the client assertion signed with it ([`assertion`]): an RS256 JWT with the certificate's
//! `x5t`, valid for ten minutes, whose audience is the token endpoint it is sent to.
//!
//! The certificate used for the `x5t` thumbprint is the one whose public key matches the
//! private key, wherever it sits in the file, so a chain in any order works. Encrypted keys
//! and PKCS#12 (`.pfx`) files are refused with the `openssl` command that converts them:
//! decrypting them would need a second crypto stack next to ring.

use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keyring_api::Secret;
use keyring_net::jwt::KeyError;
use ring::rand::SecureRandom;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{read_bounded, MAX_CONFIG_BYTES};
use crate::error::{Error, SignError};

/// How long a signed client assertion is valid.
const ASSERTION_VALIDITY: Duration = Duration::from_secs(10 * 60);

/// The client assertion of application `client_id` for the token endpoint `audience`, signed
/// with the certificate credential in the file at `path` (read again for every request).
pub fn assertion(
    path: &Path,
    client_id: &str,
    audience: &str,
    now: SystemTime,
) -> Result<Secret<String>, Error> {
    let bytes = read_bounded(
        path,
        MAX_CONFIG_BYTES,
        "client certificate",
        "check aadClientCertPath / AZURE_CLIENT_CERTIFICATE_PATH and that the kubelet can read it",
    )?;
    let cert = load(bytes.expose()).map_err(|e| Error::Content {
        what: "client certificate",
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    tracing::debug!(thumbprint = %cert.thumbprint, "signing a client assertion");
    Ok(sign_assertion(
        &cert.key,
        &cert.x5t,
        &AssertionClaims {
            client_id,
            audience,
            now,
            validity: ASSERTION_VALIDITY,
        },
        &ring::rand::SystemRandom::new(),
    )?)
}

/// A loaded certificate credential.
pub struct CertificateKey {
    /// The signing key.
    pub key: RsaKeyPair,
    /// base64url SHA-1 of the certificate's DER (`x5t`).
    pub x5t: String,
    /// The same thumbprint in upper-case hex, as the Azure portal shows it (for logs).
    pub thumbprint: String,
}

impl std::fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKey")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// Why a certificate file was refused. The texts name no key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// A binary file: almost certainly PKCS#12.
    #[error("is a PKCS#12 (.pfx) file, which this build cannot read; convert it to PEM with `openssl pkcs12 -in cert.pfx -out cert.pem -nodes` and point to that")]
    Pkcs12,
    /// The key is encrypted.
    #[error("holds an encrypted private key; store it unencrypted (`openssl pkey -in key.pem -out plain.pem`) in a file only the kubelet can read")]
    Encrypted,
    /// No `CERTIFICATE` section.
    #[error("has no PEM CERTIFICATE section")]
    NoCertificate,
    /// No private key section.
    #[error("has no PEM private key (PRIVATE KEY or RSA PRIVATE KEY)")]
    NoKey,
    /// An EC or other non-RSA key.
    #[error("holds a non-RSA private key; Entra ID certificate credentials need RSA")]
    NotRsa,
    /// ring refused the key.
    #[error("holds an RSA private key that cannot be used: {0}")]
    BadKey(String),
    /// No certificate matches the key.
    #[error("has no certificate whose public key matches the private key")]
    Mismatch,
}

/// Loads the credential from the file's bytes.
pub fn load(bytes: &[u8]) -> Result<CertificateKey, CertError> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("-----BEGIN") {
        // DER or PKCS#12 starts with a SEQUENCE tag.
        return Err(if bytes.first() == Some(&0x30) {
            CertError::Pkcs12
        } else {
            CertError::NoCertificate
        });
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(CertError::Encrypted);
    }
    let key = keyring_net::jwt::rsa_key_from_pem(bytes).map_err(|e| match e {
        KeyError::NoKey => CertError::NoKey,
        KeyError::NotRsa => CertError::NotRsa,
        KeyError::Rejected(why) => CertError::BadKey(why),
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(CertError::NoCertificate);
    }
    // The certificate's SubjectPublicKeyInfo holds the RSAPublicKey DER verbatim.
    let public = key.public().as_ref();
    let cert = certs
        .iter()
        .find(|c| contains(c.as_ref(), public))
        .ok_or(CertError::Mismatch)?;
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
    Ok(CertificateKey {
        key,
        x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        thumbprint: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
    })
}

/// The parts of a client assertion (RFC 7523) for Entra ID.
#[derive(Debug, Clone)]
pub struct AssertionClaims<'a> {
    /// `iss` and `sub`: the application (client) ID.
    pub client_id: &'a str,
    /// `aud`: the token endpoint the assertion is sent to.
    pub audience: &'a str,
    /// `iat`/`nbf`.
    pub now: SystemTime,
    /// How long the assertion is good for (`exp - iat`).
    pub validity: Duration,
}

/// A signed RS256 client assertion: header `{"alg":"RS256","typ":"JWT","x5t":...}` and
/// claims `aud`, `iss`, `sub`, `jti`, `nbf`, `iat`, `exp`.
pub fn sign_assertion(
    key: &ring::signature::RsaKeyPair,
    x5t: &str,
    claims: &AssertionClaims<'_>,
    rng: &dyn SecureRandom,
) -> Result<Secret<String>, SignError> {
    let iat = claims
        .now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| SignError::Clock)?
        .as_secs();
    let mut id = [0u8; 16];
    rng.fill(&mut id).map_err(|_| SignError::Random)?;
    // A version-4 UUID, as MSAL sends.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let jti = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": x5t});
    let body = serde_json::json!({
        "aud": claims.audience,
        "iss": claims.client_id,
        "sub": claims.client_id,
        "jti": jti,
        "nbf": iat,
        "iat": iat,
        "exp": iat + claims.validity.as_secs(),
    });
    keyring_net::jwt::sign_rs256(key, &header, &body, rng).map_err(|_| SignError::Sign)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_fix() {
        assert_eq!(load(&[0x30, 0x82, 0x01]).unwrap_err(), CertError::Pkcs12);
        assert_eq!(load(b"hello").unwrap_err(), CertError::NoCertificate);
        let enc =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(load(enc).unwrap_err(), CertError::Encrypted);
        let only_cert = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert_eq!(load(only_cert).unwrap_err(), CertError::NoKey);
        assert!(CertError::Pkcs12.to_string().contains("openssl pkcs12"));
    }

    #[test]
    fn a_public_key_is_found_in_a_certificate_only_whole() {
        assert!(contains(b"abcdef", b"cde"));
        assert!(!contains(b"abcdef", b"xyz"));
        assert!(!contains(b"ab", b"abc"));
        assert!(!contains(b"ab", b""));
    }
}
