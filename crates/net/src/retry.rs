//! When to try again: exponential backoff with jitter, never past the invocation's deadline.
//!
//! Attempt `n` (1-based) that failed transiently waits `base * 2^(n-1)`, capped at `cap`, of
//! which the upper half is random ("equal jitter": nodes that failed together do not retry in
//! step, and no wait is shorter than half the nominal one). A server's `Retry-After` raises
//! the wait, up to [`MAX_RETRY_AFTER`]. A wait is only taken when it, plus
//! [`Backoff::min_attempt`] for the next attempt, still fits before the deadline; otherwise
//! the last answer or error stands. The plan is pure ([`Backoff::wait`] takes the time left
//! and the jitter), so it is tested without sleeping.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A retry plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts: u32,
    /// The nominal wait after the first failure.
    pub base: Duration,
    /// The longest nominal wait.
    pub cap: Duration,
    /// The least time an attempt is worth starting with.
    pub min_attempt: Duration,
}

impl Backoff {
    /// The nominal wait after failed attempt `attempt` (1-based), before jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// How long to wait after failed attempt `attempt` before the next one, or `None` when
    /// no attempt is left or the wait and the next attempt do not fit in `remaining`.
    /// `jitter` is in `[0, 1)`; `retry_after` is the server's request, if any.
    pub fn wait(
        &self,
        attempt: u32,
        remaining: Duration,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let nominal = self.nominal(attempt);
        let half = nominal / 2;
        let wait = half + half.mul_f64(jitter.clamp(0.0, 1.0));
        let wait = wait.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
        (wait + self.min_attempt <= remaining).then_some(wait)
    }
}

/// A number in `[0, 1)` that differs between processes and calls: std's per-process random
/// hash keys, so no RNG crate is needed for spreading retries.
pub fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: Backoff = Backoff {
        attempts: 4,
        base: Duration::from_millis(200),
        cap: Duration::from_secs(1),
        min_attempt: Duration::from_millis(500),
    };
    const LOTS: Duration = Duration::from_secs(60);

    #[test]
    fn grows_and_is_capped() {
        assert_eq!(PLAN.nominal(1), Duration::from_millis(200));
        assert_eq!(PLAN.nominal(2), Duration::from_millis(400));
        assert_eq!(PLAN.nominal(3), Duration::from_millis(800));
        assert_eq!(PLAN.nominal(4), Duration::from_secs(1));
        assert_eq!(PLAN.nominal(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_the_upper_half() {
        assert_eq!(
            PLAN.wait(2, LOTS, None, 0.0),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            PLAN.wait(2, LOTS, None, 0.5),
            Some(Duration::from_millis(300))
        );
        let top = PLAN.wait(2, LOTS, None, 0.999_999).unwrap();
        assert!(top < Duration::from_millis(400) && top > Duration::from_millis(399));
        // Out-of-range jitter is clamped, not trusted.
        assert_eq!(
            PLAN.wait(2, LOTS, None, 7.0),
            Some(Duration::from_millis(400))
        );
        let draws: Vec<f64> = (0..32).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]), "{draws:?}");
    }

    #[test]
    fn attempts_are_bounded() {
        assert!(PLAN.wait(3, LOTS, None, 0.0).is_some());
        assert_eq!(PLAN.wait(4, LOTS, None, 0.0), None);
        let once = Backoff {
            attempts: 1,
            ..PLAN
        };
        assert_eq!(once.wait(1, LOTS, None, 0.0), None);
    }

    #[test]
    fn the_deadline_bounds_every_wait() {
        // 100 ms wait + 500 ms for the next attempt: needs 600 ms.
        assert_eq!(
            PLAN.wait(1, Duration::from_millis(600), None, 0.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(PLAN.wait(1, Duration::from_millis(599), None, 0.0), None);
        assert_eq!(PLAN.wait(1, Duration::ZERO, None, 0.0), None);
    }

    #[test]
    fn retry_after_raises_the_wait_up_to_a_cap() {
        let s = Duration::from_secs;
        assert_eq!(PLAN.wait(1, LOTS, Some(s(2)), 0.0), Some(s(2)));
        assert_eq!(
            PLAN.wait(1, LOTS, Some(s(3600)), 0.0),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(PLAN.wait(1, s(3), Some(s(3)), 0.0), None, "does not fit");
        assert_eq!(
            PLAN.wait(1, LOTS, Some(Duration::ZERO), 0.0),
            Some(Duration::from_millis(100))
        );
    }
}
