//! The AWS side: one `GetAuthorizationToken` call (ECR or ECR Public), with everything it
//! needs built on the spot and thrown away after. Only [`fetch`] is called, and only once
//! the image is known to belong to ECR, so no other path pays for the SDK.
//!
//! * Runtime: a current-thread tokio runtime, built per call and shut down without waiting
//!   for its blocking pool (the thread of hyper's name lookups).
//! * HTTP: the SDK's own smithy client (hyper, the stack [`keyring_net`] also runs on)
//!   configured from keyring-net's policy: rustls on the ring provider; the system's root
//!   certificates (which honour `SSL_CERT_FILE`) or, as in the Go SDK, only those of
//!   `AWS_CA_BUNDLE`; `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` from the
//!   environment (smithy's matcher, the same variables and rules); [`CONNECT_TIMEOUT`] and
//!   [`MAX_ATTEMPTS`] from [`keyring_net::Policy::DEFAULT`]. What differs is said in
//!   keyring-net's crate docs: the SDK's own retry strategy, a shorter attempt timeout
//!   ([`ATTEMPT_TIMEOUT`]: one small JSON call) and `AWS_CA_BUNDLE`.
//! * Credentials: the SDK's default chain (env, profile incl. `credential_process` and
//!   assume-role, web identity, ECS / EKS Pod Identity, EC2 IMDSv2), resolved first and on
//!   their own so that a failure there is reported as a credentials problem. IMDS gets short
//!   timeouts and two attempts: a node without IMDS (or a pod behind a hop limit of 1) must
//!   fail in seconds, not the SDK default of half a minute. Keys in the environment, the
//!   chain's first link, are taken without building the rest of it.
//! * Or, for a pod's service-account token ([`Identity::WebIdentity`]):
//!   `sts:AssumeRoleWithWebIdentity` with that token, in the call's region (the endpoint the
//!   SDK gives, or `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL`), through the same HTTP client,
//!   retries and timeouts; the node's credentials are then not looked up at all. The
//!   temporary credentials sign the one ECR call and are dropped with the runtime.
//! * Endpoint: the SDK's, from the region, with FIPS / dual-stack when the host asked for
//!   them; `AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL_ECR_PUBLIC`, `AWS_ENDPOINT_URL` (and the
//!   profile's `endpoint_url`) override it, and then FIPS / dual-stack are not forced (the
//!   SDK refuses FIPS with a custom endpoint; the endpoint given is the one meant).
//! * Resilience: the SDK's standard retry (3 attempts, exponential backoff with jitter,
//!   throttling-aware), per-attempt and per-operation timeouts, and a [`DEADLINE`] over
//!   the whole call, well under the kubelet's 60 s exec limit.
//! * Errors: one line naming the failed stage and the likely fix. Service errors show the
//!   AWS error code and HTTP status, never the response's message text; other causes are
//!   shown through [`sanitize`] (one line, bounded, long base64 runs redacted).

use std::time::{Duration, SystemTime};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::imds;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_ecr::config::http::HttpResponse;
use aws_sdk_ecr::config::SharedHttpClient;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Connector;
use aws_types::sdk_config::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use keyring_api::{Deadline, ErrorKind, Secret};

/// The whole call, credentials included, must end within this.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Finding credentials (IMDS, STS, a credential process) must end within this.
pub const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of the API call (the first one included).
pub const MAX_ATTEMPTS: u32 = keyring_net::Policy::DEFAULT.backoff.attempts;
/// One API attempt, connect to last byte.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// All API attempts with their backoff.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// TCP + TLS connect.
pub const CONNECT_TIMEOUT: Duration = keyring_net::Policy::DEFAULT.connect;
/// IMDS connect and read timeouts; IMDS answers in milliseconds when it is there at all.
pub const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// IMDS attempts.
pub const IMDS_ATTEMPTS: u32 = 2;

/// Which API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// ECR (`ecr:GetAuthorizationToken`).
    Private,
    /// ECR Public (`ecr-public:GetAuthorizationToken`, always in us-east-1).
    Public,
}

impl Api {
    /// The SDK service ID, which also names its endpoint variables.
    fn service_id(self) -> &'static str {
        match self {
            Api::Private => "ECR",
            Api::Public => "ECR PUBLIC",
        }
    }

    /// The endpoint override variable specific to this API.
    fn endpoint_env(self) -> &'static str {
        match self {
            Api::Private => "AWS_ENDPOINT_URL_ECR",
            Api::Public => "AWS_ENDPOINT_URL_ECR_PUBLIC",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Api::Private => "ECR",
            Api::Public => "ECR Public",
        }
    }
}

