//! The subject token from a `file` or `url` credential source: the whole text (white space
//! around it dropped: a token never has any, and a file written by `echo` ends in a newline
//! that Google's Go library would send along) or, with `format.type: json`, the string field
//! `subject_token_field_name` of a JSON object.
//!
//! A file is opened without blocking ([`keyring_api::file::open`]) and read up to 1 MiB (as
//! Google's Go library), anew on each exchange (projected tokens rotate). A URL is fetched
//! with GET and the file's `headers`, its answer read up to 64 KiB (the exchange client's
//! cap): a source that answers more fails at once, without reading the rest. Errors never
//! quote the text, the answer or a header value.
//!
//! A program ([`from_executable`], AIP-4117's executable-sourced credentials) runs only with
//! `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`, through [`keyring_api::process`]: its
//! argument vector directly (no shell), the plugin's environment plus Google's
//! `GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE`, `_TOKEN_TYPE`, `_INTERACTIVE=0`, `_IMPERSONATED_EMAIL`
//! and `_OUTPUT_FILE`, empty stdin, in a process group of its own that is killed at
//! `timeout_millis` or the invocation's deadline, whichever comes first, stdout up to 1 MiB.
//! Its answer is Google's executable response: `version` 1, `success`, `token_type` (jwt or
//! id_token with `id_token`, saml2 with `saml_response`), `expiration_time` (required with an
//! `output_file`; a time past is refused). An unexpired successful response in `output_file`
//! is used without running the program; an expired or failed one there is not. A failure
//! names the program and its exit status or Google's `code`, never its output or `message`.

use std::path::Path;

use bytes::Bytes;
use keyring_api::process::{self, Limits};
use keyring_api::{lifetime, Clock, Deadline, ErrorKind, Secret};
use keyring_net::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use serde::Deserialize;

use crate::error::Error;
use crate::identity::external_account::{Executable, ExternalAccount, Format};
use crate::identity::key_file::Origin;
use crate::identity::Env;
use crate::token::federation::Client;

/// Largest subject token file (or executable response, printed or in its output file) read.
const MAX_FILE: u64 = 1 << 20;

/// The subject token in `token` (named by the credentials file `path`).
pub(crate) fn from_file(
    token: &Path,
    format: &Format,
    origin: Origin,
    path: &Path,
) -> Result<Secret<String>, Error> {
    let fail = |reason: String, hint: &'static str| Error::CredentialsFile {
        origin: origin.describe(),
        path: path.display().to_string(),
        reason: format!("credential_source.file {}: {reason}", token.display()),
        hint,
    };
    let file = keyring_api::file::open(token).map_err(|e| {
        let (reason, hint) = match e.kind() {
            std::io::ErrorKind::NotFound => (
                "no such file".to_string(),
                "check the path, and that whatever writes the token (a projected volume, an agent) runs",
            ),
            _ => (format!("cannot open: {e}"), "check the file and its permissions"),
        };
        fail(reason, hint)
    })?;
    let bytes =
        keyring_api::file::read_secret_at_most(file, MAX_FILE).map_err(|e| match e.kind() {
            std::io::ErrorKind::FileTooLarge => fail(
                e.to_string(),
                "point credential_source.file at the token itself",
            ),
            _ => fail(
                format!("cannot read: {e}"),
                "check the file and its permissions",
            ),
        })?;
    extract(bytes.expose(), format).map_err(|reason| {
        fail(
            reason,
            "check the file's contents and credential_source.format",
        )
    })
}

/// The subject token at `url`, fetched with `headers` (for the credentials file `file`).
pub(crate) async fn from_url(
    client: &Client,
    url: &Uri,
    headers: &[(HeaderName, HeaderValue)],
    format: &Format,
    file: &str,
) -> Result<Secret<String>, Error> {
    let stage = format!("{file}: subject token");
    let shown = keyring_net::shown_url(&url.to_string());
    let resp = client
        .send(url, &stage, &|| {
            let mut req = Request::builder()
                .method(Method::GET)
                .uri(url.clone())
                .header(header::USER_AGENT, keyring_net::USER_AGENT);
            for (name, value) in headers {
                req = req.header(name, value.clone());
            }
            req.body(Bytes::new().into())
        })
        .await?;
    let body = Secret::new(resp.body.to_vec());
    if resp.status != StatusCode::OK {
        let kind = if keyring_net::server_error_or_throttled(resp.status) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Denied
        };
        return Err(Error::Federation {
            kind,
            stage,
            url: shown,
            detail: format!("refused with HTTP {}", resp.status.as_u16()),
            hint: "check credential_source.url and its headers, and that the token service runs"
                .into(),
        });
    }
    extract(body.expose(), format).map_err(|reason| Error::Federation {
        kind: ErrorKind::Protocol,
        stage,
        url: shown,
        detail: format!("the answer {reason}"),
        hint: "check credential_source.url and credential_source.format".into(),
    })
}

