//! `explain` for the docker-config backend: the files searched and what happened to each, the
//! keys that match the image (most specific first) and, for the others, why not (the first
//! [`MAX_MISSES_SHOWN`]; the search keeps only a few keys of other registries, and counts the
//! rest). Local file reads only; no credential is ever shown.

use keyring_api::backend::{Explanation, Query};
use keyring_api::pattern::{explain_match, is_default_registry_match, keyring_key, MatchKind};

use crate::helper;
use crate::host::{helper_server, plan, Plan};
use crate::parse::Keep;
use crate::search::{search, SearchPaths, Visit};

/// Keys that do not match are listed up to this many; a config can hold thousands.
const MAX_MISSES_SHOWN: usize = 20;

/// Explains what the docker-config backend would answer for `query`.
pub fn explain(paths: &SearchPaths, query: &Query) -> Explanation {
    explain_with(paths, query, Keep::Image(query))
}

/// [`explain`], the file read keeping what `keep` says: the same explanation whatever
/// `keep` is (tests compare [`Keep::All`]'s with the backend's).
pub(crate) fn explain_with(paths: &SearchPaths, query: &Query, keep: Keep<'_>) -> Explanation {
    let (loaded, visits) = search(paths, keep);
    let mut details: Vec<String> = visits
        .iter()
        .map(|v| match v {
            Visit::Missing(p) => format!("{}: not found", p.display()),
            Visit::Skipped(p, why) => format!("{}: skipped ({why})", p.display()),
            Visit::Used(p) => format!(
                "{}: used (the search stops at the first file that parses)",
                p.display()
            ),
        })
        .collect();
    let Some(loaded) = loaded else {
        return Explanation {
            applies: Some(false),
            summary: "no docker config file found".into(),
            details,
        };
    };
    let matched = match plan(&loaded, query) {
        Plan::CredHelper(name) => {
            return helper_explanation(&loaded.path, "credHelpers", name, query, details);
        }
        Plan::CredsStore(name, _) => {
            return helper_explanation(&loaded.path, "credsStore", name, query, details);
        }
        Plan::Auths(m) => m,
    };
    let target = query.image.as_str();
    for key in &matched.keys {
        let how = match matched.kind {
            MatchKind::Direct => "matches",
            MatchKind::DockerHubFallback => {
                "serves Docker Hub images (index.docker.io fallback: nothing else matched)"
            }
        };
        let user = matched
            .auth
            .get(key)
            .map(|a| a.username.as_str())
            .unwrap_or("");
        details.push(format!(
            "key {key:?} {how}; user {user:?}, password redacted"
        ));
    }
    let mut misses = 0;
    for (raw, _) in &loaded.entries {
        if matched.keys.contains(raw) {
            continue;
        }
        misses += 1;
        if misses > MAX_MISSES_SHOWN {
            continue;
        }
        let reason = match keyring_key(raw) {
            Err(e) => format!("not a valid key ({e}); the kubelet ignores it"),
            Ok(key) => match explain_match(&String::from_utf8_lossy(&key), target) {
                Err(m) => m.to_string(),
                Ok(()) => "matches, but a more specific key answered".into(),
            },
        };
        details.push(format!("key {raw:?} does not match: {reason}"));
    }
    // The entries the search did not keep are for other registries: they do not match. The
    // others not in `entries` were replaced by a later entry of their key. Counting entries,
    // not distinct keys, gives the same number whatever the search kept (telling distinct
    // keys apart among those not kept would take the memory not keeping them saves).
    let more = misses.saturating_sub(MAX_MISSES_SHOWN) + loaded.dropped;
    if more > 0 {
        details.push(format!(
            "... and {more} more entries that do not match or that a later entry of their key replaced"
        ));
    }
    if matched.keys.is_empty() && is_default_registry_match(target) {
        details.push("no index.docker.io key for the Docker Hub fallback".into());
    }
    details.push(format!(
        "cacheKeyType {} ({}), lifetime 5m0s",
        matched.cache_key_type.as_str(),
        if matched.cache_key_type == keyring_api::CacheKeyType::Image {
            "a key for this registry is scoped to a path, so the answer holds for this repository only"
        } else {
            "the answer is the same for every repository of the registry"
        }
    ));
    let summary = if matched.keys.is_empty() {
        format!(
            "{} has no entry for this image: the answer is \"no credentials\"",
            loaded.path.display()
        )
    } else {
        format!(
            "answers from {} with {} matching key(s)",
            loaded.path.display(),
            matched.keys.len()
        )
    };
    Explanation {
        applies: Some(true),
        summary,
        details,
    }
}

/// A credential helper answers: say which, for which server, and whether it is installed.
fn helper_explanation(
    path: &std::path::Path,
    setting: &str,
    name: &str,
    query: &Query,
    mut details: Vec<String>,
) -> Explanation {
    let program = helper::program(name);
    let server = helper_server(&query.image);
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(&program))
                .find(|c| c.is_file())
        })
        .unwrap_or(None);
    details.push(match &found {
        Some(p) => format!("{program} found at {}", p.display()),
        None => format!("{program} is not on PATH"),
    });
    details.push(format!(
        "it would be run as `{program} get` with {server:?} on stdin; its answer is keyed {:?}, cached 5m0s",
        query.image.registry()
    ));
    Explanation {
        applies: Some(true),
        summary: format!(
            "credential helper {program} ({setting} in {}) answers",
            path.display()
        ),
        details,
    }
}
