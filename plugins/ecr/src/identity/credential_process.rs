//! AWS profiles whose credentials come from a `credential_process`, run by this backend
//! rather than by the SDK, so the process ends with the call: the SDK's own provider spawns
//! it unbounded and, when the call's time runs out and its future is dropped, leaves it (and
//! whatever it started) running, one more per pull.
//!
//! * Which profiles ([`find`]): the selected profile's chain walked as the SDK's profile
//!   provider walks it (aws-config's `profile/credentials/repr.rs`, `resolve_chain`):
//!   `role_arn` hops through `source_profile`, a source profile's static keys winning, and
//!   the first profile without a role its base. Only a chain whose base is a
//!   `credential_process` is taken here; any other chain, and any chain the SDK would
//!   refuse (a loop, a missing profile, `credential_source` beside `source_profile`), is left
//!   to the SDK, which reports it as before. The SDK is built without its own
//!   `credential_process` support, so no profile can reach an unbounded process; a unit test
//!   runs this walk against the SDK's (with that support) on every shape of chain.
//! * Running ([`CredentialProcess`], a `ProvideCredentials`): as the SDK runs it, the line
//!   through `sh -c` with the invocation's environment and working directory, no stdin;
//!   through [`keyring_api::process::run`]: its own process group, stdout up to
//!   [`MAX_STDOUT`] (the SDK has no limit), killed with its group when the credentials'
//!   share of the invocation's time passes (then the chain's time-out error) or on any
//!   other early end, and by the watchdog at the invocation's exit limit. Stderr is never
//!   shown: a failure says how many bytes it held (the SDK quotes it whole, and it may
//!   carry a secret). The process runs on the call's one runtime thread, blocking it: the
//!   chain is sequential, and a process run from a thread of its own would outlive a
//!   dropped future, which is the bug this module removes.
//! * The answer ([`parse`]): the SDK's format and errors: a JSON object, keys matched
//!   without regard to case, the last of a key winning; `Version` 1; `AccessKeyId` and
//!   `SecretAccessKey` required; `SessionToken`, `AccountId` (else the profile's
//!   `aws_account_id`) and `Expiration` (RFC 3339, read by the same parser as the SDK's and
//!   made a time through [`keyring_api::lifetime::expiry_at_unix`]) optional. A JSON error
//!   says where, never what was read.
//! * Roles on top ([`ProcessChain::credentials`]): each `role_arn` of the chain assumed in
//!   turn with the credentials before it (`sts:AssumeRole`, the role's `external_id` and
//!   `role_session_name`, else the SDK's `assume-role-from-profile-<millis>`), through the
//!   SDK's own assume-role provider and the call's SDK settings.

use std::fmt;
use std::time::SystemTime;

use aws_config::profile::{Profile, ProfileSet};
use aws_credential_types::attributes::AccountId;
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_types::sdk_config::SdkConfig;
use keyring_api::process::{self, Limits};
use keyring_api::{lifetime, Deadline, Secret};
use serde::de::{Deserializer, MapAccess, Visitor};

/// The most a `credential_process` may print: a reply is a few hundred bytes.
pub(crate) const MAX_STDOUT: usize = 64 << 10;

/// A profile chain whose base is a `credential_process`.
#[derive(Debug)]
pub(crate) struct ProcessChain {
    /// The base profile's process.
    pub base: Base,
    /// The roles assumed on top of it, the first one with the process's credentials.
    pub roles: Vec<Role>,
}

/// The base profile's `credential_process` and the account it falls back to.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// The command line, as written (its arguments may be secrets).
    pub command: Secret<String>,
    /// The profile's `aws_account_id`.
    pub account_id: Option<String>,
}

/// One `role_arn` hop of a profile chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Role {
    pub arn: String,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
}

