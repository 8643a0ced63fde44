//! The one rule for how long an answer may be reused.
//!
//! * A credential that expires (cloud tokens) is reused until [`REFRESH_MARGIN`] before its
//!   expiry, at most [`MAX`]; when less than [`MIN`] would be left that way, half of what
//!   remains (at least one second): never zero, never past the expiry, never negative.
//! * A credential that does not say when it expires (docker config files, credential helpers,
//!   a token without `exp`) is reused for [`DOCKER_CONFIG`], the five minutes the kubelet's own
//!   legacy keyring used.
//! * A credential that may be used for the pull at hand but must not be reused gets
//!   [`UNCACHED`]: the kubelet is told `cacheDuration: 0s` and nothing stores it (an ECR token
//!   without an expiry, as upstream answers it; one already expired by this node's clock).
//! * Refresh jitter (spreading a fleet's refreshes apart) is applied exactly once, by the
//!   cache when it stores the answer, never by a backend.
//!
//! * A peer's statement of when its credential expires (`expires_in`, `exp`, an RFC 3339
//!   time) becomes a [`SystemTime`] only through [`expiry_in`], [`expiry_in_secs_f64`] or
//!   [`expiry_at_unix`]: they never overflow (a hostile `expires_in` of 2^63 once panicked
//!   `SystemTime + Duration`) and clamp what lies beyond [`HORIZON`], which no lifetime
//!   reaches anyway ([`MAX`] is 12 hours).
//!
//! Backends call [`for_expiry`] with the [`Clock`](crate::clock::Clock)'s `now`; nothing here
//! reads the time itself.

use std::time::{Duration, SystemTime};

/// How long before a token's expiry it is no longer handed out.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The shortest lifetime given by the margin rule.
pub const MIN: Duration = Duration::from_secs(60);
/// The longest lifetime given to any answer.
pub const MAX: Duration = Duration::from_secs(12 * 3600);
/// The lifetime of answers whose credential has no known expiry: the kubelet's five minutes.
pub const DOCKER_CONFIG: Duration = Duration::from_secs(5 * 60);

/// The lifetime of an answer for the pull at hand only (see the module docs): zero, which
/// the kubelet reads as "do not cache" and the binary's cache as "do not store".
pub const UNCACHED: Duration = Duration::ZERO;

/// The farthest future a peer's expiry is taken to mean: ten years from now. Farther values,
/// and values `SystemTime` cannot hold, are clamped to it.
pub const HORIZON: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// When a credential that a peer says lives `seconds` more seconds (`expires_in`) expires,
/// seen from `now`; clamped to [`HORIZON`].
pub fn expiry_in(now: SystemTime, seconds: u64) -> SystemTime {
    let d = Duration::from_secs(seconds).min(HORIZON);
    now.checked_add(d).unwrap_or(now)
}

/// [`expiry_in`] for a fractional or signed number of seconds; `None` for NaN, infinities
/// and negative values, which state no expiry.
pub fn expiry_in_secs_f64(now: SystemTime, seconds: f64) -> Option<SystemTime> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    let d = Duration::try_from_secs_f64(seconds.min(HORIZON.as_secs_f64())).ok()?;
    Some(now.checked_add(d).unwrap_or(now))
}

/// The time `seconds` after the Unix epoch (a JWT's `exp`, an `expires_on`), as a peer states
/// it; clamped to [`HORIZON`] after `now` (so a hostile `i64::MAX` neither overflows nor
/// outlives the clamp) and to the epoch for negative values (already expired).
pub fn expiry_at_unix(now: SystemTime, seconds: i64) -> SystemTime {
    let Ok(seconds) = u64::try_from(seconds) else {
        return SystemTime::UNIX_EPOCH;
    };
    let horizon = now.checked_add(HORIZON).unwrap_or(now);
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .map_or(horizon, |t| t.min(horizon))
}

/// A token that is already expired when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the credential had already expired when it was received (check the node's clock)")]
pub struct Expired;

/// How long an answer holding a credential that expires at `expires_at` may be reused from
/// `now`; see the module docs.
pub fn for_expiry(now: SystemTime, expires_at: SystemTime) -> Result<Duration, Expired> {
    let remaining = expires_at.duration_since(now).map_err(|_| Expired)?;
    if remaining < Duration::from_secs(1) {
        return Err(Expired);
    }
    let by_margin = remaining.saturating_sub(REFRESH_MARGIN);
    Ok(if by_margin >= MIN {
        by_margin.min(MAX)
    } else {
        (remaining / 2).max(Duration::from_secs(1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_peers_expiry_never_overflows_and_is_clamped_to_the_horizon() {
        let now = SystemTime::UNIX_EPOCH + secs(1_800_000_000);
        assert_eq!(expiry_in(now, 3600), now + secs(3600));
        for huge in [u64::MAX, i64::MAX as u64, 1 << 63] {
            assert_eq!(expiry_in(now, huge), now + HORIZON);
        }
        assert_eq!(
            expiry_in_secs_f64(now, 1.5),
            Some(now + Duration::from_millis(1500))
        );
        assert_eq!(expiry_in_secs_f64(now, 1e300), Some(now + HORIZON));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0] {
            assert_eq!(expiry_in_secs_f64(now, bad), None, "{bad}");
        }
        assert_eq!(expiry_at_unix(now, 1_800_003_600), now + secs(3600));
        assert_eq!(expiry_at_unix(now, i64::MAX), now + HORIZON);
        assert_eq!(expiry_at_unix(now, -5), SystemTime::UNIX_EPOCH);
        // Each clamped expiry still gives the usual lifetime.
        assert_eq!(for_expiry(now, expiry_in(now, u64::MAX)), Ok(MAX));
    }

    #[test]
    fn a_lifetime_is_the_expiry_less_the_margin_within_min_and_max() {
        let now = SystemTime::UNIX_EPOCH + secs(1_000_000);
        let f = |left: u64| for_expiry(now, now + secs(left));
        assert_eq!(f(3600), Ok(secs(3300)));
        assert_eq!(f(12 * 3600), Ok(secs(12 * 3600 - 300)));
        assert_eq!(f(48 * 3600), Ok(MAX));
        assert_eq!(f(360), Ok(MIN));
        assert_eq!(f(359), Ok(secs(179) + Duration::from_millis(500)));
        assert_eq!(f(1), Ok(secs(1)));
        assert_eq!(f(0), Err(Expired));
        assert_eq!(for_expiry(now, now - secs(5)), Err(Expired));
        for left in [1, 2, 59, 60, 61, 299, 300, 301, 359, 360, 361, 86_400] {
            let l = f(left).unwrap();
            assert!(l > Duration::ZERO && l <= secs(left), "{left}: {l:?}");
        }
    }
}
