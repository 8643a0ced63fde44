//! One deadline per invocation, from the first read of stdin to the exit, shared by the
//! cache lock wait, every backend call and every child process.
//!
//! The kubelet kills a plugin [`KUBELET_EXEC_TIMEOUT`] after starting it, and a killed plugin
//! is worse than one that fails: the kubelet logs a timeout instead of our one-line reason, and
//! a stale cached answer that could have been served never is. So the binary [`start`]s the
//! invocation just before it reads stdin, and from that instant:
//!
//! * the work has [`INVOCATION_BUDGET`] ([`Deadline::invocation`]), and everything that can
//!   wait takes its share of that one budget instead of a timeout of its own: reading the
//!   request, a miss waiting on another process's registry lock (at most until
//!   [`Deadline::lock_wait`], which leaves [`BACKEND_SHARE`] for its own backend call), each
//!   backend's own bound (GCP 20 s, ACR 40 s, a credential helper 20 s) cut with
//!   [`Deadline::cap`] to what is left, its out-of-time error an
//!   [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) (so a stale entry can still
//!   be served); ECR takes what is left whole (upstream allows 30 s per request), shared
//!   between its credentials and its API call;
//! * the process exits by [`EXIT_LIMIT`] whatever blocks: the watchdog of
//!   `process` module (armed off the cache-hit path, see there) kills the process
//!   groups of the children still running, writes one line naming the [`stage`] the
//!   invocation was in, and exits 1. The [`GRACE`] between the two is what lets the budget's
//!   own errors, which say more, win when the code keeps to it.
//!
//! Without [`start`] (tests, `explain`, a library caller) every [`Deadline::invocation`] is
//! [`INVOCATION_BUDGET`] from its own call and no watchdog runs.
//!
//! Deadlines are monotonic ([`Instant`]); wall-clock time for token expiry is the
//! [`Clock`](crate::clock::Clock)'s.

use std::borrow::Cow;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The kubelet's hard limit on one plugin exec (`execPluginTimeout`).
pub const KUBELET_EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// From the first read of stdin to the exit, whatever blocks: 6 s inside the kubelet's limit
/// for the process's start before that read and its end after it.
pub const EXIT_LIMIT: Duration = Duration::from_secs(54);
/// What the work itself may take (lock waits, backend calls, children), from the same start.
pub const INVOCATION_BUDGET: Duration = Duration::from_secs(50);
/// Between the end of the budget and the exit limit: time for the budget's own errors to be
/// handled (a stale entry served, one line written) before the watchdog steps in.
pub const GRACE: Duration = Duration::from_secs(4);
/// What a lock waiter keeps for its own backend call when the lock holder is slow.
pub const BACKEND_SHARE: Duration = Duration::from_secs(25);

/// **For tests only**, honoured by debug builds alone: a Go duration (`2s`) that replaces
/// [`EXIT_LIMIT`], so the deadline paths can be tested in seconds. The budget is then the
/// limit less a quarter of it (at most [`GRACE`]). Release builds ignore it.
pub const TEST_LIMIT_ENV: &str = "KUBELET_KEYRING_TEST_DEADLINE";

/// The started invocation: its budget's end and its exit limit.
#[derive(Debug, Clone, Copy)]
struct Invocation {
    budget: Deadline,
    limit: Duration,
    exit_at: Instant,
}

static INVOCATION: OnceLock<Invocation> = OnceLock::new();

/// What the invocation is doing, for the watchdog's line.
static STAGE: Mutex<Cow<'static, str>> = Mutex::new(Cow::Borrowed("starting"));

/// Starts this process's invocation now (the binary calls it just before reading stdin);
/// later calls return the same deadline. From then on [`Deadline::invocation`] is this one.
pub fn start() -> Deadline {
    INVOCATION
        .get_or_init(|| {
            let limit = if cfg!(debug_assertions) {
                test_limit(std::env::var_os(TEST_LIMIT_ENV).as_deref())
            } else {
                EXIT_LIMIT
            };
            let grace = GRACE.min(limit / 4);
            let now = Instant::now();
            Invocation {
                budget: Deadline::at_or_now(now, limit - grace),
                limit,
                exit_at: now.checked_add(limit).unwrap_or(now),
            }
        })
        .budget
}