/// The subject token `exe` prints (or left in its output file), for the credentials file
/// `file` of `account`.
pub(crate) fn from_executable(
    exe: &Executable,
    account: &ExternalAccount,
    env: &Env,
    clock: &Clock,
    deadline: Deadline,
    file: &str,
) -> Result<Secret<String>, Error> {
    let program = exe.argv[0].clone();
    let fail = |kind, detail: String, hint| Error::Executable {
        kind,
        file: file.to_string(),
        program: program.clone(),
        detail,
        hint,
    };
    if !env.allow_executables {
        return Err(fail(
            ErrorKind::Misconfigured,
            "not run: GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES is not 1".into(),
            "set GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 in the plugin's env (the kubelet's config entry) if this program is meant to run, as Google's libraries require",
        ));
    }
    let now = clock.now();
    if let Some(cached) = &exe.output_file {
        match read_output_file(cached) {
            Ok(None) => {}
            Ok(Some(bytes)) => match response(bytes.expose(), true, now) {
                Ok(token) => return Ok(token),
                Err(Refused::Expired | Refused::Failed(_)) => {}
                Err(Refused::Bad(detail)) => {
                    return Err(fail(
                        ErrorKind::Protocol,
                        format!("its output file {}: {detail}", cached.display()),
                        "remove the output file, or fix the program that writes it",
                    ))
                }
            },
            Err(e) => {
                return Err(fail(
                    ErrorKind::Misconfigured,
                    format!("its output file {}: {e}", cached.display()),
                    "check the file and its permissions",
                ))
            }
        }
    }
    let mut command = std::process::Command::new(&program);
    command.args(&exe.argv[1..]);
    command.env("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &account.audience);
    command.env(
        "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
        &account.subject_token_type,
    );
    command.env("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0");
    if let Some(email) = account
        .impersonation
        .as_ref()
        .and_then(|i| i.email.as_ref())
    {
        command.env("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL", email);
    }
    if let Some(f) = &exe.output_file {
        command.env("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", f);
    }
    let limits = Limits {
        stdout: MAX_FILE as usize,
        ..Limits::default()
    };
    let own = Deadline::after(exe.timeout);
    let out = process::run(command, b"", limits, own.min(deadline)).map_err(|e| {
        let (kind, hint) = match e {
            process::Error::NotFound | process::Error::Spawn(_) => (
                ErrorKind::Misconfigured,
                "check credential_source.executable.command and the program's permissions",
            ),
            process::Error::TimedOut(_) => (
                ErrorKind::Unavailable,
                "the program must print its response within timeout_millis (and the invocation's deadline); it was killed with its process group",
            ),
            process::Error::StdoutTooLarge(_) => (
                ErrorKind::Protocol,
                "the program must print one executable response; it was killed with its process group",
            ),
            process::Error::Io(_) => (ErrorKind::Unavailable, "retry; check the program"),
        };
        fail(kind, e.to_string(), hint)
    })?;
    if !out.status.success() {
        return Err(fail(
            ErrorKind::Unavailable,
            match out.status.code() {
                Some(code) => format!(
                    "exited with status {code} ({} bytes of stderr withheld)",
                    out.stderr_len
                ),
                None => format!(
                    "ended by {} ({} bytes of stderr withheld)",
                    out.status, out.stderr_len
                ),
            },
            "run the program by hand as the kubelet's user with the same environment",
        ));
    }
    response(out.stdout.expose(), exe.output_file.is_some(), now).map_err(|r| match r {
        Refused::Failed(code) => fail(
            ErrorKind::Denied,
            format!("it answered success false {code}").trim_end().to_string(),
            "run the program by hand as the kubelet's user with the same environment",
        ),
        Refused::Expired => fail(
            ErrorKind::Protocol,
            "its response has an expiration_time already past".into(),
            "check the program and the node's clock",
        ),
        Refused::Bad(detail) => fail(
            ErrorKind::Protocol,
            detail,
            "the program must print Google's executable response (version 1, success, token_type, id_token or saml_response, expiration_time)",
        ),
    })
}

/// The output file's bytes; `None` when it is missing or empty.
fn read_output_file(path: &Path) -> Result<Option<Secret<Vec<u8>>>, String> {
    let file = match keyring_api::file::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let bytes =
        keyring_api::file::read_secret_at_most(file, MAX_FILE).map_err(|e| match e.kind() {
            std::io::ErrorKind::FileTooLarge => e.to_string(),
            _ => format!("cannot read: {e}"),
        })?;
    Ok((!bytes.expose().is_empty()).then_some(bytes))
}

/// Why a response gives no token.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// Its `expiration_time` is past.
    Expired,
    /// `success: false`, with Google's `code` when it is a plain one (never the message).
    Failed(String),
    /// Not a usable response; the text never quotes it.
    Bad(String),
}

