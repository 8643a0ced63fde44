//! KEP-4412 on Google Cloud, the exchange: a pod's service-account token turned into a
//! Google access token (GKE workload identity, or workload identity federation for clusters
//! elsewhere). Who exchanges is decided before, by the `identity` module.
//!
//! # The exchange
//!
//! 1. `POST <stsEndpoint>` (default `https://sts.googleapis.com/v1/token`), JSON:
//!    `grant_type` token-exchange, `subject_token_type` jwt, `subject_token` the pod's token,
//!    `requested_token_type` access_token, `scope` cloud-platform, `audience`
//!    `identitynamespace:<project>.svc.id.goog:<identityProvider>` (upstream's; the project
//!    from the config, else the metadata server) or the configured full audience. The answer
//!    is a federated access token (`access_token`, `expires_in`).
//! 2. If the service account names a Google service account ([`GSA_ANNOTATION`]), `POST
//!    <iamCredentialsEndpoint>/v1/projects/-/serviceAccounts/<email>:generateAccessToken`
//!    with the federated token as bearer, for the cloud-platform scope; its `accessToken` and
//!    `expireTime` are the answer. Otherwise the federated token itself is (upstream's
//!    "direct access": the registry grants roles to the `principal://` of the service
//!    account).
//!
//! Both go through [`keyring_net`] (rustls on ring and the system's roots, through
//! `HTTPS_PROXY` unless `NO_PROXY` names the host); each request connects within
//! [`CONNECT_TIMEOUT`] and ends within [`REQUEST_TIMEOUT`] and the invocation deadline, and a
//! refused connection or a 429/5xx answer is tried once more. Errors name the step, the URL,
//! Google's error code (never its message or any body) and the likely fix. The pod's token
//! goes into the STS request body and nowhere else.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use keyring_api::{lifetime, Clock, Deadline, ErrorKind, Secret};
use keyring_net::http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use keyring_net::{Failed, FetchError, Fetched, Policy, Route};
use serde::Deserialize;

use super::metadata::Metadata;
use super::{parse_token_response, AccessToken, SCOPE};
use crate::config::{Audience, WorkloadIdentity};
use crate::error::Error;
use crate::identity::pod::GSA_ANNOTATION;
use crate::identity::Env;

/// Timeouts, one retry, 64 KiB answers.
const POLICY: Policy = Policy {
    attempt: Duration::from_secs(8),
    ..Policy::DEFAULT.with_max_body(64 << 10).with_attempts(2)
};
/// Connect timeout of each request.
pub const CONNECT_TIMEOUT: Duration = POLICY.connect;
/// Whole-exchange timeout of each request.
pub const REQUEST_TIMEOUT: Duration = POLICY.attempt;
/// Attempts for a refused connection or a 429/5xx answer.
const ATTEMPTS: u32 = POLICY.backoff.attempts;

/// Runs the exchange.
pub(crate) async fn exchange(
    wi: &WorkloadIdentity,
    env: &Env,
    token: &Secret<String>,
    impersonate: Option<&str>,
    clock: &Clock,
    deadline: Deadline,
) -> Result<AccessToken, Error> {
    let audience = match &wi.audience {
        Audience::Full(a) => a.clone(),
        Audience::IdentityNamespace {
            project_id,
            identity_provider,
        } => {
            let project = match project_id {
                Some(p) => p.clone(),
                None => {
                    Metadata::new(env.metadata_host.as_deref(), deadline)?
                        .project_id()
                        .await?
                }
            };
            format!("identitynamespace:{project}.svc.id.goog:{identity_provider}")
        }
    };
    let client = Client::new(deadline, Endpoints::WorkloadIdentity)?;
    let started = clock.now();
    let body = serde_json::json!({
        "audience": audience,
        "grant_type": GRANT_TYPE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "scope": SCOPE,
        "subject_token": token.expose(),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    });
    let body = Secret::new(serde_json::to_vec(&body).unwrap_or_default());
    let (federated, expires_at) = sts(
        &client,
        &wi.sts_endpoint,
        Body::Json(body),
        None,
        started,
        "STS token exchange".into(),
        sts_hint,
    )
    .await?;
    let host = wi.sts_endpoint.authority().map_or("", |a| a.as_str());
    tracing::debug!(audience = %audience, "exchanged the service-account token at {host}");
    let Some(email) = impersonate else {
        return Ok(AccessToken {
            token: federated,
            expires_at,
            source: format!("service-account token federated at {host} (audience {audience})"),
        });
    };

    let base = wi.iam_credentials_endpoint.to_string();
    let url = format!(
        "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
        base.trim_end_matches('/')
    );
    let uri: Uri = url.parse().map_err(|_| Error::ServiceAccountEmail {
        annotation: GSA_ANNOTATION,
        value: email.to_string(),
    })?;
    let (token, expires_at) = generate_access_token(
        &client,
        &uri,
        federated,
        None,
        format!("impersonation of {email}"),
        &|status| iam_hint(status, email),
        clock,
    )
    .await?;
    Ok(AccessToken {
        token,
        expires_at,
        source: format!(
            "service-account token federated at {host} (audience {audience}), impersonating {email}"
        ),
    })
}