/// The chain of the selected profile of `set` when its base is a `credential_process`;
/// `None` for any other chain, or one the SDK would refuse (see the module docs).
pub(crate) fn find(set: &ProfileSet) -> Option<ProcessChain> {
    // Each step as in aws-config's `resolve_chain`; every way it errors or picks another
    // base is a `None` here, leaving the profile to the SDK.
    if set.is_empty() {
        return None;
    }
    let selected = set.selected_profile();
    if selected == "default" && set.get_profile("default").is_none() {
        return None;
    }
    let mut name = selected;
    let mut visited: Vec<&str> = Vec::new();
    let mut roles = Vec::new();
    let base = loop {
        let profile = set.get_profile(name)?;
        if visited.contains(&name) {
            return None;
        }
        visited.push(name);
        // A source profile's static keys are the base, whatever else it holds.
        if visited.len() > 1
            && profile.get("aws_access_key_id").is_some()
            && profile.get("aws_secret_access_key").is_some()
        {
            return None;
        }
        let role = match profile.get("web_identity_token_file") {
            Some(_) => None,
            None => profile.get("role_arn").map(|arn| Role {
                arn: arn.to_string(),
                external_id: profile.get("external_id").map(str::to_string),
                session_name: profile.get("role_session_name").map(str::to_string),
            }),
        };
        let Some(role) = role else {
            break base(profile)?;
        };
        roles.push(role);
        match (
            profile.get("source_profile"),
            profile.get("credential_source"),
        ) {
            (Some(source), None) if source == profile.name() => break base(profile)?,
            (Some(source), None) => name = source,
            // `credential_source` is a named provider (Environment, Ec2InstanceMetadata, ...);
            // both or neither, an error: the SDK's.
            _ => return None,
        }
    };
    roles.reverse();
    Some(ProcessChain { base, roles })
}

/// The base `profile` stands for, if it is a `credential_process`: the SDK's
/// `base_provider`, whose earlier kinds win.
fn base(profile: &Profile) -> Option<Base> {
    const EARLIER: [&str; 8] = [
        "credential_source",
        "web_identity_token_file",
        "sso_account_id",
        "sso_region",
        "sso_role_name",
        "sso_start_url",
        "sso_session",
        "login_session",
    ];
    if EARLIER.iter().any(|k| profile.get(k).is_some()) {
        return None;
    }
    Some(Base {
        command: Secret::new(profile.get("credential_process")?.to_string()),
        account_id: profile.get("aws_account_id").map(str::to_string),
    })
}

impl ProcessChain {
    /// The chain's credentials: the process's, then each role's in turn through STS with
    /// `sdk` (the call's HTTP client, region, retries and endpoints). The process must end
    /// by `deadline`; `now` is the clock's, for the expiry and a default session name.
    /// Errors are the SDK profile provider's: a failed link is a provider error (a process
    /// out of time is a time-out).
    pub(crate) async fn credentials(
        &self,
        sdk: &SdkConfig,
        deadline: Deadline,
        now: SystemTime,
    ) -> provider::Result {
        let process = CredentialProcess {
            base: self.base.clone(),
            deadline,
            now,
        };
        let mut creds = match process.provide_credentials().await {
            Ok(c) => c,
            Err(e @ CredentialsError::ProviderTimedOut(_)) => return Err(e),
            Err(e) => return Err(CredentialsError::provider_error(e)),
        };
        for role in &self.roles {
            let session_name = role.session_name.clone().unwrap_or_else(|| {
                let millis = now
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                format!("assume-role-from-profile-{millis}")
            });
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(&role.arn)
                .configure(sdk)
                .session_name(session_name);
            if let Some(id) = &role.external_id {
                builder = builder.external_id(id);
            }
            let provider = builder.build_from_provider(creds).await;
            creds = provider
                .provide_credentials()
                .await
                .map_err(CredentialsError::provider_error)?;
        }
        creds
            .get_property_mut_or_default::<Vec<AwsCredentialFeature>>()
            .push(AwsCredentialFeature::CredentialsProfile);
        Ok(creds)
    }
}

/// A profile's `credential_process`, run under `deadline` (see the module docs).
#[derive(Debug)]
pub(crate) struct CredentialProcess {
    pub base: Base,
    pub deadline: Deadline,
    /// The clock's time, for [`lifetime::expiry_at_unix`].
    pub now: SystemTime,
}

impl ProvideCredentials for CredentialProcess {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        // Run when polled, on the runtime's thread: see the module docs.
        future::ProvideCredentials::new(async move { self.run() })
    }
}

impl CredentialProcess {
    fn run(&self) -> provider::Result {
        let failed = |what: String| CredentialsError::provider_error(what);
        tracing::debug!("loading credentials from the profile's credential_process");
        let limits = Limits {
            stdout: MAX_STDOUT,
            stderr_kept: 0,
        };
        let command = process::shell(self.base.command.expose());
        let out = process::run(command, b"", limits, self.deadline).map_err(|e| match e {
            process::Error::TimedOut(given) => CredentialsError::provider_timed_out(given),
            e => failed(format!(
                "Error retrieving credentials from external process: sh -c <credential_process> {e}"
            )),
        })?;
        if !out.status.success() {
            return Err(failed(format!(
                "Error retrieving credentials: external process exited with code {}. Stderr: {} bytes, not shown (it may hold a secret)",
                out.status, out.stderr_len
            )));
        }
        let text = std::str::from_utf8(out.stdout.expose()).map_err(|e| {
            failed(format!(
                "Error retrieving credentials from external process: could not decode output as UTF-8: {e}"
            ))
        })?;
        let mut creds = parse(text, self.base.account_id.as_deref(), self.now).map_err(|e| {
            failed(format!(
                "Error retrieving credentials from external process, could not parse response: {e}"
            ))
        })?;
        creds
            .get_property_mut_or_default::<Vec<AwsCredentialFeature>>()
            .push(AwsCredentialFeature::CredentialsProcess);
        Ok(creds)
    }
}

