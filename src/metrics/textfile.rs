//! The textfile node_exporter reads (`kubelet-keyring.prom`): every metric family with HELP
//! and TYPE, a series per backend and registry, and the seconds left of the cached
//! credentials, read from the cache entries' expiry times (never their credentials) when
//! the file is written, so the gauge is current then and not when the token was fetched.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use keyring_api::{ErrorKind, ImageName};

use super::state::{Counters, State};
use crate::cache::entry::ms;
use crate::cache::{DiskCache, Freshness};

/// Seconds left per (backend, registry): of the longest-lived usable cache entry, until its
/// credential expires (until its cache lifetime ends when the expiry is unknown).
pub type SecondsLeft = BTreeMap<(String, String), i64>;

/// Reads seconds left from the cache entries in `dir`, sweeping the expired ones away
/// ([`crate::cache::files`]). A missing or refused directory has no entries; it is never
/// created here.
pub fn seconds_left(dir: &Path, now: SystemTime) -> SecondsLeft {
    let mut out = SecondsLeft::new();
    if !dir.is_dir() {
        return out;
    }
    let cache = match DiskCache::open(dir.to_path_buf(), [0; 32]) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("metrics: not reading the cache: {e}");
            return out;
        }
    };
    let now_ms = ms(now) as i64;
    cache.sweep(now, &mut |e| {
        if e.freshness(now) == Freshness::Dead {
            return;
        }
        let registry = match e.key_type() {
            Some(keyring_api::CacheKeyType::Image) => match ImageName::parse(&e.key) {
                Ok(i) => i.registry().to_string(),
                Err(_) => return,
            },
            Some(_) => e.key.clone(),
            None => return,
        };
        let until = e.credential_expires_ms.unwrap_or(e.fresh_until_ms) as i64;
        let left = (until - now_ms).div_euclid(1000);
        let slot = out.entry((e.backend.clone(), registry)).or_insert(left);
        *slot = (*slot).max(left);
    });
    out
}

/// Escapes a label value for the exposition format.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The metric families, in the order written: name, type, help.
pub const FAMILIES: [(&str, &str, &str); 7] = [
    (HITS, "counter", "Answers served from a fresh cache entry."),
    (
        STALE,
        "counter",
        "Answers served from a stale but still valid cache entry because the backend failed.",
    ),
    (
        FETCHES,
        "counter",
        "Successful fetches from the backend (backend none: nobody had credentials).",
    ),
    (FAILURES, "counter", "Failed fetches from the backend, by error kind."),
    (LAST_SUCCESS, "gauge", "Unix time of the last successful fetch."),
    (LAST_FAILURE, "gauge", "Unix time of the last failed fetch."),
    (
        SECONDS_LEFT,
        "gauge",
        "Seconds until the longest-lived usable cached credential expires (its cache lifetime when the expiry is unknown).",
    ),
];
const HITS: &str = "kubelet_keyring_cache_hits_total";
const STALE: &str = "kubelet_keyring_stale_answers_total";
const FETCHES: &str = "kubelet_keyring_fetches_total";
const FAILURES: &str = "kubelet_keyring_fetch_failures_total";
const LAST_SUCCESS: &str = "kubelet_keyring_last_success_timestamp_seconds";
const LAST_FAILURE: &str = "kubelet_keyring_last_failure_timestamp_seconds";
const SECONDS_LEFT: &str = "kubelet_keyring_token_seconds_left";

