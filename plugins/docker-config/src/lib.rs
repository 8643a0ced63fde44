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
//! for another repository. The file is read for the one image: only the entries whose keys
//! could match it are kept ([`parse::keep`]), in `auths` and `credHelpers` alike, so memory
//! and time follow those keys, not the size of the file (every entry is still checked).
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
//!
//! # Modules
//!
//! The backend's plan, [`DockerConfigBackend::provide`]: search → match → answer.
//!
//! | module | job |
//! |---|---|
//! | [`search`](mod@search) | the candidate files in the kubelet's order, read bounded; the first that parses wins |
//! | [`parse`] | `config.json` and `.dockercfg` decoded as the kubelet's Go code does, keeping the entries that could serve the image |
//! | [`host`] | which entries serve an image: `auths` under the kubelet's rules, `credHelpers`, `credsStore` |
//! | [`helper`] | running a `docker-credential-<name>` helper, bounded and killed with its group |
//! | [`answer`] | the `Answer` from the matched entries or the helper's reply; its errors |
//! | [`explain`] | what `explain` shows: the files searched, the keys that match and why the others do not |

pub mod answer;
pub mod explain;
pub mod helper;
pub mod host;
pub mod parse;
pub mod search;

use std::time::Duration;

use keyring_api::backend::Query;
use keyring_api::{Backend, BackendError, CacheKeyType, Outcome};

pub use answer::LIFETIME;
pub use host::{helper_server, match_entries, plan, Matched, Plan, DOCKER_HUB_SERVER};
pub use parse::{
    decode_auth, parse_config_json, parse_dockercfg, parse_dockercfg_for, ConfigJson, Entries,
    Entry, Keep,
};
pub use search::{search, Format, Loaded, SearchPaths, Visit, MAX_FILE_BYTES};

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
        let (loaded, _) = search(&self.paths, Keep::Image(query));
        let Some(loaded) = loaded else {
            tracing::debug!("no docker config file found");
            return Ok(Outcome::NOT_MINE);
        };
        let (setting, name, cache_key_type) = match plan(&loaded, query) {
            Plan::CredHelper(name) => ("credHelpers", name, CacheKeyType::Registry),
            Plan::CredsStore(name, matched) => {
                answer::warn_invalid(&loaded, &matched);
                ("credsStore", name, matched.cache_key_type)
            }
            Plan::Auths(matched) => {
                answer::warn_invalid(&loaded, &matched);
                return Ok(Outcome::Answer(answer::from_auths(&loaded, matched)));
            }
        };
        let timeout = self.helper_timeout;
        answer::from_helper(&loaded, setting, name, query, cache_key_type, timeout)
    }
}

#[cfg(test)]
mod tests;
