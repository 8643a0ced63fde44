//! One time budget per invocation, shared by the cache lock wait and every backend call.
//!
//! The kubelet kills a plugin [`KUBELET_EXEC_TIMEOUT`] after starting it, and a killed plugin
//! is worse than one that fails: the kubelet logs a timeout instead of our one-line reason, and
//! a stale cached answer that could have been served never is. So an invocation gets
//! [`INVOCATION_BUDGET`] from the moment its request is decoded, and everything that can wait
//! takes its share of that one budget instead of a timeout of its own:
//!
//! * a miss waiting on another process's registry lock waits at most until
//!   [`Deadline::lock_wait`], which leaves [`BACKEND_SHARE`] for its own backend call;
//! * each backend's own bound (GCP 20 s, ACR 40 s) is cut with [`Deadline::cap`] to what is
//!   left, and its out-of-time error is an
//!   [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable); ECR takes what is left
//!   whole (upstream allows 30 s per request), shared between its credentials and its API
//!   call.
//!
//! 50 s of budget plus process start-up, the response write and a failing backend's clean-up
//! stays under 55 s, 5 s inside the kubelet's limit.
//!
//! Deadlines are monotonic ([`Instant`]); wall-clock time for token expiry is the
//! [`Clock`](crate::clock::Clock)'s.

use std::time::{Duration, Instant};

/// The kubelet's hard limit on one plugin exec (`execPluginTimeout`).
pub const KUBELET_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// What one invocation may spend on lock waits and backend calls together.
pub const INVOCATION_BUDGET: Duration = Duration::from_secs(50);
/// What a lock waiter keeps for its own backend call when the lock holder is slow.
pub const BACKEND_SHARE: Duration = Duration::from_secs(25);

/// A point in monotonic time by which the invocation's work must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline of an invocation starting now.
    pub fn invocation() -> Self {
        Deadline::after(INVOCATION_BUDGET)
    }

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        Deadline {
            at: now.checked_add(budget).unwrap_or(now),
        }
    }

    /// Time left, zero once passed.
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The earlier of this deadline and `limit` from now: the time for one attempt whose own
    /// timeout is `limit`.
    pub fn cap(self, limit: Duration) -> Duration {
        self.remaining().min(limit)
    }

    /// How long a miss may wait for another process's lock: what is left, less
    /// [`BACKEND_SHARE`] for this process's own backend call after the wait.
    pub fn lock_wait(self) -> Duration {
        self.remaining().saturating_sub(BACKEND_SHARE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_inside_kubelet_limit() {
        const { assert!(INVOCATION_BUDGET.as_secs() + 5 <= 55) };
        const { assert!(BACKEND_SHARE.as_secs() < INVOCATION_BUDGET.as_secs()) };
        let d = Deadline::invocation();
        assert!(d.remaining() <= INVOCATION_BUDGET);
        assert!(d.remaining() > INVOCATION_BUDGET - Duration::from_secs(1));
        let w = d.lock_wait();
        assert!(w <= INVOCATION_BUDGET - BACKEND_SHARE);
        assert_eq!(d.cap(Duration::from_secs(3)), Duration::from_secs(3));
    }

    #[test]
    fn passed_deadline_leaves_nothing() {
        let d = Deadline::after(Duration::ZERO);
        assert_eq!(d.remaining(), Duration::ZERO);
        assert_eq!(d.lock_wait(), Duration::ZERO);
        assert_eq!(d.cap(Duration::from_secs(10)), Duration::ZERO);
    }
}