/// The limit [`TEST_LIMIT_ENV`]'s value `v` stands for: [`EXIT_LIMIT`] when unset, not a
/// positive Go duration, or longer.
fn test_limit(v: Option<&std::ffi::OsStr>) -> Duration {
    v.and_then(|v| v.to_str())
        .and_then(|s| crate::duration::parse(s).ok())
        .and_then(|nanos| u64::try_from(nanos).ok())
        .filter(|&nanos| nanos > 0)
        .map_or(EXIT_LIMIT, |nanos| {
            Duration::from_nanos(nanos).min(EXIT_LIMIT)
        })
}

/// When the started invocation must have exited ([`EXIT_LIMIT`] after [`start`]); `None`
/// when none was started.
pub fn exit_at() -> Option<Instant> {
    INVOCATION.get().map(|i| i.exit_at)
}

/// The started invocation's exit limit: [`EXIT_LIMIT`], or in a debug build
/// [`TEST_LIMIT_ENV`]'s; `None` when none was started.
pub fn exit_limit() -> Option<Duration> {
    INVOCATION.get().map(|i| i.limit)
}

/// Records what the invocation is doing now (`"reading the request on stdin"`, `"asking
/// backend ecr"`), for the line written if the exit limit passes. Cheap: no allocation for
/// a `&'static str`.
pub fn set_stage(stage: impl Into<Cow<'static, str>>) {
    *STAGE.lock().unwrap_or_else(PoisonError::into_inner) = stage.into();
}

/// What the invocation was last doing ([`set_stage`]).
pub fn stage() -> String {
    STAGE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .to_string()
}

/// A point in monotonic time by which the invocation's work must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The invocation's deadline: the [`start`]ed one, else [`INVOCATION_BUDGET`] from now.
    pub fn invocation() -> Self {
        match INVOCATION.get() {
            Some(i) => i.budget,
            None => Deadline::after(INVOCATION_BUDGET),
        }
    }

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline::at_or_now(Instant::now(), budget)
    }

    fn at_or_now(now: Instant, budget: Duration) -> Self {
        Deadline {
            at: now.checked_add(budget).unwrap_or(now),
        }
    }

    /// The instant it passes.
    pub fn instant(self) -> Instant {
        self.at
    }

    /// Time left, zero once passed.
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn passed(self) -> bool {
        Instant::now() >= self.at
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
    use std::ffi::OsStr;

    #[test]
    fn the_budget_and_the_exit_limit_end_inside_the_kubelets_limit() {
        const { assert!(INVOCATION_BUDGET.as_secs() + GRACE.as_secs() == EXIT_LIMIT.as_secs()) };
        const { assert!(EXIT_LIMIT.as_secs() + 5 <= KUBELET_EXEC_TIMEOUT.as_secs()) };
        const { assert!(BACKEND_SHARE.as_secs() < INVOCATION_BUDGET.as_secs()) };
        let d = Deadline::invocation();
        assert!(d.remaining() <= INVOCATION_BUDGET);
        assert!(d.remaining() > INVOCATION_BUDGET - Duration::from_secs(1));
        let w = d.lock_wait();
        assert!(w <= INVOCATION_BUDGET - BACKEND_SHARE);
        assert_eq!(d.cap(Duration::from_secs(3)), Duration::from_secs(3));
        assert!(!d.passed());
    }

    #[test]
    fn a_passed_deadline_leaves_no_time() {
        let d = Deadline::after(Duration::ZERO);
        assert_eq!(d.remaining(), Duration::ZERO);
        assert_eq!(d.lock_wait(), Duration::ZERO);
        assert_eq!(d.cap(Duration::from_secs(10)), Duration::ZERO);
        assert!(d.passed());
    }

    #[test]
    fn the_test_limit_only_shortens_and_ignores_what_is_not_a_duration() {
        assert_eq!(test_limit(None), EXIT_LIMIT);
        assert_eq!(test_limit(Some(OsStr::new("2s"))), Duration::from_secs(2));
        assert_eq!(test_limit(Some(OsStr::new("10m"))), EXIT_LIMIT);
        for bad in ["", "0s", "-1s", "soon", "10"] {
            assert_eq!(test_limit(Some(OsStr::new(bad))), EXIT_LIMIT, "{bad}");
        }
    }

    #[test]
    fn the_stage_is_what_was_last_set() {
        set_stage("reading the request on stdin");
        assert_eq!(stage(), "reading the request on stdin");
        set_stage(format!("asking backend {}", "ecr"));
        assert_eq!(stage(), "asking backend ecr");
    }
}
