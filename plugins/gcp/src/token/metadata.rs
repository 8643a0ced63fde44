//! The GCE/GKE metadata server: the default service account's access token and the
//! `google-dockercfg` / `google-dockercfg-url` instance attributes.
//!
//! The server is `169.254.169.254` (the address Google's Go client uses, so no DNS lookup of
//! `metadata.google.internal` can hang), or `GCE_METADATA_HOST` (`host[:port]`) when set, as
//! in every Google client library.
//!
//! Every request carries `Metadata-Flavor: Google` and goes through a direct (never proxied)
//! [`keyring_net`] client with [`Policy::LINK_LOCAL`]: it connects within 2 s and finishes
//! within 3 s; refused or broken connections and 429/5xx answers are tried up to three times
//! under the invocation deadline; a timeout is not retried (off Google Cloud the address
//! black-holes, and waiting again only eats the kubelet's 60 s).

use std::time::Duration;

use bytes::Bytes;
use keyring_api::{Clock, Deadline};
use keyring_net::http::uri::Authority;
use keyring_net::http::{header, Request, StatusCode};
use keyring_net::{Client, Fetched, Policy};

use super::{parse_token_response, AccessToken};
use crate::error::Error;

/// The metadata server's address when `GCE_METADATA_HOST` is not set.
pub const DEFAULT_HOST: &str = "169.254.169.254";
/// Connect timeout per request.
pub const CONNECT_TIMEOUT: Duration = Policy::LINK_LOCAL.connect;
/// Whole-exchange timeout per request.
pub const REQUEST_TIMEOUT: Duration = Policy::LINK_LOCAL.attempt;
/// Largest token response read.
const TOKEN_LIMIT: usize = 64 << 10;
/// Largest attribute read (a docker config): upstream's cap.
pub const ATTRIBUTE_LIMIT: usize = 10 << 20;

const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const ATTRIBUTES_PATH: &str = "/computeMetadata/v1/instance/attributes/";
const PROJECT_ID_PATH: &str = "/computeMetadata/v1/project/project-id";

const TOKEN_HINT_UNREACHABLE: &str = "off Google Cloud set GOOGLE_APPLICATION_CREDENTIALS to a \
     service-account key file; on a GCE VM or GKE node check that the node reaches the metadata \
     server (GCE_METADATA_HOST overrides its address)";
/// The same, where key files are not read (`gcp.credentialFiles` without
/// `applicationCredentials`, as under auth-provider-gcp's names).
const TOKEN_HINT_UNREACHABLE_NO_FILES: &str = "on a GCE VM or GKE node check that the node \
     reaches the metadata server (GCE_METADATA_HOST overrides its address); off Google Cloud \
     list applicationCredentials in the plugin config's gcp.credentialFiles and name a key file";
const TOKEN_HINT_404: &str = "the instance has no service account; attach one with the \
     cloud-platform scope, or set GOOGLE_APPLICATION_CREDENTIALS to a key file";
const TOKEN_HINT_404_NO_FILES: &str = "the instance has no service account; attach one with \
     the cloud-platform scope";
const TOKEN_HINT_403: &str = "the metadata server refused the request; check that no proxy \
     strips the Metadata-Flavor header and that metadata access is not blocked on this node";
const TOKEN_HINT_5XX: &str = "the metadata server is failing; retry later, or set \
     GOOGLE_APPLICATION_CREDENTIALS to a key file";
const TOKEN_HINT_5XX_NO_FILES: &str = "the metadata server is failing; retry later";
const ATTRIBUTE_HINT: &str = "gcp.dockercfg: true needs the metadata server, as \
     --authFlow=dockercfg and dockercfg-url do; off Google Cloud set it to false (or use \
     --authFlow=gcr)";

/// The metadata server of this node.
pub(crate) struct Metadata {
    authority: Authority,
    client: Client,
    deadline: Deadline,
}

impl Metadata {
    /// The server named by `GCE_METADATA_HOST` (`env_host`), or the default one; every
    /// request ends by `deadline`.
    pub(crate) fn new(env_host: Option<&str>, deadline: Deadline) -> Result<Self, Error> {
        let authority = match env_host {
            None => Authority::from_static(DEFAULT_HOST),
            Some(h) => parse_host(h).ok_or_else(|| Error::MetadataHostEnv(h.to_string()))?,
        };
        Ok(Metadata {
            authority,
            client: Client::direct(Policy::LINK_LOCAL),
            deadline,
        })
    }

    /// The deadline its requests end by.
    pub(crate) fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// `host[:port]` of the server, for messages.
    pub(crate) fn host(&self) -> &str {
        self.authority.as_str()
    }

    /// GET `path` with retries; the final response, whatever its status. A request that
    /// got no response is an error about `what`, with `hint`.
    async fn get(
        &self,
        path: &str,
        limit: usize,
        what: &'static str,
        hint: &'static str,
    ) -> Result<Fetched, Error> {
        let uri = format!("http://{}{path}", self.authority);
        self.client
            .send_capped(
                self.deadline,
                &|| {
                    Request::get(uri.as_str())
                        .header("Metadata-Flavor", "Google")
                        .header(header::USER_AGENT, keyring_net::USER_AGENT)
                        .body(Default::default())
                },
                &keyring_net::server_error_or_throttled,
                limit,
            )
            .await
            .map_err(|cause| Error::MetadataFetch {
                host: self.host().into(),
                what,
                cause,
                hint,
            })
    }