/// What to ask.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which API.
    pub api: Api,
    /// The SDK region; `None` for the SDK's default region (`AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, the profile, then the instance metadata service).
    pub region: Option<String>,
    /// Use the FIPS endpoint.
    pub fips: bool,
    /// Use the dual-stack endpoint.
    pub dual_stack: bool,
}

/// Whose credentials sign the ECR call.
#[derive(Debug, Clone)]
pub enum Identity {
    /// The node's: the SDK's default chain.
    Node,
    /// A role assumed with the pod's service-account token (KEP-4412).
    WebIdentity {
        /// The role.
        role_arn: String,
        /// `RoleSessionName` of the session (shows in CloudTrail).
        session_name: String,
        /// The token (`WebIdentityToken`).
        token: Secret<String>,
    },
}

/// What came back.
#[derive(Debug)]
pub struct Token {
    /// `base64(user:password)`.
    pub authorization: Secret<String>,
    /// When the token stops working.
    pub expires_at: Option<SystemTime>,
    /// The endpoint asked, for logs.
    pub endpoint: String,
}

/// Why a token could not be had: one secret-free line with the likely fix, and its kind.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Decides exit code and stale serving.
    pub kind: ErrorKind,
    /// The line.
    pub message: String,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// The kind of an SDK failure: a service refusal is a denial unless it is throttling or a
/// server error; a request that cannot be built is the set-up; the rest is unavailability.
fn sdk_kind<E>(err: &SdkError<E, HttpResponse>) -> ErrorKind {
    match err {
        SdkError::ConstructionFailure(_) => ErrorKind::Misconfigured,
        SdkError::ResponseError(_) => ErrorKind::Protocol,
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            if status == 429 || status >= 500 {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Denied
            }
        }
        _ => ErrorKind::Unavailable,
    }
}

/// Gets a token by `deadline` at the latest. The error is one secret-free line with the
/// likely fix.
pub fn fetch(call: &Call, identity: &Identity, deadline: Deadline) -> Result<Token, Failure> {
    keyring_api::quiet::run("keyring_ecr", || fetch_blocking(call, identity, deadline))
}

fn fetch_blocking(call: &Call, identity: &Identity, deadline: Deadline) -> Result<Token, Failure> {
    let runtime = keyring_net::Blocking::new().map_err(|e| {
        Failure::new(
            ErrorKind::Unavailable,
            format!("cannot start the async runtime: {e}"),
        )
    })?;
    // The backend's own bound, cut to what is left of the invocation's budget.
    let limit = deadline.cap(DEADLINE);
    let result = runtime.block_on(async {
        match tokio::time::timeout(limit, fetch_async(call, identity)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                ErrorKind::Unavailable,
                format!(
                    "no {} token within {}s; check network access to AWS (proxy, VPC endpoints), the region and the endpoint settings",
                    call.api.name(),
                    limit.as_secs()
                ),
            )),
        }
    });
    // The runtime is dropped here without joining the resolver thread (keyring_net::Blocking).
    result
}

