//! Docker credentials delivered by metadata: upstream's `--authFlow=dockercfg` and
//! `dockercfg-url`, and under the own name `gcp: {dockercfg: true}`.
//!
//! The `google-dockercfg` instance attribute holds a legacy `.dockercfg` map
//! ([`load_attribute`]); the `google-dockercfg-url` attribute may hold an `http://` or
//! `https://` URL of one ([`load_url`]), fetched *without* the metadata header (it is not the
//! metadata server) within 10 s. Upstream's flows read one each; `gcp.dockercfg` reads the
//! first, then the second when the first is not set ([`load`]).
//! Bodies are capped at 10 MiB; redirects are not followed. The entries are matched against
//! the image later (by the `answer` module) with the kubelet's rules, exactly as for a docker
//! config file on disk. URLs are shown in messages without their query, which may be a
//! signature.

use std::time::Duration;

use bytes::Bytes;
use keyring_api::Deadline;
use keyring_docker_config::{parse_dockercfg, Entries};
use keyring_net::http::{header, Request, Uri};
use keyring_net::{Client, Policy, Route};

use super::metadata::{Metadata, ATTRIBUTE_LIMIT};
use crate::error::Error;

/// The attribute holding a `.dockercfg` document.
pub const ATTRIBUTE: &str = "google-dockercfg";
/// The attribute holding the URL of one.
pub const URL_ATTRIBUTE: &str = "google-dockercfg-url";
/// The URL: 10 s, one attempt, [`ATTRIBUTE_LIMIT`].
const URL_POLICY: Policy = Policy {
    attempt: Duration::from_secs(10),
    ..Policy::DEFAULT
        .with_max_body(ATTRIBUTE_LIMIT)
        .with_attempts(1)
};

/// The docker config metadata delivers, and where it came from; `None` when neither
/// attribute is set.
pub(crate) async fn load(md: &Metadata) -> Result<Option<(Entries, String)>, Error> {
    match load_attribute(md).await? {
        Some(found) => Ok(Some(found)),
        None => load_url(md).await,
    }
}

/// The docker config in the `google-dockercfg` attribute, and where it came from; `None`
/// when the attribute is not set.
pub(crate) async fn load_attribute(md: &Metadata) -> Result<Option<(Entries, String)>, Error> {
    let Some(body) = md.attribute(ATTRIBUTE).await? else {
        return Ok(None);
    };
    let origin = format!("metadata attribute {ATTRIBUTE}");
    let entries = parse(&body, origin.clone())?;
    Ok(Some((entries, origin)))
}

/// The docker config at the URL the `google-dockercfg-url` attribute holds, and where it
/// came from; `None` when the attribute is not set.
pub(crate) async fn load_url(md: &Metadata) -> Result<Option<(Entries, String)>, Error> {
    let Some(raw) = md.attribute(URL_ATTRIBUTE).await? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&raw);
    let uri = parse_url(text.trim())?;
    let shown = keyring_net::shown_url(&uri.to_string());
    let body = fetch(uri, &shown, md.deadline()).await?;
    let origin = format!("{URL_ATTRIBUTE} {shown}");
    let entries = parse(&body, origin.clone())?;
    Ok(Some((entries, origin)))
}

fn parse(body: &[u8], origin: String) -> Result<Entries, Error> {
    // The parse error names fields, never values (keyring_docker_config's contract).
    parse_dockercfg(body).map_err(|e| Error::DockercfgParse {
        origin,
        reason: e.to_string(),
    })
}

/// Checks the attribute's value: an absolute http(s) URL without user-info.
fn parse_url(text: &str) -> Result<Uri, Error> {
    let fail = |url: String, reason: &str| Error::DockercfgUrl {
        url,
        reason: reason.into(),
    };
    let uri: Uri = text.parse().map_err(|_| {
        fail(
            "(attribute value)".into(),
            "not a URL; set the attribute to an http:// or https:// URL",
        )
    })?;
    let scheme_ok = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    if !scheme_ok || uri.authority().is_none() {
        return Err(fail(
            "(attribute value)".into(),
            "only http:// and https:// URLs are supported (not gs://, s3:// or relative ones)",
        ));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(fail(
            "(attribute value)".into(),
            "user-info in the URL is not supported",
        ));
    }
    Ok(uri)
}

async fn fetch(uri: Uri, shown: &str, deadline: Deadline) -> Result<Bytes, Error> {
    let fail = |reason: String| Error::DockercfgUrl {
        url: shown.to_string(),
        reason,
    };
    let client = Client::new(Route::Proxied, URL_POLICY).map_err(|cause| Error::DockercfgTls {
        url: shown.to_string(),
        cause,
    })?;
    let resp = client
        .send(
            deadline,
            &|| {
                Request::get(uri.clone())
                    .header(header::USER_AGENT, keyring_net::USER_AGENT)
                    .body(Default::default())
            },
            &keyring_net::never,
        )
        .await
        .map_err(|e| fail(format!("{e}; check that the node reaches it")))?;
    if !resp.status.is_success() {
        return Err(fail(format!(
            "answered {}; check the URL in the attribute (redirects are not followed)",
            resp.status
        )));
    }
    Ok(resp.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dockercfg_url_is_http_or_https_without_user_info_and_shown_without_its_query() {
        let u =
            parse_url("https://storage.example.com/b/cfg.json?X-Goog-Signature=SECRET").unwrap();
        assert_eq!(
            keyring_net::shown_url(&u.to_string()),
            "https://storage.example.com/b/cfg.json"
        );
        assert!(parse_url("HTTP://h:8080/x").is_ok());
        for bad in [
            "gs://bucket/cfg",
            "s3://b/c",
            "/relative",
            "not a url",
            "https://u:SECRET@h/x",
            "",
        ] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("google-dockercfg-url (attribute value): "),
                "{bad}: {e}"
            );
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
}
