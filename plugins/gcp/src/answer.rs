//! The [`Answer`]s of this backend.
//!
//! * **An access token**: user name [`USERNAME`], password the token. That is the user
//!   name Google documents for GCR and Artifact Registry; upstream sends `_token`, which the
//!   registries also accept today but is undocumented. The `auth` key is the image's
//!   registry (`host[:port]`), or registry plus path for a mirror with a path (then
//!   `cacheKeyType` is `Image`, else `Registry`). `lifetime` is the token's remaining life by
//!   the one rule, [`lifetime::for_expiry`] (five minutes before the expiry, at least a
//!   minute but never past it; the cache, not this backend, adds refresh jitter once);
//!   `expires_at` is the expiry itself. Upstream's `KUBE_SIDECAR_CACHE_DURATION` caps the
//!   lifetime and `KUBE_SIDECAR_CACHE_TYPE` sets the `cacheKeyType` ([`AnswerOverride`]).
//! * **A docker config delivered by metadata** (`gcp.dockercfg`): the entries that match the
//!   image by the kubelet's rules, for five minutes like a file on disk, scoped per image when
//!   an entry for the registry has a path; when none matches, that scope is the refusal's.

use std::collections::BTreeMap;
use std::time::SystemTime;

use keyring_api::backend::Query;
use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, BackendError, CacheKeyType, Outcome};
use keyring_docker_config::{match_entries, Entries};

use crate::config::AnswerOverride;
use crate::host::Owner;
use crate::token::AccessToken;

/// The user name that goes with an access token.
pub const USERNAME: &str = "oauth2accesstoken";

/// The answer for an access token, at `now` on the query's clock.
pub(crate) fn from_token(
    query: &Query,
    owner: Owner<'_>,
    token: AccessToken,
    over: AnswerOverride,
    now: SystemTime,
) -> Result<Answer, BackendError> {
    let registry = query.image.registry();
    let (key, cache_key_type) = match owner {
        Owner::Mirror(m) if !m.path().is_empty() => {
            (format!("{registry}{}", m.path()), CacheKeyType::Image)
        }
        _ => (registry.to_string(), CacheKeyType::Registry),
    };
    let lifetime = lifetime::for_expiry(now, token.expires_at).map_err(|e| {
        BackendError::protocol(crate::NAME, format!("{registry}: {} ({e})", token.source))
    })?;
    let mut auth = BTreeMap::new();
    auth.insert(
        key,
        AuthConfig {
            username: USERNAME.to_string(),
            password: token.token,
        },
    );
    Ok(Answer {
        auth,
        cache_key_type: over.cache_key_type.unwrap_or(cache_key_type),
        lifetime: over.max_lifetime.map_or(lifetime, |max| lifetime.min(max)),
        expires_at: Some(token.expires_at),
        source: token.source,
    })
}

/// The answer for `query` from a docker config delivered by metadata (`origin` names it):
/// the entries that match; or, if none does, not applicable, for this image only when an
/// entry for its registry has a path (another path of the registry may have an entry).
pub(crate) fn from_dockercfg(entries: &Entries, origin: &str, query: &Query) -> Outcome {
    let matched = match_entries(entries, query);
    for (key, reason) in &matched.invalid {
        tracing::warn!("{origin}: ignoring entry {key:?}: {reason}");
    }
    if matched.auth.is_empty() {
        return Outcome::NotApplicable {
            scope: matched.cache_key_type,
        };
    }
    Outcome::Answer(Answer {
        auth: matched.auth,
        cache_key_type: matched.cache_key_type,
        // Attributes can change at any time; re-read them as often as a file on disk.
        lifetime: keyring_docker_config::LIFETIME,
        expires_at: None,
        source: origin.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Mirror;
    use keyring_api::{ImageName, Secret};
    use std::time::Duration;

    fn query(image: &str) -> Query {
        Query::new(ImageName::parse(image).unwrap())
    }

    #[test]
    fn a_token_answers_for_the_registry_or_a_mirrors_path_until_five_minutes_before_it_expires() {
        let mirror = Mirror::parse("m.example.com/gcr").unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = || AccessToken {
            token: Secret::new("ya29.t".into()),
            expires_at: now + Duration::from_secs(3599),
            source: "test".into(),
        };
        let none = AnswerOverride::default();
        let q = query("us-docker.pkg.dev/p/r/i:1");
        let a = from_token(&q, Owner::Google, token(), none, now).unwrap();
        assert_eq!(a.auth.keys().collect::<Vec<_>>(), ["us-docker.pkg.dev"]);
        assert_eq!(a.auth["us-docker.pkg.dev"].username, "oauth2accesstoken");
        assert_eq!(a.auth["us-docker.pkg.dev"].password.expose(), "ya29.t");
        assert_eq!(a.cache_key_type, CacheKeyType::Registry);
        // The one lifetime rule: expiry less the margin; jitter is the cache's, not ours.
        assert_eq!(a.lifetime, Duration::from_secs(3599 - 300));
        assert_eq!(a.expires_at, Some(now + Duration::from_secs(3599)));

        let q = query("m.example.com/gcr/p/i");
        let a = from_token(&q, Owner::Mirror(&mirror), token(), none, now).unwrap();
        assert_eq!(a.auth.keys().collect::<Vec<_>>(), ["m.example.com/gcr"]);
        assert_eq!(a.cache_key_type, CacheKeyType::Image);
    }
}
