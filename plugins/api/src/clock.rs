//! The wall clock every expiry decision reads, which tests replace.
//!
//! Token expiry is wall-clock time (`expiresAt`, `exp`), so lifetimes and cache freshness
//! are computed from a [`Clock`]. Production code uses [`Clock::system`]; unit tests use
//! [`Clock::manual`] and [`Clock::advance`] to make a token age without waiting.
//!
//! Black-box tests cannot hand the binary a `Clock`, so an invocation's clock comes from
//! [`Clock::invocation`]: in a debug build (`cfg!(debug_assertions)`, which is what
//! `cargo test` builds) the hidden variable [`TEST_NOW_ENV`] (Unix seconds) makes it a manual
//! clock standing at that time; a release build compiles that branch out and never reads the
//! variable. A debug build rather than a cargo feature, because every `cargo test` gets it
//! with no flag to forget, and the shipped binary (`scripts/release.sh`, the packages) is a
//! release build, which cannot honour it whatever features it was built with.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Test builds only: the Unix time an invocation's clock stands at (see the module docs).
pub const TEST_NOW_ENV: &str = "KUBELET_KEYRING_TEST_NOW";

/// A wall clock: the system's, or a manual one for tests. Cheap to clone; clones of a manual
/// clock share its time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<SystemTime>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// The clock of one invocation of the binary: [`Clock::system`], except in a debug build
    /// with [`TEST_NOW_ENV`] set to Unix seconds (see the module docs). A value that is not
    /// a number of seconds is ignored with a warning.
    pub fn invocation() -> Self {
        if cfg!(debug_assertions) {
            Clock::test_now(std::env::var_os(TEST_NOW_ENV).as_deref())
        } else {
            Clock::system()
        }
    }

    /// The clock [`TEST_NOW_ENV`]'s value `v` stands for: manual at those Unix seconds, the
    /// system's when unset or not a number.
    fn test_now(v: Option<&std::ffi::OsStr>) -> Self {
        let Some(v) = v else {
            return Clock::system();
        };
        let at = v
            .to_str()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .and_then(|secs| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs)));
        match at {
            Some(at) => Clock::manual(at),
            None => {
                tracing::warn!("{TEST_NOW_ENV} is not Unix seconds this system can hold; ignored");
                Clock::system()
            }
        }
    }

    /// A clock standing at `now` until moved.
    pub fn manual(now: SystemTime) -> Self {
        Clock {
            manual: Some(Arc::new(Mutex::new(now))),
        }
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        match &self.manual {
            None => SystemTime::now(),
            Some(t) => *t.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.manual {
            let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
            // At the end of time it stays there (a test's clock, never a panic).
            *t = t.checked_add(by).unwrap_or(*t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
        let shared = c.clone();
        assert_eq!(c.now(), UNIX_EPOCH + Duration::from_secs(1_000));
        shared.advance(Duration::from_secs(30));
        assert_eq!(c.now(), UNIX_EPOCH + Duration::from_secs(1_030));
    }

    #[test]
    fn the_test_variable_sets_a_manual_clock() {
        let at = |v: &str| Clock::test_now(Some(std::ffi::OsStr::new(v)));
        assert_eq!(at("1000").now(), UNIX_EPOCH + Duration::from_secs(1_000));
        assert!(at("1000").manual.is_some());
        assert!(at("soon").manual.is_none());
        // Past what a SystemTime holds: ignored, not a panic.
        assert!(at("18446744073709551615").manual.is_none());
        assert!(Clock::test_now(None).manual.is_none());
    }
}
