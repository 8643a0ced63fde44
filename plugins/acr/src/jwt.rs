//! JWTs: reading claims of tokens this backend receives, and signing the client assertion of
//! a certificate credential.
//!
//! Received tokens (the ACR refresh token, the Entra ID access token) are *not* verified:
//! whoever accepts them verifies them. Only `exp` (when the ACR refresh token stops working,
//! which sets the answer's lifetime) and `tid` (the tenant, when no tenant is configured) are
//! read. Errors never quote the token.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use keyring_api::Secret;
use ring::rand::SecureRandom;

/// Largest token decoded; ACR refresh tokens are about 2 KiB.
const MAX_TOKEN_BYTES: usize = 64 << 10;

/// The claims this backend reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `exp`, when present.
    pub exp: Option<SystemTime>,
    /// `tid` (Entra ID tenant), when present and well-formed.
    pub tid: Option<String>,
}

/// Why a token's claims could not be read. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// Not three dot-separated parts, or too long.
    #[error("not a JWT (expected header.payload.signature)")]
    Shape,
    /// The payload is not base64url.
    #[error("JWT payload is not base64url")]
    Base64,
    /// The payload is not a JSON object.
    #[error("JWT payload is not a JSON object")]
    Json,
    /// `exp` is there but not a non-negative number of seconds.
    #[error("JWT exp claim is not a non-negative number")]
    Exp,
}

/// Reads `exp` and `tid` from a compact JWS without verifying it.
pub fn claims(token: &str) -> Result<Claims, ClaimsError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ClaimsError::Shape);
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::Shape);
    };
    // base64url without padding per RFC 7515; tolerate padding some issuers add.
    let bytes = Secret::new(
        URL_SAFE_NO_PAD
            .decode(payload)
            .or_else(|_| URL_SAFE.decode(payload))
            .map_err(|_| ClaimsError::Base64)?,
    );
    let value: serde_json::Value =
        serde_json::from_slice(bytes.expose()).map_err(|_| ClaimsError::Json)?;
    let obj = value.as_object().ok_or(ClaimsError::Json)?;
    let exp = match obj.get("exp") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(seconds_to_time(v).ok_or(ClaimsError::Exp)?),
    };
    let tid = obj
        .get("tid")
        .and_then(|v| v.as_str())
        .filter(|t| is_tenant_id(t))
        .map(str::to_string);
    Ok(Claims { exp, tid })
}

/// A NumericDate: seconds since the epoch, integer or fractional.
fn seconds_to_time(v: &serde_json::Value) -> Option<SystemTime> {
    let secs = if let Some(n) = v.as_u64() {
        Duration::from_secs(n)
    } else {
        let f = v.as_f64().filter(|f| f.is_finite() && *f >= 0.0)?;
        Duration::try_from_secs_f64(f).ok()?
    };
    SystemTime::UNIX_EPOCH.checked_add(secs)
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

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn exp_and_tid() {
        let c = claims(&jwt(
            r#"{"exp":1700000000,"tid":"72f988bf-86f1-41af-91ab-2d7cd011db47"}"#,
        ))
        .unwrap();
        assert_eq!(
            c.exp,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(
            c.tid.as_deref(),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );

        let c = claims(&jwt(r#"{"exp":1700000000.75}"#)).unwrap();
        assert_eq!(
            c.exp,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_750))
        );
        let c = claims(&jwt(r#"{"sub":"x"}"#)).unwrap();
        assert_eq!(
            c,
            Claims {
                exp: None,
                tid: None
            }
        );
        let c = claims(&jwt(r#"{"exp":null,"tid":"../evil"}"#)).unwrap();
        assert_eq!(
            c,
            Claims {
                exp: None,
                tid: None
            }
        );

        // Padded base64url is tolerated.
        let padded = format!("h.{}.s", URL_SAFE.encode(r#"{"exp":10}"#));
        assert!(padded.contains('='));
        assert_eq!(
            claims(&padded).unwrap().exp,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10))
        );
    }

    #[test]
    fn malformed_tokens() {
        assert_eq!(claims("opaque-token"), Err(ClaimsError::Shape));
        assert_eq!(claims("a.b"), Err(ClaimsError::Shape));
        assert_eq!(claims("a.b.c.d"), Err(ClaimsError::Shape));
        assert_eq!(claims("a.!!!.c"), Err(ClaimsError::Base64));
        assert_eq!(
            claims(&format!("a.{}.c", URL_SAFE_NO_PAD.encode("not json"))),
            Err(ClaimsError::Json)
        );
        assert_eq!(
            claims(&format!("a.{}.c", URL_SAFE_NO_PAD.encode("[1]"))),
            Err(ClaimsError::Json)
        );
        for bad in [
            r#"{"exp":-1}"#,
            r#"{"exp":"1700000000"}"#,
            r#"{"exp":true}"#,
        ] {
            assert_eq!(claims(&jwt(bad)), Err(ClaimsError::Exp), "{bad}");
        }
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(claims(&huge), Err(ClaimsError::Shape));
    }

    #[test]
    fn tenant_ids() {
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
