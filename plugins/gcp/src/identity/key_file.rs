//! The node's credentials files, in Google's application-default order, each only when the
//! config lists it (`gcp.credentialFiles`: both by default under the own name, none under
//! auth-provider-gcp's names, whose upstream reads the metadata server only: a stray key
//! file or a root's `gcloud auth application-default login` must not change whom a drop-in
//! pulls as):
//!
//! 1. `applicationCredentials`: `GOOGLE_APPLICATION_CREDENTIALS` names a file: a
//!    `service_account` key or an `external_account` file (workload identity federation,
//!    [`super::external_account`]).
//! 2. `gcloud`: `$HOME/.config/gcloud/application_default_credentials.json` exists (the
//!    file `gcloud auth application-default login` writes): `authorized_user` (a refresh
//!    token), `service_account` or `external_account`.
//! 3. Otherwise the metadata server's default service account ([`Source::Metadata`]).
//!
//! A file that is named or present but unusable is an error, not a reason to fall through:
//! the operator meant it, and a token for another identity would only fail later as a 403.
//! Not supported (reported as such): `impersonated_service_account` and
//! `external_account_authorized_user` files, and the `gcloud` CLI (a node has no logged-in
//! gcloud, and spawning it is slow).
//!
//! Files are opened without blocking and read up to 1 MiB ([`keyring_api::file::open`]); an
//! error names the file and the field, never quotes its contents.

use std::io::Read;
use std::path::{Path, PathBuf};

use keyring_api::Secret;
use serde::Deserialize;

use super::external_account::{self, ExternalAccount};
use super::Env;
use crate::config::CredentialFile;
use crate::error::Error;

/// Largest credentials file read.
const MAX_FILE: u64 = 1 << 20;
/// The application-default-credentials file under `$HOME`.
pub const ADC_PATH: &str = ".config/gcloud/application_default_credentials.json";

/// Where a credentials file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Named by `GOOGLE_APPLICATION_CREDENTIALS`.
    EnvVar,
    /// The well-known application-default-credentials file.
    WellKnown,
}

impl Origin {
    /// How messages name it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Origin::EnvVar => "GOOGLE_APPLICATION_CREDENTIALS",
            Origin::WellKnown => "application default credentials",
        }
    }
}

/// The chosen credential source.
#[derive(Debug)]
pub(crate) enum Source {
    /// A service-account key file.
    ServiceAccount {
        path: PathBuf,
        origin: Origin,
        json: Secret<String>,
        email: String,
    },
    /// gcloud's `authorized_user` application default credentials.
    AuthorizedUser { path: PathBuf, json: Secret<String> },
    /// Workload identity federation: a subject token traded at Google STS.
    ExternalAccount {
        path: PathBuf,
        origin: Origin,
        account: Box<ExternalAccount>,
    },
    /// The metadata server; `key_files`: whether key files would have been read had there
    /// been any (so that a failure's hint names them only where they would help).
    Metadata { key_files: bool },
}

/// The fields we look at first, so that errors are ours and never quote the file.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
    private_key: Option<Secret<String>>,
}

/// Picks the source among `files` (in their order) and the metadata server; reads the
/// credentials files listed, nothing else.
pub(crate) fn select(env: &Env, files: &[CredentialFile]) -> Result<Source, Error> {
    for file in files {
        let found = match file {
            CredentialFile::ApplicationCredentials => application_credentials(env)?,
            CredentialFile::Gcloud => gcloud(env)?,
        };
        if let Some(source) = found {
            return Ok(source);
        }
    }
    Ok(Source::Metadata {
        key_files: files.contains(&CredentialFile::ApplicationCredentials),
    })
}

/// The key file `GOOGLE_APPLICATION_CREDENTIALS` names, if set.
fn application_credentials(env: &Env) -> Result<Option<Source>, Error> {
    if let Some(path) = &env.application_credentials {
        let Some(text) = read(path, Origin::EnvVar)? else {
            return Err(file_error(
                Origin::EnvVar,
                path,
                "no such file".into(),
                "fix the path or unset the variable",
            ));
        };
        return classify(path, Origin::EnvVar, text).map(Some);
    }
    Ok(None)
}

