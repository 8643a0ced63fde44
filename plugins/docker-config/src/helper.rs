//! Docker credential helpers: `docker-credential-<name> get`, run the way the docker CLI runs
//! them (docker-credential-helpers' `client.Get`), with the discipline a kubelet plugin needs.
//!
//! Protocol: the program `docker-credential-<name>`, found on `PATH`, is spawned directly (no
//! shell) with the single argument `get`; the server address is written on its stdin, which is
//! then closed. On success (exit 0) it prints `{"ServerURL":..,"Username":..,"Secret":..}` on
//! stdout (keys in any case, as Go decodes them; only the first JSON value counts, as with Go's
//! `json.Decoder`). A non-zero exit with exactly `credentials not found in native keychain` on
//! stdout means "no credentials", not a failure. A `Username` of `<token>` means the `Secret`
//! is an identity token (an OAuth refresh token), which the kubelet's `AuthConfig` cannot carry.
//!
//! Discipline: the helper runs through [`keyring_api::process::run`], in a process group of
//! its own, its stdout and stderr read concurrently, within [`DEFAULT_TIMEOUT`] cut to what
//! is left of the invocation's deadline; on a timeout, an oversized reply or any other error
//! the whole group is killed and the helper reaped, so a shell-script helper does not leave
//! its children behind. Stdout is bounded ([`MAX_OUTPUT_BYTES`]) and held as a [`Secret`].
//! Errors never quote either output: stdout may hold the secret, and stderr may hold what
//! the helper was told or read (a "login failed" line with the password in it). A failure
//! says the helper, its exit status and how many bytes of stderr were withheld, at any `-v`.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use keyring_api::process::{self, Limits};
use keyring_api::{Deadline, Secret};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::parse::key_is;

/// What every helper program's name starts with.
pub const PROGRAM_PREFIX: &str = "docker-credential-";

/// How long one helper run may take, spawn to exit: a third of the kubelet's fixed 60 s
/// budget for the whole plugin run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// **For tests only**: a Go duration (`2s`, `500ms`) that shortens the helper timeout, so the
/// timeout path can be tested quickly. Values above [`DEFAULT_TIMEOUT`] are capped to it;
/// invalid values are ignored with a warning.
pub const TIMEOUT_ENV: &str = "KUBELET_KEYRING_HELPER_TIMEOUT";

/// The most a helper may print on stdout. A real reply is well under 10 KiB (an ECR token is
/// about 2 KiB; a GCP access token with its JSON, under 4 KiB).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// The stdout text (trimmed) of a helper that has no credentials for the server.
pub const NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";

/// The `Username` that marks the `Secret` as an identity token.
pub const TOKEN_USERNAME: &str = "<token>";

/// Why a helper name from the config file cannot be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// `""`: the docker CLI treats it as "no helper"; callers should not get here with it.
    #[error("is empty")]
    Empty,
    /// A `/` would turn the name into a path outside `PATH`.
    #[error("contains '/'")]
    Slash,
    /// Whitespace or control characters: a copy-paste error, or an attempt at arguments.
    #[error("contains whitespace or a control character")]
    Whitespace,
}

/// Checks a helper suffix (`ecr-login`, `gcloud`): non-empty, no `/`, no whitespace or
/// control characters. The program run is [`PROGRAM_PREFIX`] + name, looked up on `PATH`.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        Err(NameError::Empty)
    } else if name.contains('/') {
        Err(NameError::Slash)
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(NameError::Whitespace)
    } else {
        Ok(())
    }
}

/// The program for a (valid) helper suffix.
pub fn program(name: &str) -> String {
    format!("{PROGRAM_PREFIX}{name}")
}

