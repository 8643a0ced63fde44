//! RS256 JSON Web Tokens for OAuth client assertions (RFC 7523): the signed JWT that a
//! Google service-account key or an Entra ID client certificate presents to a token endpoint.
//! One PEM key reader and one signer for both backends, on ring like the TLS stack. Neither
//! error ever quotes the key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keyring_api::Secret;
pub use ring::rand::{SecureRandom, SystemRandom};
pub use ring::signature::RsaKeyPair;

/// Why a PEM file gave no usable RSA key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `PRIVATE KEY` / `RSA PRIVATE KEY` section.
    #[error("no PEM private key")]
    NoKey,
    /// An EC or other non-RSA key.
    #[error("not an RSA private key")]
    NotRsa,
    /// ring refused the RSA key (its size, its encoding).
    #[error("an RSA key ring refuses: {0}")]
    Rejected(String),
}

/// The RSA private key of a PEM document (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
pub fn rsa_key_from_pem(pem: &[u8]) -> Result<RsaKeyPair, KeyError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(PrivateKeyDer::Pkcs8(k)) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        Ok(PrivateKeyDer::Pkcs1(k)) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        Ok(_) => return Err(KeyError::NotRsa),
        Err(_) => return Err(KeyError::NoKey),
    }
    .map_err(|e| match e.to_string().as_str() {
        "WrongAlgorithm" => KeyError::NotRsa,
        other => KeyError::Rejected(other.to_string()),
    })
}

/// `header.claims.signature`, each part base64url without padding, signed RS256 with `key`.
pub fn sign_rs256(
    key: &RsaKeyPair,
    header: &serde_json::Value,
    claims: &serde_json::Value,
    rng: &dyn SecureRandom,
) -> Result<Secret<String>, ring::error::Unspecified> {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        rng,
        input.as_bytes(),
        &mut sig,
    )?;
    Ok(Secret::new(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(sig)
    )))
}
