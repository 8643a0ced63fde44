//! The docker-config backend: the kubelet's legacy node keyring, as a provider.
//!
//! Contract (spec section 5.4): `config.json` is searched first, in the preferred directory
//! (the kubelet's `--root-dir`), the working directory, `$HOME/.docker` and `/.docker`; only
//! if none of those parses, `.dockercfg` in the preferred directory, the working directory,
//! `$HOME` and `/`. The first file that parses wins and files are never merged; a file that
//! is missing is skipped silently, one that cannot be read or parsed is reported on stderr
//! and skipped. A parsable file with no credentials (`{}`, `{"credsStore":"x"}`) ends the
//! search, as in the kubelet.
//!
//! The answer holds only the entries whose keys match the image under the kubelet's rules
//! ([`keyring_api::pattern::Keyring`]), with their keys as written in the file (the kubelet
//! normalizes them again on its side). It lives five minutes, the lifetime of the kubelet's
//! old `CachingDockerConfigProvider`. Its `cacheKeyType` is `Registry` only when every image
//! of the registry would get the same answer; when any key for this registry is scoped to a
//! path it is `Image`, so the kubelet cannot reuse path-scoped credentials (or their absence)
//! for another repository.

pub mod parse;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyring_api::pattern::{parse_schemeless, Keyring, MatchKind};
use keyring_api::provider::Query;
use keyring_api::wire::AuthConfig;
use keyring_api::{Answer, CacheKeyType, Outcome, Provider, ProviderError};

pub use parse::{decode_auth, parse_config_json, parse_dockercfg, Entries, Entry};

/// How long a docker-config answer lives: the kubelet's `CachingDockerConfigProvider` re-read
/// the files every five minutes.
pub const LIFETIME: Duration = Duration::from_secs(5 * 60);

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
    /// Its entries.
    pub entries: Entries,
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

