//! An in-process cache (moka) in front of the disk, for a process that looks up many images
//! (`explain` over several images, a future daemon mode). A one-shot `get-credentials` does
//! not build it: it would always be empty there, and building it is not free.

use std::time::{Duration, SystemTime};

use keyring_api::{CacheKeyType, ImageName};

use super::{lookup_keys, DiskCache, Entry, Freshness, Usable};

/// Entries kept in memory at most.
const CAPACITY: u64 = 4096;

/// A moka cache of disk entries, keyed like the disk.
pub struct MemoryCache {
    entries: moka::sync::Cache<(CacheKeyType, String), Entry>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache {
            // Entries carry their own freshness; this bound only keeps dead ones from
            // lingering in a long-lived process.
            entries: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(Duration::from_secs(12 * 3600))
                .build(),
        }
    }
}

impl MemoryCache {
    /// Looks up memory first, then the disk (remembering what the disk had).
    pub fn find(
        &self,
        disk: Option<&DiskCache>,
        image: &ImageName,
        now: SystemTime,
    ) -> Option<Usable> {
        for (scope, key) in lookup_keys(image) {
            let cached = self.entries.get(&(scope, key.to_string()));
            let entry = match cached {
                Some(e) => Some(e),
                None => disk.and_then(|d| d.read(scope, key)).inspect(|e| {
                    self.entries.insert((scope, key.to_string()), e.clone());
                }),
            };
            if let Some(e) = entry {
                if let Freshness::Fresh(d) = e.freshness(now) {
                    return Some((e, d));
                }
                self.entries.invalidate(&(scope, key.to_string()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::Answer;

    #[test]
    fn serves_from_memory_without_the_disk_and_reads_through() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = DiskCache::open(tmp.path().join("c"), [1; 32]).unwrap();
        let img = ImageName::parse("reg.io/app").unwrap();
        let now = SystemTime::now();
        let answer = Answer {
            auth: Default::default(),
            cache_key_type: CacheKeyType::Registry,
            lifetime: Duration::from_secs(300),
            expires_at: None,
            source: "test".into(),
        };
        disk.write(
            CacheKeyType::Registry,
            &Entry::new("reg.io".into(), "p", &answer, now),
        )
        .unwrap();
        let mem = MemoryCache::default();
        assert!(mem.find(Some(&disk), &img, now).is_some());
        disk.clear().unwrap();
        // Now only memory has it.
        assert!(mem.find(None, &img, now).is_some());
        // Dead entries are dropped.
        assert!(mem
            .find(None, &img, now + Duration::from_secs(301))
            .is_none());
        assert!(mem.find(None, &img, now).is_none());
    }
}