/// The helper timeout for a value of [`TIMEOUT_ENV`] (`None` when unset): see there.
pub fn timeout_from_env(value: Option<&OsStr>) -> Duration {
    let Some(value) = value else {
        return DEFAULT_TIMEOUT;
    };
    let parsed = value
        .to_str()
        .and_then(|s| keyring_api::duration::parse(s).ok())
        .and_then(|nanos| u64::try_from(nanos).ok())
        .filter(|&nanos| nanos > 0);
    match parsed {
        Some(nanos) => Duration::from_nanos(nanos).min(DEFAULT_TIMEOUT),
        None => {
            tracing::warn!(
                "ignoring {TIMEOUT_ENV}={:?}: not a positive Go duration",
                value.to_string_lossy().chars().take(64).collect::<String>()
            );
            DEFAULT_TIMEOUT
        }
    }
}

/// Credentials a helper returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `Username`.
    pub username: String,
    /// `Secret`: the password or token.
    pub secret: Secret<String>,
}

/// What a helper said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// User name and secret.
    Credentials(Credentials),
    /// No credentials for this server: the "not found" answer, or an empty user and secret.
    NotFound,
    /// An identity token (`Username` `<token>`), which the kubelet cannot use; the token
    /// itself is dropped.
    IdentityToken,
}

/// Why a helper's stdout is not a credentials reply. Names fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplyError(String);

/// How a helper run failed. The texts are safe to show: they never contain anything the
/// helper wrote, on stdout or stderr.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The program is not on `PATH`.
    #[error("is not on PATH")]
    NotOnPath,
    /// It is there but could not be started (permissions, bad interpreter line, ...).
    #[error("could not be started: {0}")]
    Spawn(#[source] io::Error),
    /// Talking to it (pipes, waiting) failed.
    #[error("could not be run to the end: {0}")]
    Io(#[source] io::Error),
    /// It did not finish within its own timeout; it was killed with its group.
    #[error("did not answer within {}", keyring_api::duration::format(*.0))]
    Timeout(Duration),
    /// It did not finish in what was left of the invocation's deadline (the `Duration`),
    /// shorter than its own timeout; it was killed with its group.
    #[error(
        "did not answer in the {:.1}s left of this invocation's deadline",
        .0.as_secs_f64()
    )]
    OutOfTime(Duration),
    /// It printed more than [`MAX_OUTPUT_BYTES`]; it was killed.
    #[error("printed more than {} bytes", MAX_OUTPUT_BYTES)]
    TooLarge,
    /// It exited non-zero (or died by a signal) without the "not found" answer.
    #[error("failed ({status}){}", withheld(*.stderr_len))]
    Failed {
        /// How it ended.
        status: ExitStatus,
        /// How many bytes it wrote on stderr: never shown, as they may hold a secret.
        stderr_len: u64,
    },
    /// It exited 0 but its stdout is not a credentials reply.
    #[error("printed a reply that is not docker credential helper JSON ({0})")]
    BadReply(#[source] ReplyError),
}

fn withheld(stderr_len: u64) -> String {
    match stderr_len {
        0 => String::new(),
        n => format!("; its stderr ({n} bytes) was withheld, as it may hold a secret"),
    }
}

impl From<process::Error> for HelperError {
    fn from(e: process::Error) -> Self {
        match e {
            process::Error::NotFound => HelperError::NotOnPath,
            process::Error::Spawn(e) => HelperError::Spawn(e),
            process::Error::Io(e) => HelperError::Io(e),
            process::Error::TimedOut(given) => HelperError::OutOfTime(given),
            process::Error::StdoutTooLarge(_) => HelperError::TooLarge,
        }
    }
}

impl HelperError {
    /// What kind of failure this is: a helper that is missing or cannot start is the node's
    /// set-up; one that fails, hangs or answers nonsense is a peer that may recover.
    pub fn kind(&self) -> keyring_api::ErrorKind {
        use keyring_api::ErrorKind;
        match self {
            HelperError::NotOnPath | HelperError::Spawn(_) => ErrorKind::Misconfigured,
            HelperError::Io(_)
            | HelperError::Timeout(_)
            | HelperError::OutOfTime(_)
            | HelperError::Failed { .. } => ErrorKind::Unavailable,
            HelperError::TooLarge | HelperError::BadReply(_) => ErrorKind::Protocol,
        }
    }

