//! Where the access token comes from, in Google's application-default order:
//!
//! 1. `GOOGLE_APPLICATION_CREDENTIALS` names a file: it must be a `service_account` key.
//! 2. `$HOME/.config/gcloud/application_default_credentials.json` exists (the file
//!    `gcloud auth application-default login` writes): `authorized_user` (a refresh token)
//!    or `service_account`.
//! 3. Otherwise the metadata server's default service account ([`crate::metadata`]).
//!
//! A file that is named or present but unusable is an error, not a reason to fall through:
//! the operator meant it, and a token for another identity would only fail later as a 403.
//! Not supported (reported as such): `external_account` (workload identity federation) and
//! `impersonated_service_account` files, and the `gcloud` CLI (a node has no logged-in
//! gcloud, and spawning it is slow).
//!
//! The token requests are ours, on [`keyring_net`] like every other request of this backend,
//! so they go through `HTTPS_PROXY` (gcp_auth, used before, dials directly and cannot be
//! given a client), retry under the invocation deadline and never log a body:
//!
//! * a service-account key: an RS256 JWT (`iss` the key's `client_email`, `aud` its
//!   `token_uri`, `scope` [`SCOPE`], one hour) signed with ring, posted to `token_uri` as
//!   `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`;
//! * gcloud's `authorized_user`: `grant_type=refresh_token` with the file's `client_id`,
//!   `client_secret` and `refresh_token`, posted to its `token_uri` or [`USER_TOKEN_URI`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keyring_api::{Deadline, ErrorKind, Secret};
use keyring_net::http::{header, Request, StatusCode};
use keyring_net::{Client, Policy, Route};
use serde::Deserialize;

use crate::error::Error;
use crate::metadata::Metadata;
use crate::Env;

/// The OAuth scope asked for with file credentials: Artifact Registry needs cloud-platform
/// (GCR would do with devstorage.read_only).
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Largest credentials file read.
const MAX_FILE: u64 = 1 << 20;
/// The application-default-credentials file under `$HOME`.
pub const ADC_PATH: &str = ".config/gcloud/application_default_credentials.json";
/// Where gcloud's `authorized_user` refresh tokens are redeemed when the file names no
/// `token_uri` (Google's OAuth 2.0 token endpoint, as in Go's `golang.org/x/oauth2/google`).
pub const USER_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Token endpoints: one refused connection or 429/5xx is tried again; a timeout is not (a
/// second 10 s wait would leave nothing of the backend's 20 s for the answer).
const TOKEN_POLICY: Policy = Policy {
    retry_timeouts: false,
    ..Policy::DEFAULT.with_max_body(64 << 10).with_attempts(2)
};
/// How long a signed assertion is valid (Google's maximum).
const ASSERTION_VALIDITY: u64 = 3600;

/// A token and when it stops working.
pub(crate) struct AccessToken {
    pub token: Secret<String>,
    pub expires_at: SystemTime,
    /// Which identity, for diagnostics; never secret.
    pub source: String,
}

/// Where a credentials file was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Named by `GOOGLE_APPLICATION_CREDENTIALS`.
    EnvVar,
    /// The well-known application-default-credentials file.
    WellKnown,
}

impl Origin {
    fn describe(self) -> &'static str {
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
    /// The metadata server.
    Metadata,
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

/// Picks the source; reads the credentials files, nothing else.
pub(crate) fn select(env: &Env) -> Result<Source, Error> {
    if let Some(path) = &env.application_credentials {
        let Some(text) = read(path, Origin::EnvVar)? else {
            return Err(file_error(
                Origin::EnvVar,
                path,
                "no such file".into(),
                "fix the path or unset the variable",
            ));
        };
        return classify(path, Origin::EnvVar, text);
    }
    if let Some(home) = &env.home {
        let path = home.join(ADC_PATH);
        if let Some(text) = read(&path, Origin::WellKnown)? {
            return classify(&path, Origin::WellKnown, text);
        }
    }
    Ok(Source::Metadata)
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
        Some(other) => Err(file_error(
            origin,
            path,
            format!("credential type {other:?} is not supported"),
            "use a service_account key file, or the node's metadata server",
        )),
        None => Err(file_error(
            origin,
            path,
            "no \"type\" field".into(),
            "use a service-account key file as downloaded from IAM",
        )),
    }
}

