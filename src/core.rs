//! The pure core of `get-credentials`: one function, [`answer`], takes the query (the decoded
//! request with its clock and deadline), the apiVersion to answer in, a view of the cache and
//! the backend chain, and returns the response or a typed [`Failure`], with the metrics
//! records of the turn. No stdin, stdout, flags or paths here: `get` reads the request and
//! opens the disk cache, writes the response and the records; `explain --fetch` calls the same
//! function without a cache, so what it shows is what the kubelet would be told.
//!
//! The order of work, cheapest first:
//!
//! 1. A fresh cache entry answers (the kubelet's lookup order: image key, then registry key).
//! 2. On a miss, the registry's lock is taken, waiting at most the invocation budget's share
//!    for it ([`keyring_api::deadline`]), and the cache is read again: another process may
//!    have filled it meanwhile.
//! 3. The chain resolves. Its answer becomes the response and the cache entry through the
//!    one lifetime rule ([`crate::cache::Entry::new`]: expiry cut, jitter once), and the
//!    kubelet is told the `cacheDuration` the entry holds. An answer of lifetime zero
//!    ([`keyring_api::lifetime::UNCACHED`]) is for this pull only: `cacheDuration: 0s`, no
//!    entry.
//! 4. A backend failure whose kind allows it ([`keyring_api::ErrorKind::serves_stale`]) is
//!    answered from a stale entry whose credential still works.
//!
//! An answer whose password is the pod's service-account token is refused: it would hand
//! the token to the container runtime, and our cache would keep it. The one exception is an
//! answer with a zero lifetime (a pass-through rule of the identity backend, whose registry
//! takes the token itself): such an answer is cached by nobody, neither stored here nor by
//! the kubelet (`cacheDuration: 0s`), so the token goes to the runtime for this pull only.

use std::time::{Duration, SystemTime};

use keyring_api::backend::Query;
use keyring_api::wire::{ApiVersion, Response};
use keyring_api::{BackendError, CacheKeyType, ImageName};

use crate::cache::{self, DiskCache, Entry, Usable};
use crate::chain::Resolved;
use crate::exit::Failure;
use crate::metrics::{Event, Record};

/// What the core needs of a cache: the disk cache in production, a map in the tests below.
pub trait CacheView {
    /// Held while this process asks the backend; dropping it lets the waiters read.
    type Lock;
    /// The first usable entry for `image` in the kubelet's lookup order, with the
    /// `cacheDuration` it may be served for: fresh ones only, or stale-but-valid ones too.
    fn find(&self, image: &ImageName, now: SystemTime, fresh_only: bool) -> Option<Usable>;
    /// The registry's single-flight lock, waiting at most `wait`; `None` to go ahead unlocked.
    fn lock(&self, image: &ImageName, wait: Duration) -> Option<Self::Lock>;
    /// Stores an entry; a failure is the view's to report (an answer is still an answer).
    fn store(&self, scope: CacheKeyType, entry: &Entry);
}

impl CacheView for DiskCache {
    type Lock = std::fs::File;

    fn find(&self, image: &ImageName, now: SystemTime, fresh_only: bool) -> Option<Usable> {
        DiskCache::find(self, image, now, fresh_only)
    }

    fn lock(&self, image: &ImageName, wait: Duration) -> Option<Self::Lock> {
        DiskCache::lock(self, image, wait)
    }

    fn store(&self, scope: CacheKeyType, entry: &Entry) {
        if let Err(e) = self.write(scope, entry) {
            tracing::warn!("cannot write cache entry in {}: {e}", self.dir().display());
        }
    }
}

/// No cache: `--no-cache`, a refused directory, a token without a readable service account,
/// `explain --fetch`.
pub struct NoCache;

impl CacheView for NoCache {
    type Lock = ();

    fn find(&self, _: &ImageName, _: SystemTime, _: bool) -> Option<Usable> {
        None
    }

    fn lock(&self, _: &ImageName, _: Duration) -> Option<()> {
        None
    }

    fn store(&self, _: CacheKeyType, _: &Entry) {}
}

/// How an answer was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// From a fresh cache entry.
    Hit,
    /// From an entry another process wrote while this one waited for the lock.
    Filled,
    /// By the chain, just now.
    Fetched,
    /// From a stale entry, because the backend failed.
    Stale,
}

/// A response and what made it.
#[derive(Debug)]
pub struct Answered {
    /// What the kubelet is told.
    pub response: Response,
    /// Who answered (`none` when nobody had credentials).
    pub backend: String,
    /// How.
    pub served: Served,
    /// Where the credential came from (a path, a helper, an identity); never a secret.
    pub source: String,
    /// The credential's own expiry, when known.
    pub expires_at: Option<SystemTime>,
}

