//! The decision of `get-credentials` once the chain has answered, without I/O: which
//! response the kubelet gets and which entry the cache stores. `get-credentials` writes them;
//! `explain --fetch` reports the same response, so what it shows is what the kubelet would
//! be told (the cacheDuration after the expiry cut and the refresh jitter included).

use std::time::{Duration, SystemTime};

use keyring_api::provider::Query;
use keyring_api::wire::{ApiVersion, Response};
use keyring_api::CacheKeyType;

use crate::cache::{self, Entry};
use crate::chain::Resolved;
use crate::exit::Failure;

/// The response to a resolved request, and the entry (with its scope) to cache.
pub struct Decided {
    /// What the kubelet is told.
    pub response: Response,
    /// Who answered (`none` when nobody did).
    pub provider: &'static str,
    /// The cache scope and entry for it.
    pub entry: (CacheKeyType, Entry),
}

/// Decides the response to `query` from the chain's answer, at `now`. Refuses an answer that
/// would hand the pod's service-account token to the container runtime as a password.
pub fn decide(
    query: &Query,
    version: ApiVersion,
    resolved: Resolved,
    now: SystemTime,
) -> Result<Decided, Failure> {
    let provider = resolved.provider.unwrap_or("none");
    if let Some(token) = &query.service_account_token {
        if resolved
            .answer
            .auth
            .values()
            .any(|a| a.password.expose() == token.expose())
        {
            return Err(Failure::Internal(format!(
                "refusing an answer from {provider} that would hand the pod's service-account token to the container runtime as a password"
            )));
        }
    }
    // The kubelet is told what our cache holds: the lifetime after the expiry cut and the
    // refresh jitter. Whole seconds, never zero by accident (zero means "do not cache").
    let (scope, key) = cache::store_key(&query.image, resolved.answer.cache_key_type);
    let entry = Entry::new(key.to_string(), provider, &resolved.answer, now);
    let cache_duration = match entry.freshness(now) {
        cache::Freshness::Fresh(d) => d,
        _ => Duration::from_secs(resolved.answer.lifetime.as_secs().max(1)),
    };
    Ok(Decided {
        response: Response {
            api_version: version,
            cache_key_type: resolved.answer.cache_key_type,
            cache_duration: Some(cache_duration),
            auth: resolved.answer.auth,
        },
        provider,
        entry: (scope, entry),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::{Answer, ImageName, Secret};

    fn resolved(password: &str, lifetime: Duration) -> Resolved {
        let mut auth = std::collections::BTreeMap::new();
        auth.insert(
            "reg.example.com".to_string(),
            keyring_api::wire::AuthConfig {
                username: "u".into(),
                password: Secret::new(password.into()),
            },
        );
        Resolved {
            provider: Some("docker-config"),
            answer: Answer {
                auth,
                cache_key_type: CacheKeyType::Registry,
                lifetime,
                expires_at: None,
                source: "test".into(),
            },
        }
    }

    #[test]
    fn the_response_carries_what_the_cache_holds() {
        let query = Query::new(ImageName::parse("reg.example.com/app").unwrap());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let d = decide(
            &query,
            ApiVersion::V1,
            resolved("p", Duration::from_secs(600)),
            now,
        )
        .unwrap();
        let secs = d.response.cache_duration.unwrap().as_secs();
        assert!((1..=600).contains(&secs), "{secs}");
        assert_eq!(d.entry.0, CacheKeyType::Registry);
        assert_eq!(d.entry.1.key, "reg.example.com");
        assert_eq!(d.provider, "docker-config");
    }

    #[test]
    fn the_pods_token_is_never_a_password() {
        let mut query = Query::new(ImageName::parse("reg.example.com/app").unwrap());
        query.service_account_token = Some(Secret::new("sa-token".into()));
        let r = decide(
            &query,
            ApiVersion::V1,
            resolved("sa-token", Duration::from_secs(600)),
            SystemTime::now(),
        );
        let Err(e) = r else {
            panic!("the token went out as a password")
        };
        assert!(!e.one_line().contains("sa-token"));
    }
}
