//! Workload identity federation files (`"type": "external_account"`, as `gcloud iam
//! workload-identity-pools create-cred-config` writes them), read and checked here without
//! network I/O; the calls they describe (the subject token from its source, Google STS, the
//! IAM credentials API) are the `token` module's.
//!
//! The fields, as Google's auth libraries read them (AIP-4117):
//!
//! | field | here |
//! |---|---|
//! | `audience` | required: the workload (or workforce) identity pool provider |
//! | `subject_token_type` | required, sent as given |
//! | `token_url` | Google STS; default `https://sts.googleapis.com/v1/token` |
//! | `service_account_impersonation_url` | optional: then the STS token is traded for that service account's (`…/serviceAccounts/EMAIL:generateAccessToken`) |
//! | `service_account_impersonation.token_lifetime_seconds` | optional, 600 to 43200 (Google's bounds) |
//! | `client_id`, `client_secret` | optional, both or neither: HTTP Basic at STS |
//! | `workforce_pool_user_project` | optional, workforce pool audiences only |
//! | `credential_source` | exactly one of `file`, `url` (with `headers`), `environment_id: aws1`, as below |
//! | `quota_project_id`, `universe_domain`, `token_info_url` | not used |
//!
//! Credential sources ([`SubjectSource`]): `file` (text, or JSON with `format.type: json` and
//! `format.subject_token_field_name`); `url` (the same formats, `headers` sent with the GET);
//! `environment_id: aws1` with `regional_cred_verification_url` and, for the metadata
//! server, `region_url`, `url` and `imdsv2_session_token_url`; `executable` with `command`
//! (an absolute path and its arguments, split at white space, no shell), `timeout_millis`
//! (5000 to 120000, default 30000) and `output_file`, run only when
//! `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1` (Google's rule). `certificate` (X.509
//! federation over mutual TLS) is refused.
//!
//! Where tokens may travel in clear: `token_url` and the impersonation URL receive tokens, so
//! they are `https://`, or `http://` to a loopback address (tests, a local proxy), as
//! `gcp.workloadIdentity`'s endpoints. The source URLs only *give* a token (Azure's IMDS,
//! AWS's metadata server): `https://`, or `http://` to a loopback or link-local address or
//! AWS's IPv6 metadata address `fd00:ec2::254`, never through a proxy. No URL has user-info;
//! only the source URL may have a query (Azure IMDS needs one), and no message shows it.
//!
//! Errors name the file and the field, never a value that may be secret (the client secret,
//! a header value, a query).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyring_api::Secret;
use keyring_net::http::{HeaderName, HeaderValue, Uri};
use serde::Deserialize;

use super::key_file::Origin;
use crate::error::Error;

/// Google STS's token endpoint, where a file without `token_url` exchanges.
pub const DEFAULT_TOKEN_URL: &str = "https://sts.googleapis.com/v1/token";
/// The `subject_token_type` of an AWS signed request.
pub const AWS_TOKEN_TYPE: &str = "urn:ietf:params:aws:token-type:aws4_request";

/// A checked `external_account` file.
#[derive(Debug)]
pub(crate) struct ExternalAccount {
    /// The pool provider, STS's `audience`.
    pub audience: String,
    /// STS's `subject_token_type`.
    pub subject_token_type: String,
    /// Google STS.
    pub token_url: Uri,
    /// The service account to become after STS, if any.
    pub impersonation: Option<Impersonation>,
    /// `client_id` and `client_secret`, sent as HTTP Basic to STS.
    pub client: Option<(String, Secret<String>)>,
    /// `workforce_pool_user_project`, sent as STS's `options.userProject`.
    pub user_project: Option<String>,
    /// Where the subject token comes from.
    pub source: SubjectSource,
}

/// `service_account_impersonation_url` and its lifetime.
#[derive(Debug)]
pub(crate) struct Impersonation {
    /// The `generateAccessToken` URL.
    pub url: Uri,
    /// The service account's e-mail, when the URL names it the usual way.
    pub email: Option<String>,
    /// `token_lifetime_seconds`, when set.
    pub lifetime_secs: Option<u64>,
}

/// Where the subject token comes from.
#[derive(Debug)]
pub(crate) enum SubjectSource {
    /// A file, read anew on each exchange.
    File { path: PathBuf, format: Format },
    /// A GET of `url` with `headers` (values marked sensitive).
    Url {
        url: Uri,
        headers: Vec<(HeaderName, HeaderValue)>,
        format: Format,
    },
    /// A signed AWS `GetCallerIdentity` request.
    Aws(Aws),
    /// A program's answer (Google's executable response).
    Executable(Executable),
}

