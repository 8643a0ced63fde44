//! The journal: one fixed-size record per answer, appended by every invocation with one
//! `write`, read by the fold in bounded chunks.
//!
//! A record is [`RECORD_LEN`] bytes:
//!
//! | bytes | what |
//! | --- | --- |
//! | 0..4 | magic `KKM2` |
//! | 4 | event: 1 hit, 2 stale answer, 3 fetch, 4 failed fetch |
//! | 5, 6 | lengths of the failure kind and the backend name |
//! | 8..10 | length of the registry, little-endian |
//! | 16..24 | when, ms since the epoch, little-endian |
//! | 24..40 | the failure kind by name ([`ErrorKind::as_str`]; empty unless event 4) |
//! | 40..72 | the backend's name |
//! | 72..332 | the registry (a DNS name of 253 bytes with a port fits) |
//! | 332..336 | end marker `2MKK` (a record cut short by a failed write lacks it) |
//!
//! The kind is stored by name, not by its place in [`ErrorKind::ALL`], so a new kind can go
//! anywhere in that list without changing what old records mean; a record naming a kind this
//! version does not know (written by a newer one) is skipped. Records of the first layout
//! (`KKM1`, 320 bytes, kinds by place) are not read: the fold skips them as it skips a torn
//! record. Upgrading therefore loses the records no fold had read yet, those of the minute
//! before the upgrade at most when the metrics timer runs; the counters folded before stay.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use keyring_api::{file, ErrorKind, ImageName};

use crate::cache::dir::{self, Kind};
use crate::cache::entry::ms;

/// The journal that invocations append to.
pub const JOURNAL: &str = "kubelet-keyring.journal";

/// Bytes per journal record.
pub const RECORD_LEN: usize = 336;
const MAGIC: &[u8; 4] = b"KKM2";
const END: &[u8; 4] = b"2MKK";
const KIND_AT: usize = 24;
const KIND_MAX: usize = 16;
const BACKEND_AT: usize = KIND_AT + KIND_MAX;
const BACKEND_MAX: usize = 32;
const REGISTRY_AT: usize = BACKEND_AT + BACKEND_MAX;
/// The longest registry recorded: a DNS name (253) with a port.
const REGISTRY_MAX: usize = RECORD_LEN - END.len() - REGISTRY_AT;

/// What one invocation did for one registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Answered from a fresh cache entry.
    Hit,
    /// Answered from a stale but still valid entry because the backend failed.
    StaleServed,
    /// The backend (or the chain, for "no credentials") answered.
    FetchOk,
    /// The backend failed.
    FetchFailed(ErrorKind),
}

impl Event {
    /// The event's byte and the failure kind's name.
    fn code(self) -> (u8, &'static str) {
        match self {
            Event::Hit => (1, ""),
            Event::StaleServed => (2, ""),
            Event::FetchOk => (3, ""),
            Event::FetchFailed(k) => (4, k.as_str()),
        }
    }

    fn from_code(event: u8, kind: &[u8]) -> Option<Event> {
        Some(match (event, kind) {
            (1, b"") => Event::Hit,
            (2, b"") => Event::StaleServed,
            (3, b"") => Event::FetchOk,
            (4, name) => Event::FetchFailed(
                *ErrorKind::ALL
                    .iter()
                    .find(|k| k.as_str().as_bytes() == name)?,
            ),
            _ => return None,
        })
    }
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// What.
    pub event: Event,
    /// The backend's name (`none` when nobody had credentials).
    pub backend: String,
    /// The registry, as the kubelet matches it.
    pub registry: String,
}

impl Record {
    /// A record of `event` for `image`'s registry at `at`.
    pub fn new(at: SystemTime, event: Event, backend: &str, image: &ImageName) -> Record {
        Record {
            at_ms: ms(at),
            event,
            backend: backend.to_string(),
            registry: image.registry().to_string(),
        }
    }

