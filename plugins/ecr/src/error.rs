//! What can go wrong in this backend, each variant one line: the stage that failed, its
//! cause, the likely fix. [`Error::into_backend`] makes it the [`BackendError`] the binary
//! reports, prefixed with the image's registry (and, for a mirror or another host, where its
//! token was asked).
//!
//! Texts never hold a token, a key or an AWS response's message text (it could quote claims
//! of a service-account token): service errors show the AWS error code and HTTP status only
//! ([`safe_code`]), and every other cause goes through [`sanitize`] (one line, bounded, long
//! base64 runs redacted). Only `Display` texts of causes are used ([`causes`]): the SDK's
//! `Debug` forms repeat everything and can hold raw responses.
//!
//! The bounds a text quotes (seconds, attempts) are carried by the variant, filled in by the
//! stage that applied them.

use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ecr::config::http::HttpResponse;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use keyring_api::{BackendError, ErrorKind, InvalidSetting};

use crate::host::{Api, Route};
use crate::{NAME, ROLE_ANNOTATION, ROLE_ENV};

/// A failure of the ecr backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The async runtime did not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The whole call, credentials included, ran past its bound.
    #[error("no {api} token within {}s; check network access to AWS (proxy, VPC endpoints), the region and the endpoint settings", within.as_secs())]
    Deadline { api: &'static str, within: Duration },
    /// A file the SDK would read whole is a device, a FIFO, a directory or too large
    /// ([`keyring_aws::files`]).
    #[error(transparent)]
    SdkFile(#[from] keyring_aws::FileError),
    /// `AWS_CA_BUNDLE` cannot be read.
    #[error("cannot read AWS_CA_BUNDLE {path}: {cause}")]
    CaBundleRead { path: String, cause: std::io::Error },
    /// `AWS_CA_BUNDLE` holds no usable certificate.
    #[error("AWS_CA_BUNDLE {path}: {cause}")]
    CaBundle {
        path: String,
        cause: keyring_net::TlsSetupError,
    },
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` hold no usable certificate (the error names them, the
    /// files read and the first that could not be).
    #[error(transparent)]
    EnvCa(keyring_net::TlsSetupError),
    /// The TLS set-up of the SDK's client failed.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The host names no region and the SDK finds no default one.
    #[error("the image's host names no AWS region and no default region is set; set AWS_REGION in the provider's env (or a region in the AWS profile), or list the host under ecr.mirrors with its region")]
    NoRegion,

    /// No link of the node's credentials chain had credentials.
    #[error("no AWS credentials: none of the environment (AWS_ACCESS_KEY_ID), the AWS profile, web identity (AWS_WEB_IDENTITY_TOKEN_FILE), ECS / EKS Pod Identity or the EC2 instance metadata service provided any; attach an instance role or give credentials through the credential provider's env (on EC2 with pods, the IMDSv2 hop limit must be 2)")]
    NoCredentials,
    /// The node's credentials chain did not answer in time.
    #[error("no AWS credentials within {}s: the EC2 instance metadata service (IMDS), STS, SSO or a credential_process did not answer; on EC2 check that IMDS is enabled and, for pods, that the IMDSv2 hop limit is 2; or give credentials through the credential provider's env", within.as_secs())]
    CredentialsTimeout { within: Duration },
    /// The AWS profile or environment is invalid.
    #[error("invalid AWS credentials configuration: {cause}; check AWS_PROFILE, ~/.aws/config and ~/.aws/credentials")]
    CredentialsConfig { cause: String },
    /// A link of the chain failed.
    #[error("cannot load AWS credentials: {cause}; check the role, the web identity token file or the profile named by AWS_PROFILE")]
    Credentials { cause: String },

    /// `sts:AssumeRoleWithWebIdentity` did not answer in time.
    #[error("STS did not answer within {}s ({attempts} attempts) at {endpoint} assuming role {role_arn}; {STS_REACH}", within.as_secs())]
    AssumeRoleTimeout {
        role_arn: String,
        endpoint: String,
        within: Duration,
        attempts: u32,
    },
    /// STS refused the role or the token.
    #[error("STS refused AssumeRoleWithWebIdentity for role {role_arn} at {endpoint} ({}): {}", status_and_code(*status, code), sts_hint(code, *status, *attempts))]
    AssumeRoleRefused {
        role_arn: String,
        endpoint: String,
        status: u16,
        code: String,
        attempts: u32,
    },
    /// STS answered something that is not an `AssumeRoleWithWebIdentity` answer: a success
    /// status whose body does not parse, or a body that cannot be read.
    #[error("unreadable answer from {endpoint} assuming role {role_arn}: {cause}; check that the endpoint (AWS_ENDPOINT_URL_STS, a proxy) really is STS")]
    AssumeRoleUnreadable {
        role_arn: String,
        endpoint: String,
        cause: String,
    },
    /// STS could not be asked.
    #[error("cannot assume role {role_arn} at {endpoint}: {cause}; {STS_REACH}")]
    AssumeRole {
        kind: ErrorKind,
        role_arn: String,
        endpoint: String,
        cause: String,
    },
    /// STS answered without credentials.
    #[error("{endpoint} returned no credentials for role {role_arn}; if AWS_ENDPOINT_URL* is set, check that it points at STS")]
    NoStsCredentials { role_arn: String, endpoint: String },

    /// The API request could not be built.
    #[error("cannot build the {} request for {endpoint}: {cause}; check the region, AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT and the endpoint settings", api.name())]
    ApiRequest {
        api: Api,
        endpoint: String,
        cause: String,
    },
    /// The API did not answer in time.
    #[error("{} did not answer within {}s ({attempts} attempts) at {endpoint}; {API_REACH}", api.name(), within.as_secs())]
    ApiTimeout {
        api: Api,
        endpoint: String,
        within: Duration,
        attempts: u32,
    },
    /// The API could not be reached (`cannot reach`) or the call failed otherwise.
    #[error("{what} {endpoint}: {cause}; {API_REACH}")]
    ApiUnreachable {
        what: &'static str,
        endpoint: String,
        cause: String,
    },
    /// The API's answer could not be read, or is a success status whose body does not parse.
    #[error("unreadable answer from {endpoint}: {cause}; check that the endpoint (AWS_ENDPOINT_URL*, a proxy) really is {}", api.name())]
    ApiUnreadable {
        api: Api,
        endpoint: String,
        cause: String,
    },
    /// The API refused the call.
    #[error("{} refused GetAuthorizationToken at {endpoint} ({}): {}", api.name(), status_and_code(*status, code), service_hint(*api, code, *status, *attempts))]
    ApiRefused {
        api: Api,
        endpoint: String,
        status: u16,
        code: String,
        attempts: u32,
    },
    /// The API answered without a token.
    #[error("{endpoint} returned no authorization token; if AWS_ENDPOINT_URL* is set, check that it points at {}", api.name())]
    NoToken { api: Api, endpoint: String },

    /// The token is not `base64(user:password)`.
    #[error("{cause} ({endpoint}); if AWS_ENDPOINT_URL* is set, check that it points at ECR")]
    TokenShape { endpoint: String, cause: TokenError },

    /// The role named for a service account is not a role ARN.
    #[error("role from {0}")]
    RoleArn(InvalidSetting),
    /// A service-account token came, no role is named, and the node may not stand in.
    #[error("the kubelet sent a service-account token but no role is named for it; annotate the service account with {ROLE_ANNOTATION}, or set ecr.serviceAccountRoleArn or {ROLE_ENV}, or set ecr.nodeIdentityFallback: true to pull with the node's credentials")]
    NoRole,
}

/// Why a token could not be decoded. The texts never include the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64.
    #[error("the authorization token is not base64")]
    Base64,
    /// Not `user:password` in UTF-8.
    #[error("the authorization token does not decode to user:password")]
    Shape,
}

const STS_REACH: &str = "check network access to STS (HTTPS_PROXY / NO_PROXY, VPC endpoints) and any AWS_ENDPOINT_URL_STS setting";
const API_REACH: &str = "check the region, network access to AWS (HTTPS_PROXY / NO_PROXY, VPC endpoints) and any AWS_ENDPOINT_URL* setting";

/// The shared AWS client's set-up failures ([`keyring_aws::http_client`]), each as the
/// variant that names it here.
impl From<keyring_aws::Error> for Error {
    fn from(e: keyring_aws::Error) -> Self {
        match e {
            keyring_aws::Error::CaBundleRead { path, cause } => Error::CaBundleRead { path, cause },
            keyring_aws::Error::CaBundle { path, cause } => Error::CaBundle { path, cause },
            keyring_aws::Error::EnvCa(e) => Error::EnvCa(e),
            keyring_aws::Error::Tls(e) => Error::Tls(causes(&e)),
        }
    }
}

impl Error {
    /// Decides exit code and stale serving.
    pub(crate) fn kind(&self) -> ErrorKind {
        use Error::*;
        match self {
            SdkFile(_)
            | CaBundleRead { .. }
            | CaBundle { .. }
            | EnvCa(_)
            | Tls(_)
            | NoRegion
            | NoCredentials
            | CredentialsConfig { .. }
            | ApiRequest { .. }
            | RoleArn(_)
            | NoRole => ErrorKind::Misconfigured,
            Runtime(_)
            | Deadline { .. }
            | CredentialsTimeout { .. }
            | Credentials { .. }
            | AssumeRoleTimeout { .. }
            | ApiTimeout { .. }
            | ApiUnreachable { .. } => ErrorKind::Unavailable,
            AssumeRoleRefused { status, .. } | ApiRefused { status, .. } => refusal_kind(*status),
            AssumeRole { kind, .. } => *kind,
            NoStsCredentials { .. }
            | AssumeRoleUnreadable { .. }
            | ApiUnreadable { .. }
            | NoToken { .. }
            | TokenShape { .. } => ErrorKind::Protocol,
        }
    }

    /// The error as the binary reports it: `<registry>: <line>`, or `<registry> (<route>):
    /// <line>` when the host alone does not say where the token was asked.
    pub(crate) fn into_backend(self, registry: &str, route: &Route) -> BackendError {
        let message = if route.is_indirect() {
            format!("{registry} ({}): {self}", route.describe())
        } else {
            format!("{registry}: {self}")
        };
        let kind = self.kind();
        match self {
            Error::RoleArn(e) => BackendError::new(NAME, kind, message).with_source(e),
            _ => BackendError::new(NAME, kind, message),
        }
    }

    /// The credentials chain's failure.
    pub(crate) fn credentials(e: &CredentialsError, within: Duration) -> Self {
        match e {
            CredentialsError::CredentialsNotLoaded(_) => Error::NoCredentials,
            CredentialsError::ProviderTimedOut(_) => Error::CredentialsTimeout { within },
            CredentialsError::InvalidConfiguration(_) => {
                Error::CredentialsConfig { cause: causes(e) }
            }
            _ => Error::Credentials { cause: causes(e) },
        }
    }

    /// A failed `AssumeRoleWithWebIdentity`. Only the AWS error code is shown, never the
    /// message (it could quote claims of the token).
    pub(crate) fn assume_role<E>(
        err: SdkError<E, HttpResponse>,
        role_arn: &str,
        endpoint: &str,
        within: Duration,
        attempts: u32,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (role_arn, endpoint) = (role_arn.to_string(), endpoint.to_string());
        match SdkFailure::of(&err) {
            SdkFailure::Timeout => Error::AssumeRoleTimeout {
                role_arn,
                endpoint,
                within,
                attempts,
            },
            SdkFailure::Unreadable(cause) => Error::AssumeRoleUnreadable {
                role_arn,
                endpoint,
                cause,
            },
            SdkFailure::Refused { status, code } => Error::AssumeRoleRefused {
                role_arn,
                endpoint,
                status,
                code,
                attempts,
            },
            SdkFailure::Construction(cause) => Error::AssumeRole {
                kind: ErrorKind::Misconfigured,
                role_arn,
                endpoint,
                cause,
            },
            SdkFailure::Dispatch(cause) | SdkFailure::Other(cause) => Error::AssumeRole {
                kind: ErrorKind::Unavailable,
                role_arn,
                endpoint,
                cause,
            },
        }
    }

    /// A failed `GetAuthorizationToken`.
    pub(crate) fn api<E>(
        err: SdkError<E, HttpResponse>,
        api: Api,
        endpoint: &str,
        within: Duration,
        attempts: u32,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let endpoint = endpoint.to_string();
        match SdkFailure::of(&err) {
            SdkFailure::Construction(cause) => Error::ApiRequest {
                api,
                endpoint,
                cause,
            },
            SdkFailure::Timeout => Error::ApiTimeout {
                api,
                endpoint,
                within,
                attempts,
            },
            SdkFailure::Dispatch(cause) => Error::ApiUnreachable {
                what: "cannot reach",
                endpoint,
                cause,
            },
            SdkFailure::Unreadable(cause) => Error::ApiUnreadable {
                api,
                endpoint,
                cause,
            },
            SdkFailure::Refused { status, code } => Error::ApiRefused {
                api,
                endpoint,
                status,
                code,
                attempts,
            },
            SdkFailure::Other(cause) => Error::ApiUnreachable {
                what: "failed calling",
                endpoint,
                cause,
            },
        }
    }
}

/// How an SDK call failed, as both calls' errors ([`Error::assume_role`], [`Error::api`])
/// tell it: the one reading of an `SdkError`, each cause already made safe ([`causes`],
/// [`safe_code`]).
enum SdkFailure {
    /// The request could not be built.
    Construction(String),
    /// No answer within the SDK's timeouts.
    Timeout,
    /// The service could not be reached.
    Dispatch(String),
    /// An answer not in the API's terms ([`unreadable`]).
    Unreadable(String),
    /// The service refused: its HTTP status and error code (`""` when it sent none).
    Refused { status: u16, code: String },
    /// Any other failure.
    Other(String),
}

impl SdkFailure {
    fn of<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::ConstructionFailure(_) => SdkFailure::Construction(causes(err)),
            SdkError::TimeoutError(_) => SdkFailure::Timeout,
            SdkError::DispatchFailure(_) => SdkFailure::Dispatch(causes(err)),
            _ if unreadable(err) => SdkFailure::Unreadable(causes(err)),
            SdkError::ServiceError(ctx) => SdkFailure::Refused {
                status: ctx.raw().status().as_u16(),
                code: safe_code(err.code()).to_string(),
            },
            _ => SdkFailure::Other(causes(err)),
        }
    }
}

