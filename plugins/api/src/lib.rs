//! The plugin API of kubelet-keyring.
//!
//! Everything a backend needs to answer the kubelet, and no I/O beyond opening a file safely
//! and running a child process under the deadline:
//!
//! * [`wire`]: the `CredentialProviderRequest` / `CredentialProviderResponse` types of
//!   `credentialprovider.kubelet.k8s.io` `v1`, `v1beta1` and `v1alpha1`, decoded leniently
//!   (unknown request fields are ignored) and encoded exactly as the kubelet's strict decoder
//!   expects (no field it does not know).
//! * [`image`]: image-reference normalization as the kubelet's `ParseImageName` does it
//!   (`nginx:1.25` → `docker.io/library/nginx`).
//! * [`pattern`]: the kubelet's one matching algorithm (`URLsMatchStr`, keyring keys, lookup
//!   order, Docker Hub fallback), used for `matchImages`, response `auth` keys and docker-config
//!   keys alike.
//! * [`backend`]: what a backend is to the binary: the [`Backend`] trait each implements,
//!   its static [`BackendInfo`] and, for one with a config section, [`Configurable`].
//! * [`error`]: [`BackendError`] and the [`ErrorKind`]
//!   that decides exit code and stale serving, and
//!   [`InvalidSetting`] for a local value that cannot be used.
//! * [`clock`], [`deadline`], [`lifetime`]: the wall clock tests replace, the invocation's one
//!   deadline under the kubelet's 60 s, and the one rule for how long an answer is reused.
//! * [`process`]: child processes (credential helpers, `credential_process`) run under that
//!   deadline and killed with their process group, and the watchdog that ends the
//!   invocation when its exit limit passes.
//! * [`secret`]: [`Secret`], the wrapper that keeps credentials out of logs.
//! * [`jwt`]: the one reader of a token's claims that does not verify it (an expiry, a
//!   tenant, a service account), its dates through [`lifetime`].
//! * [`file`](mod@file): opening files named by others without blocking on a FIFO or reading a device.
//! * [`nesting`]: YAML and JSON named by others refused when nested too deep to parse safely,
//!   before they are parsed.
//! * [`duration`]: Go `time.Duration` text (`5m0s`), both ways.
//! * [`quiet`]: keeps third-party log lines, which can carry secrets, off stderr.
//! * [`upstream`]: the command lines of the upstream Go plugins, flag by flag, so this binary
//!   can answer under their names.

pub mod backend;
pub mod clock;
pub mod deadline;
pub mod duration;
pub mod error;
pub mod file;
pub mod image;
pub mod jwt;
pub mod lifetime;
pub mod nesting;
pub mod pattern;
pub mod process;
pub mod quiet;
pub mod secret;
pub mod upstream;
pub mod wire;

mod goglob;
mod gourl;

/// Internals re-exported only for the differential test against Go in `fuzz/differential`
/// (Go's `filepath.Match` compared directly); not part of the API and not covered by semver.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::goglob::{matches as filepath_match, BadPattern};
}

pub use backend::{Answer, Backend, BackendInfo, Configurable, Outcome};
pub use clock::Clock;
pub use deadline::Deadline;
pub use error::{BackendError, ErrorKind, InvalidSetting};
pub use gourl::go_quote;
pub use image::ImageName;
pub use secret::Secret;
pub use wire::CacheKeyType;
