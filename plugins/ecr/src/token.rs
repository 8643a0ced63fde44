//! What an ECR authorization token turns into: the user name and password it encodes, and
//! how long the answer may be reused. Pure functions; the clock is passed in.
//!
//! # Lifetime
//!
//! The API crate's one rule ([`keyring_api::lifetime`]): reused until five minutes before the
//! token expires (a 12 h ECR token for 11 h 55 min), at most 12 h; a token already expired
//! when it arrives (a skewed clock, a fake endpoint) is an error, never a zero or negative
//! duration; a token without an expiry (never seen from AWS) gets the kubelet's five
//! minutes. The upstream `ecr-credential-provider` reuses half the token's life instead;
//! one rule for every backend wins over copying that choice, and the refresh jitter and
//! stale-if-error of the cache keep refreshes spread and safe either way.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use keyring_api::{lifetime, Secret};

/// Why a token could not be decoded. The texts never include the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64.
    #[error("the authorization token is not base64")]
    Base64,
    /// Not `user:password` in UTF-8.
    #[error("the authorization token does not decode to user:password")]
    Shape,
}

/// Decodes `base64(user:password)`; the password is everything after the first `:`.
pub fn decode(token: &Secret<String>) -> Result<(String, Secret<String>), TokenError> {
    let text = token.expose().trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .map(Secret::new)
        .map_err(|_| TokenError::Base64)?;
    let text = std::str::from_utf8(bytes.expose()).map_err(|_| TokenError::Shape)?;
    let (user, password) = text.split_once(':').ok_or(TokenError::Shape)?;
    if user.is_empty() || password.is_empty() {
        return Err(TokenError::Shape);
    }
    Ok((user.to_string(), Secret::new(password.to_string())))
}

/// The answer's lifetime for a token expiring at `expires_at`, seen at `now`: see the
/// module docs. `Ok(None)` when the token came without an expiry (the caller warns).
pub fn lifetime(
    expires_at: Option<SystemTime>,
    now: SystemTime,
) -> Result<Option<Duration>, lifetime::Expired> {
    expires_at
        .map(|exp| lifetime::for_expiry(now, exp))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Secret<String> {
        Secret::new(base64::engine::general_purpose::STANDARD.encode(s))
    }

    #[test]
    fn decodes_user_and_password() {
        let (u, p) = decode(&b64("AWS:eyJwYXlsb2FkIjoi:with:colons")).unwrap();
        assert_eq!(
            (u.as_str(), p.expose().as_str()),
            ("AWS", "eyJwYXlsb2FkIjoi:with:colons")
        );
        // Unpadded and surrounding whitespace are tolerated.
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("AWS:pw");
        let (u, p) = decode(&Secret::new(format!(" {unpadded}\n"))).unwrap();
        assert_eq!((u.as_str(), p.expose().as_str()), ("AWS", "pw"));
    }

    #[test]
    fn bad_tokens_say_why_without_the_token() {
        assert_eq!(
            decode(&Secret::new("not base64!".into())),
            Err(TokenError::Base64)
        );
        for bad in ["AWS", "AWS:", ":pw", ""] {
            assert_eq!(decode(&b64(bad)), Err(TokenError::Shape), "{bad:?}");
        }
        let not_utf8 =
            Secret::new(base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x']));
        assert_eq!(decode(&not_utf8), Err(TokenError::Shape));
        assert!(!TokenError::Base64.to_string().contains("base64!"));
    }

    #[test]
    fn lifetime_is_the_api_rule() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(
            lifetime(Some(now + h(12)), now),
            Ok(Some(h(12) - lifetime::REFRESH_MARGIN))
        );
        assert_eq!(lifetime(Some(now + h(48)), now), Ok(Some(lifetime::MAX)));
        // Expired now or long ago (moto's 2015): an error, never zero or negative.
        assert_eq!(lifetime(Some(now), now), Err(lifetime::Expired));
        let moto = SystemTime::UNIX_EPOCH + Duration::from_secs(1_420_070_400);
        assert_eq!(lifetime(Some(moto), now), Err(lifetime::Expired));
        assert_eq!(lifetime(None, now), Ok(None));
    }
}