/// One turn of the core: the result, the metrics records it made (written even on failure),
/// and the registry lock, which the caller holds until the response is out.
pub struct Turn<L> {
    /// The response, or why there is none.
    pub result: Result<Answered, Failure>,
    /// The metrics journal records of this turn. Made even when metrics are off: two small
    /// strings (+0.6% of a hit's instructions) against a flag the core would otherwise need.
    pub records: Vec<Record>,
    /// The lock taken on a miss; dropping it wakes the waiters.
    pub lock: Option<L>,
}

/// Answers `query` in `version` from `cache`, asking `resolve` (the chain) on a miss.
/// `resolve` is called at most once and only on a miss, so a hit builds no backend.
pub fn answer<C: CacheView>(
    query: &Query,
    version: ApiVersion,
    cache: &C,
    resolve: impl FnOnce(&Query) -> Result<Resolved, BackendError>,
) -> Turn<C::Lock> {
    if let Some(turn) = hit(query, version, cache) {
        return turn;
    }
    let image = &query.image;
    // Miss: one process per registry asks the backend; the others wait and read its answer.
    // The wait draws on the invocation's one budget and leaves this process's backend call
    // its share, so waiting and asking together stay inside the kubelet's 60 s.
    let lock = cache.lock(image, query.deadline.lock_wait());
    let now = query.clock.now();
    if let Some(a) = cached(cache, image, now, version, Served::Filled) {
        tracing::debug!("cache filled by another process for {image}");
        return Turn {
            records: vec![Record::new(now, Event::Hit, &a.backend, image)],
            result: Ok(a),
            lock,
        };
    }
    let resolved = match resolve(query) {
        Ok(r) => r,
        Err(e) => {
            let now = query.clock.now();
            let mut records = vec![Record::new(
                now,
                Event::FetchFailed(e.kind),
                e.backend,
                image,
            )];
            let stale = e
                .kind
                .serves_stale()
                .then(|| cached(cache, image, now, version, Served::Stale))
                .flatten();
            let result = match stale {
                Some(a) => {
                    tracing::warn!("serving a cached credential that is still valid, because the backend failed: {e}");
                    records.push(Record::new(now, Event::StaleServed, &a.backend, image));
                    Ok(a)
                }
                None => Err(e.into()),
            };
            return Turn {
                result,
                records,
                lock,
            };
        }
    };
    let result = decide(query, version, resolved, now).map(|(answered, stored)| {
        if let Some((scope, entry)) = stored {
            cache.store(scope, &entry);
        }
        answered
    });
    let records = match &result {
        Ok(a) => vec![Record::new(
            query.clock.now(),
            Event::FetchOk,
            &a.backend,
            image,
        )],
        Err(_) => Vec::new(),
    };
    Turn {
        result,
        records,
        lock,
    }
}

/// The turn of a fresh cache entry, if `cache` has one for `query`: the first step of
/// [`answer`], which needs no backend (nor a parsed plugin config).
pub fn hit<C: CacheView>(query: &Query, version: ApiVersion, cache: &C) -> Option<Turn<C::Lock>> {
    let image = &query.image;
    let now = query.clock.now();
    let a = cached(cache, image, now, version, Served::Hit)?;
    tracing::debug!("cache hit for {image}");
    Some(Turn {
        records: vec![Record::new(now, Event::Hit, &a.backend, image)],
        result: Ok(a),
        lock: None,
    })
}

/// A response from the cache, for an entry [`CacheView::find`] accepts.
fn cached<C: CacheView>(
    cache: &C,
    image: &ImageName,
    now: SystemTime,
    version: ApiVersion,
    served: Served,
) -> Option<Answered> {
    let (entry, remaining) = cache.find(image, now, served != Served::Stale)?;
    Some(Answered {
        response: Response {
            api_version: version,
            cache_key_type: entry.key_type()?,
            cache_duration: Some(remaining),
            auth: entry.auth,
        },
        backend: entry.backend,
        served,
        source: entry.source,
        expires_at: entry
            .credential_expires_ms
            .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
    })
}

