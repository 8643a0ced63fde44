//! Whom the backend authenticates as, decided without network I/O (it reads credentials
//! files, nothing else):
//!
//! * the pod's service account, when the request carries its token and the service account
//!   opted in ([`pod`], KEP-4412): its token is to be exchanged at Google STS, then
//!   optionally for a Google service account it names;
//! * else the node: a service-account key, gcloud's application default credentials or a
//!   workload identity federation file ([`key_file`], when `gcp.credentialFiles` lists them;
//!   [`external_account`] checks the last), or the metadata server's default service
//!   account.
//!
//! The calls that turn either into an access token are the `token` module's.

pub mod external_account;
pub mod key_file;
pub mod pod;

use std::path::PathBuf;

use keyring_api::backend::Query;
use keyring_api::Secret;

use crate::config::{Config, WorkloadIdentity};
use crate::error::Error;

/// The environment this backend reads, captured once per call so tests can supply their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `GOOGLE_APPLICATION_CREDENTIALS`, when set and not empty.
    pub application_credentials: Option<PathBuf>,
    /// The home directory (`$HOME`, else the password database).
    pub home: Option<PathBuf>,
    /// `GCE_METADATA_HOST`, when set and not empty.
    pub metadata_host: Option<String>,
    /// What an `external_account` file's `aws1` credential source reads, as Google's
    /// libraries do.
    pub aws: AwsEnv,
    /// `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`: an `external_account` file's
    /// `executable` source may run (Google's rule).
    pub allow_executables: bool,
}

/// The AWS variables an `aws1` credential source reads (Google's libraries read these, not
/// AWS's credential chain): each when set and not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEnv {
    /// `AWS_REGION`.
    pub region: Option<String>,
    /// `AWS_DEFAULT_REGION`.
    pub default_region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret<String>>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret<String>>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let text = |name| var(name).map(|v| v.to_string_lossy().into_owned());
        Env {
            application_credentials: var("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from),
            home: std::env::home_dir().filter(|h| !h.as_os_str().is_empty()),
            metadata_host: text("GCE_METADATA_HOST"),
            aws: AwsEnv {
                region: text("AWS_REGION"),
                default_region: text("AWS_DEFAULT_REGION"),
                access_key_id: text("AWS_ACCESS_KEY_ID"),
                secret_access_key: text("AWS_SECRET_ACCESS_KEY").map(Secret::new),
                session_token: text("AWS_SESSION_TOKEN").map(Secret::new),
            },
            allow_executables: text("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES").as_deref()
                == Some("1"),
        }
    }
}

/// Whom a query authenticates as.
#[derive(Debug)]
pub(crate) enum Identity<'a> {
    /// The node's credentials.
    Node(key_file::Source),
    /// The pod's service-account token, exchanged under `wi`, then impersonating the Google
    /// service account `impersonate` if one is named.
    Pod {
        wi: &'a WorkloadIdentity,
        token: &'a Secret<String>,
        impersonate: Option<String>,
    },
}

/// Decides whom `query` authenticates as: the pod ([`pod::decide`]) or else the node
/// ([`key_file::select`] among the config's credentials files), in that order, so a request
/// that fails the first never reads a credentials file.
pub(crate) fn whom<'a>(
    config: &'a Config,
    query: &'a Query,
    env: &Env,
) -> Result<Identity<'a>, Error> {
    Ok(match pod::decide(config, query)? {
        pod::Decision::Node => Identity::Node(key_file::select(env, config.credential_files())?),
        pod::Decision::Exchange {
            wi,
            token,
            impersonate,
        } => Identity::Pod {
            wi,
            token,
            impersonate,
        },
    })
}