/// An `executable` credential source.
#[derive(Debug)]
pub(crate) struct Executable {
    /// The program (an absolute path) and its arguments.
    pub argv: Vec<String>,
    /// `timeout_millis`.
    pub timeout: Duration,
    /// `output_file`: a response the program may have left from an earlier run.
    pub output_file: Option<PathBuf>,
}

/// How the subject token is written in a file or a URL's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Format {
    /// The whole text (surrounding white space dropped).
    Text,
    /// The string field of that name in a JSON object.
    Json { field: String },
}

/// An `aws1` credential source.
#[derive(Debug)]
pub(crate) struct Aws {
    /// `regional_cred_verification_url`, `{region}` to be replaced.
    pub verification_url: String,
    /// `region_url`: the availability zone from the metadata server.
    pub region_url: Option<Uri>,
    /// `url`: the role's name, and with it appended its credentials.
    pub credentials_url: Option<Uri>,
    /// `imdsv2_session_token_url`: an IMDSv2 session token for those requests.
    pub imdsv2_url: Option<Uri>,
}

#[derive(Deserialize)]
struct Raw {
    audience: Option<String>,
    subject_token_type: Option<String>,
    token_url: Option<String>,
    service_account_impersonation_url: Option<String>,
    service_account_impersonation: Option<RawImpersonation>,
    client_id: Option<String>,
    client_secret: Option<Secret<String>>,
    workforce_pool_user_project: Option<String>,
    credential_source: Option<RawSource>,
}