/// Runs the search; returns the winning file, if any, and what happened to each candidate
/// visited. Problems with a file are logged as warnings and skipped, never fatal.
pub fn search(paths: &SearchPaths) -> (Option<Loaded>, Vec<Visit>) {
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
                    Format::ConfigJson => parse_config_json(&bytes),
                    Format::Dockercfg => parse_dockercfg(&bytes),
                };
                match parsed {
                    Ok(entries) => {
                        tracing::debug!(path = %path.display(), entries = entries.len(), "using docker config");
                        visits.push(Visit::Used(path.clone()));
                        return (
                            Some(Loaded {
                                path,
                                format,
                                entries,
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
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(Some(bytes))
}

/// The result of matching an image against a loaded file, for the provider and `explain`.
#[derive(Debug, Clone)]
pub struct Matched {
    /// Raw key → credential, for the entries that match.
    pub auth: BTreeMap<String, AuthConfig>,
    /// The raw keys that matched, most specific first.
    pub keys: Vec<String>,
    /// Direct match or Docker Hub fallback.
    pub kind: MatchKind,
    /// Raw keys the kubelet would skip as unparsable, with the reason.
    pub invalid: Vec<(String, String)>,
    /// The widest safe cache scope for this answer.
    pub cache_key_type: CacheKeyType,
}

/// Matches a file's entries against the query's image with the kubelet's rules.
pub fn match_entries(entries: &Entries, query: &Query) -> Matched {
    let mut keyring = Keyring::new();
    let mut invalid = Vec::new();
    for (raw, entry) in entries {
        if let Err(e) = keyring.add(raw, (raw.as_str(), entry)) {
            invalid.push((raw.clone(), e.to_string()));
        }
    }
    let (found, kind) = keyring.lookup(&query.target);
    let mut auth = BTreeMap::new();
    let mut keys = Vec::new();
    for e in &found {
        let (raw, entry) = e.value;
        keys.push(raw.to_string());
        auth.insert(
            raw.to_string(),
            AuthConfig {
                username: entry.username.clone(),
                password: entry.password.clone(),
            },
        );
    }
    // Registry scope is safe only if no key for this registry carries a path: otherwise
    // another repository of the registry could get a different answer.
    let path_scoped = keyring.entries().iter().any(|e| {
        query.target.host_matched_by(&e.key)
            && parse_schemeless(&e.key).is_ok_and(|p| !p.path.is_empty())
    });
    let cache_key_type = if path_scoped {
        CacheKeyType::Image
    } else {
        CacheKeyType::Registry
    };
    Matched {
        auth,
        keys,
        kind,
        invalid,
        cache_key_type,
    }
}

/// The docker-config provider.
#[derive(Debug, Clone)]
pub struct DockerConfigProvider {
    paths: SearchPaths,
}

impl DockerConfigProvider {
    /// A provider searching `paths`.
    pub fn new(paths: SearchPaths) -> Self {
        DockerConfigProvider { paths }
    }

    /// The search paths.
    pub fn paths(&self) -> &SearchPaths {
        &self.paths
    }
}

impl Provider for DockerConfigProvider {
    fn name(&self) -> &'static str {
        "docker-config"
    }

    fn provide(&self, query: &Query) -> Result<Outcome, ProviderError> {
        let (loaded, _) = search(&self.paths);
        let Some(loaded) = loaded else {
            tracing::debug!("no docker config file found");
            return Ok(Outcome::NotApplicable);
        };
        let matched = match_entries(&loaded.entries, query);
        for (key, reason) in &matched.invalid {
            tracing::warn!(
                "{}: ignoring entry {key:?}: {reason}",
                loaded.path.display()
            );
        }
        Ok(Outcome::Answer(Answer {
            auth: matched.auth,
            cache_key_type: matched.cache_key_type,
            lifetime: LIFETIME,
            expires_at: None,
            source: loaded.path.display().to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_api::ImageName;

    fn query(image: &str) -> Query {
        Query::new(ImageName::parse(image).unwrap())
    }

    fn write(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    struct Tree {
        _tmp: tempfile::TempDir,
        paths: SearchPaths,
        root: PathBuf,
        cwd: PathBuf,
        home: PathBuf,
    }

    fn tree() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cwd, home) = (
            tmp.path().join("root"),
            tmp.path().join("cwd"),
            tmp.path().join("home"),
        );
        for d in [&root, &cwd, &home] {
            std::fs::create_dir_all(d).unwrap();
        }
        let paths = SearchPaths {
            root_dir: root.clone(),
            cwd: Some(cwd.clone()),
            home: Some(home.clone()),
        };
        Tree {
            _tmp: tmp,
            paths,
            root,
            cwd,
            home,
        }
    }

    fn used(t: &Tree) -> Option<PathBuf> {
        search(&t.paths).0.map(|l| l.path)
    }

    #[test]
    fn candidate_order_is_the_kubelets() {
        let p = SearchPaths {
            root_dir: "/var/lib/kubelet".into(),
            cwd: Some("/work".into()),
            home: Some("/home/u".into()),
        };
        let got: Vec<String> = p
            .candidates()
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "/var/lib/kubelet/config.json",
                "/work/config.json",
                "/home/u/.docker/config.json",
                "/.docker/config.json",
                "/var/lib/kubelet/.dockercfg",
                "/work/.dockercfg",
                "/home/u/.dockercfg",
                "/.dockercfg",
            ]
        );
        // No HOME: relative to the working directory, as Go's "" home does.
        let p = SearchPaths { home: None, ..p };
        assert_eq!(
            p.candidates()[2].0,
            PathBuf::from("/work/.docker/config.json")
        );
        assert_eq!(p.candidates()[6].0, PathBuf::from("/work/.dockercfg"));
    }

    #[test]
    fn first_parsable_file_wins_and_broken_files_are_skipped() {
        let t = tree();
        let good = r#"{"auths":{"reg.io":{"auth":"Zm9vOmJhcg=="}}}"#;
        write(&t.home, ".docker/config.json", good);
        write(
            &t.home,
            ".dockercfg",
            r#"{"reg.io":{"auth":"Zm9vOmJhcg=="}}"#,
        );
        assert_eq!(used(&t), Some(t.home.join(".docker/config.json")));
        write(&t.cwd, "config.json", good);
        assert_eq!(used(&t), Some(t.cwd.join("config.json")));
        write(&t.root, "config.json", "{ broken");
        assert_eq!(used(&t), Some(t.cwd.join("config.json")));
        let (_, visits) = search(&t.paths);
        assert!(matches!(&visits[0], Visit::Skipped(p, _) if *p == t.root.join("config.json")));
        write(&t.root, "config.json", good);
        assert_eq!(used(&t), Some(t.root.join("config.json")));
    }

    #[test]
    fn dockercfg_only_when_no_config_json_parses() {
        let t = tree();
        write(
            &t.home,
            ".dockercfg",
            r#"{"reg.io":{"auth":"Zm9vOmJhcg=="}}"#,
        );
        write(&t.root, ".dockercfg", "not json");
        write(&t.cwd, "config.json", "[]");
        assert_eq!(used(&t), Some(t.home.join(".dockercfg")));
        // An empty but valid config.json ends the search.
        write(
            &t.home,
            ".docker/config.json",
            r#"{"credsStore":"desktop"}"#,
        );
        assert_eq!(used(&t), Some(t.home.join(".docker/config.json")));
    }

    #[test]
    fn a_directory_in_place_of_a_file_is_skipped() {
        let t = tree();
        std::fs::create_dir_all(t.root.join("config.json")).unwrap();
        write(&t.home, ".docker/config.json", "{}");
        assert_eq!(used(&t), Some(t.home.join(".docker/config.json")));
    }

    fn answer(entries: &str, image: &str) -> (Vec<String>, CacheKeyType) {
        let e = parse_config_json(entries.as_bytes()).unwrap();
        let m = match_entries(&e, &query(image));
        (m.keys, m.cache_key_type)
    }

    #[test]
    fn only_matching_entries_are_returned() {
        let cfg = r#"{"auths":{
            "127.0.0.1:5000":{"auth":"dTpw"},
            "127.0.0.1:5001":{"auth":"dTpw"},
            "https://index.docker.io/v1/":{"auth":"dTpw"},
            "other.example.com":{"auth":"dTpw"}}}"#;
        assert_eq!(
            answer(cfg, "127.0.0.1:5000/app"),
            (vec!["127.0.0.1:5000".into()], CacheKeyType::Registry)
        );
        assert_eq!(
            answer(cfg, "nginx"),
            (
                vec!["https://index.docker.io/v1/".into()],
                CacheKeyType::Registry
            )
        );
        assert_eq!(answer(cfg, "quay.io/x"), (vec![], CacheKeyType::Registry));
    }

    #[test]
    fn path_scoped_keys_make_the_answer_image_scoped() {
        let cfg = r#"{"auths":{"reg.io/team":{"auth":"dTpw"},"reg.io":{"auth":"dTpw"},"other.io":{"auth":"dTpw"}}}"#;
        assert_eq!(
            answer(cfg, "reg.io/team/app"),
            (
                vec!["reg.io/team".into(), "reg.io".into()],
                CacheKeyType::Image
            )
        );
        // The other repository gets only the registry key, and must not be cached per registry
        // either, or reg.io/team/app would later be served this narrower answer.
        assert_eq!(
            answer(cfg, "reg.io/other"),
            (vec!["reg.io".into()], CacheKeyType::Image)
        );
        assert_eq!(
            answer(cfg, "other.io/x"),
            (vec!["other.io".into()], CacheKeyType::Registry)
        );
        // /v2/ is the registry root, not a path.
        let cfg = r#"{"auths":{"https://reg.io/v2/":{"auth":"dTpw"}}}"#;
        assert_eq!(
            answer(cfg, "reg.io/x"),
            (vec!["https://reg.io/v2/".into()], CacheKeyType::Registry)
        );
    }

    #[test]
    fn provider_answers_with_the_file_and_five_minutes() {
        let t = tree();
        write(
            &t.home,
            ".docker/config.json",
            r#"{"auths":{"reg.io":{"username":"u","password":"p"}}}"#,
        );
        let p = DockerConfigProvider::new(t.paths.clone());
        let Outcome::Answer(a) = p.provide(&query("reg.io/app:1")).unwrap() else {
            panic!("expected an answer");
        };
        assert_eq!(a.lifetime, LIFETIME);
        assert_eq!(
            a.source,
            t.home.join(".docker/config.json").display().to_string()
        );
        assert_eq!(a.auth["reg.io"].username, "u");
        assert_eq!(a.auth["reg.io"].password.expose(), "p");
        let empty = DockerConfigProvider::new(tree().paths);
        assert_eq!(
            empty.provide(&query("reg.io/app")).unwrap(),
            Outcome::NotApplicable
        );
    }
}