/// gcloud's application default credentials under the home directory, if there.
fn gcloud(env: &Env) -> Result<Option<Source>, Error> {
    if let Some(home) = &env.home {
        let path = home.join(ADC_PATH);
        if let Some(text) = read(&path, Origin::WellKnown)? {
            return classify(&path, Origin::WellKnown, text).map(Some);
        }
    }
    Ok(None)
}

fn file_error(origin: Origin, path: &Path, reason: String, hint: &'static str) -> Error {
    Error::CredentialsFile {
        origin: origin.describe(),
        path: path.display().to_string(),
        reason,
        hint,
    }
}

/// The file's text, `None` if it does not exist.
fn read(path: &Path, origin: Origin) -> Result<Option<Secret<String>>, Error> {
    let fail =
        |reason: String| file_error(origin, path, reason, "check the file and its permissions");
    let file = match keyring_api::file::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(format!("cannot open: {e}"))),
    };
    let mut buf = String::new();
    let read = file.take(MAX_FILE + 1).read_to_string(&mut buf);
    // Into the Secret before anything can return, so the bytes are wiped on drop.
    let text = Secret::new(buf);
    read.map_err(|e| fail(format!("cannot read: {e}")))?;
    if text.expose().len() as u64 > MAX_FILE {
        return Err(fail(format!("larger than {MAX_FILE} bytes")));
    }
    Ok(Some(text))
}

