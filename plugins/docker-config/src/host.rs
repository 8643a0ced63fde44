//! Which entries of the winning file serve an image: the `auths` keys the kubelet's rules
//! match ([`match_entries`]), the `credHelpers` key docker looks up for the image's registry,
//! and the order between them and `credsStore` ([`plan`]; see the crate docs). No I/O.

use std::collections::BTreeMap;

use keyring_api::backend::Query;
use keyring_api::pattern::{parse_schemeless, Keyring, MatchKind};
use keyring_api::wire::AuthConfig;
use keyring_api::{CacheKeyType, ImageName};

use crate::parse::keep::helper_keys;
pub use crate::parse::keep::DOCKER_HUB_SERVER;
use crate::parse::Entries;
use crate::search::Loaded;

/// The result of matching an image against a loaded file, for the backend and `explain`.
#[derive(Debug, Clone)]
pub struct Matched {
    /// Raw key → credential, for the entries that match.
    pub auth: BTreeMap<String, AuthConfig>,
    /// The raw keys that matched, most specific first.
    pub keys: Vec<String>,
    /// Direct match or Docker Hub fallback.
    pub kind: MatchKind,
    /// Raw keys the kubelet would skip as unparsable, with the reason.
    pub invalid: Vec<(String, String)>,
    /// The widest safe cache scope for this answer.
    pub cache_key_type: CacheKeyType,
}

/// Matches a file's entries against the query's image with the kubelet's rules.
pub fn match_entries(entries: &Entries, query: &Query) -> Matched {
    let mut keyring = Keyring::new();
    let mut invalid = Vec::new();
    for (raw, entry) in entries {
        if let Err(e) = keyring.add(raw, (raw.as_str(), entry)) {
            invalid.push((raw.clone(), e.to_string()));
        }
    }
    let (found, kind) = keyring.lookup(&query.target);
    let mut auth = BTreeMap::new();
    let mut keys = Vec::new();
    for e in &found {
        let (raw, entry) = e.value;
        keys.push(raw.to_string());
        auth.insert(
            raw.to_string(),
            AuthConfig {
                username: entry.username.clone(),
                password: entry.password.clone(),
            },
        );
    }
    // Registry scope is safe only if no key for this registry carries a path: otherwise
    // another repository of the registry could get a different answer.
    let path_scoped = keyring.entries().iter().any(|e| {
        query.target.host_matched_by(&e.key)
            && parse_schemeless(&e.key).is_ok_and(|p| !p.path.is_empty())
    });
    let cache_key_type = if path_scoped {
        CacheKeyType::Image
    } else {
        CacheKeyType::Registry
    };
    Matched {
        auth,
        keys,
        kind,
        invalid,
        cache_key_type,
    }
}

/// The server address a credential helper is given for `image`: [`DOCKER_HUB_SERVER`] for
/// Docker Hub, the registry (`host[:port]`) otherwise.
pub fn helper_server(image: &ImageName) -> &str {
    if image.registry() == keyring_api::image::DEFAULT_DOMAIN {
        DOCKER_HUB_SERVER
    } else {
        image.registry()
    }
}

/// Which source of a loaded file answers one image (see the crate docs for the order).
#[derive(Debug, Clone)]
pub enum Plan<'a> {
    /// `credHelpers` names this helper (suffix) for the image's registry.
    CredHelper(&'a str),
    /// The kubelet-matched `auths` entries (possibly none).
    Auths(Matched),
    /// No matched `auths` entry has credentials: the `credsStore` helper (suffix), with the
    /// `auths` match for its cache scope.
    CredsStore(&'a str, Matched),
}

/// Decides which source answers `query` from `loaded`.
pub fn plan<'a>(loaded: &'a Loaded, query: &Query) -> Plan<'a> {
    let explicit = helper_keys(&query.image)
        .into_iter()
        .find_map(|key| loaded.cred_helpers.get(key));
    if let Some(name) = explicit.filter(|n| !n.is_empty()) {
        return Plan::CredHelper(name);
    }
    let matched = match_entries(&loaded.entries, query);
    // An empty credHelpers entry pins the registry to the file's own credentials.
    let store = loaded.creds_store.as_deref().filter(|_| explicit.is_none());
    let usable = matched
        .auth
        .values()
        .any(|a| !a.username.is_empty() || !a.password.expose().is_empty());
    match store {
        Some(name) if !usable => Plan::CredsStore(name, matched),
        _ => Plan::Auths(matched),
    }
}