async fn fetch_async(call: &Call, identity: &Identity) -> Result<Token, Failure> {
    let started = std::time::Instant::now();
    check_sdk_files()?;
    let http = http_client()?;
    let region_name = match &call.region {
        Some(r) => r.clone(),
        None => default_region(&http).await?,
    };
    let region = Region::new(region_name.clone());

    let credentials = match identity {
        Identity::Node => match env_credentials().await {
            Some(c) => c,
            None => node_credentials(&http, &region).await?,
        },
        Identity::WebIdentity {
            role_arn,
            session_name,
            token,
        } => {
            // AssumeRoleWithWebIdentity is unsigned: the token is the proof.
            let sdk = loader(http.clone(), region.clone())
                .no_credentials()
                .load()
                .await;
            assume_role(&sdk, &region_name, role_arn, session_name, token).await?
        }
    };
    tracing::debug!(elapsed = ?started.elapsed(), "AWS credentials resolved");

    let sdk = loader(http, region)
        .credentials_provider(credentials)
        .load()
        .await;
    let endpoint_override = endpoint_override(&sdk, call.api);
    let endpoint = match &endpoint_override {
        Some(url) => format!(
            "{} ({})",
            without_userinfo(url),
            describe_override(call.api)
        ),
        None => {
            let fips = call.fips || sdk.use_fips().unwrap_or(false);
            let dual_stack = call.dual_stack || sdk.use_dual_stack().unwrap_or(false);
            let what = format!(
                "{} API, {}{}{}",
                call.api.name(),
                region_name,
                if fips { ", FIPS" } else { "" },
                if dual_stack { ", dual-stack" } else { "" }
            );
            match default_endpoint(call.api, &region_name, fips, dual_stack).await {
                Some(url) => format!("{url} ({what})"),
                None => format!("the {what}"),
            }
        }
    };
    // FIPS / dual-stack from the host only without an explicit endpoint: the SDK refuses
    // FIPS with a custom endpoint, and a given endpoint is the one meant.
    let variants = endpoint_override.is_none();

    let token = match call.api {
        Api::Private => {
            let mut conf = aws_sdk_ecr::config::Builder::from(&sdk);
            if variants && call.fips {
                conf = conf.use_fips(true);
            }
            if variants && call.dual_stack {
                conf = conf.use_dual_stack(true);
            }
            let client = aws_sdk_ecr::Client::from_conf(conf.build());
            let out = client
                .get_authorization_token()
                .send()
                .await
                .map_err(|e| Failure::new(sdk_kind(&e), api_error(e, call, &endpoint)))?;
            let data = out
                .authorization_data
                .unwrap_or_default()
                .into_iter()
                .next();
            data.map(|mut d| (d.authorization_token.take(), d.expires_at))
        }
        Api::Public => {
            let mut conf = aws_sdk_ecrpublic::config::Builder::from(&sdk);
            if variants && call.fips {
                conf = conf.use_fips(true);
            }
            if variants && call.dual_stack {
                conf = conf.use_dual_stack(true);
            }
            let client = aws_sdk_ecrpublic::Client::from_conf(conf.build());
            let out = client
                .get_authorization_token()
                .send()
                .await
                .map_err(|e| Failure::new(sdk_kind(&e), api_error(e, call, &endpoint)))?;
            out.authorization_data
                .map(|mut d| (d.authorization_token.take(), d.expires_at))
        }
    };
    tracing::debug!(elapsed = ?started.elapsed(), "{} answered", call.api.name());
    let Some((Some(authorization), expires_at)) = token else {
        return Err(Failure::new(
            ErrorKind::Protocol,
            format!(
                "{endpoint} returned no authorization token; if AWS_ENDPOINT_URL* is set, check that it points at {}",
                call.api.name()
            ),
        ));
    };
    let expires_at = expires_at.and_then(|t| SystemTime::try_from(t).ok());
    Ok(Token {
        authorization: Secret::new(authorization),
        expires_at,
        endpoint,
    })
}

/// The environment's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...), when
/// they are there: the first link of the SDK's default chain, asked on its own. Building the
/// whole chain costs more than anything else before the request (its web-identity link builds
/// an STS client: endpoint rules, the partition table, a regex; 17% of a cold fetch's
/// instructions, bench/ecr.sh PROFILE), and with keys in the environment the chain never asks
/// any other link. No answer, or an error, goes to [`node_credentials`], whose chain starts
/// with this same backend and so gives the same answer or error.
async fn env_credentials() -> Option<aws_credential_types::Credentials> {
    aws_config::environment::EnvironmentVariableCredentialsProvider::new()
        .provide_credentials()
        .await
        .ok()
}

/// The instance metadata client of the credentials and region chains, with short bounds: a
/// node off EC2 must not spend the invocation's budget waiting for 169.254.169.254.
fn imds_client(provider_config: &ProviderConfig) -> imds::Client {
    imds::Client::builder()
        .configure(provider_config)
        .max_attempts(IMDS_ATTEMPTS)
        .connect_timeout(IMDS_TIMEOUT)
        .read_timeout(IMDS_TIMEOUT)
        .operation_timeout(IMDS_TIMEOUT * 4)
        .build()
}

/// The node's credentials from the SDK's default chain, within [`CREDENTIALS_TIMEOUT`].
async fn node_credentials(
    http: &SharedHttpClient,
    region: &Region,
) -> Result<aws_credential_types::Credentials, Failure> {
    let provider_config = ProviderConfig::default()
        .with_http_client(http.clone())
        .with_region(Some(region.clone()));
    let imds = imds_client(&provider_config);
    let chain = DefaultCredentialsChain::builder()
        .configure(provider_config)
        .region(region.clone())
        .imds_client(imds)
        .build()
        .await;
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, chain.provide_credentials()).await {
        Err(_) => Err(Failure::new(ErrorKind::Unavailable, credentials_timeout())),
        Ok(Err(e)) => Err(credentials_error(&e)),
        Ok(Ok(c)) => Ok(c),
    }
}