    /// The likely fix, for the one-line error the kubelet logs.
    pub fn fix(&self) -> &'static str {
        match self {
            HelperError::NotOnPath => "install it in a directory on the PATH of the credential provider (the kubelet's CredentialProviderConfig env), or fix the helper name in the docker config",
            HelperError::Spawn(_) | HelperError::Io(_) => "check that it is an executable program for this machine",
            HelperError::Timeout(_) | HelperError::OutOfTime(_) => "check the helper's network access and its own configuration",
            HelperError::TooLarge | HelperError::BadReply(_) => "check that the helper named in the docker config is a docker credential helper",
            HelperError::Failed { .. } => "check the helper's own configuration and login for this registry",
        }
    }
}

/// Runs `program get` with `server_url` on stdin and interprets its answer; see the module
/// docs. It gets `timeout`, cut to what is left of `invocation`.
pub fn get(
    program: &str,
    server_url: &str,
    timeout: Duration,
    invocation: Deadline,
) -> Result<Reply, HelperError> {
    let own = Deadline::after(timeout);
    let mut command = Command::new(program);
    command.arg("get");
    let limits = Limits {
        stdout: MAX_OUTPUT_BYTES,
        // Never shown, so never kept: only counted.
        stderr_kept: 0,
    };
    let out =
        process::run(command, server_url.as_bytes(), limits, own.min(invocation)).map_err(|e| {
            match HelperError::from(e) {
                HelperError::OutOfTime(_) if own <= invocation => HelperError::Timeout(timeout),
                e => e,
            }
        })?;
    if out.status.success() {
        return parse_reply(out.stdout.expose()).map_err(HelperError::BadReply);
    }
    let said = String::from_utf8_lossy(out.stdout.expose());
    if said.trim() == NOT_FOUND_MESSAGE {
        return Ok(Reply::NotFound);
    }
    Err(HelperError::Failed {
        status: out.status,
        stderr_len: out.stderr_len,
    })
}

/// Parses the stdout of a successful `get`: the first JSON value must be an object; its
/// `Username` and `Secret` (any key case; strings or null) are the credentials, other keys
/// are ignored. Empty user and secret count as [`Reply::NotFound`].
pub fn parse_reply(stdout: &[u8]) -> Result<Reply, ReplyError> {
    // Lossy, as Go replaces invalid UTF-8; the copy is a Secret so it is wiped too.
    let text = Secret::new(String::from_utf8_lossy(stdout).into_owned());
    let mut de = serde_json::Deserializer::from_str(text.expose());
    let (username, secret) = ReplySeed
        .deserialize(&mut de)
        .map_err(|e| ReplyError(e.to_string()))?;
    let secret = Secret::new(secret);
    if username == TOKEN_USERNAME {
        return Ok(Reply::IdentityToken);
    }
    if username.is_empty() && secret.expose().is_empty() {
        return Ok(Reply::NotFound);
    }
    Ok(Reply::Credentials(Credentials { username, secret }))
}

/// The reply object: `(Username, Secret)`.
struct ReplySeed;