/// Why a `credential_process` reply was refused: the SDK's texts. None quotes the reply.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Invalid {
    /// Not a JSON object, or no JSON at all.
    #[error("invalid JSON in response: {0}")]
    Json(String),
    /// A required field is missing (or is not a string, or `Version` not a number).
    #[error("Expected field `{0}` in response but it was missing")]
    Missing(&'static str),
    /// A field has a value that cannot be used.
    #[error("Invalid field in response: `{field}`. {reason}")]
    Field { field: &'static str, reason: String },
}

/// A `credential_process` reply as the SDK reads it (see the module docs); `account_id` is
/// the profile's, `now` the clock's.
pub(crate) fn parse(
    reply: &str,
    account_id: Option<&str>,
    now: SystemTime,
) -> Result<Credentials, Invalid> {
    if !reply.trim_start().starts_with('{') {
        return Err(Invalid::Json(
            "expected a JSON document starting with `{`".into(),
        ));
    }
    let Fields(fields) = serde_json::from_str(reply).map_err(|e| Invalid::Json(where_(&e)))?;
    let (mut version, mut key_id, mut secret, mut session, mut expiration) =
        (None, None, None, None, None);
    let mut account = account_id.map(str::to_string);
    for (key, value) in fields {
        let is = |name: &str| key.eq_ignore_ascii_case(name);
        match value {
            serde_json::Value::Number(n) if is("Version") => {
                let v = n
                    .as_i64()
                    .map(|v| i32::try_from(v).map_err(|e| e.to_string()))
                    .or_else(|| {
                        n.as_u64()
                            .map(|v| i32::try_from(v).map_err(|e| e.to_string()))
                    })
                    .unwrap_or_else(|| Err("not an integer".into()));
                version = Some(v.map_err(|reason| Invalid::Field {
                    field: "Version",
                    reason,
                })?);
            }
            serde_json::Value::String(s) if is("AccessKeyId") => key_id = Some(s),
            serde_json::Value::String(s) if is("SecretAccessKey") => secret = Some(s),
            serde_json::Value::String(s) if is("SessionToken") => session = Some(s),
            serde_json::Value::String(s) if is("Expiration") => expiration = Some(s),
            serde_json::Value::String(s) if is("AccountId") => account = Some(s),
            _ => {}
        }
    }
    match version {
        Some(1) => {}
        None => return Err(Invalid::Missing("Version")),
        Some(v) => {
            return Err(Invalid::Field {
                field: "version",
                reason: format!("unknown version number: {v}"),
            })
        }
    }
    let key_id = key_id.ok_or(Invalid::Missing("AccessKeyId"))?;
    let secret = secret.ok_or(Invalid::Missing("SecretAccessKey"))?;
    let expiry = expiration
        .map(|e| {
            time::OffsetDateTime::parse(&e, &time::format_description::well_known::Rfc3339)
                .map(|t| lifetime::expiry_at_unix(now, t.unix_timestamp()))
                .map_err(|err| Invalid::Field {
                    field: "Expiration",
                    reason: err.to_string(),
                })
        })
        .transpose()?;
    let mut builder = Credentials::builder()
        .access_key_id(key_id)
        .secret_access_key(secret)
        .provider_name("CredentialProcess");
    builder.set_session_token(session);
    builder.set_expiry(expiry);
    builder.set_account_id(account.map(AccountId::from));
    Ok(builder.build())
}

/// Where a JSON error is, and of what kind, without what was read there.
fn where_(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "syntax error",
        Category::Data => "not an object",
        Category::Eof => "unexpected end",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

/// A JSON object's members in the order written (a later duplicate must win, as in the
/// SDK's reader, whatever the case of its key).
struct Fields(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Fields(members))
            }
        }
        d.deserialize_map(Members)
    }
}

#[cfg(test)]
mod tests;
