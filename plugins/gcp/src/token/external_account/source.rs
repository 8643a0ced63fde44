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

use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use keyring_api::{ErrorKind, Secret};
use keyring_net::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};

use crate::error::Error;
use crate::identity::external_account::Format;
use crate::identity::key_file::Origin;
use crate::token::federation::Client;

/// Largest subject token file read.
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
    let mut buf = Vec::new();
    let read = file.take(MAX_FILE + 1).read_to_end(&mut buf);
    let bytes = Secret::new(buf);
    read.map_err(|e| {
        fail(
            format!("cannot read: {e}"),
            "check the file and its permissions",
        )
    })?;
    if bytes.expose().len() as u64 > MAX_FILE {
        return Err(fail(
            format!("larger than {MAX_FILE} bytes"),
            "point credential_source.file at the token itself",
        ));
    }
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
