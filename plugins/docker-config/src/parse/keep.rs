//! Which entries of a credential map or of `credHelpers` a parse keeps ([`Keep`]), decided
//! key by key while the map is deserialized ([`Sieve`]), so that memory and time follow the
//! keys that can serve the image, not the size of the file (16 MiB of
//! `{"auths":{"0":{},"1":{},...}}` is 1.5 million entries, and so is
//! `{"credHelpers":{"0":"",...}}`).
//!
//! Every entry is still decoded and checked (one bad `auths` entry fails the file, as in the
//! kubelet; a `credHelpers` entry of the wrong type is still warned about); only what is kept
//! differs.
//!
//! **`auths`** ([`Sifted::Auths`]). An entry is kept when its key could match the image under the
//! kubelet's rules: its keyring key's host and port match the image's whatever the path
//! ([`Target::host_matched_by`]: the keys a lookup can return, and the path-scoped keys that
//! narrow the cache scope), or it is the `index.docker.io` key and the image is on Docker Hub
//! (the kubelet's fallback). Matching the kept entries therefore gives exactly the answer and
//! scope that matching all of them gives. A few others are kept too, for `explain` and the
//! warnings about keys the kubelet skips: the first [`MAX_OTHERS_KEPT`] with a valid key and
//! the first [`MAX_OTHERS_KEPT`] with an invalid one; the rest are only counted.
//!
//! **`credHelpers`** ([`Sifted::CredHelpers`]). An entry is kept exactly when its key is one
//! of those `host::plan` looks up for the image (the docker CLI's exact lookup;
//! [`helper_keys`]): nothing else of `credHelpers` is ever used, so choosing
//! a helper from the kept entries gives exactly the choice all of them give. The others are
//! only counted.

use keyring_api::backend::Query;
use keyring_api::pattern::{is_default_registry_match, keyring_key, Target, DEFAULT_REGISTRY_KEY};
use keyring_api::ImageName;

/// Which entries of a credential map to keep.
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    /// Every entry: the file as the kubelet reads it.
    All,
    /// The entries that could serve this query's image, and a few others of `auths` (see the
    /// module docs).
    Image(&'a Query),
}

/// Which map a [`Sieve`] sifts: the rule differs (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sifted {
    /// `auths`, or a `.dockercfg`: the keys the kubelet's rules could match.
    Auths,
    /// `credHelpers`: the keys docker looks up for the image's registry.
    CredHelpers,
}

/// Entries of other registries kept by [`Keep::Image`], of each kind (valid key, invalid
/// key); `explain` shows 20 of them.
pub const MAX_OTHERS_KEPT: usize = 32;

/// The running decision for one credential map.
pub(super) struct Sieve<'a> {
    target: Option<&'a Target>,
    docker_hub: bool,
    /// For [`Sifted::CredHelpers`]: the only keys kept.
    helper_keys: Option<Vec<&'a str>>,
    /// Raw keys of the other entries kept so far: a repeated one stays kept, so that its
    /// last value replaces the first as it would unfiltered.
    others: Vec<String>,
    valid_others: usize,
    invalid_others: usize,
    /// Entries not kept, duplicates counted each time.
    pub(super) dropped: usize,
}

impl<'a> Sieve<'a> {
    pub(super) fn new(keep: Keep<'a>, sifted: Sifted) -> Self {
        let query = match keep {
            Keep::All => None,
            Keep::Image(q) => Some(q),
        };
        let target = query.map(|q| &q.target);
        Sieve {
            target,
            docker_hub: target.is_some_and(|t| is_default_registry_match(t.as_str())),
            helper_keys: query
                .filter(|_| sifted == Sifted::CredHelpers)
                .map(|q| helper_keys(&q.image)),
            others: Vec::new(),
            valid_others: 0,
            invalid_others: 0,
            dropped: 0,
        }
    }

    /// Whether the entry under `raw` is kept; counts it when not.
    pub(super) fn keeps(&mut self, raw: &str) -> bool {
        let Some(target) = self.target else {
            return true;
        };
        if let Some(keys) = &self.helper_keys {
            let kept = keys.contains(&raw);
            self.dropped += usize::from(!kept);
            return kept;
        }
        let valid = match keyring_key(raw) {
            Ok(key) if target.host_matched_by(&key) => return true,
            Ok(key) if self.docker_hub && key == DEFAULT_REGISTRY_KEY => return true,
            Ok(_) => true,
            Err(_) => false,
        };
        if self.others.iter().any(|k| k == raw) {
            return true;
        }
        let kept = if valid {
            &mut self.valid_others
        } else {
            &mut self.invalid_others
        };
        if *kept < MAX_OTHERS_KEPT {
            *kept += 1;
            self.others.push(raw.to_string());
            return true;
        }
        self.dropped += 1;
        false
    }
}

/// The server address the docker CLI uses for Docker Hub (`registry.IndexServer`): its
/// `credHelpers` key, and what its helpers are given on stdin.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The `credHelpers` keys that select a helper for `image`, most preferred first: the only
/// ones `host::plan` looks up, and so the only ones a parse for one image keeps
/// (here).
pub(crate) fn helper_keys(image: &ImageName) -> Vec<&str> {
    if image.registry() == keyring_api::image::DEFAULT_DOMAIN {
        vec![DOCKER_HUB_SERVER, "index.docker.io", "docker.io"]
    } else {
        vec![image.registry()]
    }
}