#[derive(Deserialize)]
struct RawImpersonation {
    token_lifetime_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct RawSource {
    file: Option<String>,
    url: Option<String>,
    headers: Option<BTreeMap<String, Secret<String>>>,
    format: Option<RawFormat>,
    environment_id: Option<String>,
    region_url: Option<String>,
    regional_cred_verification_url: Option<String>,
    imdsv2_session_token_url: Option<String>,
    executable: Option<RawExecutable>,
    certificate: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawExecutable {
    command: Option<String>,
    timeout_millis: Option<u64>,
    output_file: Option<String>,
}

#[derive(Deserialize)]
struct RawFormat {
    #[serde(rename = "type")]
    kind: Option<String>,
    subject_token_field_name: Option<String>,
}

/// Who may receive a URL's traffic in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plain {
    /// Tokens are sent there: `http://` to loopback only.
    Loopback,
    /// A token is fetched from there: loopback, link-local, AWS's `fd00:ec2::254`.
    Local,
}

/// Reads an `external_account` file's JSON (already known to be that type).
pub(crate) fn parse(
    path: &Path,
    origin: Origin,
    json: &Secret<String>,
) -> Result<ExternalAccount, Error> {
    let fail = |reason: String, hint: &'static str| Error::CredentialsFile {
        origin: origin.describe(),
        path: path.display().to_string(),
        reason: format!("external_account: {reason}"),
        hint,
    };
    const REMAKE: &str =
        "write the file again with gcloud iam workload-identity-pools create-cred-config";
    let raw: Raw = serde_json::from_str(json.expose()).map_err(|e| {
        fail(
            format!(
                "a field has the wrong type (error at line {} column {})",
                e.line(),
                e.column()
            ),
            REMAKE,
        )
    })?;
    let text = |field: &str, v: Option<String>| -> Result<String, Error> {
        match v {
            Some(v) if !v.is_empty() && v.len() <= 2048 && !v.chars().any(char::is_control) => {
                Ok(v)
            }
            Some(_) => Err(fail(
                format!("{field} is empty, too long or has control characters"),
                REMAKE,
            )),
            None => Err(fail(format!("no {field}"), REMAKE)),
        }
    };
    let audience = text("audience", raw.audience)?;
    let subject_token_type = text("subject_token_type", raw.subject_token_type)?;
    let checked = |field: &str, value: &str, plain: Plain| {
        check_url(value, plain).map_err(|why| fail(format!("{field} {why}"), REMAKE))
    };
    let token_url = checked(
        "token_url",
        raw.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL),
        Plain::Loopback,
    )?;
    let lifetime_secs = raw
        .service_account_impersonation
        .and_then(|i| i.token_lifetime_seconds);
    if let Some(secs) = lifetime_secs {
        if !(600..=43_200).contains(&secs) {
            return Err(fail(
                format!("service_account_impersonation.token_lifetime_seconds {secs} is not between 600 and 43200"),
                "fix the lifetime, or remove it for one hour",
            ));
        }
    }
    let impersonation = match raw.service_account_impersonation_url {
        Some(u) => {
            let url = checked("service_account_impersonation_url", &u, Plain::Loopback)?;
            let email = url
                .path()
                .rsplit_once("/serviceAccounts/")
                .and_then(|(_, rest)| rest.strip_suffix(":generateAccessToken"))
                .filter(|e| e.contains('@'))
                .map(str::to_string);
            Some(Impersonation {
                url,
                email,
                lifetime_secs,
            })
        }
        None => None,
    };
    let client = match (raw.client_id, raw.client_secret) {
        (None, None) => None,
        (Some(id), Some(secret)) if !id.is_empty() && !secret.expose().is_empty() => {
            Some((id, secret))
        }
        _ => {
            return Err(fail(
                "client_id and client_secret go together".into(),
                "set both (a workforce pool's OAuth client) or neither",
            ))
        }
    };
    let user_project = match raw.workforce_pool_user_project {
        Some(_) if !is_workforce(&audience) => {
            return Err(fail(
                "workforce_pool_user_project is set but the audience is not a workforce pool's"
                    .into(),
                REMAKE,
            ));
        }
        Some(p) => Some(text("workforce_pool_user_project", Some(p))?),
        None => None,
    };
    let Some(src) = raw.credential_source else {
        return Err(fail("no credential_source".into(), REMAKE));
    };
    let chosen = [
        src.file.is_some(),
        src.url.is_some() && src.environment_id.is_none(),
        src.environment_id.is_some(),
        src.executable.is_some(),
        src.certificate.is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        return Err(fail(
            "credential_source must have exactly one of file, url, environment_id, executable"
                .into(),
            REMAKE,
        ));
    }
    if src.certificate.is_some() {
        return Err(fail(
            "credential_source.certificate (X.509 federation over mutual TLS) is not supported"
                .into(),
            "use a file, url or aws credential source",
        ));
    }
    let format = || -> Result<Format, Error> {
        match src.format.as_ref() {
            None => Ok(Format::Text),
            Some(f) => match (f.kind.as_deref(), &f.subject_token_field_name) {
                (None | Some("text"), _) => Ok(Format::Text),
                (Some("json"), Some(field)) if !field.is_empty() => Ok(Format::Json {
                    field: field.clone(),
                }),
                (Some("json"), _) => Err(fail(
                    "credential_source.format json needs subject_token_field_name".into(),
                    REMAKE,
                )),
                (Some(other), _) => Err(fail(
                    format!(
                        "credential_source.format.type {:?} is neither text nor json",
                        shown(other)
                    ),
                    REMAKE,
                )),
            },
        }
    };
    let source = if let Some(exe) = src.executable {
        let argv: Vec<String> = exe
            .command
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !argv.first().is_some_and(|p| p.starts_with('/')) {
            return Err(fail(
                "credential_source.executable.command must start with the program's absolute path"
                    .into(),
                REMAKE,
            ));
        }
        let millis = exe.timeout_millis.unwrap_or(30_000);
        if !(5_000..=120_000).contains(&millis) {
            return Err(fail(
                format!("credential_source.executable.timeout_millis {millis} is not between 5000 and 120000"),
                REMAKE,
            ));
        }
        SubjectSource::Executable(Executable {
            argv,
            timeout: Duration::from_millis(millis),
            output_file: exe.output_file.filter(|f| !f.is_empty()).map(PathBuf::from),
        })
    } else if let Some(file) = src.file {
        if file.is_empty() {
            return Err(fail("credential_source.file is empty".into(), REMAKE));
        }
        SubjectSource::File {
            path: PathBuf::from(file),
            format: format()?,
        }
    } else if let Some(env_id) = src.environment_id {
        if env_id != "aws1" {
            return Err(fail(
                format!(
                    "credential_source.environment_id {:?} is not supported (only aws1)",
                    shown(&env_id)
                ),
                REMAKE,
            ));
        }
        let Some(verification_url) = src.regional_cred_verification_url else {
            return Err(fail(
                "credential_source has no regional_cred_verification_url".into(),
                REMAKE,
            ));
        };
        // Never requested here (Google STS calls it), but it is what the signature is for.
        check_url(
            &verification_url.replace("{region}", "us-east-1"),
            Plain::Local,
        )
        .ok()
        .filter(|u| u.scheme_str() == Some("https"))
        .ok_or_else(|| {
            fail(
                "credential_source.regional_cred_verification_url is not an https:// URL".into(),
                REMAKE,
            )
        })?;
        let local = |field: &str, v: Option<String>| {
            v.map(|v| checked(&format!("credential_source.{field}"), &v, Plain::Local))
                .transpose()
        };
        SubjectSource::Aws(Aws {
            verification_url,
            region_url: local("region_url", src.region_url)?,
            credentials_url: local("url", src.url)?,
            imdsv2_url: local("imdsv2_session_token_url", src.imdsv2_session_token_url)?,
        })
    } else {
        let url = src.url.unwrap_or_default();
        let url = checked("credential_source.url", &url, Plain::Local)?;
        let mut headers = Vec::new();
        for (name, value) in src.headers.unwrap_or_default() {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                fail(
                    format!(
                        "credential_source.headers: {:?} is not a header name",
                        shown(&name)
                    ),
                    REMAKE,
                )
            })?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                fail(
                    format!("credential_source.headers.{name}: the value is not a header value"),
                    REMAKE,
                )
            })?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        SubjectSource::Url {
            url,
            headers,
            format: format()?,
        }
    };
    Ok(ExternalAccount {
        audience,
        subject_token_type,
        token_url,
        impersonation,
        client,
        user_project,
        source,
    })
}