/// The SDK's default region, for hosts that do not name one (`ecr.otherHosts:
/// defaultRegion`): environment, profile, then the instance metadata service, with the same
/// short IMDS bounds as the credentials chain. None of them is an error that says where a
/// region can be set.
async fn default_region(http: &SharedHttpClient) -> Result<String, Failure> {
    let provider_config = ProviderConfig::default().with_http_client(http.clone());
    let imds = imds_client(&provider_config);
    // The default chain's parts, built here because its builder takes no IMDS client.
    let chain = aws_config::meta::region::RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(
        aws_config::profile::ProfileFileRegionProvider::builder()
            .configure(&provider_config)
            .build(),
    )
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .imds_client(imds)
            .build(),
    );
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, chain.region()).await {
        Ok(Some(region)) => Ok(region.to_string()),
        _ => Err(Failure::new(
            ErrorKind::Misconfigured,
            "the image's host names no AWS region and no default region is set; set AWS_REGION in the provider's env (or a region in the AWS profile), or list the host under ecr.mirrors with its region",
        )),
    }
}

/// The SDK settings every client of a call shares: the HTTP client, the region, the
/// bounded retries and the timeouts.
fn loader(http: SharedHttpClient, region: Region) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(region)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(500))
                .with_max_backoff(Duration::from_secs(4)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
}

/// `sts:AssumeRoleWithWebIdentity`: the role's temporary credentials for the token.
async fn assume_role(
    sdk: &SdkConfig,
    region: &str,
    role_arn: &str,
    session_name: &str,
    token: &Secret<String>,
) -> Result<aws_credential_types::Credentials, Failure> {
    let endpoint = match endpoint_override_for(sdk, STS_SERVICE_ID) {
        Some(url) => format!(
            "{} ({})",
            without_userinfo(&url),
            describe_override_for("AWS_ENDPOINT_URL_STS")
        ),
        None => format!("STS in {region}"),
    };
    let client = aws_sdk_sts::Client::new(sdk);
    let out = client
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token.expose().as_str())
        .send()
        .await
        .map_err(|e| Failure::new(sdk_kind(&e), sts_error(e, role_arn, &endpoint)))?;
    let Some(c) = out.credentials else {
        return Err(Failure::new(
            ErrorKind::Protocol,
            format!(
                "{endpoint} returned no credentials for role {role_arn}; if AWS_ENDPOINT_URL* is set, check that it points at STS"
            ),
        ));
    };
    tracing::debug!("assumed role {role_arn} with the service-account token at {endpoint}");
    let expires = SystemTime::try_from(c.expiration).ok();
    Ok(aws_credential_types::Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        expires,
        "kubelet-keyring service-account token",
    ))
}

/// The SDK service ID of STS, which also names its endpoint variable.
const STS_SERVICE_ID: &str = "STS";

/// One line for a failed `AssumeRoleWithWebIdentity`. Only the AWS error code is shown,
/// never the message (it could quote claims of the token).
fn sts_error<E>(err: SdkError<E, HttpResponse>, role_arn: &str, endpoint: &str) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    const REACH: &str = "check network access to STS (HTTPS_PROXY / NO_PROXY, VPC endpoints) and any AWS_ENDPOINT_URL_STS setting";
    match &err {
        SdkError::TimeoutError(_) => format!(
            "STS did not answer within {}s ({MAX_ATTEMPTS} attempts) at {endpoint} assuming role {role_arn}; {REACH}",
            OPERATION_TIMEOUT.as_secs()
        ),
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = safe_code(err.code());
            let what = if code.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status} {code}")
            };
            format!(
                "STS refused AssumeRoleWithWebIdentity for role {role_arn} at {endpoint} ({what}): {}",
                sts_hint(code, status)
            )
        }
        _ => format!(
            "cannot assume role {role_arn} at {endpoint}: {}; {REACH}",
            causes(&err)
        ),
    }
}

