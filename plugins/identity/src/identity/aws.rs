//! The node's AWS identity as a signed STS `GetCallerIdentity` request: the proof Artifactory
//! (`/access/api/v1/aws/token`) and Vault's `aws` auth method (`vault` with `auth: aws`)
//! accept; the config refuses `node.aws` for every other method. The party that receives it
//! replays it to STS, which answers with the caller's ARN; the request itself grants nothing
//! else and expires with its signature (15 minutes).
//!
//! * Credentials: the environment's keys (`AWS_ACCESS_KEY_ID`, ...) first (no HTTP client is
//!   built for them), else the SDK's default chain (profile, web identity, ECS/EKS, IMDSv2)
//!   on the one AWS SDK client ([`keyring_aws::http_client`]: every answer capped at
//!   keyring-net's body cap, rustls on ring, the environment's proxies, the system's roots,
//!   those of `SSL_CERT_FILE` / `SSL_CERT_DIR` or of `AWS_CA_BUNDLE`), bounded by
//!   [`CREDENTIALS_TIMEOUT`] and the invocation's deadline; its log lines are kept in their
//!   place as ECR's are ([`keyring_api::quiet`]). Before the chain, the files it would read
//!   whole (the profile files, the web identity token, the SSO token cache, ...) are
//!   checked as for ECR's calls ([`keyring_aws::check_files`]): a FIFO, a device, a
//!   directory or more than 4 MiB there is a misconfiguration naming the file.
//! * Signature: SigV4 by the SDK's signer crate `aws-sigv4` (no hand-written SigV4), service
//!   `sts`, in the form its receiver replays ([`Form`]): Artifactory's, `GET
//!   <sts>/?Action=GetCallerIdentity&Version=2011-06-15` signing `host` and `x-amz-date`;
//!   Vault's (its `aws` method, IAM type, accepts only POST), `POST <sts>/` with the form body
//!   `Action=GetCallerIdentity&Version=2011-06-15`, signing `content-type` and, when the role
//!   asks for one, `x-vault-aws-iam-server-id` too. Temporary credentials add
//!   `x-amz-security-token`.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials as _;
use aws_sigv4::http_request::{sign as sigv4, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use keyring_api::{Deadline, Secret};

use crate::config::AwsSource;
use crate::error::{Error, Stage};

/// The global STS endpoint.
pub const STS: &str = "https://sts.amazonaws.com";
/// The region the global endpoint is signed for.
pub const REGION: &str = "us-east-1";
/// The most the credentials chain may take.
pub const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(10);

/// The action, as a query or a form body.
pub const ACTION: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The content type of the POST form.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Which request is signed: the one its receiver replays to STS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form<'a> {
    /// `GET` with the action in the query (Artifactory).
    Get,
    /// `POST` with the action as a form body (Vault), with the server ID header signed in
    /// when given.
    Post {
        /// `X-Vault-AWS-IAM-Server-ID`.
        server_id: Option<&'a str>,
    },
}

/// A signed `GetCallerIdentity` request.
pub struct Signed {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The STS URL (with the action's query for `GET`).
    pub url: String,
    /// The body (the action's form for `POST`; empty for `GET`).
    pub body: String,
    /// The signature headers (`Authorization`, `X-Amz-Date`, `X-Amz-Security-Token`),
    /// `Host`, and for `POST` `Content-Type` (and the server ID). Secret: they are a
    /// credential for 15 minutes.
    pub headers: Vec<(String, Secret<String>)>,
    /// The access key ID's last four characters, for messages.
    pub access_key_hint: String,
    /// When the credentials (and so the proof) stop working, when known.
    pub expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("url", &self.url)
            .field("access_key_hint", &self.access_key_hint)
            .finish_non_exhaustive()
    }
}

fn failure(problem: String) -> Error {
    Error::Response {
        stage: Stage::Aws,
        url: "the AWS credentials chain".into(),
        problem,
    }
}

/// Signs the request in `form` with the node's credentials, at `now`.
pub fn sign(
    source: &AwsSource,
    form: Form<'_>,
    deadline: Deadline,
    now: SystemTime,
) -> Result<Signed, Error> {
    let endpoint = source
        .sts_endpoint
        .as_deref()
        .unwrap_or(STS)
        .trim_end_matches('/');
    let region = source.region.as_deref().unwrap_or(REGION);
    let creds = credentials(deadline)?;
    sign_with(&creds, endpoint, region, form, now)
}

