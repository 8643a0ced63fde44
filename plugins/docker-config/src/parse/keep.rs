//! Which entries of a credential map a parse keeps ([`Keep`]), decided key by key while the
//! map is deserialized, so that memory and time follow the keys that can serve the image, not
//! the size of the file (16 MiB of `{"auths":{"0":{},"1":{},...}}` is 1.5 million entries).
//!
//! Every entry is still decoded and checked (one bad entry fails the file, as in the kubelet);
//! only what is kept differs. An entry is kept when its key could match the image under the
//! kubelet's rules: its keyring key's host and port match the image's whatever the path
//! ([`Target::host_matched_by`]: the keys a lookup can return, and the path-scoped keys that
//! narrow the cache scope), or it is the `index.docker.io` key and the image is on Docker Hub
//! (the kubelet's fallback). Matching the kept entries therefore gives exactly the answer and
//! scope that matching all of them gives. A few others are kept too, for `explain` and the
//! warnings about keys the kubelet skips: the first [`MAX_OTHERS_KEPT`] with a valid key and
//! the first [`MAX_OTHERS_KEPT`] with an invalid one; the rest are only counted.

use keyring_api::pattern::{is_default_registry_match, keyring_key, Target, DEFAULT_REGISTRY_KEY};

/// Which entries of a credential map to keep.
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    /// Every entry: the file as the kubelet reads it.
    All,
    /// The entries that could serve this image (its normalized name as a match target), and
    /// a few others (see the module docs).
    Image(&'a Target),
}

/// Entries of other registries kept by [`Keep::Image`], of each kind (valid key, invalid
/// key); `explain` shows 20 of them.
pub const MAX_OTHERS_KEPT: usize = 32;

/// The running decision for one credential map.
pub(super) struct Sieve<'a> {
    target: Option<&'a Target>,
    docker_hub: bool,
    /// Raw keys of the other entries kept so far: a repeated one stays kept, so that its
    /// last value replaces the first as it would unfiltered.
    others: Vec<String>,
    valid_others: usize,
    invalid_others: usize,
    /// Entries not kept, duplicates counted each time.
    pub(super) dropped: usize,
}

impl<'a> Sieve<'a> {
    pub(super) fn new(keep: Keep<'a>) -> Self {
        let target = match keep {
            Keep::All => None,
            Keep::Image(t) => Some(t),
        };
        Sieve {
            target,
            docker_hub: target.is_some_and(|t| is_default_registry_match(t.as_str())),
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