/// Whether the peer answered but not in the API's terms: a body that could not be read (cut
/// at the cap, a broken stream), or a success status whose body does not parse, which the SDK
/// reports as a service error of that status (garbage from a proxy or a wrong endpoint, an
/// expiry of `NaN`). Neither is a refusal: no fix of the role or the permissions helps.
fn unreadable<E>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ResponseError(_) => true,
        SdkError::ServiceError(ctx) => ctx.raw().status().is_success(),
        _ => false,
    }
}

/// A service's refusal is a denial unless it is throttling or a server error.
fn refusal_kind(status: u16) -> ErrorKind {
    if status == 429 || status >= 500 {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Denied
    }
}

/// `HTTP 403 AccessDenied`, or `HTTP 403` without a code.
fn status_and_code(status: u16, code: &str) -> String {
    if code.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {code}")
    }
}

/// The likely fix for a service error of the ECR APIs.
fn service_hint(api: Api, code: &str, status: u16, attempts: u32) -> String {
    match code {
        c if c.starts_with("AccessDenied") || c == "UnauthorizedOperation" || c == "UnauthorizedException" => {
            format!("the AWS identity lacks {}; grant it in the node's (or pod's) IAM role policy", api.permission())
        }
        "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignature" | "MissingAuthenticationToken" => {
            "AWS rejected the credentials; check the access key, secret and session token, and the node's clock".into()
        }
        "ExpiredTokenException" | "ExpiredToken" | "RequestExpired" => {
            "the AWS credentials or the request have expired; refresh the session credentials and check the node's clock".into()
        }
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" => format!(
            "throttled after {attempts} attempts; GetAuthorizationToken is rate-limited per account and region, so fewer callers or a longer cache helps"
        ),
        _ if status == 429 => format!(
            "throttled after {attempts} attempts; GetAuthorizationToken is rate-limited per account and region"
        ),
        _ if status >= 500 => format!("{} failed after {attempts} attempts; retry later", api.name()),
        _ => "check the region and that any AWS_ENDPOINT_URL* setting points at the right service".into(),
    }
}