/// Decides what kind of credentials a file holds.
fn classify(path: &Path, origin: Origin, json: Secret<String>) -> Result<Source, Error> {
    let head: Head = serde_json::from_str(json.expose()).map_err(|e| {
        // serde's text may quote the file; line and column are enough to find the mistake.
        file_error(
            origin,
            path,
            format!(
                "not a JSON credentials file (error at line {} column {})",
                e.line(),
                e.column()
            ),
            "download the key again",
        )
    })?;
    match head.kind.as_deref() {
        Some("service_account") => {
            let missing = [
                ("client_email", head.client_email.is_none()),
                ("private_key", head.private_key.is_none()),
                ("token_uri", head.token_uri.is_none()),
            ]
            .into_iter()
            .filter(|(_, missing)| *missing)
            .map(|(f, _)| f)
            .collect::<Vec<_>>();
            if !missing.is_empty() {
                return Err(file_error(
                    origin,
                    path,
                    format!("service-account key without {}", missing.join(", ")),
                    "download the key again",
                ));
            }
            Ok(Source::ServiceAccount {
                path: path.to_path_buf(),
                origin,
                json,
                email: head.client_email.unwrap_or_default(),
            })
        }
        Some("authorized_user") if origin == Origin::WellKnown => Ok(Source::AuthorizedUser {
            path: path.to_path_buf(),
            json,
        }),
        Some("authorized_user") => Err(file_error(
            origin,
            path,
            "authorized_user credentials are only read from ~/.config/gcloud/application_default_credentials.json".into(),
            "use a service-account key here, or unset the variable and run gcloud auth application-default login",
        )),
        Some("external_account") => Ok(Source::ExternalAccount {
            account: Box::new(external_account::parse(path, origin, &json)?),
            path: path.to_path_buf(),
            origin,
        }),
        Some(other) => Err(file_error(
            origin,
            path,
            format!("credential type {other:?} is not supported"),
            "use a service_account key or an external_account file, or the node's metadata server",
        )),
        None => Err(file_error(
            origin,
            path,
            "no \"type\" field".into(),
            "use a service-account key file as downloaded from IAM",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ALL_CREDENTIAL_FILES as ALL;

    fn env(creds: Option<&Path>, home: Option<&Path>) -> Env {
        Env {
            application_credentials: creds.map(Path::to_path_buf),
            home: home.map(Path::to_path_buf),
            ..Env::default()
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keyring-gcp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const SA: &str = r#"{"type":"service_account","client_email":"sa@p.iam.gserviceaccount.com",
        "private_key":"-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n",
        "token_uri":"http://127.0.0.1:1/token"}"#;

    #[test]
    fn the_variable_wins_over_the_adc_file_which_wins_over_the_metadata_server() {
        let dir = tmp("order");
        let key = dir.join("key.json");
        std::fs::write(&key, SA).unwrap();
        let home = dir.join("home");

        // Nothing: the metadata server.
        assert!(matches!(
            select(&env(None, Some(&home)), ALL).unwrap(),
            Source::Metadata { .. }
        ));
        assert!(matches!(
            select(&env(None, None), ALL).unwrap(),
            Source::Metadata { .. }
        ));

        // ADC file: authorized_user or service_account.
        let adc = home.join(ADC_PATH);
        std::fs::create_dir_all(adc.parent().unwrap()).unwrap();
        std::fs::write(
            &adc,
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#,
        )
        .unwrap();
        assert!(matches!(
            select(&env(None, Some(&home)), ALL).unwrap(),
            Source::AuthorizedUser { .. }
        ));
        std::fs::write(&adc, SA).unwrap();
        match select(&env(None, Some(&home)), ALL).unwrap() {
            Source::ServiceAccount { origin, email, .. } => {
                assert_eq!(origin, Origin::WellKnown);
                assert_eq!(email, "sa@p.iam.gserviceaccount.com");
            }
            other => panic!("{other:?}"),
        }

        // The variable wins over the ADC file.
        match select(&env(Some(&key), Some(&home)), ALL).unwrap() {
            Source::ServiceAccount { origin, path, .. } => {
                assert_eq!(origin, Origin::EnvVar);
                assert_eq!(path, key);
            }
            other => panic!("{other:?}"),
        }

        // Only the files listed are read: none (auth-provider-gcp's names) is the metadata
        // server whatever is there, one is that one.
        let both = env(Some(&key), Some(&home));
        assert!(matches!(
            select(&both, &[]).unwrap(),
            Source::Metadata { key_files: false }
        ));
        assert!(matches!(
            select(&both, &[CredentialFile::Gcloud]).unwrap(),
            Source::ServiceAccount {
                origin: Origin::WellKnown,
                ..
            }
        ));
        let unusable = env(Some(&dir.join("missing.json")), Some(&home));
        assert!(matches!(
            select(&unusable, &[]).unwrap(),
            Source::Metadata { key_files: false }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unusable_files_are_errors_that_do_not_quote_them() {
        let dir = tmp("bad");
        let cases = [
            ("missing", None, "no such file"),
            (
                "notjson",
                Some("SECRETKEY {"),
                "not a JSON credentials file (error at line 1",
            ),
            (
                "notype",
                Some(r#"{"private_key":"SECRETKEY"}"#),
                "no \"type\" field",
            ),
            (
                "impersonated",
                Some(r#"{"type":"impersonated_service_account","x":"SECRETKEY"}"#),
                "\"impersonated_service_account\" is not supported",
            ),
            (
                "external",
                Some(r#"{"type":"external_account","client_secret":"SECRETKEY"}"#),
                "external_account: no audience",
            ),
            (
                "user",
                Some(r#"{"type":"authorized_user","refresh_token":"SECRETKEY"}"#),
                "only read from ~/.config/gcloud",
            ),
            (
                "partial",
                Some(r#"{"type":"service_account","private_key":"SECRETKEY"}"#),
                "without client_email, token_uri",
            ),
            (
                "wrongtype",
                Some(r#"{"type":"service_account","client_email":5,"private_key":"SECRETKEY"}"#),
                "not a JSON credentials file",
            ),
        ];
        for (name, body, want) in cases {
            let path = dir.join(name);
            if let Some(body) = body {
                std::fs::write(&path, body).unwrap();
            }
            let e = select(&env(Some(&path), None), ALL)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!(
                    "GOOGLE_APPLICATION_CREDENTIALS {}: ",
                    path.display()
                )),
                "{e}"
            );
            assert!(e.contains(want), "{name}: {e}");
            assert!(!e.contains("SECRETKEY"), "{name}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
