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
//! Discipline: stdout and stderr are read concurrently by two threads while the caller waits
//! for the exit, all within one deadline ([`DEFAULT_TIMEOUT`], well under the kubelet's
//! 60 s). Stdout is bounded ([`MAX_OUTPUT_BYTES`]) and held as a [`Secret`]. The helper runs
//! in its own process group, and on a timeout, an oversized reply or any other error the
//! whole group is killed and the helper reaped, so a shell-script helper does not leave its
//! children behind. Errors never quote stdout (it may hold the secret); a failure shows only
//! the first line of stderr, truncated.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use keyring_api::Secret;
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

/// How much of stderr is kept for the error message; the rest is read and dropped, so the
/// helper never blocks on a full pipe.
const MAX_STDERR_KEPT: usize = 64 << 10;

/// How many characters of stderr's first line an error shows.
const STDERR_SHOWN_CHARS: usize = 200;

/// How often the exit status is polled while waiting.
const POLL: Duration = Duration::from_millis(5);

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

/// How a helper run failed. The texts are safe to show: they never contain stdout or a
/// secret; [`HelperError::Failed`] carries only the first line of stderr, truncated.
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
    /// It did not finish within the timeout; it was killed.
    #[error("did not answer within {}", keyring_api::duration::format(*.0))]
    Timeout(Duration),
    /// It printed more than [`MAX_OUTPUT_BYTES`]; it was killed.
    #[error("printed more than {} bytes", MAX_OUTPUT_BYTES)]
    TooLarge,
    /// It exited non-zero (or died by a signal) without the "not found" answer.
    #[error("failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        /// How it ended.
        status: ExitStatus,
        /// The first non-empty line of its stderr, truncated; empty if it printed nothing.
        stderr: String,
    },
    /// It exited 0 but its stdout is not a credentials reply.
    #[error("printed a reply that is not docker credential helper JSON ({0})")]
    BadReply(#[source] ReplyError),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl HelperError {
    /// What kind of failure this is: a helper that is missing or cannot start is the node's
    /// set-up; one that fails, hangs or answers nonsense is a peer that may recover.
    pub fn kind(&self) -> keyring_api::ErrorKind {
        use keyring_api::ErrorKind;
        match self {
            HelperError::NotOnPath | HelperError::Spawn(_) => ErrorKind::Misconfigured,
            HelperError::Io(_) | HelperError::Timeout(_) | HelperError::Failed { .. } => {
                ErrorKind::Unavailable
            }
            HelperError::TooLarge | HelperError::BadReply(_) => ErrorKind::Protocol,
        }
    }

    /// The likely fix, for the one-line error the kubelet logs.
    pub fn fix(&self) -> &'static str {
        match self {
            HelperError::NotOnPath => "install it in a directory on the PATH of the credential provider (the kubelet's CredentialProviderConfig env), or fix the helper name in the docker config",
            HelperError::Spawn(_) | HelperError::Io(_) => "check that it is an executable program for this machine",
            HelperError::Timeout(_) => "check the helper's network access and its own configuration",
            HelperError::TooLarge | HelperError::BadReply(_) => "check that the helper named in the docker config is a docker credential helper",
            HelperError::Failed { .. } => "check the helper's own configuration and login for this registry",
        }
    }
}

/// Runs `program get` with `server_url` on stdin and interprets its answer; see the module
/// docs.
pub fn get(program: &str, server_url: &str, timeout: Duration) -> Result<Reply, HelperError> {
    let out = run(program, server_url.as_bytes(), timeout)?;
    if out.status.success() {
        return parse_reply(out.stdout.expose()).map_err(HelperError::BadReply);
    }
    let said = String::from_utf8_lossy(out.stdout.expose());
    if said.trim() == NOT_FOUND_MESSAGE {
        return Ok(Reply::NotFound);
    }
    Err(HelperError::Failed {
        status: out.status,
        stderr: first_line(&out.stderr),
    })
}