/// Signs with given credentials (the unit tests' entry).
pub fn sign_with(
    creds: &aws_credential_types::Credentials,
    endpoint: &str,
    region: &str,
    form: Form<'_>,
    now: SystemTime,
) -> Result<Signed, Error> {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, h)| h)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let (method, url, body) = match form {
        Form::Get => ("GET", format!("{endpoint}/?{ACTION}"), String::new()),
        Form::Post { .. } => ("POST", format!("{endpoint}/"), ACTION.to_string()),
    };
    // Lower case: the names SigV4 signs; the receiver replays them as given.
    let mut signed_headers = vec![("host".to_string(), host)];
    if let Form::Post { server_id } = form {
        signed_headers.push(("content-type".into(), FORM_CONTENT_TYPE.into()));
        if let Some(id) = server_id {
            signed_headers.push(("x-vault-aws-iam-server-id".into(), id.to_string()));
        }
    }
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failure(format!("cannot sign: {e}")))?
        .into();
    let request = SignableRequest::new(
        method,
        url.as_str(),
        signed_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| failure(format!("cannot sign: {e}")))?;
    let (instructions, _) = sigv4(request, &params)
        .map_err(|e| failure(format!("cannot sign: {e}")))?
        .into_parts();
    let mut headers: Vec<(String, Secret<String>)> = signed_headers
        .into_iter()
        .map(|(k, v)| (k, Secret::new(v)))
        .collect();
    headers.extend(
        instructions
            .headers()
            .map(|(k, v)| (k.to_string(), Secret::new(v.to_string()))),
    );
    let key = creds.access_key_id();
    Ok(Signed {
        method,
        url,
        body,
        headers,
        access_key_hint: format!("…{}", &key[key.len().saturating_sub(4)..]),
        expires_at: creds.expiry(),
    })
}

/// The node's credentials (see the module docs), with the SDK's own log lines kept in
/// their place ([`keyring_api::quiet`]: its chain warns of every failed link on stderr).
fn credentials(deadline: Deadline) -> Result<aws_credential_types::Credentials, Error> {
    keyring_api::quiet::run("keyring_identity", || chain_credentials(deadline))
}

fn chain_credentials(deadline: Deadline) -> Result<aws_credential_types::Credentials, Error> {
    let rt = keyring_net::Blocking::new()
        .map_err(|e| Error::Setup(format!("cannot start the I/O runtime: {e}")))?;
    let limit = deadline.cap(CREDENTIALS_TIMEOUT);
    rt.block_on(async {
        if let Ok(c) = aws_config::environment::EnvironmentVariableCredentialsProvider::new()
            .provide_credentials()
            .await
        {
            return Ok(c);
        }
        // The files the chain would read whole on this, the runtime's only thread, where
        // `limit` cannot interrupt it (a FIFO blocked until the watchdog, /dev/zero took all
        // memory): checked first, as for ECR's calls. The profile is the SDK's choice.
        keyring_aws::check_files(None).await?;
        // The one AWS SDK client (keyring-aws): every answer of the chain (IMDS, the
        // container endpoint, STS for web identity) stops at the body cap.
        let http = keyring_aws::http_client(false)?;
        let provider_config =
            aws_config::provider_config::ProviderConfig::default().with_http_client(http);
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .configure(provider_config)
            .build()
            .await;
        match tokio::time::timeout(limit, chain.provide_credentials()).await {
            Err(_) => Err(Error::Deadline {
                stage: Stage::Aws,
                url: "the AWS credentials chain".into(),
                elapsed_ms: limit.as_millis(),
                hint: "no AWS credentials in time: is IMDS reachable (hop limit 2 for pods), or are AWS_* variables set?".into(),
            }),
            Ok(Err(e)) => Err(failure(format!(
                "no credentials ({}); set AWS_* variables, a profile or an instance role",
                one_line(&e)
            ))),
            Ok(Ok(c)) => Ok(c),
        }
    })
}

/// An error chain in one line, without anything that looks like a credential.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts
        .join(": ")
        .replace(['\n', '\r'], " ")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_sdks_over_the_get_caller_identity_request() {
        let creds = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE1234",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session-tok".into()),
            None,
            "test",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = sign_with(&creds, STS, REGION, Form::Get, now).unwrap();
        assert_eq!(
            s.url,
            "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
        );
        let h = |name: &str| {
            s.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.expose().clone())
        };
        assert_eq!(h("host").as_deref(), Some("sts.amazonaws.com"));
        assert_eq!(h("x-amz-date").as_deref(), Some("20231114T221320Z"));
        assert_eq!(h("x-amz-security-token").as_deref(), Some("session-tok"));
        let auth = h("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE1234/20231114/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="), "{auth}");
        assert_eq!(s.access_key_hint, "…1234");
        assert!(!format!("{s:?}").contains("session-tok"));
    }

    #[test]
    fn vaults_form_is_a_post_of_the_action_signing_its_content_type_and_server_id() {
        let creds = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE1234",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let form = Form::Post {
            server_id: Some("vault.example.com"),
        };
        let s = sign_with(&creds, STS, REGION, form, now).unwrap();
        assert_eq!(
            (s.method, s.url.as_str()),
            ("POST", "https://sts.amazonaws.com/")
        );
        assert_eq!(s.body, "Action=GetCallerIdentity&Version=2011-06-15");
        let names: Vec<&str> = s.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "host",
                "content-type",
                "x-vault-aws-iam-server-id",
                "x-amz-date",
                "authorization"
            ]
        );
        let auth = s.headers[4].1.expose();
        assert!(auth.contains("/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-vault-aws-iam-server-id, Signature="), "{auth}");
        // Without a server ID only the content type is added.
        let s = sign_with(&creds, STS, REGION, Form::Post { server_id: None }, now).unwrap();
        assert!(!s
            .headers
            .iter()
            .any(|(k, _)| k == "x-vault-aws-iam-server-id"));
    }
}
