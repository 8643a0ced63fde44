//! A service principal's certificate credential: a PEM file with the certificate (and maybe
//! its chain) and the unencrypted RSA private key, PKCS#8 (`PRIVATE KEY`) or PKCS#1
//! (`RSA PRIVATE KEY`), the format `azidentity` and `az` accept for certificate files.
//!
//! The certificate used for the `x5t` thumbprint is the one whose public key matches the
//! private key, wherever it sits in the file, so a chain in any order works. Encrypted keys
//! and PKCS#12 (`.pfx`) files are refused with the `openssl` command that converts them:
//! decrypting them would need a second crypto stack next to ring.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keyring_net::jwt::KeyError;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

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
    fn finds_subsequences() {
        assert!(contains(b"abcdef", b"cde"));
        assert!(!contains(b"abcdef", b"xyz"));
        assert!(!contains(b"ab", b"abc"));
        assert!(!contains(b"ab", b""));
    }
}