impl ExternalAccount {
    /// What `explain` says: the source, STS and the service account, never a secret or a
    /// query.
    pub(crate) fn describe(&self) -> String {
        let url = |u: &Uri| keyring_net::shown_url(&u.to_string());
        let source = match &self.source {
            SubjectSource::File { path, .. } => format!("the subject token in {}", path.display()),
            SubjectSource::Url { url: u, .. } => format!("the subject token from {}", url(u)),
            SubjectSource::Aws(_) => "a signed AWS GetCallerIdentity request".to_string(),
            SubjectSource::Executable(e) => format!(
                "the subject token {} prints (if GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1)",
                e.argv[0]
            ),
        };
        let mut line = format!(
            "{source} exchanged at {} (audience {})",
            url(&self.token_url),
            self.audience
        );
        if let Some(imp) = &self.impersonation {
            line.push_str(&format!(
                ", then impersonating {}",
                imp.email
                    .as_deref()
                    .unwrap_or("the service account of service_account_impersonation_url")
            ));
        }
        line
    }
}

/// A workforce pool provider's audience (`//iam.googleapis.com/locations/L/workforcePools/…`).
fn is_workforce(audience: &str) -> bool {
    audience
        .split_once("/locations/")
        .is_some_and(|(_, rest)| rest.split('/').nth(1) == Some("workforcePools"))
}

/// A value for a message: at most 64 characters, no control characters.
fn shown(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// A URL's check: `https://`, or `http://` to the hosts `plain` allows; a host, no user-info,
/// no fragment, and a query only where a token is fetched (`Plain::Local`). The reason never
/// quotes the query.
fn check_url(url: &str, plain: Plain) -> Result<Uri, String> {
    let shown = keyring_net::shown_url(url);
    let uri: Uri = url
        .parse()
        .map_err(|_| format!("{:?} is not a URL", self::shown(&shown)))?;
    let host = uri.host().unwrap_or_default();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let loopback = host == "localhost" || ip.is_some_and(|ip| ip.is_loopback());
    let local = loopback
        || ip.is_some_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => {
                (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
            }
        });
    match (uri.scheme_str(), plain) {
        (Some("https"), _) => {}
        (Some("http"), Plain::Loopback) if loopback => {}
        (Some("http"), Plain::Local) if local => {}
        (Some("http"), Plain::Loopback) => {
            return Err(format!(
                "{shown:?} must be https:// (http:// only to a loopback address): a token is sent there"
            ))
        }
        (Some("http"), Plain::Local) => {
            return Err(format!(
                "{shown:?} must be https:// (http:// only to a loopback or link-local address, such as a cloud's metadata server)"
            ))
        }
        _ => return Err(format!("{shown:?} is not an https:// URL")),
    }
    if host.is_empty() || uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(format!("{shown:?} needs a host and no user-info"));
    }
    if url.contains('#') || (uri.query().is_some() && plain == Plain::Loopback) {
        return Err(format!("{shown:?} must not have a query or fragment"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests;
