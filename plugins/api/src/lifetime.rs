//! The one rule for how long an answer may be reused.
//!
//! * A credential that expires (cloud tokens) is reused until [`REFRESH_MARGIN`] before its
//!   expiry, at most [`MAX`]; when less than [`MIN`] would be left that way, half of what
//!   remains (at least one second): never zero, never past the expiry, never negative.
//! * A credential that does not say when it expires (docker config files, credential helpers,
//!   a token without `exp`) is reused for [`DOCKER_CONFIG`], the five minutes the kubelet's own
//!   legacy keyring used.
//! * Refresh jitter (spreading a fleet's refreshes apart) is applied exactly once, by the
//!   cache when it stores the answer, never by a backend.
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
    fn the_rule() {
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
