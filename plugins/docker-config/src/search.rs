//! Where the kubelet looks for a docker config, and which file wins: the candidates in the
//! kubelet's order ([`SearchPaths::candidates`]), each read safely and bounded; the first that
//! parses ends the search. Local file reads only; nothing here matches images, but the parse
//! keeps only the entries that could serve the image asked about ([`Keep`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::parse::{parse_dockercfg_for, ConfigJson, Entries, Keep};

/// Files larger than this are skipped with a warning rather than read into memory. A config
/// with a thousand registries is about 100 KiB.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// The two docker config formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `config.json`: `{"auths": {...}}`.
    ConfigJson,
    /// Legacy `.dockercfg`: the credential map itself.
    Dockercfg,
}

/// Where to look, resolved once from the process environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPaths {
    /// The preferred directory: the kubelet's `--root-dir` (`/var/lib/kubelet`).
    pub root_dir: PathBuf,
    /// The working directory, `None` if it cannot be determined (the kubelet skips it then).
    pub cwd: Option<PathBuf>,
    /// `$HOME`; when unset or empty, Go's paths become relative to the working directory.
    pub home: Option<PathBuf>,
}

impl SearchPaths {
    /// The candidates in search order: four `config.json`, then four `.dockercfg`.
    pub fn candidates(&self) -> Vec<(PathBuf, Format)> {
        let cwd = self.cwd.as_deref();
        // Go joins "" with the file name and makes it absolute against the cwd.
        let abs = |p: PathBuf| -> Option<PathBuf> {
            if p.is_absolute() {
                Some(p)
            } else {
                cwd.map(|c| c.join(p))
            }
        };
        let home = self.home.clone().unwrap_or_default();
        let json = [
            abs(self.root_dir.join("config.json")),
            cwd.map(|c| c.join("config.json")),
            abs(home.join(".docker").join("config.json")),
            Some(PathBuf::from("/.docker/config.json")),
        ];
        let cfg = [
            abs(self.root_dir.join(".dockercfg")),
            cwd.map(|c| c.join(".dockercfg")),
            abs(home.join(".dockercfg")),
            Some(PathBuf::from("/.dockercfg")),
        ];
        let json = json.into_iter().flatten().map(|p| (p, Format::ConfigJson));
        let cfg = cfg.into_iter().flatten().map(|p| (p, Format::Dockercfg));
        json.chain(cfg).collect()
    }
}

/// The file that won the search.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its path.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Its entries: those the search's [`Keep`] kept.
    pub entries: Entries,
    /// How many entries are not in `entries`: not kept by the search's [`Keep`], or replaced
    /// by a later entry of the same key ([`ConfigJson::dropped`]).
    pub dropped: usize,
    /// Its `credHelpers` (registry key → helper suffix) that the search's [`Keep`] kept;
    /// empty for `.dockercfg`.
    pub cred_helpers: BTreeMap<String, String>,
    /// Its `credsStore`; `None` for `.dockercfg`.
    pub creds_store: Option<String>,
}

/// What happened to one candidate, for `explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visit {
    /// Not there.
    Missing(PathBuf),
    /// There, but unreadable or unparsable; the text is safe to show.
    Skipped(PathBuf, String),
    /// Parsed: the search stops here.
    Used(PathBuf),
}

/// Runs the search; returns the winning file, if any, with the entries `keep` keeps, and what
/// happened to each candidate visited. Which file wins does not depend on `keep`. Problems
/// with a file are logged as warnings and skipped, never fatal.
pub fn search(paths: &SearchPaths, keep: Keep<'_>) -> (Option<Loaded>, Vec<Visit>) {
    let mut visits = Vec::new();
    for (path, format) in paths.candidates() {
        match read_bounded(&path) {
            Ok(None) => {
                tracing::trace!(path = %path.display(), "no docker config here");
                visits.push(Visit::Missing(path));
            }
            Err(e) => {
                tracing::warn!("skipping docker config {}: {e}", path.display());
                visits.push(Visit::Skipped(path, e.to_string()));
            }
            Ok(Some(bytes)) => {
                let parsed = match format {
                    Format::ConfigJson => ConfigJson::parse_for(&bytes, keep),
                    Format::Dockercfg => {
                        parse_dockercfg_for(&bytes, keep).map(|(entries, dropped)| ConfigJson {
                            entries,
                            dropped,
                            ..ConfigJson::default()
                        })
                    }
                };
                match parsed {
                    Ok(config) => {
                        tracing::debug!(path = %path.display(), entries = config.entries.len(), dropped = config.dropped, "using docker config");
                        for warning in &config.warnings {
                            tracing::warn!("{}: {warning}", path.display());
                        }
                        visits.push(Visit::Used(path.clone()));
                        return (
                            Some(Loaded {
                                path,
                                format,
                                entries: config.entries,
                                dropped: config.dropped,
                                cred_helpers: config.cred_helpers,
                                creds_store: config.creds_store,
                            }),
                            visits,
                        );
                    }
                    Err(e) => {
                        tracing::warn!("skipping docker config {}: {e}", path.display());
                        visits.push(Visit::Skipped(path, e.to_string()));
                    }
                }
            }
        }
    }
    (None, visits)
}

/// Reads a file, `Ok(None)` if it does not exist (or is a directory: the kubelet's read fails
/// and it moves on, which for us is the same as absent). Bounded by [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = match keyring_api::file::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(None);
    }
    // Whoever can write a credentials file can send pulls to their own registry or make the
    // node present their credentials: read it as the kubelet would, but say so.
    {
        use std::os::unix::fs::MetadataExt;
        if meta.mode() & 0o022 != 0 {
            tracing::warn!(
                "{} is writable by group or others (mode {:o}); anyone who can write it controls these credentials",
                path.display(),
                meta.mode() & 0o777
            );
        }
    }
    keyring_api::file::read_at_most(file, MAX_FILE_BYTES).map(Some)
}