/// The likely fix for an STS service error.
fn sts_hint(code: &str, status: u16) -> String {
    match code {
        "AccessDenied" | "AccessDeniedException" => "the role's trust policy does not admit this service account: allow sts:AssumeRoleWithWebIdentity for the cluster's OIDC provider with conditions on sub (system:serviceaccount:<namespace>:<name>) and aud (the kubelet's tokenAttributes.serviceAccountTokenAudience, normally sts.amazonaws.com)".into(),
        "InvalidIdentityToken" => "AWS does not accept the token: register the cluster's service-account issuer as an IAM OIDC identity provider (its discovery document must be public) and list the token's audience as a client ID".into(),
        "ExpiredTokenException" | "ExpiredToken" => "the service-account token has expired; check the node's clock".into(),
        "IDPRejectedClaim" => "the identity provider rejected the token's claims; check the OIDC provider and the role's trust policy".into(),
        "IDPCommunicationError" => format!("STS could not fetch the issuer's signing keys after {MAX_ATTEMPTS} attempts; retry later"),
        "RegionDisabledException" => "STS is not activated in this region; activate it in the account's IAM settings or point AWS_ENDPOINT_URL_STS at another region".into(),
        "ValidationError" | "InvalidParameterValue" | "MalformedPolicyDocument" => "check the role ARN (eks.amazonaws.com/ecr-role-arn, ecr.serviceAccountRoleArn or AWS_ECR_ROLE_ARN)".into(),
        _ if status == 429 || code.starts_with("Throttling") => format!("throttled after {MAX_ATTEMPTS} attempts; retry later"),
        _ if status >= 500 => format!("STS failed after {MAX_ATTEMPTS} attempts; retry later"),
        _ => "check the role ARN and that any AWS_ENDPOINT_URL_STS setting points at STS".into(),
    }
}

/// An AWS error code fit for a message: short and of code characters only, else empty.
fn safe_code(code: Option<&str>) -> &str {
    code.filter(|c| {
        c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:#-".contains(&b))
    })
    .unwrap_or("")
}

/// Largest AWS profile, web identity token or CA bundle file the SDK is let read.
const MAX_SDK_FILE_BYTES: u64 = 4 << 20;

/// The files the SDK reads by itself, each `(variable, default under $HOME)`.
const SDK_FILES: [(&str, Option<&str>); 5] = [
    ("AWS_CONFIG_FILE", Some(".aws/config")),
    ("AWS_SHARED_CREDENTIALS_FILE", Some(".aws/credentials")),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
    // EKS Pod Identity's token, read by the container credentials provider.
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", None),
    ("AWS_CA_BUNDLE", None),
];

/// Refuses, before the SDK opens them, files it would read without bound or block on: a
/// device (`/dev/zero`), a FIFO, a directory, or more than [`MAX_SDK_FILE_BYTES`]. The SDK
/// reads them whole, on the runtime's only thread, where the invocation's deadline cannot
/// interrupt it: such a file would hang the call past the kubelet's limit or exhaust memory.
/// A file that does not exist is left to the SDK (a profile is optional).
fn check_sdk_files() -> Result<(), Failure> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    for (var, default) in SDK_FILES {
        let path = match std::env::var_os(var).filter(|p| !p.is_empty()) {
            // The SDK expands a leading `~` as the shell would.
            Some(p) => match (p.to_str().and_then(|s| s.strip_prefix("~/")), &home) {
                (Some(rest), Some(h)) => std::path::Path::new(h).join(rest),
                _ => std::path::PathBuf::from(p),
            },
            None => match (default, &home) {
                (Some(d), Some(h)) => std::path::Path::new(h).join(d),
                _ => continue,
            },
        };
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let shown = path.display();
        let problem = if !meta.is_file() {
            "is not a regular file"
        } else if meta.len() > MAX_SDK_FILE_BYTES {
            "is larger than 4 MiB"
        } else {
            continue;
        };
        let from = if std::env::var_os(var).is_some() {
            format!(" ({var})")
        } else {
            String::new()
        };
        return Err(Failure::new(
            ErrorKind::Misconfigured,
            format!("{shown}{from} {problem}; the AWS SDK would read it whole"),
        ));
    }
    Ok(())
}