/// The response to a resolved request and the entry (with its scope) to cache, at `now`;
/// no entry for an answer of lifetime zero ([`keyring_api::lifetime::UNCACHED`]), which
/// nobody caches. Refuses an answer that would hand the pod's service-account token to the
/// container runtime as a password, unless nobody caches it (see the module docs).
fn decide(
    query: &Query,
    version: ApiVersion,
    resolved: Resolved,
    now: SystemTime,
) -> Result<(Answered, Option<(CacheKeyType, Entry)>), Failure> {
    let backend = resolved.backend.unwrap_or("none");
    let uncached = resolved.answer.lifetime == keyring_api::lifetime::UNCACHED;
    if let Some(token) = &query.service_account_token {
        if !uncached
            && resolved
                .answer
                .auth
                .values()
                .any(|a| a.password.expose() == token.expose())
        {
            return Err(Failure::Internal(format!(
                "refusing an answer from {backend} that would hand the pod's service-account token to the container runtime as a password"
            )));
        }
    }
    // A backend's lifetime of zero is for this pull only: the kubelet is told `0s` (it
    // caches nothing) and nothing is stored here either.
    let stored = (!uncached).then(|| {
        let (scope, key) = cache::store_key(&query.image, resolved.answer.cache_key_type);
        (
            scope,
            Entry::new(key.to_string(), backend, &resolved.answer, now),
        )
    });
    // Otherwise the kubelet is told what our cache holds: the lifetime after the expiry cut
    // and the refresh jitter. Whole seconds, never zero by accident.
    let cache_duration = match &stored {
        None => keyring_api::lifetime::UNCACHED,
        Some((_, entry)) => match entry.freshness(now) {
            cache::Freshness::Fresh(d) => d,
            _ => Duration::from_secs(resolved.answer.lifetime.as_secs().max(1)),
        },
    };
    let answer = resolved.answer;
    let answered = Answered {
        response: Response {
            api_version: version,
            cache_key_type: answer.cache_key_type,
            cache_duration: Some(cache_duration),
            auth: answer.auth,
        },
        backend: backend.to_string(),
        served: Served::Fetched,
        source: answer.source,
        expires_at: answer.expires_at,
    };
    Ok((answered, stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::{Answer, ErrorKind, Secret};
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    fn resolved(password: &str, lifetime: Duration) -> Resolved {
        let mut auth = std::collections::BTreeMap::new();
        auth.insert(
            "reg.example.com".to_string(),
            keyring_api::wire::AuthConfig {
                username: "u".into(),
                password: Secret::new(password.into()),
            },
        );
        Resolved {
            backend: Some("docker-config"),
            answer: Answer {
                auth,
                cache_key_type: CacheKeyType::Registry,
                lifetime,
                expires_at: None,
                source: "test".into(),
            },
        }
    }

    /// The cache as a map, with a record of the locks taken.
    #[derive(Default)]
    struct Map {
        entries: RefCell<HashMap<(CacheKeyType, String), Entry>>,
        locks: Cell<u32>,
    }

    impl CacheView for Map {
        type Lock = ();
        fn find(&self, image: &ImageName, now: SystemTime, fresh_only: bool) -> Option<Usable> {
            cache::first_usable(image, now, fresh_only, |scope, key| {
                self.entries
                    .borrow()
                    .get(&(scope, key.to_string()))
                    .cloned()
            })
        }
        fn lock(&self, _: &ImageName, _: Duration) -> Option<()> {
            self.locks.set(self.locks.get() + 1);
            Some(())
        }
        fn store(&self, scope: CacheKeyType, entry: &Entry) {
            self.entries
                .borrow_mut()
                .insert((scope, entry.key.clone()), entry.clone());
        }
    }

    fn query_at(secs: u64) -> Query {
        let mut q = Query::new(ImageName::parse("reg.example.com/app").unwrap());
        q.clock = keyring_api::Clock::manual(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        q
    }

    fn password(a: &Answered) -> &str {
        a.response.auth["reg.example.com"].password.expose()
    }

    #[test]
    fn a_miss_fetches_under_the_lock_and_the_next_turn_is_a_hit() {
        let map = Map::default();
        let q = query_at(1_000_000);
        let turn = answer(&q, ApiVersion::V1, &map, |_| {
            Ok(resolved("p1", Duration::from_secs(600)))
        });
        let a = turn.result.unwrap();
        assert_eq!((a.served, password(&a)), (Served::Fetched, "p1"));
        assert_eq!(map.locks.get(), 1);
        assert!(turn.lock.is_some());
        assert_eq!(turn.records.len(), 1);
        assert_eq!(turn.records[0].event, Event::FetchOk);
        // The kubelet is told what the cache holds.
        let secs = a.response.cache_duration.unwrap().as_secs();
        assert!((1..=600).contains(&secs), "{secs}");

        let turn = answer(&q, ApiVersion::V1Beta1, &map, |_| -> Result<Resolved, _> {
            panic!("a hit must not build the chain")
        });
        let a = turn.result.unwrap();
        assert_eq!((a.served, password(&a)), (Served::Hit, "p1"));
        assert_eq!(a.response.api_version, ApiVersion::V1Beta1);
        assert_eq!(map.locks.get(), 1, "a hit takes no lock");
        assert_eq!(turn.records[0].event, Event::Hit);
        assert_eq!(turn.records[0].backend, "docker-config");
    }

    #[test]
    fn an_answer_of_lifetime_zero_is_told_0s_and_never_stored() {
        let map = Map::default();
        let q = query_at(1_000_000);
        for n in 1..=2 {
            let turn = answer(&q, ApiVersion::V1, &map, |_| {
                Ok(resolved("once", keyring_api::lifetime::UNCACHED))
            });
            let a = turn.result.unwrap();
            assert_eq!((a.served, password(&a)), (Served::Fetched, "once"), "{n}");
            assert_eq!(a.response.cache_duration, Some(Duration::ZERO));
            assert!(map.entries.borrow().is_empty());
        }
    }

    #[test]
    fn a_failure_is_served_stale_only_when_its_kind_allows() {
        let map = Map::default();
        let mut answer_with_expiry = resolved("old", Duration::from_secs(600));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        answer_with_expiry.answer.expires_at = Some(t0 + Duration::from_secs(12 * 3600));
        let turn = answer(&query_at(1_000_000), ApiVersion::V1, &map, |_| {
            Ok(answer_with_expiry)
        });
        assert!(turn.result.is_ok());
        // An hour later the entry is stale, the credential still good for hours.
        let later = query_at(1_000_000 + 3600);
        let fail = |kind| move |_: &Query| Err(BackendError::new("ecr", kind, "no"));
        let turn = answer(&later, ApiVersion::V1, &map, fail(ErrorKind::Unavailable));
        let a = turn.result.unwrap();
        assert_eq!((a.served, password(&a)), (Served::Stale, "old"));
        let events: Vec<_> = turn.records.iter().map(|r| r.event).collect();
        assert_eq!(
            events,
            [
                Event::FetchFailed(ErrorKind::Unavailable),
                Event::StaleServed
            ]
        );

        let turn = answer(&later, ApiVersion::V1, &map, fail(ErrorKind::Denied));
        let Err(Failure::Backend(e)) = turn.result else {
            panic!("a denial was answered from the cache")
        };
        assert_eq!(e.kind, ErrorKind::Denied);
        assert_eq!(turn.records.len(), 1);
    }

    #[test]
    fn without_a_cache_every_turn_fetches() {
        let q = query_at(1_000_000);
        for _ in 0..2 {
            let turn = answer(&q, ApiVersion::V1, &NoCache, |_| {
                Ok(resolved("p", Duration::from_secs(600)))
            });
            assert_eq!(turn.result.unwrap().served, Served::Fetched);
            assert!(turn.lock.is_none());
        }
    }

    #[test]
    fn the_pods_token_is_never_a_password() {
        let mut query = query_at(1_000_000);
        query.service_account_token = Some(Secret::new("sa-token".into()));
        let map = Map::default();
        let turn = answer(&query, ApiVersion::V1, &map, |_| {
            Ok(resolved("sa-token", Duration::from_secs(600)))
        });
        let Err(e) = turn.result else {
            panic!("the token went out as a password")
        };
        assert!(!e.one_line().contains("sa-token"));
        assert!(map.entries.borrow().is_empty(), "and it was not cached");
    }

    #[test]
    fn an_answer_with_a_zero_lifetime_is_cached_by_nobody_and_only_it_may_carry_the_token() {
        let mut query = query_at(1_000_000);
        query.service_account_token = Some(Secret::new("sa-token".into()));
        let map = Map::default();
        let turn = answer(&query, ApiVersion::V1, &map, |_| {
            Ok(resolved("sa-token", Duration::ZERO))
        });
        let a = turn.result.unwrap();
        assert_eq!(password(&a), "sa-token");
        assert_eq!(a.response.cache_duration, Some(Duration::ZERO));
        assert!(map.entries.borrow().is_empty(), "stored");
        // The next turn asks the backend again.
        let turn = answer(&query, ApiVersion::V1, &map, |_| {
            Ok(resolved("sa-token", Duration::ZERO))
        });
        assert_eq!(turn.result.unwrap().served, Served::Fetched);
    }
}