    /// The record's bytes (see the module docs). `None` for names too long to record (no
    /// real backend or registry is).
    pub fn encode(&self) -> Option<[u8; RECORD_LEN]> {
        let (event, kind) = self.event.code();
        let (k, p, r) = (
            kind.as_bytes(),
            self.backend.as_bytes(),
            self.registry.as_bytes(),
        );
        if k.len() > KIND_MAX || p.len() > BACKEND_MAX || r.len() > REGISTRY_MAX {
            return None;
        }
        let mut b = [0u8; RECORD_LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = event;
        b[5] = k.len() as u8;
        b[6] = p.len() as u8;
        b[8..10].copy_from_slice(&(r.len() as u16).to_le_bytes());
        b[16..24].copy_from_slice(&self.at_ms.to_le_bytes());
        b[KIND_AT..KIND_AT + k.len()].copy_from_slice(k);
        b[BACKEND_AT..BACKEND_AT + p.len()].copy_from_slice(p);
        b[REGISTRY_AT..REGISTRY_AT + r.len()].copy_from_slice(r);
        b[RECORD_LEN - END.len()..].copy_from_slice(END);
        Some(b)
    }

    /// The record at the start of `b`, if there is one.
    pub fn decode(b: &[u8]) -> Option<Record> {
        if b.len() < RECORD_LEN || &b[..4] != MAGIC || &b[RECORD_LEN - END.len()..RECORD_LEN] != END
        {
            return None;
        }
        let (k, p) = (usize::from(b[5]), usize::from(b[6]));
        let r = usize::from(u16::from_le_bytes([b[8], b[9]]));
        if k > KIND_MAX || p > BACKEND_MAX || r > REGISTRY_MAX {
            return None;
        }
        let text = |s: &[u8]| String::from_utf8(s.to_vec()).ok();
        Some(Record {
            at_ms: u64::from_le_bytes(b[16..24].try_into().ok()?),
            event: Event::from_code(b[4], &b[KIND_AT..KIND_AT + k])?,
            backend: text(&b[BACKEND_AT..BACKEND_AT + p])?,
            registry: text(&b[REGISTRY_AT..REGISTRY_AT + r])?,
        })
    }
}

/// Decodes records from bytes fed in chunks of any size: what is not a record (a torn write,
/// a record of another layout) is skipped up to the next magic. Holds less than two records
/// between chunks.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    /// Decodes what `chunk` completes, handing each record to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut dyn FnMut(Record)) {
        self.pending.extend_from_slice(chunk);
        let b = &self.pending;
        let mut at = 0;
        while at + RECORD_LEN <= b.len() {
            match Record::decode(&b[at..]) {
                Some(r) => {
                    out(r);
                    at += RECORD_LEN;
                }
                None => {
                    at += 1;
                    match b[at..].windows(MAGIC.len()).position(|w| w == MAGIC) {
                        Some(i) => at += i,
                        // A magic may start in the last bytes and end in the next chunk.
                        None => at = at.max(b.len() - (MAGIC.len() - 1)),
                    }
                }
            }
        }
        self.pending.drain(..at);
    }
}

/// All records in `bytes`.
pub fn decode_all(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    Decoder::default().feed(bytes, &mut |r| out.push(r));
    out
}

