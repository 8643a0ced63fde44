//! `kubelet-keyring cache path|list|clear`: look at the cache without ever showing a secret.

use std::time::{Duration, SystemTime};

use super::entry::ms;
use super::{DiskCache, Freshness};

/// One row of `cache list`.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    /// The image or registry the entry answers for.
    pub key: String,
    /// `Image` or `Registry`.
    pub scope: String,
    /// Token mode: the service account (`namespace/name`) the entry belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// The answering backend.
    pub backend: String,
    /// Where the credential came from.
    pub source: String,
    /// Registry patterns in the answer (no credentials).
    pub auth_keys: Vec<String>,
    /// Seconds since it was written.
    pub age_secs: u64,
    /// `fresh`, `stale` (served only if the backend fails) or `expired`.
    pub state: &'static str,
    /// Seconds it stays fresh (0 when not fresh).
    pub fresh_for_secs: u64,
    /// Seconds until the credential itself expires, if known.
    pub credential_expires_in_secs: Option<i64>,
    /// The file.
    pub file: String,
}

/// The rows of `cache list`, sorted by key. Unreadable files are listed as `corrupt`.
pub fn rows(cache: &DiskCache, now: SystemTime) -> Vec<Row> {
    let now_ms = ms(now);
    let mut rows: Vec<Row> = cache
        .entries()
        .into_iter()
        .map(|(path, entry)| match entry {
            Some(e) => {
                let (state, fresh) = match e.freshness(now) {
                    Freshness::Fresh(d) => ("fresh", d),
                    Freshness::Stale(_) => ("stale", Duration::ZERO),
                    Freshness::Dead => ("expired", Duration::ZERO),
                };
                Row {
                    key: e.key.clone(),
                    scope: e.cache_key_type.clone(),
                    workload: e.workload.clone(),
                    backend: e.backend.clone(),
                    source: e.source.clone(),
                    auth_keys: e.auth.keys().cloned().collect(),
                    age_secs: now_ms.saturating_sub(e.created_ms) / 1000,
                    state,
                    fresh_for_secs: fresh.as_secs(),
                    credential_expires_in_secs: e
                        .credential_expires_ms
                        .map(|x| (x as i64 - now_ms as i64) / 1000),
                    file: path.display().to_string(),
                }
            }
            None => Row {
                key: String::new(),
                scope: String::new(),
                workload: None,
                backend: String::new(),
                source: String::new(),
                auth_keys: Vec::new(),
                age_secs: 0,
                state: "corrupt",
                fresh_for_secs: 0,
                credential_expires_in_secs: None,
                file: path.display().to_string(),
            },
        })
        .collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// Renders rows as a table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let header = [
        "KEY",
        "SCOPE",
        "BACKEND",
        "STATE",
        "AGE",
        "FRESH FOR",
        "CRED EXPIRES",
        "SOURCE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                match &r.workload {
                    Some(w) => format!("{} (sa {w})", r.key),
                    None => r.key.clone(),
                },
                r.scope.clone(),
                r.backend.clone(),
                r.state.to_string(),
                human(r.age_secs as i64),
                human(r.fresh_for_secs as i64),
                r.credential_expires_in_secs.map_or("-".into(), human),
                r.source.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    let mut line = |cols: &[&str]| {
        let parts: Vec<String> = cols
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&header);
    for c in &cells {
        let refs: Vec<&str> = c.iter().map(String::as_str).collect();
        line(&refs);
    }
    out
}

fn human(secs: i64) -> String {
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    match s {
        0..=119 => format!("{sign}{s}s"),
        120..=7199 => format!("{sign}{}m", s / 60),
        _ => format!("{sign}{}h{}m", s / 3600, (s % 3600) / 60),
    }
}
