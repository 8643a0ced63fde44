//! The docker-config backend: the kubelet's legacy node keyring, as a backend.
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
//! old `CachingDockerConfigBackend`. Its `cacheKeyType` is `Registry` only when every image
//! of the registry would get the same answer; when any key for this registry is scoped to a
//! path it is `Image`, so the kubelet cannot reuse path-scoped credentials (or their absence)
//! for another repository.
//!
//! # Credential helpers (beyond the kubelet)
//!
//! The kubelet ignores `credHelpers` and `credsStore`; this backend runs them as the docker
//! CLI does ([`helper`]: `docker-credential-<name> get`, server address on stdin), so a node
//! can use a helper such as `docker-credential-ecr-login`. Only `config.json` has them; they
//! are read from the file that won the search and never change which file wins. Precedence,
//! for one image:
//!
//! 1. **`credHelpers`** entry for the image's registry: explicit per-registry configuration
//!    wins, as in docker, over any `auths` entry. What the helper says is the answer: its
//!    credentials, or none ("credentials not found", or an identity token the kubelet cannot
//!    use, skipped with a warning); there is no fall-back to `auths`. An entry with an empty
//!    name means "no helper for this registry" (docker's rule), which also disables
//!    `credsStore` for it.
//! 2. Otherwise the **`auths`** entries the kubelet's rules match, as described above.
//! 3. Otherwise, when none of those carries a user name or password, **`credsStore`** if set.
//!    Matched entries without credentials do not stop it: `docker login` with a credential
//!    store writes exactly such an empty `auths` entry next to `credsStore`.
//!
//! Registry keys follow the docker CLI (`getConfiguredCredentialStore`: an exact map lookup
//! by the key `GetAuthConfigKey` gives). The key of an image is its registry, `host[:port]`
//! as normalized (`localhost:5000`, `123456789012.dkr.ecr.us-east-1.amazonaws.com`), matched
//! exactly and case-sensitively; `https://` forms are not looked up, as docker does not. For
//! Docker Hub (`docker.io/...`), docker's key is `https://index.docker.io/v1/`; we also
//! accept `index.docker.io` and `docker.io`, in that order. The helper is given the same
//! server address docker gives it: the registry for other registries, and always
//! `https://index.docker.io/v1/` for Docker Hub, which is where `docker login` stored it.
//!
//! A helper's credentials are answered under the image's registry (`docker.io` for Docker
//! Hub), a key the kubelet matches to every image of that registry. The answer lives five
//! minutes like the rest, with `cacheKeyType` `Registry` for `credHelpers` (the helper sees
//! only the registry), and for `credsStore` the scope the `auths` match computed (`Image` when
//! a path-scoped `auths` key could give another repository of the registry another answer).
//! A helper that is missing, fails, hangs past its timeout or prints garbage is an error
//! (`Err(BackendError)`, one line naming the helper, the failure and the likely fix).

pub mod explain;
pub mod helper;
pub mod parse;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyring_api::backend::Query;
use keyring_api::pattern::{parse_schemeless, Keyring, MatchKind};
use keyring_api::wire::AuthConfig;
use keyring_api::{Answer, Backend, BackendError, CacheKeyType, ImageName, Outcome};

pub use parse::{decode_auth, parse_config_json, parse_dockercfg, ConfigJson, Entries, Entry};