/// The one HTTP client of a call: rustls with ring, proxy settings from the environment, the
/// system's roots, or only the certificates of `AWS_CA_BUNDLE` when that is set (as the Go
/// SDK does: the bundle replaces the system roots).
fn http_client() -> Result<SharedHttpClient, Failure> {
    let bad = |m: String| Failure::new(ErrorKind::Misconfigured, m);
    let mut context = tls::TlsContext::builder();
    if let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) {
        let shown = std::path::Path::new(&path).display().to_string();
        let mut pem = Vec::new();
        keyring_api::file::open(std::path::Path::new(&path))
            .and_then(|f| {
                use std::io::Read;
                f.take(MAX_SDK_FILE_BYTES).read_to_end(&mut pem)
            })
            .map_err(|e| bad(format!("cannot read AWS_CA_BUNDLE {shown}: {e}")))?;
        // Checked here because the SDK's TLS set-up panics on a bundle it cannot parse.
        keyring_net::tls::check_pem_roots(&pem)
            .map_err(|e| bad(format!("AWS_CA_BUNDLE {shown}: {e}")))?;
        context = context.with_trust_store(
            tls::TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(pem),
        );
    }
    let context = context
        .build()
        .map_err(|e| bad(format!("cannot set up TLS: {}", causes(&e))))?;
    // `build_with_connector_fn` is the smithy client builder's hook for a custom connector;
    // it is the only way to combine the ring provider with environment proxy settings (the
    // plain `build_https` never proxies).
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut builder = Connector::builder();
                builder.set_connector_settings(settings.cloned());
                builder.set_sleep_impl(components.and_then(|c| c.sleep_impl()));
                builder
                    .proxy_config(ProxyConfig::from_env())
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .tls_context(context.clone())
                    .build()
            },
        ),
    )
}

/// The URL the SDK's endpoint rules give for these settings, for messages.
async fn default_endpoint(api: Api, region: &str, fips: bool, dual_stack: bool) -> Option<String> {
    match api {
        Api::Private => {
            use aws_sdk_ecr::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
            let params = Params::builder()
                .region(region)
                .use_fips(fips)
                .use_dual_stack(dual_stack)
                .build()
                .ok()?;
            let resolver = DefaultResolver::new();
            let endpoint = resolver.resolve_endpoint(&params).await.ok()?;
            Some(endpoint.url().to_string())
        }
        Api::Public => {
            use aws_sdk_ecrpublic::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
            let params = Params::builder()
                .region(region)
                .use_fips(fips)
                .use_dual_stack(dual_stack)
                .build()
                .ok()?;
            let resolver = DefaultResolver::new();
            let endpoint = resolver.resolve_endpoint(&params).await.ok()?;
            Some(endpoint.url().to_string())
        }
    }
}

/// The endpoint URL configured for this API (service variable, profile, or the global
/// `AWS_ENDPOINT_URL`), as the generated client will resolve it.
fn endpoint_override(sdk: &SdkConfig, api: Api) -> Option<String> {
    endpoint_override_for(sdk, api.service_id())
}

/// The endpoint URL configured for the service with this SDK ID.
fn endpoint_override_for(sdk: &SdkConfig, service_id: &str) -> Option<String> {
    let key = ServiceConfigKey::builder()
        .service_id(service_id)
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk.service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

fn describe_override(api: Api) -> String {
    describe_override_for(api.endpoint_env())
}

fn describe_override_for(specific: &str) -> String {
    if std::env::var_os(specific).is_some() {
        format!("from {specific}")
    } else if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        "from AWS_ENDPOINT_URL".into()
    } else {
        "from the AWS profile's endpoint_url".into()
    }
}

/// A URL for messages: without user-info, query or fragment, one bounded line.
fn without_userinfo(url: &str) -> String {
    sanitize(&keyring_net::shown_url(url))
}

fn credentials_timeout() -> String {
    format!(
        "no AWS credentials within {}s: the EC2 instance metadata service (IMDS), STS or a credential_process did not answer; on EC2 check that IMDS is enabled and, for pods, that the IMDSv2 hop limit is 2; or give credentials through the credential provider's env",
        CREDENTIALS_TIMEOUT.as_secs()
    )
}

fn credentials_error(e: &CredentialsError) -> Failure {
    let kind = match e {
        CredentialsError::CredentialsNotLoaded(_) | CredentialsError::InvalidConfiguration(_) => {
            ErrorKind::Misconfigured
        }
        _ => ErrorKind::Unavailable,
    };
    let message = match e {
        CredentialsError::CredentialsNotLoaded(_) => "no AWS credentials: none of the environment (AWS_ACCESS_KEY_ID), the AWS profile, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), ECS / EKS Pod Identity or the EC2 instance metadata service provided any; attach an instance role or give credentials through the credential provider's env (on EC2 with pods, the IMDSv2 hop limit must be 2)".into(),
        CredentialsError::ProviderTimedOut(_) => credentials_timeout(),
        CredentialsError::InvalidConfiguration(_) => format!(
            "invalid AWS credentials configuration: {}; check AWS_PROFILE, ~/.aws/config and ~/.aws/credentials",
            causes(e)
        ),
        _ => format!(
            "cannot load AWS credentials: {}; check the role, the web identity token file or the profile named by AWS_PROFILE",
            causes(e)
        ),
    };
    Failure::new(kind, message)
}

