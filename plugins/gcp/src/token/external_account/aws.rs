//! The subject token of an `aws1` credential source: an AWS STS `GetCallerIdentity` request,
//! signed with the node's AWS credentials (SigV4 by `aws-sigv4`, the AWS SDK's signer) and
//! serialized for Google STS to replay (AIP-4117; Google's "access resources from AWS"):
//!
//! 1. the region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the metadata server's
//!    availability zone at `region_url` without its last letter;
//! 2. the credentials: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with
//!    `AWS_SESSION_TOKEN`), else the instance profile's: the role's name at `url`, then
//!    `url/<role>`'s `AccessKeyId`, `SecretAccessKey` and `Token`;
//! 3. when the metadata server is asked at all and the file has `imdsv2_session_token_url`,
//!    an IMDSv2 session token first (`PUT`, 300 s), sent with those requests;
//! 4. `POST regional_cred_verification_url` (its `{region}` replaced), signed for service
//!    `sts` in that region at the query's clock, with headers `host` and
//!    `x-goog-cloud-target-resource` (the file's audience, signed as Google's Go library
//!    does); the subject token is `{"url", "method", "headers": [{"key", "value"}]}` (headers
//!    sorted, `Authorization`, `host`, `x-amz-date`, `x-amz-security-token`,
//!    `x-goog-cloud-target-resource`), form-encoded.
//!
//! These are Google's libraries' variables, not the AWS SDK's credential chain (no profiles,
//! no web identity). The metadata server's answers are read as the exchange client reads any
//! (64 KiB, by the deadline); no error quotes them, the credentials or the signature.

use std::path::Path;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4::SigningParams;
use bytes::Bytes;
use keyring_api::{Clock, ErrorKind, Secret};
use keyring_net::http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::external_account::Aws;
use crate::identity::key_file::Origin;
use crate::identity::AwsEnv;
use crate::token::federation::Client;

/// The IMDSv2 session token's lifetime asked for, in seconds (as Google's libraries).
const SESSION_TTL: &str = "300";

/// Signing credentials.
struct Keys {
    id: String,
    secret: Secret<String>,
    session: Option<Secret<String>>,
}

/// The serialized signed `GetCallerIdentity` request for `audience`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn subject_token(
    client: &Client,
    aws: &Aws,
    audience: &str,
    env: &AwsEnv,
    clock: &Clock,
    origin: Origin,
    path: &Path,
    file: &str,
) -> Result<Secret<String>, Error> {
    let misconfigured = |reason: &str| {
        Error::CredentialsFile {
        origin: origin.describe(),
        path: path.display().to_string(),
        reason: format!("external_account (aws): {reason}"),
        hint: "run on an EC2 instance with an instance profile, or set AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the plugin",
    }
    };
    let env_region = env.region.clone().or_else(|| env.default_region.clone());
    let env_keys = match (&env.access_key_id, &env.secret_access_key) {
        (Some(id), Some(secret)) => Some(Keys {
            id: id.clone(),
            secret: secret.clone(),
            session: env.session_token.clone(),
        }),
        _ => None,
    };
    let imds = Imds {
        client,
        file,
        session: None,
    };
    let imds = match (&aws.imdsv2_url, env_region.is_none() || env_keys.is_none()) {
        (Some(url), true) => Imds {
            session: Some(imds.session_token(url).await?),
            ..imds
        },
        _ => imds,
    };
    let region = match env_region {
        Some(r) => r,
        None => {
            let url = aws.region_url.as_ref().ok_or_else(|| {
                misconfigured("AWS_REGION and AWS_DEFAULT_REGION are not set and credential_source has no region_url")
            })?;
            let zone = imds.get(url, "region").await?;
            // `us-east-2b` → `us-east-2`.
            let zone = zone.expose().trim();
            zone.get(..zone.len().saturating_sub(1))
                .unwrap_or_default()
                .to_string()
        }
    };
    if region.is_empty()
        || region.len() > 32
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(misconfigured("the AWS region is not a region name"));
    }
    let keys = match env_keys {
        Some(k) => k,
        None => {
            let url = aws.credentials_url.as_ref().ok_or_else(|| {
                misconfigured("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and credential_source has no url")
            })?;
            imds.role_keys(url).await?
        }
    };
    sign_request(aws, &region, audience, &keys, clock)
        .map_err(|reason| misconfigured(&format!("cannot sign GetCallerIdentity: {reason}")))
}