/// Gets a token from the chosen source, within `deadline`.
pub(crate) async fn fetch(
    source: Source,
    env: &Env,
    deadline: Deadline,
) -> Result<AccessToken, Error> {
    match source {
        Source::Metadata => {
            Metadata::new(env.metadata_host.as_deref(), deadline)?
                .token()
                .await
        }
        Source::ServiceAccount {
            path,
            origin,
            json,
            email,
        } => {
            let what = format!("{} {} ({email})", origin.describe(), path.display());
            let fail = |kind, reason: String, hint| Error::TokenExchange {
                kind,
                origin: what.clone(),
                reason,
                hint,
            };
            #[derive(Deserialize)]
            struct Key {
                private_key: Secret<String>,
                token_uri: String,
            }
            let key: Key = serde_json::from_str(json.expose()).map_err(|_| {
                fail(
                    ErrorKind::Misconfigured,
                    "not a service-account key".into(),
                    "download the key again",
                )
            })?;
            let now = SystemTime::now();
            let jwt =
                assertion(&email, &key.token_uri, &key.private_key, now).map_err(|reason| {
                    fail(
                        ErrorKind::Misconfigured,
                        format!("the private key is unusable ({reason})"),
                        "download the key again",
                    )
                })?;
            let form = Secret::new(keyring_net::form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", jwt.expose()),
            ]));
            redeem(&key.token_uri, form, deadline, now, what.clone(), |kind, reason| {
                fail(
                    kind,
                    reason,
                    "check that the key is not deleted or disabled and that its token_uri is reachable",
                )
            })
            .await
        }
        Source::AuthorizedUser { path, json } => {
            let what = format!(
                "application default credentials {} (authorized_user)",
                path.display()
            );
            let fail = |kind, reason: String| Error::TokenExchange {
                kind,
                origin: what.clone(),
                reason,
                hint:
                    "run gcloud auth application-default login again, or use a service-account key",
            };
            #[derive(Deserialize)]
            struct User {
                client_id: String,
                client_secret: Secret<String>,
                refresh_token: Secret<String>,
                token_uri: Option<String>,
            }
            let user: User = serde_json::from_str(json.expose()).map_err(|_| {
                fail(
                    ErrorKind::Misconfigured,
                    "lacks client_id, client_secret or refresh_token".into(),
                )
            })?;
            let form = Secret::new(keyring_net::form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &user.client_id),
                ("client_secret", user.client_secret.expose()),
                ("refresh_token", user.refresh_token.expose()),
            ]));
            let uri = user.token_uri.as_deref().unwrap_or(USER_TOKEN_URI);
            redeem(uri, form, deadline, SystemTime::now(), what.clone(), fail).await
        }
    }
}

/// Posts `form` to the token endpoint `uri` and reads `access_token` / `expires_in`.
/// Errors name the status, never the body (an OAuth error description may quote input).
async fn redeem(
    uri: &str,
    form: Secret<String>,
    deadline: Deadline,
    now: SystemTime,
    source: String,
    fail: impl Fn(ErrorKind, String) -> Error,
) -> Result<AccessToken, Error> {
    let client = Client::new(Route::Proxied, TOKEN_POLICY)
        .map_err(|e| fail(ErrorKind::Misconfigured, e.to_string()))?;
    let resp = client
        .send(
            deadline,
            &|| {
                Request::post(uri)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(header::USER_AGENT, keyring_net::USER_AGENT)
                    .body(form.expose().clone().into())
            },
            &keyring_net::transient,
        )
        .await
        .map_err(|e| {
            let kind = match e.cause {
                keyring_net::FetchError::Request(_) | keyring_net::FetchError::TlsSetup(_) => {
                    ErrorKind::Misconfigured
                }
                _ => ErrorKind::Unavailable,
            };
            fail(
                kind,
                format!(
                    "token request to {} failed: {e}",
                    keyring_net::shown_url(uri)
                ),
            )
        })?;
    if resp.status != StatusCode::OK {
        let kind = if keyring_net::transient(resp.status) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Denied
        };
        return Err(fail(
            kind,
            format!("token request failed: HTTP {}", resp.status.as_u16()),
        ));
    }
    let (token, expires_in) = parse_token_response(&resp.body).map_err(|reason| {
        fail(
            ErrorKind::Protocol,
            format!("the token endpoint's answer {reason}"),
        )
    })?;
    Ok(AccessToken {
        token,
        expires_at: now + expires_in,
        source,
    })
}