/// The likely fix for an STS service error.
fn sts_hint(code: &str, status: u16, attempts: u32) -> String {
    match code {
        "AccessDenied" | "AccessDeniedException" => "the role's trust policy does not admit this service account: allow sts:AssumeRoleWithWebIdentity for the cluster's OIDC provider with conditions on sub (system:serviceaccount:<namespace>:<name>) and aud (the kubelet's tokenAttributes.serviceAccountTokenAudience, normally sts.amazonaws.com)".into(),
        "InvalidIdentityToken" => "AWS does not accept the token: register the cluster's service-account issuer as an IAM OIDC identity provider (its discovery document must be public) and list the token's audience as a client ID".into(),
        "ExpiredTokenException" | "ExpiredToken" => "the service-account token has expired; check the node's clock".into(),
        "IDPRejectedClaim" => "the identity provider rejected the token's claims; check the OIDC provider and the role's trust policy".into(),
        "IDPCommunicationError" => format!("STS could not fetch the issuer's signing keys after {attempts} attempts; retry later"),
        "RegionDisabledException" => "STS is not activated in this region; activate it in the account's IAM settings or point AWS_ENDPOINT_URL_STS at another region".into(),
        "ValidationError" | "InvalidParameterValue" | "MalformedPolicyDocument" => "check the role ARN (eks.amazonaws.com/ecr-role-arn, ecr.serviceAccountRoleArn or AWS_ECR_ROLE_ARN)".into(),
        _ if status == 429 || code.starts_with("Throttling") => format!("throttled after {attempts} attempts; retry later"),
        _ if status >= 500 => format!("STS failed after {attempts} attempts; retry later"),
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

/// An error and its sources, `a: b: c`, each source shown once, through [`sanitize`]. Only
/// `Display` texts: the SDK's `Debug` forms repeat everything and can hold raw responses.
pub(crate) fn causes(err: &(dyn std::error::Error + 'static)) -> String {
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
pub(crate) fn sanitize(text: &str) -> String {
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
    fn service_errors_name_the_fix() {
        let hint = |api, code, status| service_hint(api, code, status, 3);
        assert!(
            hint(Api::Private, "AccessDeniedException", 400).contains("ecr:GetAuthorizationToken")
        );
        assert!(
            hint(Api::Public, "AccessDeniedException", 400).contains("sts:GetServiceBearerToken")
        );
        assert!(hint(Api::Private, "UnrecognizedClientException", 400).contains("credentials"));
        assert!(hint(Api::Private, "ThrottlingException", 400).contains("throttled"));
        assert!(hint(Api::Private, "", 429).contains("throttled"));
        assert!(hint(Api::Private, "", 503).contains("retry later"));
        assert!(hint(Api::Private, "", 404).contains("AWS_ENDPOINT_URL"));
    }

    #[test]
    fn every_failure_for_a_mirror_names_where_its_token_was_asked() {
        let mirror = Route::Mirror(crate::config::Mirror {
            host: "mirror.example.com:5000".into(),
            region: "us-west-2".into(),
            registry_id: None,
            fips: false,
            dual_stack: false,
        });
        for e in [
            Error::NoRole,
            Error::TokenShape {
                endpoint: "http://127.0.0.1:1".into(),
                cause: TokenError::Shape,
            },
            Error::NoRegion,
        ] {
            let e = e.into_backend("mirror.example.com:5000", &mirror);
            assert!(
                e.message.starts_with(
                    "mirror.example.com:5000 (ECR us-west-2 via mirror mirror.example.com:5000): "
                ),
                "{e}"
            );
        }
        let private = Route::Private(
            crate::host::PrivateHost::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com")
                .unwrap(),
        );
        let e =
            Error::NoRole.into_backend("123456789012.dkr.ecr.us-east-1.amazonaws.com", &private);
        assert!(
            e.message
                .starts_with("123456789012.dkr.ecr.us-east-1.amazonaws.com: the kubelet sent"),
            "{e}"
        );
    }
}
