//! Where a managed identity's token comes from ([`detect`]), and Azure Arc's managed identity
//! ([`token`]): the Connected Machine agent (`himds`) on an Arc-enabled server, which has no
//! IMDS.
//!
//! Detection follows MSAL-go's `GetSource`, which upstream's `azidentity` uses, in its order:
//!
//! 1. `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`: App Service (Service Fabric with
//!    `IDENTITY_SERVER_THUMBPRINT`): refused, as a node is neither;
//! 2. `MSI_ENDPOINT`: Cloud Shell (Azure Machine Learning with `MSI_SECRET`): refused;
//! 3. `IDENTITY_ENDPOINT` and `IMDS_ENDPOINT` both set, or the agent's binary
//!    [`HIMDS`] exists: **Azure Arc** (`IMDS_ENDPOINT`'s value only marks it);
//! 4. otherwise IMDS ([`super::imds`]).
//!
//! Arc's token, as MSAL's `acquireTokenForAzureArc` gets it:
//!
//! * `GET <IDENTITY_ENDPOINT, else` [`DEFAULT_ENDPOINT`]`>` with the endpoint's own query,
//!   `api-version=`[`API_VERSION`], `resource=https://containerregistry.azure.net`, and for a
//!   user-assigned identity `client_id` or `msi_res_id`; header `Metadata: true`; never
//!   through a proxy. The endpoint must be `https://` or `http://` to a loopback address (the
//!   agent listens on `localhost:40342`): the second request carries the agent's key, which
//!   must not travel in clear (MSAL does not check).
//! * The first answer must be **401** with `WWW-Authenticate: Basic realm=<key file>`. The
//!   path is the text after the first `Basic realm=` (up to a second one), taken as written;
//!   its file name must end in [`KEY_EXTENSION`], its directory (cleaned as Go's
//!   `filepath.Dir` cleans it) must be exactly [`TOKEN_DIR`], and the file at most
//!   [`MAX_KEY_BYTES`]. The file read is `TOKEN_DIR/<name>`, opened without blocking
//!   ([`keyring_api::file`]); its content, one line of text, is the key: kept in a
//!   [`Secret`], never logged or quoted.
//! * The same request again with `Authorization: Basic <key>` (the file's content as is):
//!   200 or 202 with an IMDS-style token answer. A user-assigned identity must be echoed
//!   back (`client_id`, or `msi_res_id` / `mi_res_id`, case-insensitively): an agent too old
//!   for user-assigned identities answers with the machine's own, which is refused.
//!
//! Reading the key needs the kubelet's user to read [`TOKEN_DIR`] (root, or the `himds`
//! group). A debug build (what `cargo test` runs) takes [`TEST_ROOT_ENV`] as the directory
//! [`HIMDS`] and [`TOKEN_DIR`] are under, so tests can play the agent; a release build never
//! reads it.

use std::path::{Path, PathBuf};

use keyring_api::Secret;

use super::{read_bounded, Env, MsiId, RESOURCE};
use crate::config::{is_loopback, split_url};
use crate::error::{error_code, transient, Error, Stage};
use crate::http::{Body, Call, Http, Route};

/// Arc's `api-version`.
pub const API_VERSION: &str = "2020-06-01";
/// The agent's endpoint when `IDENTITY_ENDPOINT` is not set (the `himds` case).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:40342/metadata/identity/oauth2/token";
/// The only directory the key file may be in (Linux).
pub const TOKEN_DIR: &str = "/var/opt/azcmagent/tokens";
/// The agent's binary, whose presence marks an Arc-enabled server (Linux).
pub const HIMDS: &str = "/opt/azcmagent/bin/himds";
/// The key file's extension.
pub const KEY_EXTENSION: &str = ".key";
/// The largest key file read.
pub const MAX_KEY_BYTES: u64 = 4096;
/// Debug builds only: the directory [`HIMDS`] and [`TOKEN_DIR`] are under, for tests.
pub const TEST_ROOT_ENV: &str = "KUBELET_KEYRING_TEST_AZCMAGENT_ROOT";

/// Azure Arc's endpoint on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL without its query (safe to show).
    pub url: String,
    /// The endpoint's own query parameters, kept as MSAL keeps them.
    pub query: Vec<(String, String)>,
    /// Where the key file must be.
    pub token_dir: PathBuf,
}

