//! JWTs: the claims this backend reads from tokens it receives, and signing the client
//! assertion of a certificate credential.
//!
//! Received tokens (the ACR refresh token, the Entra ID access token) are *not* verified:
//! whoever accepts them verifies them. They are read by [`keyring_api::jwt`], the one reader
//! of unverified claims; only `exp` ([`ExpiryClaim`]) and `tid` ([`TenantClaim`]) are read.

use std::time::{Duration, SystemTime};

use keyring_api::jwt::NumericDate;
use keyring_api::Secret;
use ring::rand::SecureRandom;

/// The claim read from an Entra ID access token: its tenant, when no tenant is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct TenantClaim {
    /// `tid`; check it with [`is_tenant_id`] before use.
    pub tid: Option<String>,
}

/// The claim read from an ACR refresh token: when it stops working, which sets the answer's
/// lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ExpiryClaim {
    /// `exp`, when present.
    pub exp: Option<NumericDate>,
}

/// A tenant: a GUID or a domain name (`contoso.onmicrosoft.com`). Also what may go into the
/// authority URL's path, so nothing else is allowed.
pub fn is_tenant_id(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 256
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !t.starts_with('.')
        && !t.contains("..")
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

/// Why an assertion could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The clock is before 1970.
    #[error("system clock is before 1970")]
    Clock,
    /// The random generator failed.
    #[error("no randomness available for the assertion ID")]
    Random,
    /// ring refused to sign (key too small or large).
    #[error("RS256 signing failed")]
    Sign,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_guids_or_domain_names_and_nothing_a_path_could_abuse() {
        for ok in [
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
            "common",
        ] {
            assert!(is_tenant_id(ok), "{ok}");
        }
        for bad in ["", "a/b", "..", ".x", "a..b", "a?b=c", "a b", "a%2f"] {
            assert!(!is_tenant_id(bad), "{bad}");
        }
    }
}
