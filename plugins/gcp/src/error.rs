//! What can go wrong in this backend, each variant one line with the likely fix, and how it
//! becomes the [`BackendError`] the binary prints: `gcp: ` and the stage (`no access token
//! for <registry>: `, `docker config from metadata for <registry>: `), then the variant's text.
//!
//! Texts never quote a response body, a credentials file's contents or a URL's query: any of
//! those may hold a credential.

use std::time::Duration;

use keyring_api::{BackendError, ErrorKind};
use keyring_net::http::StatusCode;
use keyring_net::Failed;

/// A failure of the gcp backend; turned into a [`BackendError`] by the functions below.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// `GCE_METADATA_HOST` is set but not `host[:port]`.
    #[error("GCE_METADATA_HOST={0:?} is not host[:port]; fix it or unset it")]
    MetadataHostEnv(String),
    /// The metadata server gave no HTTP answer.
    #[error("metadata server {host}: {cause} asking for {what}; {hint}")]
    MetadataFetch {
        host: String,
        what: &'static str,
        cause: Failed,
        hint: &'static str,
    },
    /// The metadata server answered with an unexpected status.
    #[error("metadata server {host} answered {status} for {what}{tries}; {hint}")]
    MetadataStatus {
        host: String,
        what: &'static str,
        status: StatusCode,
        /// ` (after N attempts)` or empty.
        tries: String,
        hint: &'static str,
    },
    /// The metadata server answered 200 with a body we cannot use.
    #[error("metadata server {host} sent {what} that {reason}")]
    MetadataBody {
        host: String,
        what: &'static str,
        reason: String,
    },
    /// A credentials file (key file, application default credentials) is unusable.
    #[error("{origin} {path}: {reason}; {hint}")]
    CredentialsFile {
        origin: &'static str,
        path: String,
        reason: String,
        hint: &'static str,
    },
    /// No token with file credentials: unreachable, refused, or an unusable answer.
    #[error("{origin}: {reason}; {hint}")]
    TokenExchange {
        kind: ErrorKind,
        origin: String,
        reason: String,
        hint: &'static str,
    },
    /// The `google-dockercfg-url` attribute or what it points to is unusable.
    #[error("google-dockercfg-url {url}: {reason}")]
    DockercfgUrl { url: String, reason: String },
    /// TLS could not be set up to fetch the `google-dockercfg-url` document: the node's
    /// configuration (no usable CA certificate), not a URL that could not be fetched.
    #[error("google-dockercfg-url {url}: {cause}")]
    DockercfgTls {
        url: String,
        cause: keyring_net::TlsSetupError,
    },
    /// A docker config delivered by metadata does not parse.
    #[error("{origin} is not a .dockercfg document ({reason}); fix the instance attribute")]
    DockercfgParse { origin: String, reason: String },
    /// The whole exchange ran past the backend's deadline.
    #[error(
        "no answer within {0:?}; the metadata server or token endpoint is too slow or unreachable"
    )]
    Deadline(Duration),
    /// A service account opted in, but `gcp.workloadIdentity` is not configured.
    #[error("the service account opted in to workload identity image pulls ({annotation}: \"true\") but gcp.workloadIdentity is not configured; set its identityProvider and projectId (or audience) in the plugin config")]
    WorkloadIdentityNotConfigured { annotation: &'static str },
    /// A token without opt-in, and no fallback to the node.
    #[error("the kubelet sent a service-account token but the service account has not opted in to workload identity image pulls (annotation {annotation}: \"true\"), and gcp.nodeIdentityFallback is false; annotate the service account, or allow the node's identity")]
    NotOptedIn { annotation: &'static str },
    /// The Google service account annotation is not an e-mail address.
    #[error("annotation {annotation}: {value:?} is not a Google service account e-mail (name@project.iam.gserviceaccount.com)")]
    ServiceAccountEmail {
        annotation: &'static str,
        value: String,
    },
    /// A workload identity exchange step failed: no answer, a refusal, or an unusable answer.
    #[error("{stage} at {url}: {detail}; {hint}")]
    Federation {
        kind: ErrorKind,
        stage: String,
        url: String,
        detail: String,
        hint: String,
    },
    /// An `external_account` file's executable could not run, failed, or answered something
    /// unusable. Never quotes what it printed.
    #[error("{file}: credential_source.executable {program}: {detail}; {hint}")]
    Executable {
        kind: ErrorKind,
        file: String,
        program: String,
        detail: String,
        hint: &'static str,
    },
    /// The async runtime could not be built.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A refusal by a status code: 429 and 5xx are "try later", other statuses a refusal.
fn status_kind(status: StatusCode) -> ErrorKind {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Denied
    }
}

impl Error {
    /// What kind of failure this is (decides exit code and stale serving).
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Error::MetadataHostEnv(_)
            | Error::CredentialsFile { .. }
            | Error::WorkloadIdentityNotConfigured { .. }
            | Error::NotOptedIn { .. }
            | Error::ServiceAccountEmail { .. }
            | Error::DockercfgTls { .. } => ErrorKind::Misconfigured,
            Error::MetadataStatus { status, .. } => status_kind(*status),
            Error::MetadataBody { .. } | Error::DockercfgParse { .. } => ErrorKind::Protocol,
            Error::MetadataFetch { .. }
            | Error::DockercfgUrl { .. }
            | Error::Deadline(_)
            | Error::Runtime(_) => ErrorKind::Unavailable,
            Error::Federation { kind, .. }
            | Error::TokenExchange { kind, .. }
            | Error::Executable { kind, .. } => *kind,
        }
    }
}

/// The error of a failed access token for `registry` (identity or token stage).
pub(crate) fn no_token(registry: &str, e: Error) -> BackendError {
    BackendError::new(
        crate::NAME,
        e.kind(),
        format!("no access token for {registry}: {e}"),
    )
}

/// The error of a failed read of the docker config metadata delivers (`gcp.dockercfg`).
pub(crate) fn no_dockercfg(registry: &str, e: Error) -> BackendError {
    BackendError::new(
        crate::NAME,
        e.kind(),
        format!("docker config from metadata for {registry}: {e}"),
    )
}

/// The error of a whole call that failed before any stage did (runtime, deadline).
pub(crate) fn failed(registry: Option<&str>, e: Error) -> BackendError {
    let text = match registry {
        Some(r) => format!("{r}: {e}"),
        None => e.to_string(),
    };
    BackendError::new(crate::NAME, e.kind(), text)
}
