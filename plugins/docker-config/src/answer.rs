//! The answer: the matched `auths` entries with their keys as written, or what a credential
//! helper said keyed under the image's registry; five minutes ([`LIFETIME`]) either way, the
//! scope as [`crate::host`] computed it. A helper that cannot run is a one-line error naming
//! the helper, the setting and file that chose it, and the likely fix.

use std::collections::BTreeMap;
use std::time::Duration;

use keyring_api::backend::Query;
use keyring_api::wire::AuthConfig;
use keyring_api::{Answer, BackendError, CacheKeyType, Outcome};

use crate::helper;
use crate::host::{helper_server, Matched};
use crate::search::Loaded;
use crate::NAME;

/// How long a docker-config answer lives: the kubelet's `CachingDockerConfigBackend` re-read
/// the files every five minutes ([`keyring_api::lifetime::DOCKER_CONFIG`]).
pub const LIFETIME: Duration = keyring_api::lifetime::DOCKER_CONFIG;

/// The answer from the file's own `auths` entries that `matched`.
pub fn from_auths(loaded: &Loaded, matched: Matched) -> Answer {
    Answer {
        auth: matched.auth,
        cache_key_type: matched.cache_key_type,
        lifetime: LIFETIME,
        expires_at: None,
        source: loaded.path.display().to_string(),
    }
}

/// Runs credential helper `name` (from `setting` of `loaded`) for `query`'s registry, for at
/// most `timeout`, and answers what it says.
pub fn from_helper(
    loaded: &Loaded,
    setting: &str,
    name: &str,
    query: &Query,
    cache_key_type: CacheKeyType,
    timeout: Duration,
) -> Result<Outcome, BackendError> {
    let server = helper_server(&query.image);
    let path = loaded.path.display();
    if let Err(e) = helper::validate_name(name) {
        let shown: String = name.chars().take(64).collect();
        return Err(BackendError::misconfigured(
            NAME,
            format!(
                "credential helper name {shown:?} ({setting} in {path}, for {server}) {e}: set it to the suffix of an installed docker-credential-<suffix> program"
            ),
        ));
    }
    let program = helper::program(name);
    tracing::debug!("running {program} get for {server} ({setting} in {path})");
    let reply = match helper::get(&program, server, timeout, query.deadline) {
        Ok(reply) => reply,
        // A `credsStore` is a default for every registry, often left over from a desktop
        // (`desktop`, `osxkeychain`); the kubelet never ran it. Missing, it means "no
        // credentials" with a warning, not a failure of every pull. A `credHelpers` entry
        // names this very registry, so a missing helper there stays an error.
        Err(helper::HelperError::NotOnPath) if setting == "credsStore" => {
            tracing::warn!(
                "credsStore {program:?} in {path} is not installed (not on PATH); answering without credentials for {server}"
            );
            helper::Reply::NotFound
        }
        Err(e) => {
            return Err(BackendError::new(
                NAME,
                e.kind(),
                format!(
                    "credential helper {program} ({setting} in {path}) for {server} {e}; {}",
                    e.fix()
                ),
            ))
        }
    };
    let mut auth = BTreeMap::new();
    match reply {
        helper::Reply::Credentials(c) => {
            auth.insert(
                query.image.registry().to_string(),
                AuthConfig {
                    username: c.username,
                    password: c.secret,
                },
            );
        }
        helper::Reply::NotFound => {
            tracing::debug!("{program} has no credentials for {server}");
        }
        helper::Reply::IdentityToken => tracing::warn!(
            "{program} returned an identity token for {server}, which the kubelet cannot use; answering without credentials"
        ),
    }
    Ok(Outcome::Answer(Answer {
        auth,
        cache_key_type,
        lifetime: LIFETIME,
        expires_at: None,
        source: format!("credential helper {program} (from {path})"),
    }))
}

/// Logs the `auths` keys the kubelet would skip.
pub fn warn_invalid(loaded: &Loaded, matched: &Matched) {
    for (key, reason) in &matched.invalid {
        tracing::warn!(
            "{}: ignoring entry {key:?}: {reason}",
            loaded.path.display()
        );
    }
}