/// A managed identity's token source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The VM's Instance Metadata Service.
    Imds,
    /// Azure Arc's agent.
    Arc(Endpoint),
}

/// The root [`HIMDS`] and [`TOKEN_DIR`] are under: `/`, or [`TEST_ROOT_ENV`] in a debug build.
fn root(env: Env<'_>) -> PathBuf {
    let test = if cfg!(debug_assertions) {
        env(TEST_ROOT_ENV)
    } else {
        None
    };
    test.map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Where this machine's managed identity gets its token (see the module docs), `exists`
/// telling whether a path exists.
pub fn detect(env: Env<'_>, exists: &dyn Fn(&Path) -> bool) -> Result<Source, Error> {
    let identity_endpoint = env("IDENTITY_ENDPOINT");
    let refuse = |what: &str| {
        Error::Setup(format!(
            "{what}, which is not supported on a node (only IMDS and Azure Arc are): unset them in the kubelet's environment, or name a service principal in the cloud config"
        ))
    };
    if identity_endpoint.is_some() && env("IDENTITY_HEADER").is_some() {
        return Err(refuse(if env("IDENTITY_SERVER_THUMBPRINT").is_some() {
            "IDENTITY_ENDPOINT, IDENTITY_HEADER and IDENTITY_SERVER_THUMBPRINT are set: that is Service Fabric's managed identity"
        } else {
            "IDENTITY_ENDPOINT and IDENTITY_HEADER are set: that is App Service's managed identity"
        }));
    }
    if env("MSI_ENDPOINT").is_some() {
        return Err(refuse(if env("MSI_SECRET").is_some() {
            "MSI_ENDPOINT and MSI_SECRET are set: that is Azure Machine Learning's managed identity"
        } else {
            "MSI_ENDPOINT is set: that is Cloud Shell's managed identity"
        }));
    }
    let root = root(env);
    let arc = (identity_endpoint.is_some() && env("IMDS_ENDPOINT").is_some())
        || exists(&root.join(HIMDS.trim_start_matches('/')));
    if !arc {
        return Ok(Source::Imds);
    }
    let given = identity_endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    let shown = keyring_net::shown_url(given);
    let (scheme, authority, rest) = split_url(given).ok_or_else(|| {
        Error::Setup(format!(
            "IDENTITY_ENDPOINT {shown:?} (Azure Arc) is not an http(s) URL"
        ))
    })?;
    if scheme != "https" && !is_loopback(&authority) {
        return Err(Error::Setup(format!(
            "IDENTITY_ENDPOINT {shown} (Azure Arc) is plain http:// to a host that is not a loopback address; the agent's key would travel in clear: use the agent's local endpoint (http://localhost:40342/...)"
        )));
    }
    let (path, query) = rest.split_once('?').unwrap_or((&rest, ""));
    let path = path.split('#').next().unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    Ok(Source::Arc(Endpoint {
        url: format!("{scheme}://{authority}{path}"),
        query: form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        token_dir: root.join(TOKEN_DIR.trim_start_matches('/')),
    }))
}

/// The selector of a user-assigned identity: query name and value.
fn selector(id: Option<&MsiId>) -> Option<(&'static str, &str)> {
    match id {
        Some(MsiId::ClientId(c)) => Some(("client_id", c)),
        Some(MsiId::ResourceId(r)) => Some(("msi_res_id", r)),
        None => None,
    }
}

/// The managed identity's token for ACR from Arc's agent at `arc` (the system-assigned one
/// when `id` is `None`).
pub fn token(arc: &Endpoint, id: Option<&MsiId>, http: &Http) -> Result<Secret<String>, Error> {
    let selected = selector(id);
    let ours = [
        "api-version",
        "resource",
        "client_id",
        "msi_res_id",
        "object_id",
    ];
    let mut query: Vec<(&str, &str)> = arc
        .query
        .iter()
        .filter(|(k, _)| !ours.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    query.push(("api-version", API_VERSION));
    query.push(("resource", RESOURCE));
    query.extend(selected);
    let url = arc.url.as_str();
    let hint = "is the Azure Connected Machine agent (himds) running, and is IDENTITY_ENDPOINT its endpoint?";
    let call = |headers: &[(&str, &str)]| {
        http.send(&Call {
            stage: Stage::Arc,
            url,
            query: &query,
            headers,
            body: Body::Get,
            route: Route::Direct,
            retry_status: transient,
            hint,
        })
    };
    let challenge = call(&[("Metadata", "true")])?;
    if challenge.status != 401 {
        return Err(Error::Status {
            stage: Stage::Arc,
            url: url.into(),
            status: challenge.status,
            code: error_code(challenge.body.expose()),
            hint: "expected 401 naming the agent's key file (WWW-Authenticate: Basic realm=<file>); is IDENTITY_ENDPOINT the Azure Arc agent?".into(),
        });
    }
    let header = challenge
        .www_authenticate
        .first()
        .ok_or_else(|| Error::Response {
            stage: Stage::Arc,
            url: url.into(),
            problem: "the 401 has no WWW-Authenticate header naming the key file".into(),
        })?;
    let file = key_file(header, &arc.token_dir).map_err(|problem| Error::Response {
        stage: Stage::Arc,
        url: url.into(),
        problem,
    })?;
    let key = read_key(&file)?;
    let authorization = Secret::new(format!("Basic {}", key.expose()));
    drop(key);
    let reply = call(&[
        ("Metadata", "true"),
        ("Authorization", authorization.expose()),
    ])?;
    drop(authorization);
    if !matches!(reply.status, 200 | 202) {
        let hint = match (reply.status, id) {
            (400 | 404, Some(_)) => "the agent does not know that identity: assign the user-assigned identity to this Arc-enabled server, or fix userAssignedIdentityID",
            (401 | 403, _) => "the agent refused its own key; is another process reading the key files, or is the agent being updated?",
            _ => "the Azure Arc agent failed; check `azcmagent show` and retry later",
        };
        return Err(Error::Status {
            stage: Stage::Arc,
            url: url.into(),
            status: reply.status,
            code: error_code(reply.body.expose()),
            hint: hint.into(),
        });
    }
    let token = super::access_token(&reply.body, Stage::Arc, url)?;
    if let Some((name, requested)) = selected {
        check_echo(reply.body.expose(), name, requested).map_err(|problem| Error::Response {
            stage: Stage::Arc,
            url: url.into(),
            problem,
        })?;
    }
    Ok(token)
}

/// A user-assigned identity must come back named as asked: an agent that does not know
/// user-assigned identities ignores the selector and answers with the machine's own.
fn check_echo(body: &[u8], name: &str, requested: &str) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Echo {
        client_id: Option<String>,
        msi_res_id: Option<String>,
        mi_res_id: Option<String>,
    }
    let echo: Echo = serde_json::from_slice(body).map_err(|_| "the token answer is not JSON")?;
    let echoed = match name {
        "client_id" => echo.client_id,
        _ => echo.msi_res_id.filter(|v| !v.is_empty()).or(echo.mi_res_id),
    };
    match echoed.filter(|v| !v.is_empty()) {
        Some(v) if v.eq_ignore_ascii_case(requested) => Ok(()),
        _ => Err(format!(
            "the agent did not confirm the user-assigned identity ({name} {requested}) in its answer; it likely answered with the machine's own identity: update the Azure Connected Machine agent"
        )),
    }
}

/// The key file a challenge's `WWW-Authenticate` value names, under MSAL's rules (see the
/// module docs), as `dir/<name>`; the problem otherwise, naming what the header said only
/// as far as the rules looked at it.
pub fn key_file(header: &str, dir: &Path) -> Result<PathBuf, String> {
    let realm = header
        .split("Basic realm=")
        .nth(1)
        .ok_or("the 401's WWW-Authenticate has no Basic realm= naming the key file")?;
    let name = go_base(realm);
    if !name.ends_with(KEY_EXTENSION) || name.contains('/') {
        return Err(format!(
            "the challenge's key file is not a {KEY_EXTENSION} file; refusing to read it"
        ));
    }
    let parent = go_clean(&realm[..realm.rfind('/').map_or(0, |i| i + 1)]);
    if Path::new(&parent) != dir {
        return Err(format!(
            "the challenge's key file is not directly in {}; refusing to read it",
            dir.display()
        ));
    }
    Ok(dir.join(name))
}

/// Reads the key: at most [`MAX_KEY_BYTES`], one line of printable text (it goes into a
/// header as is).
fn read_key(path: &Path) -> Result<Secret<String>, Error> {
    let bytes = read_bounded(
        path,
        MAX_KEY_BYTES,
        "Azure Arc key file",
        "the kubelet's user must be able to read the agent's key files (root, or the himds group)",
    )?;
    let text = std::str::from_utf8(bytes.expose())
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .ok_or_else(|| Error::Content {
            what: "Azure Arc key file",
            path: path.to_path_buf(),
            problem: "is not one line of printable text".into(),
        })?;
    Ok(Secret::new(text.to_string()))
}

/// Go's `filepath.Base` on Linux: the last element, trailing slashes dropped.
fn go_base(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "/" };
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Go's `filepath.Clean` on Linux: one slash between elements, no `.`, no `x/..`, no `..`
/// above the root.
fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| *l != "..") => {
                out.pop();
            }
            ".." if rooted => {}
            other => out.push(other),
        }
    }
    let body = out.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn detect_with(vars: &[(&str, &str)], himds: bool) -> Result<Source, String> {
        let env = env_of(vars);
        detect(&env, &|p: &Path| himds && p == Path::new(HIMDS)).map_err(|e| e.to_string())
    }

    #[test]
    fn the_source_is_detected_in_msals_order() {
        let ie = (
            "IDENTITY_ENDPOINT",
            "http://localhost:40342/metadata/identity/oauth2/token",
        );
        let imds = ("IMDS_ENDPOINT", "http://localhost:40342");
        assert_eq!(detect_with(&[], false), Ok(Source::Imds));
        // IDENTITY_ENDPOINT alone is not Arc, IMDS_ENDPOINT alone neither.
        assert_eq!(detect_with(&[ie], false), Ok(Source::Imds));
        assert_eq!(detect_with(&[imds], false), Ok(Source::Imds));
        let arc = Source::Arc(Endpoint {
            url: "http://localhost:40342/metadata/identity/oauth2/token".into(),
            query: vec![],
            token_dir: TOKEN_DIR.into(),
        });
        assert_eq!(detect_with(&[ie, imds], false), Ok(arc.clone()));
        assert_eq!(detect_with(&[ie], true), Ok(arc));
        // The agent's binary alone: its default endpoint.
        let Ok(Source::Arc(e)) = detect_with(&[], true) else {
            panic!()
        };
        assert_eq!(e.url, DEFAULT_ENDPOINT);
        // The endpoint's own query is kept.
        let q = (
            "IDENTITY_ENDPOINT",
            "https://arc.example/token?x=1&api-version=old",
        );
        let Ok(Source::Arc(e)) = detect_with(&[q, imds], false) else {
            panic!()
        };
        assert_eq!(e.url, "https://arc.example/token");
        assert_eq!(
            e.query,
            [
                ("x".into(), "1".into()),
                ("api-version".into(), "old".into())
            ]
        );
        // Sources a node is not are refused, naming the variables, before Arc is looked at.
        for (vars, want) in [
            (&[ie, ("IDENTITY_HEADER", "h")][..], "App Service"),
            (
                &[
                    ie,
                    ("IDENTITY_HEADER", "h"),
                    ("IDENTITY_SERVER_THUMBPRINT", "t"),
                ][..],
                "Service Fabric",
            ),
            (&[("MSI_ENDPOINT", "http://x"), imds, ie][..], "Cloud Shell"),
            (
                &[("MSI_ENDPOINT", "http://x"), ("MSI_SECRET", "s")][..],
                "Azure Machine Learning",
            ),
        ] {
            let e = detect_with(vars, true).unwrap_err();
            assert!(e.contains(want) && e.contains("not supported"), "{e}");
        }
        // The key must not travel in clear.
        let far = (
            "IDENTITY_ENDPOINT",
            "http://10.0.0.5:40342/metadata/identity/oauth2/token",
        );
        let e = detect_with(&[far, imds], false).unwrap_err();
        assert!(
            e.contains("in clear") && e.contains("IDENTITY_ENDPOINT"),
            "{e}"
        );
    }

    #[test]
    fn a_test_root_moves_the_agents_files_in_debug_builds_only() {
        let vars = [(TEST_ROOT_ENV, "/tmp/t")];
        let env = env_of(&vars);
        let seen = std::cell::RefCell::new(Vec::new());
        let got = detect(&env, &|p: &Path| {
            seen.borrow_mut().push(p.to_path_buf());
            true
        });
        let root = if cfg!(debug_assertions) {
            "/tmp/t/"
        } else {
            "/"
        };
        assert_eq!(
            seen.into_inner(),
            [Path::new(root).join("opt/azcmagent/bin/himds")]
        );
        let Ok(Source::Arc(e)) = got else { panic!() };
        assert_eq!(
            e.token_dir,
            Path::new(root).join("var/opt/azcmagent/tokens")
        );
    }

    #[test]
    fn the_key_file_is_a_key_file_directly_in_the_token_dir() {
        let dir = Path::new(TOKEN_DIR);
        let ok = |h: &str| key_file(h, dir);
        assert_eq!(
            ok("Basic realm=/var/opt/azcmagent/tokens/abc.key"),
            Ok(dir.join("abc.key"))
        );
        // Go's Dir cleans: a detour that ends in the directory is the directory.
        assert_eq!(
            ok("Basic realm=/var/opt/azcmagent/tokens/sub/../abc.key"),
            Ok(dir.join("abc.key"))
        );
        assert_eq!(
            ok("Basic realm=/var/opt/azcmagent//tokens/./abc.key"),
            Ok(dir.join("abc.key"))
        );
        // Up to a second "Basic realm=", as Go's strings.Split takes it.
        assert_eq!(
            ok("x Basic realm=/var/opt/azcmagent/tokens/a.key, Basic realm=/etc/b.key"),
            Err("the challenge's key file is not a .key file; refusing to read it".into())
        );
        for bad in [
            "Bearer realm=/var/opt/azcmagent/tokens/a.key",
            "Basic realm=/var/opt/azcmagent/tokens/a.txt",
            "Basic realm=/var/opt/azcmagent/tokens/a.key/",
            "Basic realm=/var/opt/azcmagent/tokens/../tokens2/a.key",
            "Basic realm=/var/opt/azcmagent/tokens/../../../etc/shadow.key",
            "Basic realm=/var/opt/azcmagent/tokens/sub/a.key",
            "Basic realm=/var/opt/azcmagent/a.key",
            "Basic realm=\"/var/opt/azcmagent/tokens/a.key\"",
            "Basic realm=var/opt/azcmagent/tokens/a.key",
            "Basic realm=",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_path_rules() {
        for (p, base) in [
            ("", "."),
            ("/", "/"),
            ("a/b.key", "b.key"),
            ("a/b//", "b"),
            ("x", "x"),
        ] {
            assert_eq!(go_base(p), base, "{p}");
        }
        for (p, clean) in [
            ("", "."),
            ("/", "/"),
            ("/../a/", "/a"),
            ("a/../..", ".."),
            ("/a/./b//c/../", "/a/b"),
            ("a/", "a"),
        ] {
            assert_eq!(go_clean(p), clean, "{p}");
        }
    }

    #[test]
    fn a_user_assigned_identity_must_be_echoed() {
        let id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
        assert!(check_echo(
            format!(r#"{{"client_id":"{}"}}"#, id.to_uppercase()).as_bytes(),
            "client_id",
            id
        )
        .is_ok());
        assert!(check_echo(br#"{"access_token":"x"}"#, "client_id", id).is_err());
        assert!(check_echo(br#"{"client_id":"other"}"#, "client_id", id).is_err());
        let r = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";
        assert!(check_echo(
            format!(r#"{{"mi_res_id":"{}"}}"#, r.to_lowercase()).as_bytes(),
            "msi_res_id",
            r
        )
        .is_ok());
        assert!(check_echo(
            format!(r#"{{"msi_res_id":"{r}"}}"#).as_bytes(),
            "msi_res_id",
            r
        )
        .is_ok());
        assert!(check_echo(br#"{"client_id":"x"}"#, "msi_res_id", r).is_err());
    }
}