/// One line for a failed API call.
fn api_error<E>(err: SdkError<E, HttpResponse>, call: &Call, endpoint: &str) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let api = call.api.name();
    let reach_hint = |what: &str| {
        format!(
            "{what} {endpoint}: {}; check the region, network access to AWS (HTTPS_PROXY / NO_PROXY, VPC endpoints) and any AWS_ENDPOINT_URL* setting",
            causes(&err)
        )
    };
    match &err {
        SdkError::ConstructionFailure(_) => format!(
            "cannot build the {api} request for {endpoint}: {}; check the region, AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT and the endpoint settings",
            causes(&err)
        ),
        SdkError::TimeoutError(_) => format!(
            "{api} did not answer within {}s ({MAX_ATTEMPTS} attempts) at {endpoint}; check the region, network access to AWS (HTTPS_PROXY / NO_PROXY, VPC endpoints) and any AWS_ENDPOINT_URL* setting",
            OPERATION_TIMEOUT.as_secs()
        ),
        SdkError::DispatchFailure(_) => reach_hint("cannot reach"),
        SdkError::ResponseError(_) => format!(
            "unreadable answer from {endpoint}: {}; check that the endpoint (AWS_ENDPOINT_URL*, a proxy) really is {api}",
            causes(&err)
        ),
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = safe_code(err.code());
            let what = if code.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status} {code}")
            };
            let fix = service_hint(call.api, code, status);
            format!("{api} refused GetAuthorizationToken at {endpoint} ({what}): {fix}")
        }
        _ => reach_hint("failed calling"),
    }
}

/// The likely fix for a service error.
fn service_hint(api: Api, code: &str, status: u16) -> String {
    let perm = match api {
        Api::Private => "ecr:GetAuthorizationToken",
        Api::Public => "ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken",
    };
    match code {
        c if c.starts_with("AccessDenied") || c == "UnauthorizedOperation" || c == "UnauthorizedException" => {
            format!("the AWS identity lacks {perm}; grant it in the node's (or pod's) IAM role policy")
        }
        "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignature" | "MissingAuthenticationToken" => {
            "AWS rejected the credentials; check the access key, secret and session token, and the node's clock".into()
        }
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => {
            "the AWS credentials or the request have expired; refresh the session credentials and check the node's clock".into()
        }
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" => format!(
            "throttled after {MAX_ATTEMPTS} attempts; GetAuthorizationToken is rate-limited per account and region, so fewer callers or a longer cache helps"
        ),
        _ if status == 429 => format!(
            "throttled after {MAX_ATTEMPTS} attempts; GetAuthorizationToken is rate-limited per account and region"
        ),
        _ if status >= 500 => format!("{} failed after {MAX_ATTEMPTS} attempts; retry later", api.name()),
        _ => "check the region and that any AWS_ENDPOINT_URL* setting points at the right service".into(),
    }
}

/// An error and its sources, `a: b: c`, each source shown once, through [`sanitize`]. Only
/// `Display` texts: the SDK's `Debug` forms repeat everything and can hold raw responses.
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    sanitize(&out)
}