/// The metadata server's requests, with the IMDSv2 session token once there is one.
struct Imds<'a> {
    client: &'a Client,
    file: &'a str,
    session: Option<Secret<String>>,
}

impl Imds<'_> {
    fn stage(&self, what: &str) -> String {
        format!("{}: AWS metadata {what}", self.file)
    }

    /// `PUT` the IMDSv2 token URL.
    async fn session_token(&self, url: &Uri) -> Result<Secret<String>, Error> {
        let stage = self.stage("session token");
        let resp = self
            .client
            .send(url, &stage, &|| {
                Request::builder()
                    .method(Method::PUT)
                    .uri(url.clone())
                    .header("x-aws-ec2-metadata-token-ttl-seconds", SESSION_TTL)
                    .header(header::USER_AGENT, keyring_net::USER_AGENT)
                    .body(Bytes::new().into())
            })
            .await?;
        let token = self.text(url, stage, resp.status, resp.body)?;
        if HeaderValue::from_str(token.expose()).is_err() {
            return Err(self.unusable(url, self.stage("session token"), "is not a header value"));
        }
        Ok(token)
    }

    /// `GET` a metadata path: its text, trimmed.
    async fn get(&self, url: &Uri, what: &str) -> Result<Secret<String>, Error> {
        let stage = self.stage(what);
        let resp = self
            .client
            .send(url, &stage, &|| {
                let mut req = Request::builder()
                    .method(Method::GET)
                    .uri(url.clone())
                    .header(header::USER_AGENT, keyring_net::USER_AGENT);
                if let Some(t) = &self.session {
                    let mut v = HeaderValue::from_str(t.expose())
                        .unwrap_or_else(|_| HeaderValue::from_static(""));
                    v.set_sensitive(true);
                    req = req.header("x-aws-ec2-metadata-token", v);
                }
                req.body(Bytes::new().into())
            })
            .await?;
        self.text(url, stage, resp.status, resp.body)
    }

    /// The instance profile's keys: the role at `url`, then `url/<role>`.
    async fn role_keys(&self, url: &Uri) -> Result<Keys, Error> {
        let role = self.get(url, "role name").await?;
        let role = role
            .expose()
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if role.is_empty()
            || role.len() > 128
            || !role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        {
            return Err(self.unusable(url, self.stage("role name"), "is not an IAM role name"));
        }
        let keys_url = format!("{}/{role}", url.to_string().trim_end_matches('/'));
        let keys_uri: Uri = keys_url
            .parse()
            .map_err(|_| self.unusable(url, self.stage("credentials"), "gives no usable URL"))?;
        let body = self.get(&keys_uri, "credentials").await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Creds {
            access_key_id: String,
            secret_access_key: Secret<String>,
            token: Option<Secret<String>>,
        }
        let c: Creds = serde_json::from_str(body.expose()).map_err(|_| {
            self.unusable(
                &keys_uri,
                self.stage("credentials"),
                "is not JSON with AccessKeyId and SecretAccessKey",
            )
        })?;
        Ok(Keys {
            id: c.access_key_id,
            secret: c.secret_access_key,
            session: c.token,
        })
    }

    /// A 200 answer's text, else the refusal.
    fn text(
        &self,
        url: &Uri,
        stage: String,
        status: StatusCode,
        body: Bytes,
    ) -> Result<Secret<String>, Error> {
        let body = Secret::new(body.to_vec());
        if status != StatusCode::OK {
            return Err(Error::Federation {
                kind: if keyring_net::server_error_or_throttled(status) {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Denied
                },
                stage,
                url: keyring_net::shown_url(&url.to_string()),
                detail: format!("refused with HTTP {}", status.as_u16()),
                hint: "check that the node is an EC2 instance with an instance profile and that credential_source's URLs are its metadata server's".into(),
            });
        }
        match std::str::from_utf8(body.expose()) {
            Ok(t) => Ok(Secret::new(t.trim().to_string())),
            Err(_) => Err(self.unusable(url, stage, "is not text")),
        }
    }

    fn unusable(&self, url: &Uri, stage: String, detail: &str) -> Error {
        Error::Federation {
            kind: ErrorKind::Protocol,
            stage,
            url: keyring_net::shown_url(&url.to_string()),
            detail: format!("the answer {detail}"),
            hint: "check that credential_source's URLs are the AWS metadata server's".into(),
        }
    }
}