/// OAuth 2.0 token exchange (RFC 8693).
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type asked of STS: an access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A request body, which may hold a token (wiped when dropped).
pub(crate) enum Body {
    /// `application/json`, as upstream's plugin sends STS.
    Json(Secret<Vec<u8>>),
    /// `application/x-www-form-urlencoded`, as Google's auth libraries send STS.
    Form(Secret<String>),
}

impl Body {
    fn content_type(&self) -> &'static str {
        match self {
            Body::Json(_) => "application/json",
            Body::Form(_) => "application/x-www-form-urlencoded",
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Body::Json(b) => b.expose(),
            Body::Form(f) => f.expose().as_bytes(),
        }
    }
}

/// Google STS: posts `body` (with `authorization`, an HTTP Basic client authentication, if
/// given) to `url` and reads the federated token and its expiry (dated from `started`).
pub(crate) async fn sts(
    client: &Client,
    url: &Uri,
    body: Body,
    authorization: Option<&Secret<String>>,
    started: SystemTime,
    stage: String,
    hint: fn(StatusCode, &str) -> String,
) -> Result<(Secret<String>, SystemTime), Error> {
    let resp = client.post(url, authorization, &body, &stage).await?;
    drop(body);
    let shown = keyring_net::shown_url(&url.to_string());
    if resp.status != StatusCode::OK {
        return Err(refused(stage, &shown, &resp, hint));
    }
    parse_token_response(&resp.body, started).map_err(|reason| Error::Federation {
        kind: ErrorKind::Protocol,
        stage,
        url: shown,
        detail: format!("the answer {reason}"),
        hint: "check that the endpoint is Google STS".into(),
    })
}

/// The IAM credentials API's `generateAccessToken` at `uri`, with the federated token as
/// bearer, for the cloud-platform scope and `lifetime_secs` (the API's default, one hour,
/// when `None`): the token and its `expireTime`.
pub(crate) async fn generate_access_token(
    client: &Client,
    uri: &Uri,
    federated: Secret<String>,
    lifetime_secs: Option<u64>,
    stage: String,
    hint: &dyn Fn(StatusCode) -> String,
    clock: &Clock,
) -> Result<(Secret<String>, SystemTime), Error> {
    let url = keyring_net::shown_url(&uri.to_string());
    let mut body = serde_json::json!({ "scope": [SCOPE] });
    if let Some(secs) = lifetime_secs {
        body["lifetime"] = format!("{secs}s").into();
    }
    let body = Body::Json(Secret::new(serde_json::to_vec(&body).unwrap_or_default()));
    let bearer = Secret::new(format!("Bearer {}", federated.expose()));
    drop(federated);
    let resp = client.post(uri, Some(&bearer), &body, &stage).await?;
    drop(bearer);
    if resp.status != StatusCode::OK {
        return Err(refused(stage, &url, &resp, |status, _| hint(status)));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Generated {
        access_token: Secret<String>,
        expire_time: String,
    }
    let unusable = |detail: &str| Error::Federation {
        kind: ErrorKind::Protocol,
        stage: stage.clone(),
        url: url.clone(),
        detail: detail.into(),
        hint: "check that the endpoint is the IAM credentials API".into(),
    };
    let g: Generated = serde_json::from_slice(&resp.body)
        .map_err(|_| unusable("the answer is not JSON with accessToken and expireTime"))?;
    if g.access_token.expose().is_empty() {
        return Err(unusable("the answer has an empty accessToken"));
    }
    let expire_time = rfc3339_unix_seconds(&g.expire_time)
        .ok_or_else(|| unusable("the answer's expireTime is not an RFC 3339 time"))?;
    // A time already past is the answer's lifetime check's to refuse (naming the clock).
    Ok((
        g.access_token,
        lifetime::expiry_at_unix(clock.now(), expire_time),
    ))
}

/// What a failure's hint tells the operator to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoints {
    /// `gcp.workloadIdentity`'s.
    WorkloadIdentity,
    /// An `external_account` file's.
    CredentialsFile,
}

