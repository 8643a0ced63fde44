//! What an ECR authorization token turns into: one `auth` entry keyed by the image's registry
//! as written (port kept, so a mirror `mirror.example.com:5000` gets exactly that key), the
//! user name and password the token encodes (the user is normally `AWS`), `cacheKeyType`
//! `Registry`, the lifetime, `expires_at` the token's expiry, and the route as its source.
//! Pure functions; the clock is passed in.
//!
//! # Lifetime
//!
//! The API crate's one rule ([`keyring_api::lifetime`]): reused until five minutes before the
//! token expires (a 12 h ECR token for 11 h 55 min), at most 12 h. The API's expiry (seconds
//! after the epoch) becomes a time only through [`lifetime::expiry_at_unix`]: clamped to its
//! ten-year horizon, before the epoch expired. The upstream `ecr-credential-provider` reuses
//! half the token's life instead; one rule for every backend wins over copying that choice,
//! and the refresh jitter and stale-if-error of the cache keep refreshes spread and safe
//! either way. Two tokens are for the pull at hand only ([`lifetime::UNCACHED`]: the kubelet
//! is told `cacheDuration: 0s`, nothing is stored):
//!
//! * a token without an expiry (never seen from AWS), as upstream answers it;
//! * a token already expired by this node's clock (the clock runs ahead, or a fake endpoint
//!   dates its tokens in the past), with a warning naming the skew. Upstream answers it too,
//!   but omits `cacheDuration`, so that the kubelet keeps it for its `defaultCacheDuration`
//!   (12 h on EKS); failing every pull on a skewed clock would be worse than either, and
//!   caching a token this node thinks expired would pin it for hours.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, CacheKeyType, Secret};

use crate::error::{Error, TokenError};
use crate::host::Route;
use crate::token::Token;

/// The answer for a token fetched for `registry` at `now`.
pub(crate) fn answer(
    registry: &str,
    route: &Route,
    token: &Token,
    now: SystemTime,
) -> Result<Answer, Error> {
    let (username, password) = decode(&token.authorization).map_err(|cause| Error::TokenShape {
        endpoint: token.endpoint.clone(),
        cause,
    })?;
    // A hostile expiry (i64::MAX seconds, before the epoch) neither overflows nor outlives
    // the API's horizon.
    let expires_at = token
        .expires
        .map(|secs| lifetime::expiry_at_unix(now, secs));
    let lifetime = lifetime(expires_at, now).unwrap_or_else(|why| {
        tracing::warn!(
            "the ECR token for {registry} from {} {why}: answering it for this pull only (cacheDuration 0s)",
            token.endpoint
        );
        lifetime::UNCACHED
    });
    tracing::info!(
        "ECR token for {registry} from {}, lifetime {}s",
        token.endpoint,
        lifetime.as_secs()
    );
    let mut auth = BTreeMap::new();
    auth.insert(registry.to_string(), AuthConfig { username, password });
    Ok(Answer {
        auth,
        cache_key_type: CacheKeyType::Registry,
        lifetime,
        expires_at,
        source: route.describe(),
    })
}

/// Decodes `base64(user:password)`; the password is everything after the first `:`.
pub(crate) fn decode(token: &Secret<String>) -> Result<(String, Secret<String>), TokenError> {
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

/// Why a token is answered for the pull at hand only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uncached {
    /// The API gave no expiry.
    NoExpiry,
    /// Already expired (or less than a second left) by this node's clock, by this many
    /// whole seconds (0: still valid, for under a second).
    Expired(u64),
}

impl std::fmt::Display for Uncached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uncached::NoExpiry => f.write_str("came without an expiry"),
            Uncached::Expired(0) => f.write_str(
                "expires in under a second by this node's clock; check the node's clock (NTP)",
            ),
            Uncached::Expired(ago) => write!(
                f,
                "expired {ago}s ago by this node's clock, which is probably ahead; check it (NTP)"
            ),
        }
    }
}

/// The answer's lifetime for a token expiring at `expires_at`, seen at `now`: see the
/// module docs. `Err` says why it is [`lifetime::UNCACHED`] instead (the caller warns).
pub(crate) fn lifetime(
    expires_at: Option<SystemTime>,
    now: SystemTime,
) -> Result<Duration, Uncached> {
    let expires_at = expires_at.ok_or(Uncached::NoExpiry)?;
    lifetime::for_expiry(now, expires_at).map_err(|lifetime::Expired| {
        Uncached::Expired(now.duration_since(expires_at).map_or(0, |d| d.as_secs()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mirror;

    fn b64(s: &str) -> Secret<String> {
        Secret::new(base64::engine::general_purpose::STANDARD.encode(s))
    }

    #[test]
    fn a_token_decodes_to_its_user_and_password() {
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
            Ok(h(12) - lifetime::REFRESH_MARGIN)
        );
        assert_eq!(lifetime(Some(now + h(48)), now), Ok(lifetime::MAX));
        // Expired now or long ago (moto's 2015), or no expiry: for this pull only, saying why.
        assert_eq!(lifetime(Some(now), now), Err(Uncached::Expired(0)));
        let moto = SystemTime::UNIX_EPOCH + Duration::from_secs(1_420_070_400);
        assert_eq!(
            lifetime(Some(moto), now),
            Err(Uncached::Expired(1_800_000_000 - 1_420_070_400))
        );
        assert_eq!(lifetime(None, now), Err(Uncached::NoExpiry));
        assert!(Uncached::Expired(90)
            .to_string()
            .contains("expired 90s ago"));
    }

    #[test]
    fn the_answer_is_keyed_by_the_registry_as_written_with_the_decoded_user_and_password() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let route = Route::Mirror(Mirror {
            host: "mirror.example.com:5000".into(),
            region: "us-west-2".into(),
            registry_id: Some("123456789012".into()),
            fips: false,
            dual_stack: false,
        });
        let token = Token {
            authorization: Secret::new("QVdTOnBhc3N3b3Jk".into()), // AWS:password
            expires: Some(1_800_000_000 + 12 * 3600),
            endpoint: "the ECR API in us-west-2".into(),
        };
        let a = answer("mirror.example.com:5000", &route, &token, now).unwrap();
        assert_eq!(a.cache_key_type, CacheKeyType::Registry);
        assert_eq!(a.lifetime, Duration::from_secs(12 * 3600 - 300));
        assert_eq!(a.expires_at, Some(now + Duration::from_secs(12 * 3600)));
        let cred = &a.auth["mirror.example.com:5000"];
        assert_eq!(
            (cred.username.as_str(), cred.password.expose().as_str()),
            ("AWS", "password")
        );
        assert_eq!(
            a.source,
            "ECR us-west-2 via mirror mirror.example.com:5000 (account 123456789012)"
        );
        assert!(!format!("{a:?}").contains("password\""));

        let bad = Token {
            authorization: Secret::new("bm8tY29sb24=".into()), // no-colon
            ..token
        };
        let e = answer("mirror.example.com:5000", &route, &bad, now).unwrap_err();
        assert!(
            e.to_string().contains("does not decode to user:password"),
            "{e}"
        );
        assert!(!e.to_string().contains("bm8tY29sb24"), "{e}");
    }
}