/// The signed request, serialized; the reason of a failure never quotes the keys.
fn sign_request(
    aws: &Aws,
    region: &str,
    audience: &str,
    keys: &Keys,
    clock: &Clock,
) -> Result<Secret<String>, String> {
    let url = aws.verification_url.replace("{region}", region);
    let uri: Uri = url
        .parse()
        .map_err(|_| "regional_cred_verification_url is not a URL for this region".to_string())?;
    let host = match (uri.host(), uri.port_u16()) {
        (Some(h), Some(p)) if p != 443 => format!("{h}:{p}"),
        (Some(h), _) => h.to_string(),
        (None, _) => return Err("regional_cred_verification_url has no host".into()),
    };
    let identity = aws_credential_types::Credentials::new(
        keys.id.clone(),
        keys.secret.expose().clone(),
        keys.session.as_ref().map(|s| s.expose().clone()),
        None,
        "external_account",
    )
    .into();
    let params: aws_sigv4::http_request::SigningParams<'_> = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(clock.now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let headers = [
        ("host", host.as_str()),
        ("x-goog-cloud-target-resource", audience),
    ];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().copied(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let (added, _) = instructions.into_parts();
    #[derive(Serialize)]
    struct Header<'a> {
        key: &'a str,
        value: &'a str,
    }
    let mut all: Vec<Header<'_>> = headers
        .iter()
        .map(|(key, value)| Header { key, value })
        .chain(added.iter().map(|h| Header {
            // As Google's documentation and Python library write it.
            key: if h.name() == "authorization" {
                "Authorization"
            } else {
                h.name()
            },
            value: h.value(),
        }))
        .collect();
    all.sort_by(|a, b| (a.key, a.value).cmp(&(b.key, b.value)));
    #[derive(Serialize)]
    struct Signed<'a> {
        url: &'a str,
        method: &'a str,
        headers: Vec<Header<'a>>,
    }
    let json = Secret::new(
        serde_json::to_string(&Signed {
            url: &url,
            method: "POST",
            headers: all,
        })
        .map_err(|e| e.to_string())?,
    );
    Ok(Secret::new(
        form_urlencoded::byte_serialize(json.expose().as_bytes()).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn decoded(token: &Secret<String>) -> serde_json::Value {
        let json: String = form_urlencoded::parse(format!("x={}", token.expose()).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn the_signed_request_is_serialized_as_google_sts_reads_it() {
        let aws = Aws {
            verification_url:
                "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
                    .into(),
            region_url: None,
            credentials_url: None,
            imdsv2_url: None,
        };
        let keys = Keys {
            id: "AKIDEXAMPLE".into(),
            secret: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            session: Some(Secret::new("SESSION-TOKEN".into())),
        };
        let clock = Clock::manual(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws";
        let token = sign_request(&aws, "eu-west-3", audience, &keys, &clock).unwrap();
        let v = decoded(&token);
        assert_eq!(
            v["url"],
            "https://sts.eu-west-3.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
        );
        assert_eq!(v["method"], "POST");
        let keys_seen: Vec<&str> = v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys_seen,
            [
                "Authorization",
                "host",
                "x-amz-date",
                "x-amz-security-token",
                "x-goog-cloud-target-resource"
            ]
        );
        let header = |k: &str| {
            v["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["key"] == k)
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(header("host"), "sts.eu-west-3.amazonaws.com");
        assert_eq!(header("x-amz-date"), "20231114T221320Z");
        assert_eq!(header("x-amz-security-token"), "SESSION-TOKEN");
        assert_eq!(header("x-goog-cloud-target-resource"), audience);
        let auth = header("Authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-3/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature="
            ),
            "{auth}"
        );
        assert!(!token.expose().contains("wJalrXUtnFEMI"));
    }
}