/// The textfile: every family with HELP and TYPE, a series per backend and registry (and
/// per error kind, all kinds present so that `increase()` sees the first failure).
pub fn render(state: &State, left: &SecondsLeft) -> String {
    let labels = |p: &str, r: &str| {
        format!(
            "backend=\"{}\",registry=\"{}\"",
            escape_label(p),
            escape_label(r)
        )
    };
    let secs = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
    // (labels, value) of each sample of a family.
    let samples = |name: &str| -> Vec<(String, String)> {
        let per_series = |value: &dyn Fn(&Counters) -> Option<String>| {
            state
                .series
                .iter()
                .filter_map(|c| Some((labels(&c.backend, &c.registry), value(c)?)))
                .collect()
        };
        match name {
            HITS => per_series(&|c| Some(c.cache_hits.to_string())),
            STALE => per_series(&|c| Some(c.stale_answers.to_string())),
            FETCHES => per_series(&|c| Some(c.fetches_ok.to_string())),
            FAILURES => state
                .series
                .iter()
                .flat_map(|c| {
                    ErrorKind::ALL.map(|k| {
                        let n = c.fetches_failed.get(k.as_str()).copied().unwrap_or(0);
                        let l = labels(&c.backend, &c.registry);
                        (format!("{l},kind=\"{}\"", k.as_str()), n.to_string())
                    })
                })
                .collect(),
            LAST_SUCCESS => per_series(&|c| c.last_success_ms.map(secs)),
            LAST_FAILURE => per_series(&|c| c.last_failure_ms.map(secs)),
            _ => left
                .iter()
                .map(|((p, r), v)| (labels(p, r), v.to_string()))
                .collect(),
        }
    };
    let mut out = String::new();
    for (name, kind, help) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (l, v) in samples(name) {
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::journal::Event;
    use super::super::tests::record as rec;
    use super::*;

    fn sample() -> (State, SecondsLeft) {
        let ecr = "1.dkr.ecr.us-east-1.amazonaws.com";
        let mut s = State::default();
        for r in [
            rec(1_700_000_000_123, Event::FetchOk, "ecr", ecr),
            rec(1_700_000_001_000, Event::Hit, "ecr", ecr),
            rec(1_700_000_001_000, Event::Hit, "ecr", ecr),
            rec(
                1_700_000_002_000,
                Event::FetchFailed(ErrorKind::Unavailable),
                "gcp",
                "gcr.io",
            ),
            rec(1_700_000_002_500, Event::StaleServed, "gcp", "gcr.io"),
            rec(
                1_700_000_003_000,
                Event::Hit,
                "docker-config",
                "we\"ird\\reg\nistry",
            ),
        ] {
            s.add(&r);
        }
        let mut left = SecondsLeft::new();
        left.insert(("ecr".into(), ecr.into()), 39_000);
        (s, left)
    }

    #[test]
    fn the_textfile_has_help_type_and_every_series() {
        let (s, left) = sample();
        let text = render(&s, &left);
        for (name, kind, _) in FAMILIES {
            assert_eq!(
                text.matches(&format!("# HELP {name} ")).count(),
                1,
                "{name}"
            );
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
        }
        let ecr = r#"backend="ecr",registry="1.dkr.ecr.us-east-1.amazonaws.com""#;
        for line in [
            format!("kubelet_keyring_cache_hits_total{{{ecr}}} 2"),
            format!("kubelet_keyring_fetches_total{{{ecr}}} 1"),
            format!("kubelet_keyring_last_success_timestamp_seconds{{{ecr}}} 1700000000.123"),
            format!("kubelet_keyring_token_seconds_left{{{ecr}}} 39000"),
            format!("kubelet_keyring_fetch_failures_total{{{ecr},kind=\"denied\"}} 0"),
            r#"kubelet_keyring_fetch_failures_total{backend="gcp",registry="gcr.io",kind="unavailable"} 1"#.into(),
            r#"kubelet_keyring_stale_answers_total{backend="gcp",registry="gcr.io"} 1"#.into(),
            r#"kubelet_keyring_last_failure_timestamp_seconds{backend="gcp",registry="gcr.io"} 1700000002.000"#.into(),
            r#"kubelet_keyring_cache_hits_total{backend="docker-config",registry="we\"ird\\reg\nistry"} 1"#.into(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        // No failure time where there was none; every line is a comment or a sample.
        assert!(!text.contains("last_failure_timestamp_seconds{backend=\"ecr\""));
        for l in text.lines() {
            assert!(
                l.starts_with("# HELP kubelet_keyring_")
                    || l.starts_with("# TYPE kubelet_keyring_")
                    || l.starts_with("kubelet_keyring_"),
                "{l}"
            );
        }
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
