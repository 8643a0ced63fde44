//! One answer for the source image from the answers for it and for its mirrors' images.
//!
//! Each part's credentials are those the kubelet would take from that part's answer for the
//! image it was asked (its keyring lookup: every matching key, most specific first, the
//! Docker Hub fallback included). They are concatenated in the order of the parts (the
//! strategy's), repeats dropped, and put under keys that make the kubelet try them in that
//! order for the **source** image ([`ordered_keys`]). The scope, lifetime and expiry are the
//! narrowest of the parts'. A part that failed leaves the others' credentials standing, for
//! at most [`lifetime::MIN`]; when no part has credentials, the first failure is the answer.

use std::collections::BTreeMap;

use keyring_api::pattern::{Keyring, Target};
use keyring_api::wire::AuthConfig;
use keyring_api::{lifetime, Answer, BackendError, CacheKeyType, ImageName, Secret};

/// One part of a mirrored answer.
#[derive(Debug)]
pub struct Part {
    /// The image asked (the source's, or a mirror's).
    pub image: ImageName,
    /// The mirror's location, `None` for the source.
    pub mirror: Option<String>,
    /// The chain's answer (who answered, what), or its failure.
    pub result: Result<(Option<&'static str>, Answer), BackendError>,
}

impl Part {
    /// How the part is named in the answer's source and in messages.
    fn name(&self) -> String {
        match &self.mirror {
            Some(location) => format!("mirror {location} ({})", self.image),
            None => format!("source {}", self.image),
        }
    }
}

/// The answer for `source` from `parts`, given in the order their credentials are to be
/// tried (see the module docs), with its backend: the one whose credential comes first.
///
/// A part that answers with the pod's service-account `token` (a pass-through rule) is a
/// failure of that part: under the source's key the runtime would hand the token to every
/// host it tries, mirrors and source alike, not only to its rule's registry.
pub fn merge(
    source: &ImageName,
    parts: Vec<Part>,
    token: Option<&Secret<String>>,
) -> Result<(Option<&'static str>, Answer), BackendError> {
    let mut creds: Vec<AuthConfig> = Vec::new();
    let mut backend = None;
    let mut scope = CacheKeyType::Global;
    let mut life: Option<std::time::Duration> = None;
    let mut expires_at = None;
    let mut sources = Vec::new();
    let mut failed = Vec::new();
    for part in parts {
        let name = part.name();
        let (who, answer) = match part.result {
            Ok((who, answer)) if token.is_some_and(|t| carries(&answer, t)) => {
                let e = BackendError::misconfigured(
                    who.unwrap_or("none"),
                    "answers with the pod's service-account token, which the runtime would \
                     also send to the other hosts of a mirrored image",
                )
                .with_hint(
                    "a pass-through rule cannot serve a registry with mirrors, nor a mirror",
                );
                failed.push((name, e));
                continue;
            }
            Ok(ok) => ok,
            Err(e) => {
                failed.push((name, e));
                continue;
            }
        };
        scope = scope.min(answer.cache_key_type);
        life = Some(life.map_or(answer.lifetime, |l| l.min(answer.lifetime)));
        let found = ordered_credentials(&answer.auth, &part.image);
        if !found.is_empty() {
            backend = backend.or(who);
            expires_at = match (expires_at, answer.expires_at) {
                (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                (a, b) => a.or(b),
            };
        }
        let mut added = 0;
        for c in found {
            if !creds.iter().any(|k| same(k, &c)) {
                creds.push(c);
                added += 1;
            }
        }
        sources.push(format!(
            "{name}: {} ({added} credential{})",
            answer.source,
            if added == 1 { "" } else { "s" }
        ));
    }
    if creds.is_empty() && !failed.is_empty() {
        let (name, mut e) = failed.swap_remove(0);
        e.message = format!("{name}: {}", e.message);
        return Err(e);
    }
    let mut lifetime = life.unwrap_or(lifetime::MIN);
    for (name, e) in &failed {
        tracing::warn!(
            "{name} failed ({e}); answering with the other credentials for at most {}s",
            lifetime::MIN.as_secs()
        );
        sources.push(format!("{name}: failed"));
        lifetime = lifetime.min(lifetime::MIN);
    }
    let keys = ordered_keys(source, creds.len());
    if keys.len() < creds.len() {
        tracing::warn!(
            "{} credentials for {source}, but only {} can be ordered for the kubelet under its registry; the rest are left out",
            creds.len(),
            keys.len()
        );
    }
    let auth: BTreeMap<String, AuthConfig> = keys.into_iter().zip(creds).collect();
    Ok((
        backend.filter(|_| !auth.is_empty()),
        Answer {
            auth,
            cache_key_type: match scope {
                // No part answered at all: as the chain's "nobody", registry-wide.
                CacheKeyType::Global => CacheKeyType::Registry,
                s => s,
            },
            lifetime,
            expires_at,
            source: sources.join("; "),
        },
    ))
}

/// Whether `answer` has `token` as a password.
fn carries(answer: &Answer, token: &Secret<String>) -> bool {
    answer
        .auth
        .values()
        .any(|a| a.password.expose() == token.expose())
}

fn same(a: &AuthConfig, b: &AuthConfig) -> bool {
    a.username == b.username && a.password.expose() == b.password.expose()
}

/// The credentials the kubelet takes from `auth` for `image`, in the order it tries them.
pub fn ordered_credentials(
    auth: &BTreeMap<String, AuthConfig>,
    image: &ImageName,
) -> Vec<AuthConfig> {
    let mut keyring = Keyring::new();
    for (key, cred) in auth {
        // A key the kubelet would skip contributes nothing.
        let _ = keyring.add(key, cred);
    }
    let (found, _) = keyring.lookup(&Target::new(image.as_str()));
    found.into_iter().map(|e| e.value.clone()).collect()
}

/// `n` keys that all match `image` and that the kubelet's keyring sorts in this order: the
/// registry (`docker.io`), then the registry with its first label a glob of one, two, ...
/// stars (`*.io`, `**.io`): a letter or digit sorts after `*`, and `*` before `.` or `:`.
/// Fewer when the registry has no such form (a bracketed IPv6 address): each key is checked
/// against the kubelet's own matching and order before it is used.
pub fn ordered_keys(image: &ImageName, n: usize) -> Vec<String> {
    let registry = image.registry();
    let mut keys = vec![registry.to_string()];
    let label_end = registry.find(['.', ':']).unwrap_or(registry.len());
    if !registry.starts_with('[') {
        for i in 1..n {
            keys.push(format!("{}{}", "*".repeat(i), &registry[label_end..]));
        }
    }
    keys.truncate(n);
    // The kubelet's lookup must give them back in this order, every one matching.
    let mut keyring = Keyring::new();
    for (i, k) in keys.iter().enumerate() {
        if keyring.add(k, i).is_err() {
            keys.truncate(i);
            break;
        }
    }
    let (found, _) = keyring.lookup(&Target::new(image.as_str()));
    let in_order = found
        .iter()
        .enumerate()
        .take_while(|(i, e)| e.value == *i)
        .count();
    keys.truncate(in_order);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cred(u: &str, p: &str) -> AuthConfig {
        AuthConfig {
            username: u.into(),
            password: Secret::new(p.into()),
        }
    }

    fn answer(keys: &[(&str, &str)], lifetime: u64, scope: CacheKeyType) -> Answer {
        Answer {
            auth: keys
                .iter()
                .map(|(k, u)| (k.to_string(), cred(u, &format!("{u}-pw"))))
                .collect(),
            cache_key_type: scope,
            lifetime: Duration::from_secs(lifetime),
            expires_at: None,
            source: "test".into(),
        }
    }

    fn image(s: &str) -> ImageName {
        ImageName::parse(s).unwrap()
    }

    /// What the kubelet would try for `image` with this answer, in order.
    fn tried(a: &Answer, image: &ImageName) -> Vec<String> {
        ordered_credentials(&a.auth, image)
            .into_iter()
            .map(|c| c.username)
            .collect()
    }

    #[test]
    fn ordered_keys_match_the_image_and_come_back_in_order() {
        for (img, want) in [
            (
                "docker.io/library/nginx",
                vec!["docker.io", "*.io", "**.io"],
            ),
            (
                "localhost:5000/x",
                vec!["localhost:5000", "*:5000", "**:5000"],
            ),
            (
                "127.0.0.1:5000/x",
                vec!["127.0.0.1:5000", "*.0.0.1:5000", "**.0.0.1:5000"],
            ),
            (
                "a.b.example.com/x/y",
                vec!["a.b.example.com", "*.b.example.com", "**.b.example.com"],
            ),
        ] {
            assert_eq!(ordered_keys(&image(img), 3), want, "{img}");
        }
        assert_eq!(ordered_keys(&image("[::1]:5000/x"), 3), ["[::1]:5000"]);
        assert_eq!(ordered_keys(&image("docker.io/x/y"), 1), ["docker.io"]);
    }

    #[test]
    fn the_strategy_order_is_the_order_the_kubelet_tries() {
        let src = image("docker.io/library/nginx");
        let mirror = image("harbor.example.com/hub/library/nginx");
        let parts = |mirror_first: bool| {
            let m = Part {
                image: mirror.clone(),
                mirror: Some("harbor.example.com/hub".into()),
                result: Ok((
                    Some("identity"),
                    answer(
                        &[("harbor.example.com", "robot")],
                        3000,
                        CacheKeyType::Registry,
                    ),
                )),
            };
            let s = Part {
                image: src.clone(),
                mirror: None,
                result: Ok((
                    Some("docker-config"),
                    answer(
                        &[("https://index.docker.io/v1/", "hub")],
                        300,
                        CacheKeyType::Registry,
                    ),
                )),
            };
            if mirror_first {
                vec![m, s]
            } else {
                vec![s, m]
            }
        };
        let (who, a) = merge(&src, parts(true), None).unwrap();
        assert_eq!(who, Some("identity"));
        assert_eq!(tried(&a, &src), ["robot", "hub"]);
        assert_eq!(
            a.lifetime,
            Duration::from_secs(300),
            "the narrowest lifetime"
        );
        assert_eq!(a.cache_key_type, CacheKeyType::Registry);
        let (who, a) = merge(&src, parts(false), None).unwrap();
        assert_eq!(who, Some("docker-config"));
        assert_eq!(tried(&a, &src), ["hub", "robot"]);
        // Another image of the registry gets the same order (the answer is registry-wide).
        assert_eq!(tried(&a, &image("docker.io/team/app")), ["hub", "robot"]);
    }

    #[test]
    fn a_failed_part_leaves_the_others_standing_briefly_and_alone_it_is_the_answer() {
        let src = image("docker.io/library/nginx");
        let failing = || Part {
            image: image("harbor.example.com/library/nginx"),
            mirror: Some("harbor.example.com".into()),
            result: Err(BackendError::unavailable("identity", "down")),
        };
        let source = |keys: &[(&str, &str)]| Part {
            image: src.clone(),
            mirror: None,
            result: Ok((
                Some("docker-config"),
                answer(keys, 300, CacheKeyType::Registry),
            )),
        };
        let (_, a) = merge(&src, vec![failing(), source(&[("docker.io", "hub")])], None).unwrap();
        assert_eq!(tried(&a, &src), ["hub"]);
        assert_eq!(a.lifetime, lifetime::MIN);
        let e = merge(&src, vec![failing(), source(&[])], None).unwrap_err();
        assert!(
            e.message
                .starts_with("mirror harbor.example.com (harbor.example.com/library/nginx): down"),
            "{e}"
        );
    }

    #[test]
    fn repeats_are_dropped_and_the_narrowest_scope_wins() {
        let src = image("docker.io/library/nginx");
        let parts = vec![
            Part {
                image: image("m.example.com/library/nginx"),
                mirror: Some("m.example.com".into()),
                result: Ok((
                    Some("docker-config"),
                    answer(
                        &[("m.example.com/library", "same")],
                        300,
                        CacheKeyType::Image,
                    ),
                )),
            },
            Part {
                image: src.clone(),
                mirror: None,
                result: Ok((
                    Some("docker-config"),
                    answer(&[("docker.io", "same")], 300, CacheKeyType::Registry),
                )),
            },
        ];
        let (_, a) = merge(&src, parts, None).unwrap();
        assert_eq!(a.auth.len(), 1);
        assert_eq!(a.cache_key_type, CacheKeyType::Image);
    }
}
