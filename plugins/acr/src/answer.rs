//! The answer: the ACR refresh token under the image's registry (and the login server, for a
//! mirror), user [`USERNAME`], `cacheKeyType: Registry`, and a lifetime from the refresh
//! token's own `exp`; and, as upstream's answers have since kubernetes PR 74715, an empty user
//! and password under [`ANONYMOUS_KEY`]. The kubelet tries the refresh token first (its
//! keyring puts the exact host before the wildcard) and the empty credential, an anonymous
//! pull, when that fails: a registry that allows anonymous pulls keeps working for a node
//! whose identity lacks AcrPull. It carries nothing secret, and the kubelet only ever looks
//! it up for images of the registry the answer was made for (`Registry` key), so it is in the
//! answer under every name. The pattern matches `<name>.azurecr.<tld>` only, not
//! geo-replica hosts, exactly as upstream's.
//!
//! The `exp` is read without verifying the token ([`keyring_api::jwt`]: ACR verifies it) and
//! becomes a time through [`keyring_api::lifetime::expiry_at_unix`], so a value no clock can
//! hold is clamped, never a panic; the lifetime comes from it by the one rule of every
//! backend ([`lifetime::for_expiry`]: the expiry less a margin, within a floor and a ceiling;
//! the cache adds the jitter). A token already expired on arrival is an error; one without a
//! readable `exp` lives [`lifetime::MIN`], never a made-up long life.

use std::collections::BTreeMap;
use std::time::SystemTime;

use keyring_api::jwt::{unverified_claims, NumericDate};
use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, CacheKeyType, Secret};

use crate::error::{Error, Stage};
use crate::host::Target;

/// The user name ACR expects with a refresh token.
pub const USERNAME: &str = "00000000-0000-0000-0000-000000000000";
/// The key of the anonymous (empty) credential in every answer.
pub const ANONYMOUS_KEY: &str = "*.azurecr.*";

/// The one claim read from an ACR refresh token.
#[derive(serde::Deserialize)]
struct ExpiryClaim {
    exp: Option<NumericDate>,
}

/// The answer for `target` with `refresh`, made at `now` by the identity `described`.
pub fn answer(
    target: &Target,
    refresh: Secret<String>,
    described: &str,
    now: SystemTime,
) -> Result<Answer, Error> {
    let login = target.login_server.as_str();
    let (lifetime, expires_at) = match unverified_claims::<ExpiryClaim>(refresh.expose()) {
        Ok(ExpiryClaim { exp: Some(exp) }) => {
            let exp = exp.to_system_time(now);
            let lifetime = lifetime::for_expiry(now, exp).map_err(|e| Error::Response {
                stage: Stage::Exchange,
                url: format!("https://{login}/oauth2/exchange"),
                problem: e.to_string(),
            })?;
            if lifetime < lifetime::MIN {
                tracing::warn!(
                    "the ACR refresh token for {login} expires within minutes of issue; is the node clock right?"
                );
            }
            (lifetime, Some(exp))
        }
        Ok(_) => {
            tracing::warn!(
                "the ACR refresh token for {login} has no exp claim; reporting a lifetime of {}s",
                lifetime::MIN.as_secs()
            );
            (lifetime::MIN, None)
        }
        Err(e) => {
            tracing::warn!(
                "cannot read the ACR refresh token's expiry for {login} ({e}); reporting a lifetime of {}s",
                lifetime::MIN.as_secs()
            );
            (lifetime::MIN, None)
        }
    };
    let anonymous = AuthConfig {
        username: String::new(),
        password: Secret::new(String::new()),
    };
    let auth: BTreeMap<String, AuthConfig> =
        std::iter::once((ANONYMOUS_KEY.to_string(), anonymous))
            .chain(target.keys.iter().map(|k| {
                (
                    k.clone(),
                    AuthConfig {
                        username: USERNAME.into(),
                        password: refresh.clone(),
                    },
                )
            }))
            .collect();
    let via = target
        .mirror_source
        .as_deref()
        .map(|m| format!(" (mirror of {m})"))
        .unwrap_or_default();
    Ok(Answer {
        auth,
        cache_key_type: CacheKeyType::Registry,
        lifetime,
        expires_at,
        source: format!("{login}{via} as {described}"),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;

    fn target() -> Target {
        Target {
            login_server: "myacr.azurecr.io".into(),
            mirror_source: Some("mcr.microsoft.com".into()),
            keys: vec!["mcr.microsoft.com".into(), "myacr.azurecr.io".into()],
        }
    }

    fn refresh(claims: &str) -> Secret<String> {
        Secret::new(format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        ))
    }

    const NOW: u64 = 1_800_000_000;

    fn at(claims: &str) -> Result<Answer, Error> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        answer(&target(), refresh(claims), "managed identity", now)
    }

    #[test]
    fn the_refresh_token_goes_under_every_key_with_acrs_user_name_beside_the_anonymous_entry() {
        let a = at(&format!(r#"{{"exp":{}}}"#, NOW + 3 * 3600)).unwrap();
        assert_eq!(a.cache_key_type, CacheKeyType::Registry);
        assert_eq!(
            a.auth.keys().collect::<Vec<_>>(),
            [ANONYMOUS_KEY, "mcr.microsoft.com", "myacr.azurecr.io"]
        );
        for (k, c) in &a.auth {
            if k == ANONYMOUS_KEY {
                assert_eq!(
                    (c.username.as_str(), c.password.expose().as_str()),
                    ("", "")
                );
            } else {
                assert_eq!(c.username, USERNAME);
            }
        }
        assert_eq!(
            a.source,
            "myacr.azurecr.io (mirror of mcr.microsoft.com) as managed identity"
        );
    }

    #[test]
    fn the_lifetime_follows_exp_and_an_exp_no_clock_can_hold_is_clamped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        let a = at(&format!(r#"{{"exp":{}}}"#, NOW + 3600)).unwrap();
        assert_eq!(a.lifetime, Duration::from_secs(3300));
        assert_eq!(a.expires_at, Some(now + Duration::from_secs(3600)));
        for huge in ["9223372036854775808", "1e300", "9223372036854775807"] {
            let a = at(&format!(r#"{{"exp":{huge}}}"#)).unwrap();
            assert_eq!(a.lifetime, lifetime::MAX, "{huge}");
            assert_eq!(a.expires_at, Some(now + lifetime::HORIZON), "{huge}");
        }
    }

    #[test]
    fn an_expired_token_is_an_error_and_an_unreadable_exp_the_shortest_lifetime() {
        for past in ["0", "-1", "-1e300", "1799999999"] {
            let e = at(&format!(r#"{{"exp":{past}}}"#)).unwrap_err();
            assert!(matches!(e, Error::Response { .. }), "{past}: {e}");
            assert!(e.to_string().contains("already expired"), "{e}");
        }
        for unreadable in [r#"{"sub":"x"}"#, r#"{"exp":"soon"}"#, "[1]"] {
            let a = at(unreadable).unwrap();
            assert_eq!((a.lifetime, a.expires_at), (lifetime::MIN, None));
        }
    }
}
