//! One cache entry: its on-disk format and the pure rules that decide whether it may be
//! served. Time is passed in, never read here, so the rules are tested with any clock.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyring_api::wire::AuthConfig;
use keyring_api::{Answer, CacheKeyType};
use serde::{Deserialize, Serialize};

/// The entry format version; an entry of another version is a miss.
pub const FORMAT_VERSION: u32 = 1;

/// A credential is not served for its last seconds: a pull started with it must still
/// authenticate when the runtime gets to the registry.
pub const EXPIRY_SAFETY: Duration = Duration::from_secs(60);

/// When a backend fails and an expired-for-refresh entry is served instead, the kubelet is
/// told to keep it at most this long, so it asks again soon.
pub const STALE_SERVE_FOR: Duration = Duration::from_secs(60);

/// The largest share of a token's cache lifetime taken off at random (see [`Entry::with_jitter`]).
pub const MAX_JITTER: f64 = 0.1;

/// A number in 0..1 that differs between processes and nodes; good enough to spread refreshes
/// (and where a fetch's sweep of the cache starts), not meant to be unpredictable.
pub(crate) fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The smallest `cacheDuration` we send; below it an entry counts as expired.
pub const MIN_DURATION: Duration = Duration::from_secs(1);

/// An entry as stored (JSON, mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The scope key: the image or registry it answers for (for `cache list`).
    pub key: String,
    /// The answering backend (`provider` in entries written before 0.2).
    #[serde(alias = "provider")]
    pub backend: String,
    /// Where the credential came from (a path, a helper, an identity); never a secret.
    pub source: String,
    /// `Image`, `Registry` or `Global`, as the kubelet is told.
    pub cache_key_type: String,
    /// Written at, ms since the epoch.
    pub created_ms: u64,
    /// Fresh until, ms since the epoch: after it, the backend is asked again.
    pub fresh_until_ms: u64,
    /// The credential's own expiry, ms since the epoch, if the backend knows it.
    pub credential_expires_ms: Option<u64>,
    /// The credentials.
    pub auth: BTreeMap<String, AuthConfig>,
    /// Token mode: the service account (`namespace/name`) the answer was made for. Absent
    /// for node answers (and in entries written before token mode was cached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

/// The fields every entry format has had, whatever its version: enough to tell that a file
/// is an entry of ours (`cache clear` removes nothing else) and when it stops being of use
/// (the sweep removes it some time after). Other fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Shape {
    /// The entry's format version.
    pub version: u32,
    /// The scope key.
    pub key: String,
    /// Written at, ms since the epoch.
    pub created_ms: u64,
    /// Fresh until, ms since the epoch.
    pub fresh_until_ms: u64,
    /// The credential's own expiry, ms since the epoch, if known.
    #[serde(default)]
    pub credential_expires_ms: Option<u64>,
}

impl Shape {
    /// After this time (ms since the epoch) the entry is never served, fresh or stale.
    pub fn useless_after_ms(&self) -> u64 {
        useless_after_ms(self.fresh_until_ms, self.credential_expires_ms)
    }
}

/// Fresh until the one, served stale until (a minute before) the other: of no use after both.
fn useless_after_ms(fresh_until_ms: u64, credential_expires_ms: Option<u64>) -> u64 {
    fresh_until_ms.max(credential_expires_ms.unwrap_or(0))
}

/// What an entry is good for at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it; the kubelet may keep it this long.
    Fresh(Duration),
    /// Past its refresh time but the credential still works: serve it only if the backend
    /// fails, telling the kubelet to keep it this long.
    Stale(Duration),
    /// Useless.
    Dead,
}

pub(crate) fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn whole_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

impl Entry {
    /// Makes an entry of a fresh answer, with refresh jitter (see [`Entry::with_jitter`]).
    pub fn new(key: String, backend: &str, answer: &Answer, now: SystemTime) -> Self {
        Entry::with_jitter(key, backend, answer, now, jitter_fraction())
    }

