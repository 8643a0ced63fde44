//! The [`Answer`]: the key (the registry, or the image for path-scoped rules), the user name
//! and credential, and how long it may be reused, by the one lifetime rule
//! ([`keyring_api::lifetime`]):
//!
//! * a credential that says when it expires (`expires_in`, `exp`): until then, less the
//!   refresh margin;
//! * a short-lived token whose issuer did not say: [`lifetime::MIN`], since a guess longer
//!   than its real life would hand out a dead credential;
//! * a stored secret (Vault KV, a namespace Secret): [`lifetime::DOCKER_CONFIG`], as a docker
//!   config's entry;
//! * **the pod's own token** (`passThrough` with identity pod): zero. The core then neither
//!   stores it in the disk cache nor lets the kubelet cache it (`cacheDuration: 0s`): a pod
//!   token is never written anywhere, and each pull gets the pod's current token. The
//!   kubelet's provider entry must have `tokenAttributes.cacheType: Token` (newest kubelets
//!   drop an answer that echoes the token otherwise).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, CacheKeyType};

use crate::error::{Error, Stage};
use crate::token::{Issued, Validity};

/// The answer holding `issued` under `key` with `scope`, at `now`; `source` says whence.
pub fn build(
    issued: Issued,
    scope: CacheKeyType,
    key: String,
    source: String,
    now: SystemTime,
) -> Result<Answer, Error> {
    let (lifetime, expires_at) = match issued.validity {
        Validity::Until(t) => (
            lifetime::for_expiry(now, t).map_err(|e| Error::Response {
                stage: Stage::Exchange,
                url: source.clone(),
                problem: e.to_string(),
            })?,
            Some(t),
        ),
        Validity::Unknown => (lifetime::MIN, None),
        Validity::Stored => (lifetime::DOCKER_CONFIG, None),
        Validity::PodToken => (Duration::ZERO, None),
    };
    let mut auth = BTreeMap::new();
    auth.insert(
        key,
        AuthConfig {
            username: issued.username,
            password: issued.password,
        },
    );
    Ok(Answer {
        auth,
        cache_key_type: scope,
        lifetime,
        expires_at,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::Secret;

    fn issued(validity: Validity) -> Issued {
        Issued {
            username: "u".into(),
            password: Secret::new("p".into()),
            validity,
        }
    }

    #[test]
    fn the_lifetime_follows_what_is_known_of_the_credential() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let build = |v| {
            build(
                issued(v),
                CacheKeyType::Registry,
                "r".into(),
                "s".into(),
                now,
            )
        };
        let a = build(Validity::Until(now + Duration::from_secs(3600))).unwrap();
        assert_eq!(a.lifetime, Duration::from_secs(3300));
        assert_eq!(build(Validity::Unknown).unwrap().lifetime, lifetime::MIN);
        assert_eq!(
            build(Validity::Stored).unwrap().lifetime,
            lifetime::DOCKER_CONFIG
        );
        assert_eq!(build(Validity::PodToken).unwrap().lifetime, Duration::ZERO);
        assert!(build(Validity::Until(now)).is_err());
    }
}
