//! Reading the claims of a JSON Web Token without verifying it: the one reader of every
//! backend and of the binary's cache.
//!
//! Some tokens are read only for what they say about themselves: when an ACR refresh token
//! stops working (an answer's lifetime), which Entra ID tenant issued an access token, which
//! service account a pod's token speaks for (the cache key of token-mode answers). The
//! signature is **not** checked here; whoever accepts the token checks it. So nothing read
//! here may grant anything: it may only shorten a lifetime, name a tenant the token's own
//! consumer then checks, or choose a cache entry (see the binary's `cache::workload`).
//!
//! [`unverified_claims`] splits a compact JWS (`header.payload.signature`), decodes the
//! payload as base64url (RFC 7515 has no padding; padding some issuers add is tolerated)
//! for a token of at most [`MAX_TOKEN_BYTES`], and deserializes the JSON object into the
//! caller's claims type with serde (claims the type does not name are ignored). A time
//! claim (`exp`, `nbf`, `iat`) is a [`NumericDate`], which becomes a `SystemTime` only
//! through [`lifetime::expiry_at_unix`]: a hostile 2^63 or 1e300 neither overflows nor
//! panics, it is clamped to the lifetime horizon. Errors never quote the token, and the
//! decoded payload is wiped when dropped ([`Secret`]).

use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

use crate::{lifetime, Secret};

/// Largest token read: ACR refresh tokens are about 2 KiB, service-account tokens about 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

/// Why a token's claims could not be read. Never carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// Not three dot-separated parts.
    #[error("not a JWT (expected header.payload.signature)")]
    NotJwt,
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the JWT is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// The payload is not base64url.
    #[error("the JWT payload is not base64url")]
    Base64,
    /// The payload is not a JSON object, or a claim has the wrong type for the caller.
    #[error("the JWT payload is not a JSON object with claims of the expected types")]
    Json,
}

/// The claims of `token` (a compact JWS) as `T`, without verifying the signature; see the
/// module docs.
pub fn unverified_claims<T: DeserializeOwned>(token: &str) -> Result<T, ClaimsError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ClaimsError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::NotJwt);
    };
    let bytes = Secret::new(
        URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| ClaimsError::Base64)?,
    );
    // A struct would also take a JSON array (serde's sequence form): claims are an object.
    if bytes.expose().trim_ascii_start().first() != Some(&b'{') {
        return Err(ClaimsError::Json);
    }
    serde_json::from_slice(bytes.expose()).map_err(|_| ClaimsError::Json)
}

/// A NumericDate claim (RFC 7519): seconds since the Unix epoch, integer or fractional, as
/// the token states it. Kept in whole seconds (a fraction is dropped, towards the past);
/// beyond `i64` it saturates. A JSON string, boolean or object is not one (a
/// [`ClaimsError::Json`] for the claims that hold it); `null` reads as an absent claim in
/// an `Option<NumericDate>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NumericDate(i64);

impl NumericDate {
    /// The seconds since the epoch (saturated to `i64`).
    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// This date as a time, seen from `now`: through [`lifetime::expiry_at_unix`], so at most
    /// [`lifetime::HORIZON`] after `now` and the epoch for a negative date.
    pub fn to_system_time(self, now: SystemTime) -> SystemTime {
        lifetime::expiry_at_unix(now, self.0)
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seconds;
        impl Visitor<'_> for Seconds {
            type Value = NumericDate;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of seconds since the Unix epoch")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate(i64::try_from(v).unwrap_or(i64::MAX)))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<NumericDate, E> {
                if v.is_nan() {
                    return Err(E::custom("NaN is not a date"));
                }
                // `as` saturates: 1e300 is i64::MAX, -1e300 is i64::MIN.
                Ok(NumericDate(v.floor() as i64))
            }
        }
        deserializer.deserialize_any(Seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE;
    use std::time::Duration;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Claims {
        exp: Option<NumericDate>,
        sub: Option<String>,
    }

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn read(payload: &str) -> Result<Claims, ClaimsError> {
        unverified_claims(&jwt(payload))
    }

    #[test]
    fn claims_are_read_into_the_callers_type_and_others_ignored() {
        assert_eq!(
            read(r#"{"exp":1700000000,"sub":"x","tid":"t","nested":{"a":[1]}}"#),
            Ok(Claims {
                exp: Some(NumericDate(1_700_000_000)),
                sub: Some("x".into())
            })
        );
        assert_eq!(
            read(r#"{"exp":null}"#),
            Ok(Claims {
                exp: None,
                sub: None
            })
        );
        // Padded base64url, as some issuers send it.
        let padded = format!("h.{}.s", URL_SAFE.encode(r#"{"exp":10}"#));
        assert!(padded.contains('='));
        assert_eq!(
            unverified_claims::<Claims>(&padded).map(|c| c.exp),
            Ok(Some(NumericDate(10)))
        );
    }

    #[test]
    fn a_numeric_date_of_any_size_becomes_a_time_within_the_horizon() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let date = |json: &str| read(&format!(r#"{{"exp":{json}}}"#)).unwrap().exp.unwrap();
        assert_eq!(date("1700000000.75"), NumericDate(1_700_000_000));
        assert_eq!(date("-0.5"), NumericDate(-1));
        for huge in [
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "1e300",
        ] {
            assert_eq!(date(huge), NumericDate(i64::MAX), "{huge}");
            assert_eq!(
                date(huge).to_system_time(now),
                now + lifetime::HORIZON,
                "{huge}"
            );
        }
        for past in ["-9223372036854775808", "-1e300", "-1"] {
            assert_eq!(
                date(past).to_system_time(now),
                SystemTime::UNIX_EPOCH,
                "{past}"
            );
        }
        assert_eq!(
            date("1800003600").to_system_time(now),
            now + Duration::from_secs(3600)
        );
    }

    #[test]
    fn malformed_tokens_are_refused_without_quoting_them() {
        let r = |t: &str| unverified_claims::<Claims>(t);
        assert_eq!(r("opaque-token"), Err(ClaimsError::NotJwt));
        assert_eq!(r("a.b"), Err(ClaimsError::NotJwt));
        assert_eq!(r("a.b.c.d"), Err(ClaimsError::NotJwt));
        assert_eq!(r("a.!!!.c"), Err(ClaimsError::Base64));
        assert_eq!(r("a..c"), Err(ClaimsError::Json));
        assert_eq!(read("not json"), Err(ClaimsError::Json));
        // A struct would take an array in serde's sequence form: claims are an object.
        assert_eq!(read("[1, null]"), Err(ClaimsError::Json));
        for bad in [
            r#"{"exp":"1700000000"}"#,
            r#"{"exp":true}"#,
            r#"{"exp":{}}"#,
        ] {
            assert_eq!(read(bad), Err(ClaimsError::Json), "{bad}");
        }
        let huge = format!("a.{}.c", "a".repeat(MAX_TOKEN_BYTES));
        assert_eq!(r(&huge), Err(ClaimsError::TooLarge));
        let secret = jwt(r#"{"exp":"hunter2"}"#);
        let text = r(&secret).unwrap_err().to_string();
        assert!(
            !text.contains("hunter2") && !text.contains(&secret[..20]),
            "{text}"
        );
    }
}