    /// Makes an entry of a fresh answer. Its freshness is the answer's lifetime, cut so that
    /// it ends [`EXPIRY_SAFETY`] before the credential expires (unless the credential is
    /// already that close to expiry: then the backend's own lifetime, which it clamped to a
    /// minimum, stands). For expiring credentials (cloud tokens) a share `jitter` (0..1) of
    /// [`MAX_JITTER`] of the lifetime is taken off, so that nodes started together do not all
    /// refresh in the same second and meet the cloud's rate limit together.
    pub fn with_jitter(
        key: String,
        backend: &str,
        answer: &Answer,
        now: SystemTime,
        jitter: f64,
    ) -> Self {
        let now_ms = ms(now);
        let mut lifetime_ms = u64::try_from(answer.lifetime.as_millis()).unwrap_or(u64::MAX);
        let credential_expires_ms = answer.expires_at.map(ms);
        if let Some(exp) = credential_expires_ms {
            let safe_end = exp.saturating_sub(EXPIRY_SAFETY.as_millis() as u64);
            if safe_end > now_ms {
                lifetime_ms = lifetime_ms.min(safe_end - now_ms);
            }
            if lifetime_ms > 10 * 60_000 {
                lifetime_ms -= (lifetime_ms as f64 * MAX_JITTER * jitter.clamp(0.0, 1.0)) as u64;
            }
        }
        Entry {
            version: FORMAT_VERSION,
            key,
            backend: backend.to_string(),
            source: answer.source.clone(),
            cache_key_type: answer.cache_key_type.as_str().to_string(),
            created_ms: now_ms,
            fresh_until_ms: now_ms.saturating_add(lifetime_ms),
            credential_expires_ms,
            auth: answer.auth.clone(),
            workload: None,
        }
    }

    /// The rules: fresh until `fresh_until`; after that, stale while the credential has
    /// more than [`EXPIRY_SAFETY`] left; durations in whole seconds, at least
    /// [`MIN_DURATION`], else dead. An entry from the future (clock stepped back) is dead:
    /// its lifetimes cannot be trusted.
    pub fn freshness(&self, now: SystemTime) -> Freshness {
        let now_ms = ms(now);
        if self.version != FORMAT_VERSION || self.created_ms > now_ms.saturating_add(5_000) {
            return Freshness::Dead;
        }
        let usable_until = self
            .credential_expires_ms
            .map(|e| e.saturating_sub(EXPIRY_SAFETY.as_millis() as u64));
        let left = |until: u64| whole_secs(Duration::from_millis(until.saturating_sub(now_ms)));
        let fresh = left(self.fresh_until_ms);
        if fresh >= MIN_DURATION {
            return Freshness::Fresh(fresh);
        }
        match usable_until.map(left) {
            Some(usable) if usable >= MIN_DURATION => Freshness::Stale(usable.min(STALE_SERVE_FOR)),
            _ => Freshness::Dead,
        }
    }

    /// After this time (ms since the epoch) the entry is never served ([`Shape`]'s rule).
    pub fn useless_after_ms(&self) -> u64 {
        useless_after_ms(self.fresh_until_ms, self.credential_expires_ms)
    }

