//! The wall clock every expiry decision reads, which tests replace.
//!
//! Token expiry is wall-clock time (`expiresAt`, `exp`), so lifetimes and cache freshness
//! are computed from a [`Clock`]. Production code uses [`Clock::system`]; tests use
//! [`Clock::manual`] and [`Clock::advance`] to make a token age without waiting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

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
            *t += by;
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
}