/// Appends `records` to the journal in `dir` with one `write`. The hot path: the directory is
/// checked (and created, 0755, when missing) as the cache directory is; the journal is opened
/// without following a symlink or blocking on a FIFO, and written only if it is a regular
/// file of ours with one link. No lock: appends of one small `write` do not interleave.
pub fn append(dir: &Path, records: &[Record]) {
    let mut buf = Vec::with_capacity(RECORD_LEN * records.len());
    for r in records {
        match r.encode() {
            Some(b) => buf.extend_from_slice(&b),
            None => tracing::debug!("metrics: a name too long to record"),
        }
    }
    if buf.is_empty() {
        return;
    }
    let dir = match dir::prepare(dir, Kind::Metrics) {
        Ok(d) => d,
        Err(e) => return tracing::warn!("metrics: {e}"),
    };
    let path = dir.join(JOURNAL);
    let opened = file::open_in_own_dir(
        &path,
        OpenOptions::new().append(true).create(true).mode(0o600),
    );
    if let Err(e) = opened.and_then(|mut f| f.write_all(&buf)) {
        tracing::warn!("metrics: cannot append to {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::record as rec;
    use super::*;

    fn all() -> Vec<Record> {
        vec![
            rec(1, Event::Hit, "ecr", "1.dkr.ecr.us-east-1.amazonaws.com"),
            rec(2, Event::StaleServed, "gcp", "gcr.io"),
            rec(3, Event::FetchOk, "none", "quay.io"),
            rec(
                4,
                Event::FetchFailed(ErrorKind::Denied),
                "acr",
                "x.azurecr.io",
            ),
            rec(
                5,
                Event::FetchFailed(ErrorKind::Protocol),
                "a",
                "[::1]:5000",
            ),
            rec(6, Event::FetchFailed(ErrorKind::Misconfigured), "b", "r"),
        ]
    }

    #[test]
    fn records_round_trip_and_a_torn_one_costs_only_itself() {
        let all = all();
        let mut bytes = Vec::new();
        for r in &all {
            let b = r.encode().unwrap();
            assert_eq!(Record::decode(&b).as_ref(), Some(r));
            bytes.extend_from_slice(&b);
        }
        assert_eq!(decode_all(&bytes), all);
        let mut torn = bytes[..RECORD_LEN].to_vec();
        torn.extend_from_slice(&bytes[RECORD_LEN..RECORD_LEN + 100]);
        torn.extend_from_slice(&bytes[2 * RECORD_LEN..]);
        let got = decode_all(&torn);
        assert_eq!(got.len(), all.len() - 1);
        assert_eq!(got[1], all[2]);
        assert!(rec(1, Event::Hit, &"p".repeat(33), "r").encode().is_none());
        let long = "r".repeat(REGISTRY_MAX);
        assert!(rec(1, Event::Hit, "p", &long).encode().is_some());
        assert!(rec(1, Event::Hit, "p", &format!("{long}r"))
            .encode()
            .is_none());
        assert!(REGISTRY_MAX >= 253 + ":65535".len());
    }

    #[test]
    fn chunks_of_any_size_decode_as_the_whole_does() {
        let all = all();
        let mut bytes = vec![0u8; 7];
        for r in &all {
            bytes.extend_from_slice(&r.encode().unwrap());
            bytes.extend_from_slice(b"KK");
        }
        bytes.extend_from_slice(&MAGIC[..3]);
        for size in [1, 3, 5, 100, RECORD_LEN - 1, RECORD_LEN + 1, 4096] {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                d.feed(chunk, &mut |r| got.push(r));
                assert!(d.pending.len() < 2 * RECORD_LEN, "{size}");
            }
            assert_eq!(got, all, "chunks of {size}");
        }
    }

    #[test]
    fn failure_kinds_are_recorded_by_name_not_by_place() {
        let r = rec(
            7,
            Event::FetchFailed(ErrorKind::Unavailable),
            "gcp",
            "gcr.io",
        );
        let b = r.encode().unwrap();
        assert_eq!(&b[KIND_AT..KIND_AT + "unavailable".len()], b"unavailable");
        // A kind this version does not know (a newer one wrote it): the record is skipped.
        let mut unknown = b;
        unknown[5] = 7;
        unknown[KIND_AT..KIND_AT + 7].copy_from_slice(b"brandnw");
        assert_eq!(Record::decode(&unknown), None);
        // The first layout (kinds by place) is not read.
        let mut v1 = b;
        v1[..4].copy_from_slice(b"KKM1");
        assert_eq!(decode_all(&v1), []);
    }

    #[test]
    fn a_planted_symlink_or_hard_link_is_not_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        std::fs::create_dir(&dir).unwrap();
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let img = ImageName::parse("reg.io/app").unwrap();
        let hit = [Record::new(SystemTime::now(), Event::Hit, "p", &img)];
        std::os::unix::fs::symlink(&target, dir.join(JOURNAL)).unwrap();
        append(&dir, &hit);
        std::fs::remove_file(dir.join(JOURNAL)).unwrap();
        std::fs::hard_link(&target, dir.join(JOURNAL)).unwrap();
        append(&dir, &hit);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        std::fs::remove_file(dir.join(JOURNAL)).unwrap();
        append(&dir, &hit);
        assert_eq!(decode_all(&std::fs::read(dir.join(JOURNAL)).unwrap()), hit);
    }
}