    /// The stored scope, or `None` for a value this version does not know.
    pub fn key_type(&self) -> Option<CacheKeyType> {
        CacheKeyType::parse(&self.cache_key_type)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use keyring_api::Secret;

    /// A one-registry `Registry` answer (user `u`, password `p`) for cache tests.
    pub(in crate::cache) fn answer(lifetime: Duration, expires_at: Option<SystemTime>) -> Answer {
        let mut auth = BTreeMap::new();
        auth.insert(
            "reg.io".into(),
            AuthConfig {
                username: "u".into(),
                password: Secret::new("p".into()),
            },
        );
        Answer {
            auth,
            cache_key_type: CacheKeyType::Registry,
            lifetime,
            expires_at,
            source: "test".into(),
        }
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn docker_config_answer_is_fresh_for_five_minutes_then_dead() {
        let e = Entry::new(
            "reg.io".into(),
            "docker-config",
            &answer(Duration::from_secs(300), None),
            t(0),
        );
        assert_eq!(
            e.freshness(t(0)),
            Freshness::Fresh(Duration::from_secs(300))
        );
        assert_eq!(
            e.freshness(t(299)),
            Freshness::Fresh(Duration::from_secs(1))
        );
        assert_eq!(e.freshness(t(300)), Freshness::Dead);
        assert_eq!(e.freshness(t(10_000)), Freshness::Dead);
    }

    #[test]
    fn token_freshness_never_outlives_the_credential() {
        let e = |lifetime: u64, exp: SystemTime, jitter: f64| {
            let a = answer(Duration::from_secs(lifetime), Some(exp));
            Entry::with_jitter("reg".into(), "ecr", &a, t(0), jitter)
        };
        let fresh = |s: u64| Freshness::Fresh(Duration::from_secs(s));
        // A 12 h token the backend wants cached 6 h: fresh 6 h, then stale until 1 min
        // before expiry, served for at most one minute at a time.
        let exp = t(12 * 3600);
        let six = e(6 * 3600, exp, 0.0);
        assert_eq!(six.freshness(t(0)), fresh(6 * 3600));
        assert_eq!(
            six.freshness(t(6 * 3600)),
            Freshness::Stale(STALE_SERVE_FOR)
        );
        assert_eq!(
            six.freshness(t(12 * 3600 - 90)),
            Freshness::Stale(Duration::from_secs(30))
        );
        assert_eq!(six.freshness(t(12 * 3600 - 60)), Freshness::Dead);
        // A lifetime longer than the token is cut to the token's life minus the margin.
        assert_eq!(
            e(24 * 3600, exp, 0.0).freshness(t(0)),
            fresh(12 * 3600 - 60)
        );
        // Jitter takes up to a tenth off, never more, and only from expiring credentials.
        assert_eq!(
            e(6 * 3600, exp, 1.0).freshness(t(0)),
            fresh(6 * 3600 * 9 / 10)
        );
        let random = Entry::new(
            "reg".into(),
            "ecr",
            &answer(Duration::from_secs(6 * 3600), Some(exp)),
            t(0),
        );
        assert!(
            matches!(random.freshness(t(0)), Freshness::Fresh(d) if d <= Duration::from_secs(6 * 3600) && d >= Duration::from_secs(6 * 3600 * 9 / 10))
        );
        let docker = Entry::new(
            "reg".into(),
            "docker-config",
            &answer(Duration::from_secs(300), None),
            t(0),
        );
        assert_eq!(docker.freshness(t(0)), fresh(300));
        // A token already expired when fetched (clock skew, an emulator): the backend's
        // clamped lifetime stands, and it is never served stale after that.
        let expired = e(60, t(0), 0.5);
        assert_eq!(expired.freshness(t(0)), fresh(60));
        assert_eq!(expired.freshness(t(60)), Freshness::Dead);
    }

    #[test]
    fn sub_second_remainders_and_clock_steps_are_dead() {
        let e = Entry::new(
            "r".into(),
            "p",
            &answer(Duration::from_millis(1500), None),
            t(0),
        );
        assert_eq!(e.freshness(t(0)), Freshness::Fresh(Duration::from_secs(1)));
        assert_eq!(e.freshness(t(1)), Freshness::Dead);
        let e = Entry::new(
            "r".into(),
            "p",
            &answer(Duration::from_secs(300), None),
            t(100),
        );
        assert_eq!(e.freshness(t(0)), Freshness::Dead);
        let mut foreign = Entry::new(
            "r".into(),
            "p",
            &answer(Duration::from_secs(300), None),
            t(0),
        );
        foreign.version = 99;
        assert_eq!(foreign.freshness(t(0)), Freshness::Dead);
    }
}