/// How long a docker-config answer lives: the kubelet's `CachingDockerConfigBackend` re-read
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
    /// Its `credHelpers` (registry key → helper suffix); empty for `.dockercfg`.
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
                    Format::ConfigJson => ConfigJson::parse(&bytes),
                    Format::Dockercfg => parse_dockercfg(&bytes).map(|entries| ConfigJson {
                        entries,
                        ..ConfigJson::default()
                    }),
                };
                match parsed {
                    Ok(config) => {
                        tracing::debug!(path = %path.display(), entries = config.entries.len(), "using docker config");
                        for warning in &config.warnings {
                            tracing::warn!("{}: {warning}", path.display());
                        }
                        visits.push(Visit::Used(path.clone()));
                        return (
                            Some(Loaded {
                                path,
                                format,
                                entries: config.entries,
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
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_FILE_BYTES) as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(Some(bytes))
}

/// The result of matching an image against a loaded file, for the backend and `explain`.
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

/// The server address the docker CLI uses for Docker Hub (`registry.IndexServer`): its
/// `credHelpers` key, and what its helpers are given on stdin.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The server address a credential helper is given for `image`: [`DOCKER_HUB_SERVER`] for
/// Docker Hub, the registry (`host[:port]`) otherwise.
pub fn helper_server(image: &ImageName) -> &str {
    if image.registry() == keyring_api::image::DEFAULT_DOMAIN {
        DOCKER_HUB_SERVER
    } else {
        image.registry()
    }
}

/// The `credHelpers` keys that select a helper for `image`, most preferred first.
fn helper_keys(image: &ImageName) -> Vec<&str> {
    if image.registry() == keyring_api::image::DEFAULT_DOMAIN {
        vec![DOCKER_HUB_SERVER, "index.docker.io", "docker.io"]
    } else {
        vec![image.registry()]
    }
}

/// Which source of a loaded file answers one image (see the crate docs for the order).
#[derive(Debug, Clone)]
pub enum Plan<'a> {
    /// `credHelpers` names this helper (suffix) for the image's registry.
    CredHelper(&'a str),
    /// The kubelet-matched `auths` entries (possibly none).
    Auths(Matched),
    /// No matched `auths` entry has credentials: the `credsStore` helper (suffix), with the
    /// `auths` match for its cache scope.
    CredsStore(&'a str, Matched),
}

/// Decides which source answers `query` from `loaded`.
pub fn plan<'a>(loaded: &'a Loaded, query: &Query) -> Plan<'a> {
    let explicit = helper_keys(&query.image)
        .into_iter()
        .find_map(|key| loaded.cred_helpers.get(key));
    if let Some(name) = explicit.filter(|n| !n.is_empty()) {
        return Plan::CredHelper(name);
    }
    let matched = match_entries(&loaded.entries, query);
    // An empty credHelpers entry pins the registry to the file's own credentials.
    let store = loaded.creds_store.as_deref().filter(|_| explicit.is_none());
    let usable = matched
        .auth
        .values()
        .any(|a| !a.username.is_empty() || !a.password.expose().is_empty());
    match store {
        Some(name) if !usable => Plan::CredsStore(name, matched),
        _ => Plan::Auths(matched),
    }
}

/// The docker-config backend.
#[derive(Debug, Clone)]
pub struct DockerConfigBackend {
    paths: SearchPaths,
    helper_timeout: Duration,
}

impl DockerConfigBackend {
    /// A backend searching `paths`. Reads [`helper::TIMEOUT_ENV`] (a test-only knob), nothing
    /// else: no file is touched before `provide`.
    pub fn new(paths: SearchPaths) -> Self {
        let helper_timeout =
            helper::timeout_from_env(std::env::var_os(helper::TIMEOUT_ENV).as_deref());
        DockerConfigBackend {
            paths,
            helper_timeout,
        }
    }

    /// The same backend with another credential-helper timeout.
    pub fn with_helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// The search paths.
    pub fn paths(&self) -> &SearchPaths {
        &self.paths
    }

    /// Runs credential helper `name` (from `setting` of `loaded`) for `query`'s registry.
    fn ask_helper(
        &self,
        loaded: &Loaded,
        setting: &str,
        name: &str,
        query: &Query,
        cache_key_type: CacheKeyType,
    ) -> Result<Outcome, BackendError> {
        let server = helper_server(&query.image);
        let path = loaded.path.display();
        if let Err(e) = helper::validate_name(name) {
            let shown: String = name.chars().take(64).collect();
            return Err(BackendError::misconfigured(
                NAME,
                format!(
                    "credential helper name {shown:?} ({setting} in {path}, for {server}) {e}: set it to the suffix of an installed docker-credential-<suffix> program"
                ),
            ));
        }
        let program = helper::program(name);
        tracing::debug!("running {program} get for {server} ({setting} in {path})");
        let reply = match helper::get(&program, server, self.helper_timeout, query.deadline) {
            Ok(reply) => reply,
            // A `credsStore` is a default for every registry, often left over from a desktop
            // (`desktop`, `osxkeychain`); the kubelet never ran it. Missing, it means "no
            // credentials" with a warning, not a failure of every pull. A `credHelpers` entry
            // names this very registry, so a missing helper there stays an error.
            Err(helper::HelperError::NotOnPath) if setting == "credsStore" => {
                tracing::warn!(
                    "credsStore {program:?} in {path} is not installed (not on PATH); answering without credentials for {server}"
                );
                helper::Reply::NotFound
            }
            Err(e) => {
                return Err(BackendError::new(
                    NAME,
                    e.kind(),
                    format!(
                        "credential helper {program} ({setting} in {path}) for {server} {e}; {}",
                        e.fix()
                    ),
                ))
            }
        };
        let mut auth = BTreeMap::new();
        match reply {
            helper::Reply::Credentials(c) => {
                auth.insert(
                    query.image.registry().to_string(),
                    AuthConfig {
                        username: c.username,
                        password: c.secret,
                    },
                );
            }
            helper::Reply::NotFound => {
                tracing::debug!("{program} has no credentials for {server}");
            }
            helper::Reply::IdentityToken => tracing::warn!(
                "{program} returned an identity token for {server}, which the kubelet cannot use; answering without credentials"
            ),
        }
        Ok(Outcome::Answer(Answer {
            auth,
            cache_key_type,
            lifetime: LIFETIME,
            expires_at: None,
            source: format!("credential helper {program} (from {path})"),
        }))
    }
}

/// This backend's name.
const NAME: &str = "docker-config";

/// This backend as the binary sees it. Its own inputs are the search directories (hashed by
/// the binary); the cloud credential helpers it may run read their SDKs' variables.
pub static BACKEND: keyring_api::BackendInfo = keyring_api::BackendInfo {
    name: NAME,
    cache_env: &[
        "AWS_*",
        "GOOGLE_*",
        "CLOUDSDK_*",
        "AZURE_*",
        helper::TIMEOUT_ENV,
    ],
    upstream: None,
};

impl Backend for DockerConfigBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn explain(&self, query: &Query) -> keyring_api::backend::Explanation {
        explain::explain(&self.paths, query)
    }

    fn provide(&self, query: &Query) -> Result<Outcome, BackendError> {
        let (loaded, _) = search(&self.paths);
        let Some(loaded) = loaded else {
            tracing::debug!("no docker config file found");
            return Ok(Outcome::NOT_MINE);
        };
        let matched = match plan(&loaded, query) {
            Plan::CredHelper(name) => {
                return self.ask_helper(&loaded, "credHelpers", name, query, CacheKeyType::Registry)
            }
            Plan::CredsStore(name, matched) => {
                warn_invalid(&loaded, &matched);
                return self.ask_helper(&loaded, "credsStore", name, query, matched.cache_key_type);
            }
            Plan::Auths(matched) => matched,
        };
        warn_invalid(&loaded, &matched);
        Ok(Outcome::Answer(Answer {
            auth: matched.auth,
            cache_key_type: matched.cache_key_type,
            lifetime: LIFETIME,
            expires_at: None,
            source: loaded.path.display().to_string(),
        }))
    }
}

/// Logs the `auths` keys the kubelet would skip.
fn warn_invalid(loaded: &Loaded, matched: &Matched) {
    for (key, reason) in &matched.invalid {
        tracing::warn!(
            "{}: ignoring entry {key:?}: {reason}",
            loaded.path.display()
        );
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
        let p = DockerConfigBackend::new(t.paths.clone());
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
        let empty = DockerConfigBackend::new(tree().paths);
        assert_eq!(
            empty.provide(&query("reg.io/app")).unwrap(),
            Outcome::NOT_MINE
        );
    }

    fn loaded(json: &str) -> Loaded {
        let c = ConfigJson::parse(json.as_bytes()).unwrap();
        Loaded {
            path: "/x/config.json".into(),
            format: Format::ConfigJson,
            entries: c.entries,
            cred_helpers: c.cred_helpers,
            creds_store: c.creds_store,
        }
    }

    /// The plan for an image, as `helper:<name>`, `store:<name>:<scope>` or the auths keys.
    fn chosen(json: &str, image: &str) -> String {
        let l = loaded(json);
        match plan(&l, &query(image)) {
            Plan::CredHelper(name) => format!("helper:{name}"),
            Plan::CredsStore(name, m) => format!("store:{name}:{}", m.cache_key_type.as_str()),
            Plan::Auths(m) => format!("auths:{}", m.keys.join(",")),
        }
    }

    #[test]
    fn precedence_is_cred_helpers_then_auths_then_creds_store() {
        let cfg = r#"{
            "auths":{"reg.io":{"auth":"dTpw"},"empty.io":{},"team.io/a":{"auth":"dTpw"}},
            "credHelpers":{"reg.io":"per-host","123456789012.dkr.ecr.us-east-1.amazonaws.com":"ecr-login","localhost:5000":"local","off.io":""},
            "credsStore":"store"}"#;
        // credHelpers wins over a matching auths entry.
        assert_eq!(chosen(cfg, "reg.io/app"), "helper:per-host");
        assert_eq!(
            chosen(cfg, "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"),
            "helper:ecr-login"
        );
        // Exact registry keys, port included: no match by host alone.
        assert_eq!(chosen(cfg, "localhost:5000/a"), "helper:local");
        assert_eq!(chosen(cfg, "localhost:5001/a"), "store:store:Registry");
        assert_eq!(chosen(cfg, "localhost/a"), "store:store:Registry");
        assert_eq!(chosen(cfg, "sub.reg.io/a"), "store:store:Registry");
        // auths with credentials beat credsStore; path-scoped ones keep their scope.
        assert_eq!(chosen(cfg, "team.io/a/x"), "auths:team.io/a");
        assert_eq!(chosen(cfg, "team.io/b"), "store:store:Image");
        // A matched entry without credentials (docker login with a store) does not.
        assert_eq!(chosen(cfg, "empty.io/x"), "store:store:Registry");
        // An empty helper name pins the registry to auths, without credsStore.
        assert_eq!(chosen(cfg, "off.io/x"), "auths:");
        // Without credsStore, the kubelet's behaviour is unchanged.
        let no_store = r#"{"auths":{"empty.io":{}},"credHelpers":{"reg.io":"h"}}"#;
        assert_eq!(chosen(no_store, "empty.io/x"), "auths:empty.io");
        assert_eq!(chosen(no_store, "other.io/x"), "auths:");
        assert_eq!(chosen("{}", "other.io/x"), "auths:");
    }

    #[test]
    fn docker_hub_uses_dockers_server_address() {
        for (key, expect) in [
            ("https://index.docker.io/v1/", "helper:hub"),
            ("index.docker.io", "helper:hub"),
            ("docker.io", "helper:hub"),
            ("https://index.docker.io", "auths:"),
            ("registry-1.docker.io", "auths:"),
        ] {
            let cfg = format!(r#"{{"credHelpers":{{"{key}":"hub"}}}}"#);
            for image in [
                "nginx",
                "library/nginx",
                "index.docker.io/user/app",
                "docker.io/library/x",
            ] {
                assert_eq!(chosen(&cfg, image), expect, "{key} {image}");
            }
        }
        // docker's own key wins over the aliases.
        let cfg = r#"{"credHelpers":{"docker.io":"b","https://index.docker.io/v1/":"a","index.docker.io":"c"}}"#;
        assert_eq!(chosen(cfg, "nginx"), "helper:a");
        let hub = ImageName::parse("nginx").unwrap();
        assert_eq!(helper_server(&hub), DOCKER_HUB_SERVER);
        let ecr = ImageName::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1").unwrap();
        assert_eq!(
            helper_server(&ecr),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            helper_server(&ImageName::parse("localhost:5000/a").unwrap()),
            "localhost:5000"
        );
    }

    #[test]
    fn the_helper_answer_key_matches_the_image_under_the_kubelets_rules() {
        for (image, other) in [
            ("nginx", "quay.io/nginx"),
            ("docker.io/user/app", "ghcr.io/user/app"),
            ("reg.io/a/b/c", "sub.reg.io/a/b/c"),
            ("localhost:5000/a", "localhost:5001/a"),
            ("127.0.0.1:5000/team/app", "127.0.0.1/team/app"),
            ("[::1]:5000/a", "[::1]:5001/a"),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
                "123456789012.dkr.ecr.us-east-2.amazonaws.com/app",
            ),
            ("us-docker.pkg.dev/p/r/i", "eu-docker.pkg.dev/p/r/i"),
        ] {
            let q = query(image);
            let key = q.image.registry();
            assert!(q.target.matched_by(key), "{key} must match {image}");
            let mut ring = Keyring::new();
            ring.add(key, ()).unwrap();
            assert_eq!(ring.lookup(&q.target).0.len(), 1, "{key} {image}");
            // It does not serve another registry (other port, sibling domain).
            assert!(!query(other).target.matched_by(key), "{key} {other}");
        }
    }

    #[test]
    fn a_bad_helper_name_is_a_one_line_error_naming_the_fix() {
        let t = tree();
        write(
            &t.home,
            ".docker/config.json",
            r#"{"credHelpers":{"reg.io":"../../bin/sh"}}"#,
        );
        let p = DockerConfigBackend::new(t.paths.clone());
        let err = p.provide(&query("reg.io/app")).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "docker-config: credential helper name \"../../bin/sh\" (credHelpers in "
            ),
            "{err}"
        );
        assert!(
            err.contains("contains '/'") && err.contains("docker-credential-<suffix>"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_missing_cred_helper_is_an_error_but_a_missing_creds_store_is_not() {
        let t = tree();
        write(
            &t.home,
            ".docker/config.json",
            r#"{"auths":{"other.io":{"auth":"dTpw"}},"credHelpers":{"reg.io":"surely-not-installed-7f3a"},"credsStore":"surely-not-installed-7f3a"}"#,
        );
        let p = DockerConfigBackend::new(t.paths.clone());
        // credHelpers names this registry: a missing helper is an error naming path and fix.
        let err = p.provide(&query("reg.io/app")).unwrap_err().to_string();
        assert!(
            err.starts_with("docker-config: credential helper docker-credential-surely-not-installed-7f3a (credHelpers in "),
            "{err}"
        );
        assert!(
            err.contains("for reg.io is not on PATH; install it"),
            "{err}"
        );
        // credsStore is a default for all registries, often a desktop leftover: no
        // credentials, as the kubelet (which never ran it) would answer.
        let Outcome::Answer(a) = p.provide(&query("third.io/app")).unwrap() else {
            panic!("expected an answer");
        };
        assert!(a.auth.is_empty());
        // auths still answer where they have credentials.
        let Outcome::Answer(a) = p.provide(&query("other.io/app")).unwrap() else {
            panic!("expected an answer");
        };
        assert_eq!(a.auth["other.io"].username, "u");
    }
}
