//! The fold end to end on real files: journals, rotation, state, series expiry, the cache
//! sweep and the textfile.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use keyring_api::ImageName;

use super::journal::{append, Event, Record, JOURNAL, RECORD_LEN};
use super::state::{fold_rotating_at, read_state, SERIES_KEPT};
use super::STATE;
use crate::cache::entry::ms;
use crate::cache::DiskCache;

/// As `state::WRITER_GRACE`.
const WRITER_GRACE: Duration = Duration::from_secs(90);

#[test]
fn folds_survive_restarts_count_each_record_once_and_hold_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metrics");
    let cache_dir = tmp.path().join("cache");
    let now = SystemTime::now();
    // A cached credential: its secret must not reach the file.
    let cache = DiskCache::open(cache_dir.clone(), [1; 32]).unwrap();
    let img = ImageName::parse("reg.example.com/team/app").unwrap();
    let mut auth = BTreeMap::new();
    auth.insert(
        "reg.example.com".to_string(),
        keyring_api::wire::AuthConfig {
            username: "hunter-user".into(),
            password: keyring_api::Secret::new("hunter2-secret".into()),
        },
    );
    let answer = keyring_api::Answer {
        auth,
        cache_key_type: keyring_api::CacheKeyType::Registry,
        lifetime: Duration::from_secs(600),
        expires_at: None,
        source: "test".into(),
    };
    let (scope, key) = crate::cache::store_key(&img, answer.cache_key_type);
    let entry = crate::cache::Entry::new(key.to_string(), "docker-config", &answer, now);
    cache.write(scope, &entry).unwrap();

    let ok = Record::new(now, Event::FetchOk, "docker-config", &img);
    append(&dir, &[ok]);
    // Rotating at every record: the renamed journal is read on by name.
    let fold = |at| fold_rotating_at(&dir, Some(&cache_dir), at, true, RECORD_LEN as u64);
    fold(now).unwrap();
    // Nothing new: nothing counted again, nothing renamed.
    fold(now).unwrap();
    let ok_only = read_state(&dir.join(STATE));
    assert_eq!(ok_only.series[0].fetches_ok, 1);
    // A writer that opened the journal before the rename appends to the renamed file.
    let renamed: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(&format!("{JOURNAL}.")))
        .collect();
    assert_eq!(renamed.len(), 1, "{renamed:?}");
    let late = Record::new(now, Event::Hit, "docker-config", &img);
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.join(&renamed[0]))
        .unwrap();
    f.write_all(&late.encode().unwrap()).unwrap();
    append(&dir, std::slice::from_ref(&late));
    // A second fold, as after a restart: reads only what is new.
    let prom = fold(now).unwrap().unwrap();
    let text = fs::read_to_string(&prom).unwrap();
    let l = r#"backend="docker-config",registry="reg.example.com""#;
    assert!(
        text.contains(&format!("kubelet_keyring_cache_hits_total{{{l}}} 2\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("kubelet_keyring_fetches_total{{{l}}} 1\n")),
        "{text}"
    );
    let left: i64 = text
        .lines()
        .find_map(|x| x.strip_prefix(&format!("kubelet_keyring_token_seconds_left{{{l}}} ")))
        .unwrap()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&left), "{left}");
    assert!(!text.contains("hunter"), "{text}");
    assert_eq!(fs::metadata(&prom).unwrap().mode() & 0o777, 0o644);
    // Once nobody can write them any more, renamed journals go; counters stay.
    let later = now + WRITER_GRACE + Duration::from_secs(5);
    fold(later).unwrap();
    fold(later).unwrap();
    let leftover: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(JOURNAL) || n.ends_with(".tmp"))
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
    let state = read_state(&dir.join(STATE));
    assert!(state.journals.is_empty());
    assert_eq!(state.series[0].cache_hits, 2);
    assert_eq!(state.series[0].fetches_ok, 1);
    for f in fs::read_dir(&dir).unwrap() {
        let bytes = fs::read(f.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("hunter"));
    }
}

/// A record as written, field by field (the journal's and the textfile's tests).
pub(super) fn record(at_ms: u64, event: Event, backend: &str, registry: &str) -> Record {
    Record {
        at_ms,
        event,
        backend: backend.into(),
        registry: registry.into(),
    }
}

fn rec(at: SystemTime, event: Event, registry: &str) -> Record {
    Record::new(
        at,
        event,
        "docker-config",
        &ImageName::parse(&format!("{registry}/app")).unwrap(),
    )
}

#[test]
fn a_series_with_no_event_for_eight_days_is_dropped_and_an_old_state_s_series_get_a_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metrics");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    append(&dir, &[rec(t0, Event::FetchOk, "once.example.com")]);
    append(&dir, &[rec(t0, Event::FetchOk, "weekly.example.com")]);
    let fold = |at| fold_rotating_at(&dir, None, at, true, 1 << 20).unwrap();
    fold(t0);
    let week = t0 + Duration::from_secs(7 * 24 * 3600);
    append(&dir, &[rec(week, Event::Hit, "weekly.example.com")]);
    fold(week);
    let series = |at| {
        fold(at);
        read_state(&dir.join(STATE))
            .series
            .into_iter()
            .map(|c| c.registry)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        series(t0 + SERIES_KEPT),
        ["once.example.com", "weekly.example.com"]
    );
    assert_eq!(
        series(t0 + SERIES_KEPT + Duration::from_secs(1)),
        ["weekly.example.com"]
    );
    let text = fs::read_to_string(dir.join(super::PROM)).unwrap();
    assert!(!text.contains("once.example.com"), "{text}");
    // A state written before series had a time: they live SERIES_KEPT from the first fold.
    let mut old = read_state(&dir.join(STATE));
    old.series[0].last_event_ms = None;
    fs::write(dir.join(STATE), serde_json::to_vec(&old).unwrap()).unwrap();
    let later = week + SERIES_KEPT * 2;
    assert_eq!(series(later), ["weekly.example.com"]);
    assert_eq!(
        read_state(&dir.join(STATE)).series[0].last_event_ms,
        Some(ms(later))
    );
    assert!(series(later + SERIES_KEPT + Duration::from_secs(1)).is_empty());
}

