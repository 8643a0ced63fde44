//! What an ECR authorization token turns into: the user name and password it encodes, and
//! how long the answer may be reused. Pure functions; the clock is passed in.
//!
//! # Lifetime
//!
//! The answer lives half the token's remaining life, the choice of the upstream
//! `ecr-credential-provider` (a 12 h token is reused for about 6 h, so a refresh always
//! happens with hours to spare, and ECR's documented early invalidations stay rare). That
//! half is clamped to [`MIN_LIFETIME`] .. [`MAX_LIFETIME`]:
//!
//! * at least one minute, so that a token close to its end (or already past it, as the
//!   fixed 2015 expiry of moto's fake tokens is, or as a skewed clock makes a fresh one look)
//!   never yields a zero or negative duration, which the kubelet would read as "do not
//!   cache" or reject. Such a case is logged as a warning: the caller sees it and the cache,
//!   which bounds freshness by `expires_at`, will not serve it past its expiry anyway;
//! * at most 12 hours, the longest life AWS gives a token, so a bogus far-future expiry
//!   cannot pin a credential in the kubelet for days.
//!
//! Durations are whole seconds. A response with no expiry (never seen from AWS) gets
//! [`NO_EXPIRY_LIFETIME`].

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use keyring_api::Secret;

/// The shortest lifetime reported.
pub const MIN_LIFETIME: Duration = Duration::from_secs(60);
/// The longest lifetime reported: a token's full life.
pub const MAX_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The lifetime of an answer whose token came without an expiry: short enough to be safe,
/// long enough not to hammer the API.
pub const NO_EXPIRY_LIFETIME: Duration = Duration::from_secs(30 * 60);

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

/// How the lifetime was arrived at, for the caller's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clamp {
    /// Half the remaining life, within bounds.
    Half,
    /// Raised to [`MIN_LIFETIME`]; the token has this much life left (zero if expired).
    RaisedToMin {
        /// The token's remaining life.
        remaining: Duration,
    },
    /// Cut to [`MAX_LIFETIME`].
    CutToMax,
    /// No expiry was given.
    NoExpiry,
}

/// The answer's lifetime for a token expiring at `expires_at`, seen at `now`.
pub fn lifetime(expires_at: Option<SystemTime>, now: SystemTime) -> (Duration, Clamp) {
    let Some(expires_at) = expires_at else {
        return (NO_EXPIRY_LIFETIME, Clamp::NoExpiry);
    };
    let remaining = expires_at.duration_since(now).unwrap_or_default();
    let half = Duration::from_secs(remaining.as_secs() / 2);
    if half < MIN_LIFETIME {
        (MIN_LIFETIME, Clamp::RaisedToMin { remaining })
    } else if half > MAX_LIFETIME {
        (MAX_LIFETIME, Clamp::CutToMax)
    } else {
        (half, Clamp::Half)
    }
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
    fn lifetime_is_half_the_remaining_life_clamped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let h = |n: u64| Duration::from_secs(n * 3600);
        let at = |d: Duration| Some(now + d);
        assert_eq!(lifetime(at(h(12)), now), (h(6), Clamp::Half));
        assert_eq!(
            lifetime(at(Duration::from_millis(7_201_999)), now),
            (Duration::from_secs(3600), Clamp::Half)
        );
        assert_eq!(lifetime(at(h(48)), now), (MAX_LIFETIME, Clamp::CutToMax));
        assert_eq!(lifetime(at(h(24)), now), (MAX_LIFETIME, Clamp::Half));
        // The boundary: two minutes left gives one minute; less is raised to one minute.
        assert_eq!(
            lifetime(at(Duration::from_secs(120)), now),
            (MIN_LIFETIME, Clamp::Half)
        );
        assert_eq!(
            lifetime(at(Duration::from_secs(119)), now),
            (
                MIN_LIFETIME,
                Clamp::RaisedToMin {
                    remaining: Duration::from_secs(119)
                }
            )
        );
        // Expired now or long ago (moto's 2015): never zero or negative.
        assert_eq!(
            lifetime(Some(now), now),
            (
                MIN_LIFETIME,
                Clamp::RaisedToMin {
                    remaining: Duration::ZERO
                }
            )
        );
        let moto = SystemTime::UNIX_EPOCH + Duration::from_secs(1_420_070_400);
        assert_eq!(
            lifetime(Some(moto), now),
            (
                MIN_LIFETIME,
                Clamp::RaisedToMin {
                    remaining: Duration::ZERO
                }
            )
        );
        assert_eq!(lifetime(None, now), (NO_EXPIRY_LIFETIME, Clamp::NoExpiry));
    }
}