/// The token of an executable response (AIP-4117); `expiration_time` is required when
/// `needs_expiry` (a response in an output file must say how long it holds).
fn response(
    bytes: &[u8],
    needs_expiry: bool,
    now: std::time::SystemTime,
) -> Result<Secret<String>, Refused> {
    #[derive(Deserialize)]
    struct Response {
        version: Option<u64>,
        success: Option<bool>,
        token_type: Option<String>,
        expiration_time: Option<i64>,
        id_token: Option<Secret<String>>,
        saml_response: Option<Secret<String>>,
        code: Option<String>,
    }
    let bad = |s: &str| Refused::Bad(s.to_string());
    let r: Response = serde_json::from_slice(bytes)
        .map_err(|_| bad("its response is not a JSON executable response"))?;
    match r.version {
        Some(1) => {}
        Some(v) => {
            return Err(Refused::Bad(format!(
                "its response has version {v}; only 1 is supported"
            )))
        }
        None => return Err(bad("its response has no version")),
    }
    match r.success {
        Some(true) => {}
        Some(false) => {
            // Google's code when it is a plain one, never the message.
            let code = r
                .code
                .filter(|c| {
                    c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
                .unwrap_or_default();
            return Err(Refused::Failed(code));
        }
        None => return Err(bad("its response has no success")),
    }
    match r.expiration_time {
        Some(t) if lifetime::expiry_at_unix(now, t) <= now => return Err(Refused::Expired),
        Some(_) => {}
        None if needs_expiry => {
            return Err(bad(
                "its response has no expiration_time (required with output_file)",
            ))
        }
        None => {}
    }
    let token = match r.token_type.as_deref() {
        Some(
            "urn:ietf:params:oauth:token-type:jwt" | "urn:ietf:params:oauth:token-type:id_token",
        ) => r
            .id_token
            .ok_or_else(|| bad("its response has no id_token"))?,
        Some("urn:ietf:params:oauth:token-type:saml2") => r
            .saml_response
            .ok_or_else(|| bad("its response has no saml_response"))?,
        Some(_) => {
            return Err(bad(
                "its response's token_type is not jwt, id_token or saml2",
            ))
        }
        None => return Err(bad("its response has no token_type")),
    };
    extract(token.expose().as_bytes(), &Format::Text)
        .map_err(|e| Refused::Bad(format!("its response {e}")))
}

/// The token in `bytes` as `format` says; the reason never quotes them.
pub(crate) fn extract(bytes: &[u8], format: &Format) -> Result<Secret<String>, String> {
    let token = match format {
        Format::Text => {
            let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())?;
            Secret::new(text.trim().to_string())
        }
        Format::Json { field } => {
            let mut object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(bytes).map_err(|_| "is not a JSON object".to_string())?;
            match object.remove(field) {
                Some(serde_json::Value::String(s)) => Secret::new(s.trim().to_string()),
                Some(_) => return Err(format!("has {field:?}, but not as a string")),
                None => return Err(format!("has no field {field:?}")),
            }
        }
    };
    if token.expose().is_empty() {
        return Err("holds an empty token".into());
    }
    if token.expose().chars().any(char::is_control) {
        return Err("holds a token with control characters".into());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_or_output_file_past_one_mib_is_refused_with_its_size() {
        let dir = std::env::temp_dir().join(format!("keyring-gcp-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big");
        std::fs::write(&big, vec![b'a'; MAX_FILE as usize + 1]).unwrap();
        let e = from_file(
            &big,
            &Format::Text,
            Origin::EnvVar,
            Path::new("/creds.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("larger than 1048576 bytes")
                && e.contains("point credential_source.file at the token itself"),
            "{e}"
        );
        assert_eq!(
            read_output_file(&big).unwrap_err(),
            "larger than 1048576 bytes"
        );
        std::fs::write(&big, vec![b'a'; MAX_FILE as usize]).unwrap();
        assert!(from_file(&big, &Format::Text, Origin::EnvVar, Path::new("/c")).is_ok());
        assert_eq!(
            read_output_file(&big).unwrap().unwrap().expose().len(),
            1 << 20
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn executable_responses_are_read_as_google_writes_them_and_never_quoted() {
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let ok = |json: &str, needs_expiry| response(json.as_bytes(), needs_expiry, now);
        let jwt =
            r#""version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt""#;
        assert_eq!(
            ok(
                &format!(r#"{{{jwt},"id_token":"eyJ.a.b","expiration_time":1800000060}}"#),
                true
            )
            .unwrap()
            .expose(),
            "eyJ.a.b"
        );
        assert_eq!(
            ok(&format!(r#"{{{jwt},"id_token":"eyJ.a.b"}}"#), false)
                .unwrap()
                .expose(),
            "eyJ.a.b"
        );
        assert_eq!(
            ok(r#"{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:saml2","saml_response":"PHNhbWw+"}"#, false)
                .unwrap()
                .expose(),
            "PHNhbWw+"
        );
        assert_eq!(
            ok(
                &format!(r#"{{{jwt},"id_token":"SECRET","expiration_time":1800000000}}"#),
                false
            )
            .unwrap_err(),
            Refused::Expired
        );
        assert_eq!(
            ok(
                &format!(r#"{{{jwt},"id_token":"SECRET","expiration_time":-9223372036854775808}}"#),
                false
            )
            .unwrap_err(),
            Refused::Expired
        );
        assert_eq!(
            ok(
                r#"{"version":1,"success":false,"code":"401","message":"SECRET"}"#,
                false
            )
            .unwrap_err(),
            Refused::Failed("401".into())
        );
        assert_eq!(
            ok(
                r#"{"version":1,"success":false,"code":"bad code SECRET","message":"SECRET"}"#,
                false
            )
            .unwrap_err(),
            Refused::Failed(String::new())
        );
        for (json, needs_expiry, want) in [
            (
                format!(r#"{{{jwt},"id_token":"SECRET"}}"#),
                true,
                "no expiration_time",
            ),
            (
                r#"{"version":2,"success":true,"id_token":"SECRET"}"#.to_string(),
                false,
                "version 2",
            ),
            (
                r#"{"success":true,"id_token":"SECRET"}"#.to_string(),
                false,
                "no version",
            ),
            (
                r#"{"version":1,"id_token":"SECRET"}"#.to_string(),
                false,
                "no success",
            ),
            (
                r#"{"version":1,"success":true,"id_token":"SECRET"}"#.to_string(),
                false,
                "no token_type",
            ),
            (
                r#"{"version":1,"success":true,"token_type":"x","id_token":"SECRET"}"#.to_string(),
                false,
                "not jwt, id_token or saml2",
            ),
            (
                format!(r#"{{{jwt},"saml_response":"SECRET"}}"#),
                false,
                "no id_token",
            ),
            (format!(r#"{{{jwt},"id_token":" "}}"#), false, "empty token"),
            (
                "SECRET".to_string(),
                false,
                "not a JSON executable response",
            ),
        ] {
            let Refused::Bad(e) = ok(&json, needs_expiry).unwrap_err() else {
                panic!("{json}")
            };
            assert!(e.contains(want), "{json}: {e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    #[test]
    fn text_and_json_tokens_are_extracted_and_bad_ones_never_quoted() {
        assert_eq!(
            extract(b"  eyJ.a.b\n", &Format::Text).unwrap().expose(),
            "eyJ.a.b"
        );
        let json = Format::Json {
            field: "id_token".into(),
        };
        assert_eq!(
            extract(br#"{"id_token":"eyJ.a.b","other":1}"#, &json)
                .unwrap()
                .expose(),
            "eyJ.a.b"
        );
        for (bytes, format, want) in [
            (&b"\n \n"[..], &Format::Text, "holds an empty token"),
            (b"SECRET\x00x", &Format::Text, "control characters"),
            (b"\xffSECRET", &Format::Text, "is not UTF-8"),
            (
                br#"{"access_token":"SECRET"}"#,
                &json,
                "has no field \"id_token\"",
            ),
            (br#"{"id_token":["SECRET"]}"#, &json, "not as a string"),
            (br#"["SECRET"]"#, &json, "is not a JSON object"),
            (b"SECRET", &json, "is not a JSON object"),
            (br#"{"id_token":""}"#, &json, "holds an empty token"),
        ] {
            let e = extract(bytes, format).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
}