impl<'de> DeserializeSeed<'de> for ReplySeed {
    type Value = (String, String);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ReplySeed {
    type Value = (String, String);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut username, mut secret) = (String::new(), String::new());
        while let Some(key) = map.next_key::<String>()? {
            if key_is(&key, "Username") {
                if let Some(v) = map.next_value_seed(crate::parse::StringSeed("Username"))? {
                    username = v;
                }
            } else if key_is(&key, "Secret") {
                if let Some(v) = map.next_value_seed(crate::parse::StringSeed("Secret"))? {
                    // The old value is a secret too: wipe it rather than just drop it.
                    drop(Secret::new(std::mem::replace(&mut secret, v)));
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok((username, secret))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom("expected a JSON object, found null"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom("expected a JSON object"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom("expected a JSON object"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom("expected a JSON object"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom("expected a JSON object"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom("expected a JSON object"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom("expected a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_that_are_empty_or_hold_a_slash_or_whitespace_are_refused() {
        for ok in [
            "ecr-login",
            "gcloud",
            "desktop",
            "osxkeychain",
            "a.b_c-1",
            "ünïcode",
        ] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_name(""), Err(NameError::Empty));
        for slash in ["../bin/sh", "/usr/bin/id", "a/b"] {
            assert_eq!(validate_name(slash), Err(NameError::Slash), "{slash}");
        }
        for ws in ["ecr login", "x\n", "\tx", "a\u{a0}b", "a\0b", "a\u{1b}b"] {
            assert_eq!(validate_name(ws), Err(NameError::Whitespace), "{ws:?}");
        }
        assert_eq!(program("ecr-login"), "docker-credential-ecr-login");
    }

    #[test]
    fn the_timeout_variable_can_only_shorten_the_timeout() {
        assert_eq!(timeout_from_env(None), DEFAULT_TIMEOUT);
        assert_eq!(
            timeout_from_env(Some(OsStr::new("1500ms"))),
            Duration::from_millis(1500)
        );
        assert_eq!(timeout_from_env(Some(OsStr::new("5m"))), DEFAULT_TIMEOUT);
        for bad in ["", "0s", "-1s", "soon", "10"] {
            assert_eq!(
                timeout_from_env(Some(OsStr::new(bad))),
                DEFAULT_TIMEOUT,
                "{bad}"
            );
        }
    }

    fn creds(user: &str, secret: &str) -> Reply {
        Reply::Credentials(Credentials {
            username: user.into(),
            secret: Secret::new(secret.into()),
        })
    }

    #[test]
    fn replies_parse_as_go_decodes_them_and_errors_quote_no_value() {
        let ok: &[(&str, Reply)] = &[
            (
                r#"{"ServerURL":"reg.io","Username":"AWS","Secret":"tok"}"#,
                creds("AWS", "tok"),
            ),
            // Go folds key case, ignores unknown keys and anything after the first value.
            (
                r#"{"username":"u","SECRET":"s","Extra":[1,{"a":2}]} trailing junk"#,
                creds("u", "s"),
            ),
            ("{\"Username\":\"u\",\"Secret\":\"s\"}\n", creds("u", "s")),
            (r#"{"Username":"u","Secret":null}"#, creds("u", "")),
            (
                r#"{"Username":"<token>","Secret":"refresh"}"#,
                Reply::IdentityToken,
            ),
            (r#"{"ServerURL":"reg.io"}"#, Reply::NotFound),
            (r#"{"Username":"","Secret":""}"#, Reply::NotFound),
        ];
        for (json, want) in ok {
            assert_eq!(parse_reply(json.as_bytes()).as_ref(), Ok(want), "{json}");
        }
        for bad in [
            "",
            "null",
            "[]",
            "\"s3cret-value\"",
            "credentials not found in native keychain",
            r#"{"Username":"u","Secret":12345678}"#,
            r#"{"Username":"u","Secret":["s3cret-value"]}"#,
            r#"{"Username":"u","Secret":"s3cret-value""#,
        ] {
            let err = parse_reply(bad.as_bytes()).unwrap_err().to_string();
            assert!(
                !err.contains("s3cret") && !err.contains("12345678") && !err.contains('\n'),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_failure_says_how_much_stderr_was_withheld_never_what() {
        use std::os::unix::process::ExitStatusExt;
        let failed = |stderr_len| HelperError::Failed {
            status: ExitStatus::from_raw(1 << 8),
            stderr_len,
        };
        assert_eq!(failed(0).to_string(), "failed (exit status: 1)");
        assert_eq!(
            failed(57).to_string(),
            "failed (exit status: 1); its stderr (57 bytes) was withheld, as it may hold a secret"
        );
    }

    #[test]
    fn a_missing_program_is_not_on_path() {
        let err = get(
            "docker-credential-surely-not-installed-7f3a",
            "reg.io",
            DEFAULT_TIMEOUT,
            Deadline::invocation(),
        )
        .unwrap_err();
        assert!(matches!(err, HelperError::NotOnPath), "{err}");
    }
}
