//! The [`Answer`]s of this backend, in one of two shapes ([`Shape`]).
//!
//! * **An access token**, under the name `kubelet-keyring` ([`Shape::Own`]): user name
//!   [`USERNAME`], password the token. That is the user name Google documents for GCR and
//!   Artifact Registry. The one `auth` key is the image's registry (`host[:port]`), or
//!   registry plus path for a mirror with a path (then `cacheKeyType` is `Image`, else
//!   `Registry`): the token goes to the host asked about and nowhere else.
//! * **An access token**, under auth-provider-gcp's names ([`Shape::Upstream`]), exactly as
//!   upstream's `populateConfig` builds it: user [`UPSTREAM_USERNAME`] (`_token`), keyed by
//!   the image's registry (or registry and path, for a configured mirror with a path) *and*
//!   [`UPSTREAM_KEYS`] (`container.cloud.google.com`, `gcr.io`, `*.gcr.io`, `*.pkg.dev`), so
//!   that a kubelet cache entry of `cacheKeyType` `Registry` or `Global` covers every Google
//!   registry; `cacheKeyType` `Image` unless `KUBE_SIDECAR_CACHE_TYPE` says otherwise.
//! * **A docker config delivered by metadata**: under the own name (`gcp.dockercfg`), the
//!   entries that match the image by the kubelet's rules, for five minutes like a file on
//!   disk, scoped per image when an entry for the registry has a path; when none matches,
//!   that scope is the refusal's. Under upstream's `--authFlow=dockercfg` /
//!   `dockercfg-url`, every entry of the document, as upstream answers it (the kubelet then
//!   matches), `cacheKeyType` `Image`, for five minutes where upstream sends `0s`: the
//!   document is a set of static credentials, re-read as often as a docker config file on
//!   disk, and the disk cache spares each pull a metadata round trip (and, for
//!   `dockercfg-url`, a fetch from the URL); `KUBE_SIDECAR_CACHE_DURATION=0s` gives
//!   upstream's per-pull reading back. An attribute that is not set is upstream's empty
//!   answer ([`upstream_not_set`]): `cacheKeyType` `Image`, `0s`, not cached, so an
//!   attribute set later answers at once.
//!
//! A token's `lifetime` is its remaining life by the one rule, [`lifetime::for_expiry`]
//! (five minutes before the expiry, at least a minute but never past it; the cache, not this
//! backend, adds refresh jitter once); `expires_at` is the expiry itself.
//!
//! Upstream's `KUBE_SIDECAR_CACHE_DURATION` and `KUBE_SIDECAR_CACHE_TYPE`
//! ([`AnswerOverride`]) apply to every answer, token or docker config, under every name
//! ([`overridden`]): the duration caps the lifetime (never past the credential's own life);
//! it is also the lifetime of upstream's empty answer, which holds no credential to outlive.
//! The key type replaces the answer's under upstream's names, whose keys cover every Google
//! registry; under the own name it may only narrow it (`image`), since a one-host answer
//! cached `Global` would leave every other registry without credentials until it expired.

use std::collections::BTreeMap;
use std::time::SystemTime;

use keyring_api::backend::Query;
use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, BackendError, CacheKeyType, Outcome};
use keyring_docker_config::{match_entries, Entries};

use crate::config::AnswerOverride;
use crate::host::Owner;
use crate::token::AccessToken;

/// The user name that goes with an access token under the own name.
pub const USERNAME: &str = "oauth2accesstoken";
/// The user name auth-provider-gcp sends (`gcpcredential.go`); Google's registries take both.
pub const UPSTREAM_USERNAME: &str = "_token";
/// The keys auth-provider-gcp adds to every token answer (`containerRegistryUrls`).
pub const UPSTREAM_KEYS: [&str; 4] = [
    "container.cloud.google.com",
    "gcr.io",
    "*.gcr.io",
    "*.pkg.dev",
];

/// Which shape an answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// This program's, under its own name.
    Own,
    /// auth-provider-gcp's, under its names.
    Upstream,
}

/// The answer for an access token, at `now` on the query's clock, before the overrides.
pub(crate) fn from_token(
    query: &Query,
    owner: Owner<'_>,
    token: AccessToken,
    shape: Shape,
    now: SystemTime,
) -> Result<Answer, BackendError> {
    let registry = query.image.registry();
    let (key, own_type) = match owner {
        Owner::Mirror(m) if !m.path().is_empty() => {
            (format!("{registry}{}", m.path()), CacheKeyType::Image)
        }
        _ => (registry.to_string(), CacheKeyType::Registry),
    };
    let lifetime = lifetime::for_expiry(now, token.expires_at).map_err(|e| {
        BackendError::protocol(crate::NAME, format!("{registry}: {} ({e})", token.source))
    })?;
    let entry = |username: &str| AuthConfig {
        username: username.to_string(),
        password: token.token.clone(),
    };
    let mut auth = BTreeMap::new();
    let cache_key_type = match shape {
        Shape::Own => {
            auth.insert(key, entry(USERNAME));
            own_type
        }
        Shape::Upstream => {
            for k in std::iter::once(key.as_str()).chain(UPSTREAM_KEYS) {
                auth.insert(k.to_string(), entry(UPSTREAM_USERNAME));
            }
            CacheKeyType::Image
        }
    };
    Ok(Answer {
        auth,
        cache_key_type,
        lifetime,
        expires_at: Some(token.expires_at),
        source: token.source,
    })
}