/// The first non-empty line of `stderr`, trimmed, with control characters replaced, at most
/// 200 characters (then `…`).
pub fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut shown: String = line
        .chars()
        .take(STDERR_SHOWN_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().nth(STDERR_SHOWN_CHARS).is_some() {
        shown.push('…');
    }
    shown
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

/// What a finished helper left: its exit status and its two outputs.
struct Finished {
    status: ExitStatus,
    stdout: Secret<Vec<u8>>,
    stderr: Vec<u8>,
}

/// A message from a reader thread.
enum Stream {
    Stdout(Result<Secret<Vec<u8>>, HelperError>),
    Stderr(io::Result<Vec<u8>>),
}

/// A spawned helper that is killed (its whole process group) and reaped on drop, unless it
/// was seen to exit and nothing of its group holds our pipes any more.
struct Running {
    child: Child,
    finished: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The helper leads its own group (process_group(0)), so its pid is the group id.
        // If it has exited but a child of it still holds our pipes, the group still exists
        // and its id cannot have been reused.
        let pid = rustix::process::Pid::from_child(&self.child);
        if let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
            tracing::debug!("killing the helper's process group: {e}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `program get`, feeds `input`, collects both outputs, all within `timeout`.
fn run(program: &str, input: &[u8], timeout: Duration) -> Result<Finished, HelperError> {
    let deadline = Instant::now() + timeout;
    let mut command = Command::new(program);
    command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = command.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => HelperError::NotOnPath,
        _ => HelperError::Spawn(e),
    })?;
    let mut running = Running {
        child,
        finished: false,
    };

    let (tx, rx) = mpsc::channel();
    if let Some(out) = running.child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Stream::Stdout(read_stdout(out)));
        });
    }
    if let Some(err) = running.child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Stream::Stderr(read_stderr(err)));
        });
    }
    drop(tx);
    if let Some(mut stdin) = running.child.stdin.take() {
        // A helper may exit without reading its input; that is its answer to judge, not a
        // failure to write. The input is a host name, far below a pipe's buffer, so this
        // cannot block. Dropping stdin closes it.
        match stdin.write_all(input) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
            Err(e) => return Err(HelperError::Io(e)),
        }
    }

    let (mut status, mut stdout, mut stderr) = (None, None, None);
    loop {
        if status.is_none() {
            status = running.child.try_wait().map_err(HelperError::Io)?;
        }
        if let (Some(status), Some(_), Some(_)) = (status, &stdout, &stderr) {
            running.finished = true;
            return Ok(Finished {
                status,
                stdout: stdout.unwrap_or_default(),
                stderr: stderr.unwrap_or_default(),
            });
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(HelperError::Timeout(timeout));
        }
        let wait = (deadline - now).min(POLL);
        match rx.recv_timeout(wait) {
            Ok(Stream::Stdout(r)) => stdout = Some(r?),
            Ok(Stream::Stderr(r)) => stderr = Some(r.map_err(HelperError::Io)?),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both readers are done: only the exit status is left to wait for.
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
        }
    }
}

/// Reads stdout to its end, failing as soon as it passes [`MAX_OUTPUT_BYTES`].
fn read_stdout(out: impl Read) -> Result<Secret<Vec<u8>>, HelperError> {
    let mut buf = Vec::with_capacity(16 << 10);
    let read = out.take(MAX_OUTPUT_BYTES as u64 + 1).read_to_end(&mut buf);
    let buf = Secret::new(buf);
    read.map_err(HelperError::Io)?;
    if buf.expose().len() > MAX_OUTPUT_BYTES {
        return Err(HelperError::TooLarge);
    }
    Ok(buf)
}

/// Reads stderr to its end, keeping the first [`MAX_STDERR_KEPT`] bytes.
fn read_stderr(err: impl Read) -> io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut err = err;
    (&mut err)
        .take(MAX_STDERR_KEPT as u64)
        .read_to_end(&mut kept)?;
    io::copy(&mut err, &mut io::sink())?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
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
    fn timeout_env_only_shortens() {
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
    fn replies_parse_like_go() {
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
    fn stderr_is_shown_as_one_short_line() {
        assert_eq!(first_line(b""), "");
        assert_eq!(
            first_line(b"\n  \n  oops: no config\nmore\n"),
            "oops: no config"
        );
        assert_eq!(first_line(b"a\rb\x1b[31mc"), "a b [31mc");
        assert_eq!(first_line("a\u{7}b".as_bytes()), "a b");
        let long = "x".repeat(500);
        let shown = first_line(long.as_bytes());
        assert_eq!(shown.chars().count(), STDERR_SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn a_missing_program_is_not_on_path() {
        let err = get(
            "docker-credential-surely-not-installed-7f3a",
            "reg.io",
            DEFAULT_TIMEOUT,
        )
        .unwrap_err();
        assert!(matches!(err, HelperError::NotOnPath), "{err}");
    }
}