/// The HTTPS (or loopback HTTP) client of one exchange.
pub(crate) struct Client {
    inner: keyring_net::Client,
    deadline: Deadline,
    endpoints: Endpoints,
}

impl Client {
    /// The client of one exchange, every request by `deadline`.
    pub(crate) fn new(deadline: Deadline, endpoints: Endpoints) -> Result<Self, Error> {
        let inner =
            keyring_net::Client::new(Route::Proxied, POLICY).map_err(|e| Error::Federation {
                kind: ErrorKind::Misconfigured,
                stage: "TLS set-up".into(),
                url: "(none)".into(),
                detail: e.to_string(),
                hint: "install the CA certificates (ca-certificates) or set SSL_CERT_FILE".into(),
            })?;
        Ok(Client {
            inner,
            deadline,
            endpoints,
        })
    }

    /// POSTs `body`, with an `Authorization` header if given; retries a refused connection
    /// and 429/5xx.
    async fn post(
        &self,
        uri: &Uri,
        authorization: Option<&Secret<String>>,
        body: &Body,
        stage: &str,
    ) -> Result<Fetched, Error> {
        self.send(uri, stage, &|| {
            let mut req = Request::builder()
                .method(Method::POST)
                .uri(uri.clone())
                .header(header::CONTENT_TYPE, body.content_type())
                .header(header::USER_AGENT, keyring_net::USER_AGENT);
            if let Some(a) = authorization {
                let mut value = HeaderValue::from_str(a.expose())
                    .unwrap_or_else(|_| HeaderValue::from_static(""));
                value.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, value);
            }
            req.body(Bytes::copy_from_slice(body.bytes()).into())
        })
        .await
    }

    /// Sends what `make` builds (once per attempt); retries a refused connection and 429/5xx.
    /// Errors name `uri` without its query.
    pub(crate) async fn send(
        &self,
        uri: &Uri,
        stage: &str,
        make: &(dyn Fn() -> Result<keyring_net::Req, keyring_net::http::Error> + Sync),
    ) -> Result<Fetched, Error> {
        self.inner
            .send(self.deadline, make, &keyring_net::server_error_or_throttled)
            .await
            .map_err(|cause| unreachable(stage, uri, cause, self.endpoints))
    }
}

fn unreachable(stage: &str, uri: &Uri, failed: Failed, endpoints: Endpoints) -> Error {
    let hint = match (&failed.cause, endpoints) {
        (FetchError::Tls(_), _) => "the server's certificate is not trusted: install the CA certificates (ca-certificates), and for a TLS-inspecting proxy add its CA (or point SSL_CERT_FILE at a bundle with it)",
        (FetchError::TooLarge(_), _) => "the endpoint is not the one meant: check the URL",
        (FetchError::Request(_), Endpoints::WorkloadIdentity) => "check the endpoint in gcp.workloadIdentity",
        (FetchError::Request(_), Endpoints::CredentialsFile) => "check the URLs in the external_account file",
        (_, Endpoints::WorkloadIdentity) => "check that the node reaches Google APIs (firewall, Private Google Access) and the endpoints in gcp.workloadIdentity",
        (_, Endpoints::CredentialsFile) => "check that the node reaches the endpoint (firewall, Private Google Access, the proxy) and the URLs in the external_account file",
    };
    Error::Federation {
        kind: match failed.cause {
            FetchError::Request(_) => ErrorKind::Misconfigured,
            _ => ErrorKind::Unavailable,
        },
        stage: stage.into(),
        url: keyring_net::shown_url(&uri.to_string()),
        detail: failed.to_string(),
        hint: hint.into(),
    }
}

/// A refusal, with Google's error code (`error` of OAuth answers, `error.status` of API
/// answers) when it is a plain code; never the message or the body.
fn refused(
    stage: String,
    url: &str,
    resp: &Fetched,
    hint: impl Fn(StatusCode, &str) -> String,
) -> Error {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        OAuth(String),
        Api { status: Option<String> },
    }
    #[derive(Deserialize)]
    struct Body {
        error: Option<Code>,
    }
    let code = serde_json::from_slice::<Body>(&resp.body)
        .ok()
        .and_then(|b| match b.error? {
            Code::OAuth(c) => Some(c),
            Code::Api { status } => status,
        })
        .filter(|c| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .unwrap_or_default();
    let detail = if code.is_empty() {
        format!("refused with HTTP {}", resp.status.as_u16())
    } else {
        format!("refused with HTTP {} {code}", resp.status.as_u16())
    };
    let kind = if resp.status.is_server_error() || resp.status == StatusCode::TOO_MANY_REQUESTS {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Denied
    };
    Error::Federation {
        kind,
        stage,
        url: url.to_string(),
        detail,
        hint: hint(resp.status, &code),
    }
}