    /// A response about `what` whose status is not the one expected.
    fn status_error(&self, what: &'static str, resp: &Fetched, hint: &'static str) -> Error {
        Error::MetadataStatus {
            host: self.host().into(),
            what,
            status: resp.status,
            tries: tries_text(resp.attempts),
            hint,
        }
    }

    /// The default service account's access token, its expiry dated on `clock`;
    /// `key_files`: whether a failure's hint may suggest a key file (only where one would be
    /// read).
    pub(crate) async fn token(&self, clock: &Clock, key_files: bool) -> Result<AccessToken, Error> {
        const WHAT: &str = "the access token";
        let pick =
            |with: &'static str, without: &'static str| if key_files { with } else { without };
        let now = clock.now();
        let unreachable = pick(TOKEN_HINT_UNREACHABLE, TOKEN_HINT_UNREACHABLE_NO_FILES);
        let resp = self.get(TOKEN_PATH, TOKEN_LIMIT, WHAT, unreachable).await?;
        if resp.status != StatusCode::OK {
            let hint = match resp.status {
                StatusCode::NOT_FOUND => pick(TOKEN_HINT_404, TOKEN_HINT_404_NO_FILES),
                StatusCode::FORBIDDEN => TOKEN_HINT_403,
                s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                    pick(TOKEN_HINT_5XX, TOKEN_HINT_5XX_NO_FILES)
                }
                _ => "is GCE_METADATA_HOST pointing at a metadata server?",
            };
            return Err(self.status_error(WHAT, &resp, hint));
        }
        let (token, expires_at) =
            parse_token_response(&resp.body, now).map_err(|reason| Error::MetadataBody {
                host: self.host().into(),
                what: "an access token",
                reason,
            })?;
        Ok(AccessToken {
            token,
            expires_at,
            source: format!("metadata server {} (default service account)", self.host()),
        })
    }

    /// The project of this VM (for the workload identity audience when the config names
    /// none).
    pub(crate) async fn project_id(&self) -> Result<String, Error> {
        const WHAT: &str = "the project ID";
        const HINT: &str = "set gcp.workloadIdentity.projectId off Google Cloud";
        let resp = self.get(PROJECT_ID_PATH, 1024, WHAT, HINT).await?;
        if resp.status != StatusCode::OK {
            return Err(self.status_error(WHAT, &resp, HINT));
        }
        let id = std::str::from_utf8(&resp.body).unwrap_or_default().trim();
        let ok = !id.is_empty()
            && id.len() <= 100
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b));
        if !ok {
            return Err(Error::MetadataBody {
                host: self.host().into(),
                what: WHAT,
                reason: "is not a project ID".into(),
            });
        }
        Ok(id.to_string())
    }

    /// An instance attribute's value; `None` when the attribute is not set (404).
    pub(crate) async fn attribute(&self, name: &'static str) -> Result<Option<Bytes>, Error> {
        let path = format!("{ATTRIBUTES_PATH}{name}");
        let resp = self
            .get(&path, ATTRIBUTE_LIMIT, name, ATTRIBUTE_HINT)
            .await?;
        match resp.status {
            StatusCode::OK => Ok(Some(resp.body)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.status_error(name, &resp, ATTRIBUTE_HINT)),
        }
    }
}

fn tries_text(tries: u32) -> String {
    if tries > 1 {
        format!(" (after {tries} attempts)")
    } else {
        String::new()
    }
}

/// `GCE_METADATA_HOST`: `host[:port]`, nothing else (no scheme, path or user-info).
fn parse_host(s: &str) -> Option<Authority> {
    if s.is_empty() || s.contains(['@', '/']) {
        return None;
    }
    let a: Authority = s.parse().ok()?;
    let after_host = s.rsplit(']').next().unwrap_or(s);
    let has_port = after_host.contains(':');
    if a.host().is_empty() || (has_port && a.port_u16().is_none_or(|p| p == 0)) {
        return None;
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gce_metadata_host_is_host_and_optional_port_only() {
        for ok in [
            "127.0.0.1:8080",
            "metadata.google.internal",
            "[::1]:80",
            "169.254.169.254",
        ] {
            assert_eq!(parse_host(ok).map(|a| a.to_string()), Some(ok.to_string()));
        }
        for bad in [
            "", "http://x", "x/y", "u@x", "x:", "x:y", " x", "x:99999", "x:0", "[::1]:",
        ] {
            assert!(parse_host(bad).is_none(), "{bad:?}");
        }
        let e = Metadata::new(Some("http://x"), Deadline::after(Duration::from_secs(1)))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "GCE_METADATA_HOST=\"http://x\" is not host[:port]; fix it or unset it"
        );
        assert_eq!(
            Metadata::new(None, Deadline::after(Duration::from_secs(1)))
                .unwrap()
                .host(),
            DEFAULT_HOST
        );
    }
}