#[test]
fn a_state_naming_other_files_as_journals_has_them_neither_read_nor_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metrics");
    let victim = tmp.path().join("victim");
    fs::write(&victim, "keep").unwrap();
    fs::create_dir(&dir).unwrap();
    let mut state = super::state::State::default();
    for name in [
        "../victim",
        "kubelet-keyring.journal.1/../../victim",
        "kubelet-keyring.prom",
    ] {
        state.journals.insert(name.into(), 0);
    }
    fs::write(dir.join(STATE), serde_json::to_vec(&state).unwrap()).unwrap();
    let later = SystemTime::now() + WRITER_GRACE * 2;
    fold_rotating_at(&dir, None, later, true, 1 << 20).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"keep");
    assert!(dir.join(super::PROM).exists());
    assert!(read_state(&dir.join(STATE))
        .journals
        .keys()
        .all(|n| n == JOURNAL));
}

#[test]
fn a_backlog_is_folded_a_bounded_step_at_a_time_and_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metrics");
    let now = SystemTime::now();
    // 15,000 hits: more than one fold's step (4 MiB, 12,483 records), written at once.
    let hits: Vec<Record> = (0..15_000)
        .map(|_| rec(now, Event::Hit, "reg.example.com"))
        .collect();
    append(&dir, &hits);
    // No rotation here: the step bounds the fold, not the journal's size.
    let fold = || fold_rotating_at(&dir, None, now, true, u64::MAX).unwrap();
    let hits_now = || read_state(&dir.join(STATE)).series[0].cache_hits;
    fold();
    assert_eq!(hits_now(), (4 << 20) / RECORD_LEN as u64);
    fold();
    assert_eq!(hits_now(), 15_000);
    fold();
    assert_eq!(hits_now(), 15_000);
}

#[test]
fn the_fold_sweeps_expired_cache_entries_and_their_locks_and_keeps_the_live_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metrics");
    let cache_dir = tmp.path().join("cache");
    let cache = DiskCache::open(cache_dir.clone(), [1; 32]).unwrap();
    let now = SystemTime::now();
    let answer = |secs| keyring_api::Answer {
        auth: BTreeMap::new(),
        cache_key_type: keyring_api::CacheKeyType::Registry,
        lifetime: Duration::from_secs(secs),
        expires_at: None,
        source: "test".into(),
    };
    for (registry, secs) in [("short.example.com", 300), ("long.example.com", 86_400)] {
        let img = ImageName::parse(&format!("{registry}/app")).unwrap();
        let entry = crate::cache::Entry::new(registry.into(), "docker-config", &answer(secs), now);
        cache
            .write(keyring_api::CacheKeyType::Registry, &entry)
            .unwrap();
        drop(cache.lock(&img, Duration::ZERO).unwrap());
    }
    let names = || {
        let mut v: Vec<String> = fs::read_dir(&cache_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names().len(), 4);
    let fold = |at| fold_rotating_at(&dir, Some(&cache_dir), at, true, 1 << 20).unwrap();
    // Expired, but less than an hour ago: kept (cache list still shows it).
    fold(now + Duration::from_secs(300 + 3500));
    assert_eq!(names().len(), 4);
    fold(now + Duration::from_secs(300 + 3700));
    let left = names();
    assert_eq!(left.len(), 2, "{left:?}");
    let text = fs::read_to_string(dir.join(super::PROM)).unwrap();
    assert!(text.contains("registry=\"long.example.com\"} 82"), "{text}");
    let (_, entry) = cache.entries().remove(0);
    assert_eq!(entry.unwrap().key, "long.example.com");
    for f in fs::read_dir(&cache_dir).unwrap() {
        assert_eq!(f.unwrap().metadata().unwrap().mode() & 0o777, 0o600);
    }
}

/// A renamed journal outlives a lost state file: the timer's fold adopts it at its end (its
/// records went with the lost counters) and deletes it once quiet, as it does the others.
#[test]
fn a_renamed_journal_left_by_a_lost_state_is_adopted_and_deleted_once_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("metrics");
    let now = SystemTime::now();
    let img = ImageName::parse("reg.example.com/app").unwrap();
    append(&dir, &[Record::new(now, Event::Hit, "docker-config", &img)]);
    let fold = |at, wait| fold_rotating_at(&dir, None, at, wait, RECORD_LEN as u64).unwrap();
    fold(now, true);
    let journals = || -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(&format!("{JOURNAL}.")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(journals().len(), 1);
    fs::remove_file(dir.join(STATE)).unwrap();
    let later = now + WRITER_GRACE + Duration::from_secs(5);
    // A fetch's fold does not list the directory; the timer's does.
    fold(later, false);
    assert_eq!(journals().len(), 1);
    fold(later, true);
    fold(later, true);
    assert!(journals().is_empty(), "{:?}", journals());
    // Adopted at its end: the lost record is not counted again.
    let state = read_state(&dir.join(STATE));
    assert!(
        state.series.iter().all(|s| s.cache_hits == 0),
        "{:?}",
        state.series
    );
}
