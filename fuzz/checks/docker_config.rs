//! Checks for the `docker_config` fuzz target, shared with
//! `plugins/docker-config/tests/fuzz_seeds.rs`.
//!
//! Input: a whole file. Properties:
//! * `parse_config_json`, `parse_dockercfg` and `decode_auth` never panic, and their errors
//!   are one line;
//! * the registry keys of a parsed file are unique (a later duplicate replaces the earlier);
//! * a document that parses as `.dockercfg` parses as the `auths` of a `config.json` to the
//!   same entries (`{"auths": <doc>}`), as both are Go's `DockerConfig`;
//! * a decoded `auth` user never holds a `:` (the split is at the first one), and a decoded
//!   pair that survived as UTF-8 re-encodes to base64 that decodes to the same pair.

use base64::Engine as _;
use keyring_docker_config::{decode_auth, parse_config_json, parse_dockercfg, Entries};

/// Runs every property on one input; panics (an assertion) on a violation.
pub fn check(data: &[u8]) {
    let config_json = parse_config_json(data);
    let dockercfg = parse_dockercfg(data);
    for result in [&config_json, &dockercfg] {
        match result {
            Ok(entries) => assert_unique(entries),
            Err(e) => assert!(!e.to_string().contains('\n'), "multi-line error"),
        }
    }
    if let Ok(entries) = &dockercfg {
        // The wrapper adds one level of nesting; what nests deeper inside an entry is an
        // ignored value, which serde_json skips without its recursion limit.
        let mut wrapped = b"{\"auths\":".to_vec();
        wrapped.extend_from_slice(data);
        wrapped.push(b'}');
        match parse_config_json(&wrapped) {
            Ok(wrapped_entries) => assert!(
                wrapped_entries == *entries,
                "{{\"auths\": doc}} parsed to other entries than doc"
            ),
            Err(e) => panic!("doc parsed as .dockercfg but not as auths: {e}"),
        }
    }
    check_auth(&String::from_utf8_lossy(data));
}

fn assert_unique(entries: &Entries) {
    for (i, (key, _)) in entries.iter().enumerate() {
        assert!(
            entries[i + 1..].iter().all(|(k, _)| k != key),
            "duplicate key {key:?}"
        );
    }
}

/// `decode_auth` on one value.
pub fn check_auth(auth: &str) {
    let Ok((user, password)) = decode_auth(auth) else {
        return;
    };
    let password = password.expose();
    assert!(!user.contains(':'), "user holds a ':'");
    // U+FFFD may stand for bytes that were not UTF-8; then the round trip cannot hold.
    if !user.contains('\u{fffd}') && !password.contains('\u{fffd}') {
        let again = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        match decode_auth(&again) {
            Ok((u, p)) => assert!(u == user && p.expose() == password, "round trip changed"),
            Err(e) => panic!("re-encoded auth does not decode: {e}"),
        }
    }
}
