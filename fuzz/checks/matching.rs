//! Checks for the `matching` fuzz target, shared with `plugins/api/tests/fuzz_seeds.rs`.
//!
//! Input: text (invalid UTF-8 replaced), split at `\n`: the first line is the target (an image
//! reference or a normalized name), the next lines (at most 16) are patterns, which serve both
//! as `matchImages` entries and as `auth` keys. Properties:
//! * `urls_match(p, t) == Target::new(t).matched_by(p)`, and a match implies a host match;
//! * `Keyring::lookup` returns exactly the entries whose key matches, keys in descending byte
//!   order; or, when none matches, the `index.docker.io` entries of a Docker Hub image;
//! * a normalized image name is a fixed point of `ImageName::parse`, is matched by itself and
//!   by its registry, and a keyring holding it as a key finds it.

use keyring_api::pattern::{
    is_default_registry_match, keyring_key, urls_match, Keyring, MatchKind, Target,
    DEFAULT_REGISTRY_KEY,
};
use keyring_api::ImageName;

/// How many pattern lines one input may use (keeps each run fast).
const MAX_PATTERNS: usize = 16;

/// Runs every property on one input; panics (an assertion) on a violation.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or_default();
    let patterns: Vec<&str> = lines.take(MAX_PATTERNS).collect();

    check_pairs(target, &patterns);
    check_keyring(target, &patterns);
    if let Ok(name) = ImageName::parse(target) {
        check_normalized(&name, &patterns);
    }
}

fn check_pairs(target: &str, patterns: &[&str]) {
    let parsed = Target::new(target);
    assert_eq!(parsed.as_str(), target);
    for &pattern in patterns {
        let matched = urls_match(pattern, target);
        assert_eq!(
            matched,
            parsed.matched_by(pattern),
            "urls_match({pattern:?}, {target:?}) disagrees with Target::matched_by"
        );
        if matched {
            assert!(
                parsed.host_matched_by(pattern.as_bytes()),
                "{pattern:?} matches {target:?} but not its host"
            );
        }
        // Keyring keys never keep a scheme the kubelet strips, nor a /v1/ or /v2/ prefix.
        if let Ok(key) = keyring_key(pattern) {
            let path = key.iter().position(|&b| b == b'/').map(|i| &key[i..]);
            if let Some(path) = path {
                assert_ne!(path, b"/", "key {key:?} of {pattern:?} ends in a bare /");
            }
        }
    }
}

fn check_keyring(target: &str, patterns: &[&str]) {
    let mut ring = Keyring::new();
    for (i, &pattern) in patterns.iter().enumerate() {
        let added = ring.add(pattern, i).is_ok();
        assert_eq!(added, keyring_key(pattern).is_ok());
    }
    let parsed = Target::new(target);
    let (found, kind) = ring.lookup(&parsed);
    // Does an entry's key match the target? Keys that unescaped to non-UTF-8 cannot be put
    // through the &str API, so they are left out of the exactness checks.
    let key_matches = |key: &[u8]| std::str::from_utf8(key).ok().map(|k| parsed.matched_by(k));
    match kind {
        MatchKind::Direct => {
            for pair in found.windows(2) {
                assert!(pair[0].key >= pair[1].key, "lookup order is not descending");
                if pair[0].key == pair[1].key {
                    assert!(pair[0].value < pair[1].value, "insertion order lost");
                }
            }
            for entry in ring.entries() {
                let returned = found.iter().any(|f| f.value == entry.value);
                if let Some(matches) = key_matches(&entry.key) {
                    assert_eq!(
                        returned,
                        matches,
                        "key {:?} match={matches} but returned={returned} for {target:?}",
                        String::from_utf8_lossy(&entry.key)
                    );
                }
            }
            if found.is_empty() && is_default_registry_match(target) {
                assert!(ring.entries().iter().all(|e| e.key != DEFAULT_REGISTRY_KEY));
            }
        }
        MatchKind::DockerHubFallback => {
            assert!(is_default_registry_match(target));
            for entry in ring.entries() {
                assert_ne!(key_matches(&entry.key), Some(true));
            }
            let hub: Vec<usize> = ring
                .entries()
                .iter()
                .filter(|e| e.key == DEFAULT_REGISTRY_KEY)
                .map(|e| e.value)
                .collect();
            let got: Vec<usize> = found.iter().map(|e| e.value).collect();
            assert_eq!(got, hub);
        }
    }
}

fn check_normalized(name: &ImageName, patterns: &[&str]) {
    let text = name.as_str();
    assert_eq!(
        ImageName::parse(text).as_ref(),
        Ok(name),
        "not a fixed point"
    );
    // Echoing the image, or its registry, as a key matches it (spec section 7, item 6), with
    // two exceptions the kubelet has too (checked against Go by fuzz/differential):
    // * a bracketed IPv6 registry without a port: `net.SplitHostPort` fails, the label keeps
    //   its brackets, and `[::1]` as a glob is a character class that cannot match `[`;
    // * as a keyring key, a path starting `v1/` or `v2/` loses that prefix (`Add` trims it),
    //   so the key `reg.io/v2/app` becomes `reg.io/app` and no longer matches `reg.io/v2/app`.
    if name.registry().starts_with('[') && name.registry().ends_with(']') {
        assert!(!urls_match(text, text));
        return;
    }
    assert!(urls_match(text, text), "{text:?} does not match itself");
    assert!(
        urls_match(name.registry(), text),
        "registry {:?} does not match {text:?}",
        name.registry()
    );
    let target = Target::new(text);
    assert!(target.matched_by(text));
    if name.registry() == "docker.io" {
        assert!(is_default_registry_match(text));
    }
    if name.path().starts_with("v1/") || name.path().starts_with("v2/") {
        return;
    }
    let mut ring = Keyring::new();
    for (i, &pattern) in patterns.iter().enumerate() {
        let _ = ring.add(pattern, i + 1);
    }
    assert!(
        ring.add(text, 0).is_ok(),
        "{text:?} is not a valid keyring key"
    );
    let (found, kind) = ring.lookup(&target);
    assert_eq!(kind, MatchKind::Direct);
    assert!(found.iter().any(|e| e.value == 0));
}