/// One line, at most 300 characters, with runs of 40+ base64 characters (tokens, keys)
/// replaced by `<redacted>`.
pub fn sanitize(text: &str) -> String {
    const MAX: usize = 300;
    let mut out = String::with_capacity(text.len().min(MAX + 3));
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 40 {
            out.push_str("<redacted>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=' {
            run.push(c);
            continue;
        }
        flush(&mut run, &mut out);
        if c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    let trimmed = out.trim();
    if trimmed.chars().count() > MAX {
        let cut: String = trimmed.chars().take(MAX).collect();
        format!("{cut}...")
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecr::config::endpoint::{Params, ResolveEndpoint};

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn sanitize_is_one_bounded_line_without_tokens() {
        let token = "QVdTOmV5SndZWGxzYjJGa0lqb2lRMUZGTlhrNU5HVkdZV3hw";
        let s = sanitize(&format!("a\nb\r\tc {token} (os error 111)"));
        assert_eq!(s, "a b c <redacted> (os error 111)");
        let long = "x ".repeat(400);
        assert!(sanitize(&long).chars().count() <= 303);
        // ARNs, request IDs and URLs survive.
        let arn = "arn:aws:iam::123456789012:role/node-role a1b2c3d4-5678-90ab-cdef-EXAMPLE11111";
        assert_eq!(sanitize(arn), arn);
    }

    #[test]
    fn userinfo_is_dropped() {
        assert_eq!(
            without_userinfo("http://u:p@127.0.0.1:5000/x"),
            "http://127.0.0.1:5000/x"
        );
        assert_eq!(
            without_userinfo("https://vpce.example.com"),
            "https://vpce.example.com"
        );
        assert_eq!(without_userinfo("u@h:1"), "h:1");
    }

    /// The endpoint each kind of host leads to, through the SDK's own endpoint rules.
    #[test]
    fn hosts_pick_the_right_api_endpoint() {
        let cases = [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "https://api.ecr.us-east-1.amazonaws.com",
            ),
            (
                "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
                "https://api.ecr-fips.us-east-1.amazonaws.com",
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
                "https://api.ecr-fips.us-gov-west-1.amazonaws.com",
            ),
            (
                "123456789012.dkr-ecr.us-east-1.on.aws",
                "https://ecr.us-east-1.api.aws",
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-1.on.aws",
                "https://ecr-fips.us-east-1.api.aws",
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                "https://api.ecr.cn-north-1.amazonaws.com.cn",
            ),
            (
                "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
                "https://ecr.cn-north-1.api.amazonwebservices.com.cn",
            ),
            (
                "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
                "https://api.ecr.eusc-de-east-1.amazonaws.eu",
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                "https://api.ecr.us-iso-east-1.c2s.ic.gov",
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                "https://api.ecr.us-isob-east-1.sc2s.sgov.gov",
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                "https://api.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                "https://api.ecr.us-isof-south-1.csp.hci.ic.gov",
            ),
            (
                "123456789012.dkr.ecr.US-EAST-1.amazonaws.com",
                "https://api.ecr.us-east-1.amazonaws.com",
            ),
        ];
        for (host, want) in cases {
            let h = crate::host::PrivateHost::parse(host).unwrap();
            let params = Params::builder()
                .region(h.sdk_region())
                .use_fips(h.fips)
                .use_dual_stack(h.dual_stack())
                .build()
                .unwrap();
            let resolver = aws_sdk_ecr::config::endpoint::DefaultResolver::new();
            let ep = block_on(resolver.resolve_endpoint(&params))
                .unwrap_or_else(|e| panic!("{host}: {e}"));
            assert_eq!(ep.url(), want, "{host}");
        }
    }

    #[test]
    fn public_hosts_pick_the_public_endpoint() {
        use aws_sdk_ecrpublic::config::endpoint::{DefaultResolver, Params};
        for (dual, want) in [
            (false, "https://api.ecr-public.us-east-1.amazonaws.com"),
            (true, "https://ecr-public.us-east-1.api.aws"),
        ] {
            let params = Params::builder()
                .region(crate::host::PUBLIC_REGION)
                .use_fips(false)
                .use_dual_stack(dual)
                .build()
                .unwrap();
            let ep = block_on(
                aws_sdk_ecrpublic::config::endpoint::ResolveEndpoint::resolve_endpoint(
                    &DefaultResolver::new(),
                    &params,
                ),
            )
            .unwrap();
            assert_eq!(ep.url(), want);
        }
    }

    #[test]
    fn service_errors_name_the_fix() {
        assert!(service_hint(Api::Private, "AccessDeniedException", 400)
            .contains("ecr:GetAuthorizationToken"));
        assert!(service_hint(Api::Public, "AccessDeniedException", 400)
            .contains("sts:GetServiceBearerToken"));
        assert!(
            service_hint(Api::Private, "UnrecognizedClientException", 400).contains("credentials")
        );
        assert!(service_hint(Api::Private, "ThrottlingException", 400).contains("throttled"));
        assert!(service_hint(Api::Private, "", 429).contains("throttled"));
        assert!(service_hint(Api::Private, "", 503).contains("retry later"));
        assert!(service_hint(Api::Private, "", 404).contains("AWS_ENDPOINT_URL"));
    }
}