/// `answer` with upstream's `KUBE_SIDECAR_CACHE_*` applied (see the module docs): the
/// duration caps the lifetime; the key type replaces the answer's in the upstream shape and
/// only narrows it in the own one.
pub(crate) fn overridden(mut answer: Answer, over: AnswerOverride, shape: Shape) -> Answer {
    if let Some(max) = over.max_lifetime {
        answer.lifetime = answer.lifetime.min(max);
    }
    if let Some(t) = over.cache_key_type {
        answer.cache_key_type = match shape {
            Shape::Upstream => t,
            Shape::Own => t.min(answer.cache_key_type),
        };
    }
    answer
}

/// Every entry of a docker config delivered by metadata (`origin` names it), as upstream's
/// `--authFlow=dockercfg` / `dockercfg-url` answer: the kubelet matches the keys itself.
pub(crate) fn whole_dockercfg(entries: &Entries, origin: &str) -> Answer {
    let auth = entries
        .iter()
        .map(|(key, e)| {
            let a = AuthConfig {
                username: e.username.clone(),
                password: e.password.clone(),
            };
            (key.clone(), a)
        })
        .collect();
    Answer {
        auth,
        cache_key_type: CacheKeyType::Image,
        lifetime: keyring_docker_config::LIFETIME,
        expires_at: None,
        source: origin.to_string(),
    }
}

/// Upstream's answer under `--authFlow=dockercfg` / `dockercfg-url` when the attribute
/// (`attribute`) is not set: no `auth`, `cacheKeyType` `Image`, and for `cacheDuration`
/// `KUBE_SIDECAR_CACHE_DURATION` if set, else zero, this pull only, as upstream's
/// `GetResponse` sends it (the key type's override is [`overridden`]'s, as for every
/// answer). Not cached by default, so an attribute set later answers at the next pull.
pub(crate) fn upstream_not_set(attribute: &str, over: AnswerOverride) -> Answer {
    Answer {
        auth: BTreeMap::new(),
        cache_key_type: CacheKeyType::Image,
        lifetime: over.max_lifetime.unwrap_or(lifetime::UNCACHED),
        expires_at: None,
        source: format!("metadata attribute {attribute} (not set)"),
    }
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
        let q = query("us-docker.pkg.dev/p/r/i:1");
        let a = from_token(&q, Owner::Google, token(), Shape::Own, now).unwrap();
        assert_eq!(a.auth.keys().collect::<Vec<_>>(), ["us-docker.pkg.dev"]);
        assert_eq!(a.auth["us-docker.pkg.dev"].username, "oauth2accesstoken");
        assert_eq!(a.auth["us-docker.pkg.dev"].password.expose(), "ya29.t");
        assert_eq!(a.cache_key_type, CacheKeyType::Registry);
        // The one lifetime rule: expiry less the margin; jitter is the cache's, not ours.
        assert_eq!(a.lifetime, Duration::from_secs(3599 - 300));
        assert_eq!(a.expires_at, Some(now + Duration::from_secs(3599)));

        let q = query("m.example.com/gcr/p/i");
        let a = from_token(&q, Owner::Mirror(&mirror), token(), Shape::Own, now).unwrap();
        assert_eq!(a.auth.keys().collect::<Vec<_>>(), ["m.example.com/gcr"]);
        assert_eq!(a.cache_key_type, CacheKeyType::Image);
    }

    #[test]
    fn the_upstream_shape_keys_the_token_for_every_google_registry_as_user_token_per_image() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = AccessToken {
            token: Secret::new("ya29.t".into()),
            expires_at: now + Duration::from_secs(3599),
            source: "test".into(),
        };
        let q = query("mirror.example.com:5000/p/i");
        let a = from_token(&q, Owner::Other, token, Shape::Upstream, now).unwrap();
        assert_eq!(
            a.auth.keys().collect::<Vec<_>>(),
            [
                "*.gcr.io",
                "*.pkg.dev",
                "container.cloud.google.com",
                "gcr.io",
                "mirror.example.com:5000"
            ]
        );
        assert!(a
            .auth
            .values()
            .all(|c| c.username == "_token" && c.password.expose() == "ya29.t"));
        assert_eq!(a.cache_key_type, CacheKeyType::Image);
        assert_eq!(a.lifetime, Duration::from_secs(3599 - 300));
    }

    #[test]
    fn the_sidecar_overrides_cap_the_lifetime_and_set_the_key_type_but_never_widen_ours() {
        let answer = |t| Answer {
            auth: BTreeMap::new(),
            cache_key_type: t,
            lifetime: Duration::from_secs(3000),
            expires_at: None,
            source: "test".into(),
        };
        let over = |secs: Option<u64>, t| AnswerOverride {
            max_lifetime: secs.map(Duration::from_secs),
            cache_key_type: t,
        };
        let a = overridden(
            answer(CacheKeyType::Image),
            over(Some(600), Some(CacheKeyType::Global)),
            Shape::Upstream,
        );
        assert_eq!(
            (a.lifetime, a.cache_key_type),
            (Duration::from_secs(600), CacheKeyType::Global)
        );
        // A cap longer than the credential lives changes nothing.
        let a = overridden(
            answer(CacheKeyType::Registry),
            over(Some(86_400), None),
            Shape::Own,
        );
        assert_eq!(a.lifetime, Duration::from_secs(3000));
        // The own shape: narrowed, never widened.
        let own =
            |from, to| overridden(answer(from), over(None, Some(to)), Shape::Own).cache_key_type;
        assert_eq!(
            own(CacheKeyType::Registry, CacheKeyType::Image),
            CacheKeyType::Image
        );
        assert_eq!(
            own(CacheKeyType::Registry, CacheKeyType::Global),
            CacheKeyType::Registry
        );
        assert_eq!(
            own(CacheKeyType::Image, CacheKeyType::Registry),
            CacheKeyType::Image
        );
    }
}