/// The signed JWT-bearer assertion of a service-account key. The error never quotes the key.
fn assertion(
    email: &str,
    token_uri: &str,
    pem: &Secret<String>,
    now: SystemTime,
) -> Result<Secret<String>, &'static str> {
    use keyring_net::jwt::KeyError;
    let key = keyring_net::jwt::rsa_key_from_pem(pem.expose().as_bytes()).map_err(|e| match e {
        KeyError::NoKey | KeyError::NotRsa => "not a PEM RSA private key",
        KeyError::Rejected(_) => "not an RSA key ring accepts",
    })?;
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the clock is before 1970")?
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "iss": email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": iat,
        "exp": iat + ASSERTION_VALIDITY,
    });
    keyring_net::jwt::sign_rs256(
        &key,
        &header,
        &claims,
        &keyring_net::jwt::SystemRandom::new(),
    )
    .map_err(|_| "RS256 signing failed")
}

/// A token endpoint's JSON answer: `access_token` and `expires_in` (seconds). The error text
/// never quotes the body.
pub(crate) fn parse_token_response(body: &[u8]) -> Result<(Secret<String>, Duration), String> {
    #[derive(Deserialize)]
    struct Resp {
        access_token: Secret<String>,
        expires_in: u64,
    }
    let r: Resp = serde_json::from_slice(body).map_err(|_| {
        "is not JSON with a string access_token and a numeric expires_in".to_string()
    })?;
    if r.access_token.expose().is_empty() {
        return Err("has an empty access_token".into());
    }
    if r.expires_in == 0 {
        return Err("has expires_in 0".into());
    }
    Ok((r.access_token, Duration::from_secs(r.expires_in)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(creds: Option<&Path>, home: Option<&Path>) -> Env {
        Env {
            application_credentials: creds.map(Path::to_path_buf),
            home: home.map(Path::to_path_buf),
            metadata_host: None,
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
    fn selection_order() {
        let dir = tmp("order");
        let key = dir.join("key.json");
        std::fs::write(&key, SA).unwrap();
        let home = dir.join("home");

        // Nothing: the metadata server.
        assert!(matches!(
            select(&env(None, Some(&home))).unwrap(),
            Source::Metadata
        ));
        assert!(matches!(
            select(&env(None, None)).unwrap(),
            Source::Metadata
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
            select(&env(None, Some(&home))).unwrap(),
            Source::AuthorizedUser { .. }
        ));
        std::fs::write(&adc, SA).unwrap();
        match select(&env(None, Some(&home))).unwrap() {
            Source::ServiceAccount { origin, email, .. } => {
                assert_eq!(origin, Origin::WellKnown);
                assert_eq!(email, "sa@p.iam.gserviceaccount.com");
            }
            other => panic!("{other:?}"),
        }

        // The variable wins over the ADC file.
        match select(&env(Some(&key), Some(&home))).unwrap() {
            Source::ServiceAccount { origin, path, .. } => {
                assert_eq!(origin, Origin::EnvVar);
                assert_eq!(path, key);
            }
            other => panic!("{other:?}"),
        }
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
                "external",
                Some(r#"{"type":"external_account","x":"SECRETKEY"}"#),
                "\"external_account\" is not supported",
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
            let e = select(&env(Some(&path), None)).unwrap_err().to_string();
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

    #[test]
    fn token_responses() {
        let (t, d) = parse_token_response(
            br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.expose(), "ya29.x");
        assert_eq!(d, Duration::from_secs(3599));
        for bad in [
            &br#"{"access_token":"ya29.SECRET","expires_in":"3599"}"#[..],
            br#"{"access_token":"","expires_in":3599}"#,
            br#"{"access_token":"ya29.SECRET","expires_in":0}"#,
            br#"{"expires_in":5}"#,
            b"ya29.SECRET",
        ] {
            let e = parse_token_response(bad).unwrap_err();
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
}