fn sts_hint(status: StatusCode, code: &str) -> String {
    match code {
        "invalid_target" | "invalid_request" => "gcp.workloadIdentity does not name an existing workload identity pool provider: check identityProvider and projectId, or audience".into(),
        "invalid_grant" | "unauthorized_client" | "access_denied" => "Google STS does not accept the service-account token: the pool's provider must trust the cluster's issuer, and the kubelet's tokenAttributes.serviceAccountTokenAudience must be an audience the provider allows".into(),
        _ if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => format!("Google STS failed after {ATTEMPTS} attempts; retry later"),
        _ => "check gcp.workloadIdentity and the kubelet's tokenAttributes.serviceAccountTokenAudience".into(),
    }
}

fn iam_hint(status: StatusCode, email: &str) -> String {
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => format!("grant the Kubernetes service account's principal roles/iam.workloadIdentityUser on {email}"),
        StatusCode::NOT_FOUND => format!("the Google service account {email} does not exist; fix the annotation {GSA_ANNOTATION}"),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => format!("the IAM credentials API failed after {ATTEMPTS} attempts; retry later"),
        _ => format!("check the annotation {GSA_ANNOTATION} ({email})"),
    }
}

/// An RFC 3339 time as Google writes it (`2024-05-01T12:34:56.123456789Z`, or with an
/// offset), in whole seconds since the Unix epoch (negative before it; the fraction, checked,
/// is dropped: a token's expiry a moment early is harmless).
pub(crate) fn rfc3339_unix_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let (sign, hm) = match rest.as_bytes().first()? {
                b'+' => (1, &rest[1..]),
                b'-' => (-1, &rest[1..]),
                _ => return None,
            };
            let (hh, mm) = hm.split_once(':')?;
            if hh.len() != 2 || mm.len() != 2 {
                return None;
            }
            sign * (hh.parse::<i64>().ok()? * 3600 + mm.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // At most four-digit years: no overflow.
    Some(days * 86_400 + hour * 3600 + min * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_are_read_as_google_writes_them_and_nothing_else() {
        let t = rfc3339_unix_seconds;
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("2024-05-01T12:34:56Z"), Some(1_714_566_896));
        assert_eq!(t("2024-05-01T12:34:56.5Z"), Some(1_714_566_896));
        assert_eq!(t("2024-05-01T14:34:56+02:00"), Some(1_714_566_896));
        assert_eq!(t("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(t("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(t("0000-01-01T00:00:00Z"), Some(-62_167_219_200));
        assert_eq!(t("9999-12-31T23:59:59.999999999Z"), Some(253_402_300_799));
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01 12:34:56Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T12:34:56",
            "2024-05-01T12:34:56.Z",
            "2024-05-01T12:34:56+0200",
            "+2024-05-01T12:34:56Z",
            "10000-01-01T00:00:00Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn refusals_show_the_code_only() {
        let fetched = |status: u16, body: &str| Fetched {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: Bytes::from(body.to_string()),
            attempts: 1,
        };
        let e = refused(
            "STS token exchange".into(),
            "https://sts.googleapis.com/v1/token",
            &fetched(
                400,
                r#"{"error":"invalid_grant","error_description":"SECRET claim"}"#,
            ),
            sts_hint,
        )
        .to_string();
        assert!(e.starts_with("STS token exchange at https://sts.googleapis.com/v1/token: refused with HTTP 400 invalid_grant; Google STS does not accept"), "{e}");
        assert!(!e.contains("SECRET"));
        let e = refused(
            "impersonation of a@p.iam.gserviceaccount.com".into(),
            "u",
            &fetched(
                403,
                r#"{"error":{"code":403,"message":"SECRET","status":"PERMISSION_DENIED"}}"#,
            ),
            |s, _| iam_hint(s, "a@p.iam.gserviceaccount.com"),
        )
        .to_string();
        assert!(
            e.contains("HTTP 403 PERMISSION_DENIED; grant")
                && e.contains("roles/iam.workloadIdentityUser"),
            "{e}"
        );
        assert!(!e.contains("SECRET"));
        let e = refused(
            "s".into(),
            "u",
            &fetched(502, "<html>SECRET</html>"),
            sts_hint,
        )
        .to_string();
        assert!(
            e.contains("refused with HTTP 502; Google STS failed after 2 attempts"),
            "{e}"
        );
        let e = refused(
            "s".into(),
            "u",
            &fetched(400, r#"{"error":"bad code!"}"#),
            sts_hint,
        )
        .to_string();
        assert!(e.contains("refused with HTTP 400;"), "{e}");
    }
}
