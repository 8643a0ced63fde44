//! Fake Azure endpoints for the ACR tests: IMDS, Azure Arc's agent (`/arc/token`, see
//! [`Arc`]), Entra ID (AAD), the AKS identity-binding endpoint and ACR (`/v2/` challenge,
//! `/oauth2/exchange`), all on one [`super::http::Fake`] (127.0.0.1, every request
//! recorded), answering as a [`Script`] says.
//!
//! The tokens they hand out are unsigned JWT-shaped strings with claims the tests check: the
//! Entra token carries the tenant and a marker of the stage that issued it (`imds`, `aad`,
//! `ib`), and the refresh token (with [`Script::per_client`]) the marker of the Entra token it
//! was exchanged for, so a test can tell which identity a credential came from.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::http::{Fake as Server, Reply, Req};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
pub const LOGIN: &str = "myacr.azurecr.io";
pub const USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub form: BTreeMap<String, String>,
}

/// Azure Arc's agent as the fake plays it at [`ARC_PATH`]: a request without `Authorization`
/// gets 401 with `WWW-Authenticate: Basic realm=<realm>`; one with `Authorization: Basic
/// <key>` gets `token` (its body, a JSON object, echoing the request's `client_id` and
/// `msi_res_id` when `echo`); any other `Authorization` gets 403.
#[derive(Clone)]
pub struct Arc {
    /// The key file's path the challenge names.
    pub realm: String,
    /// The key the agent expects back (the file's content).
    pub key: String,
    /// The answer to the right key.
    pub token: (u16, String),
    /// Whether the answer names the user-assigned identity asked for.
    pub echo: bool,
}

/// Where the fake plays Azure Arc's agent.
pub const ARC_PATH: &str = "/arc/token";

/// What the fake answers; each field can be changed per test.
#[derive(Clone)]
pub struct Script {
    pub imds: (u16, String),
    pub arc: Arc,
    pub aad: (u16, String),
    /// The identity-binding endpoint (`POST /`).
    pub ib: (u16, String),
    pub challenge: (u16, Option<String>),
    pub exchange: (u16, String),
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An unsigned JWT-shaped token with these claims.
pub fn jwt(claims: &str) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// The claims of a JWT-shaped token.
pub fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// The Entra ID token the fakes hand out (IMDS, AAD and the identity binding alike):
/// carries the tenant.
pub fn aad_token(marker: &str) -> String {
    jwt(&format!(
        r#"{{"aud":"https://containerregistry.azure.net","tid":"{TENANT}","exp":{},"m":"{marker}"}}"#,
        now_s() + 3600
    ))
}

/// An ACR refresh token expiring `secs` from now.
pub fn refresh_token(secs: u64) -> String {
    jwt(&format!(
        r#"{{"jti":"r","sub":"x","exp":{},"grant_type":"refresh_token"}}"#,
        now_s() + secs
    ))
}

/// An ACR refresh token for the Entra token marked `marker` (3 h).
pub fn marked_refresh_token(marker: &str) -> String {
    jwt(&format!(
        r#"{{"jti":"r","sub":"x","exp":{},"grant_type":"refresh_token","for":"{marker}"}}"#,
        now_s() + 3 * 3600
    ))
}

/// The `WWW-Authenticate` of ACR's `/v2/` for `login`.
pub fn challenge_for(login: &str) -> String {
    format!(r#"Bearer realm="https://{login}/oauth2/token",service="{login}""#)
}

impl Script {
    /// Answers that tell identities apart: the Entra token carries the client ID it was
    /// issued to, the refresh token that Entra token's marker.
    pub fn per_client() -> Script {
        let mut s = Script::ok("REFRESH_FOR_AAD");
        s.aad.1 =
            r#"{"token_type":"Bearer","expires_in":3599,"access_token":"AAD_FOR_CLIENT"}"#.into();
        s
    }

    /// Every stage succeeds; the exchange returns `refresh` for [`LOGIN`].
    pub fn ok(refresh: &str) -> Script {
        Script {
            imds: (
                200,
                format!(
                    r#"{{"access_token":"{}","expires_in":"3599","resource":"https://containerregistry.azure.net","token_type":"Bearer"}}"#,
                    aad_token("imds")
                ),
            ),
            arc: Arc {
                realm: "/var/opt/azcmagent/tokens/unset.key".into(),
                key: "arc-key-not-set".into(),
                token: (
                    200,
                    format!(
                        r#"{{"access_token":"{}","expires_in":"3599","resource":"https://containerregistry.azure.net","token_type":"Bearer"}}"#,
                        aad_token("arc")
                    ),
                ),
                echo: true,
            },
            aad: (
                200,
                format!(
                    r#"{{"token_type":"Bearer","expires_in":3599,"access_token":"{}"}}"#,
                    aad_token("aad")
                ),
            ),
            ib: (
                200,
                format!(
                    r#"{{"access_token":"{}","expires_in":3599}}"#,
                    aad_token("ib")
                ),
            ),
            challenge: (401, Some(challenge_for(LOGIN))),
            exchange: (200, format!(r#"{{"refresh_token":"{refresh}"}}"#)),
        }
    }

    /// [`Script::ok`] with the challenge of another login server.
    pub fn ok_for(login: &str, refresh: &str) -> Script {
        let mut s = Script::ok(refresh);
        s.challenge.1 = Some(challenge_for(login));
        s
    }
}

/// The fake Azure: one server for every endpoint.
pub struct Fake {
    server: Server,
}

impl Fake {
    pub fn start(script: Script) -> Fake {
        let server = Server::start("Content-Type: application/json\r\n", move |req| {
            handle(req, &script)
        });
        Fake { server }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.server.requests().iter().map(seen).collect()
    }

    /// The one request of `method` whose path starts with `path_prefix`.
    pub fn one(&self, method: &str, path_prefix: &str) -> Seen {
        let all: Vec<Seen> = self
            .seen()
            .into_iter()
            .filter(|s| s.method == method && s.path.starts_with(path_prefix))
            .collect();
        assert_eq!(all.len(), 1, "{method} {path_prefix}: {:?}", self.seen());
        all.into_iter().next().expect("one")
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.host()
    }

    /// The `acr.endpoints` lines pointing IMDS, the registry, the identity binding and the
    /// authority (unless `authority` is false) at this fake, indented for an `acr:` section.
    pub fn endpoints(&self, authority: bool) -> String {
        let mut out = self.endpoints_but_binding(authority);
        out.push_str(&format!("    identityBinding: {}\n", self.url("/")));
        out
    }

    /// [`Fake::endpoints`] without the identity binding's.
    pub fn endpoints_but_binding(&self, authority: bool) -> String {
        let mut out = format!(
            "  endpoints:\n    imds: {}\n    registry: {}\n",
            self.url("/metadata/identity/oauth2/token"),
            self.url(""),
        );
        if authority {
            out.push_str(&format!("    authorityHost: {}\n", self.url("/")));
        }
        out
    }

    /// The `acr:` section pointing every endpoint at this fake, then `extra`.
    pub fn acr_section(&self, extra: &str) -> String {
        format!("acr:\n{}{extra}", self.endpoints(true))
    }
}

fn seen(req: &Req) -> Seen {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    Seen {
        method: req.method.clone(),
        path: path.to_string(),
        query: super::form(query),
        headers: req.headers.clone(),
        form: super::form(&req.body),
    }
}

/// Azure Arc's agent: the challenge, then the token for the right key.
fn arc(s: &Seen, arc: &Arc) -> (u16, String, Option<String>) {
    match s.headers.get("authorization") {
        None => (
            401,
            "{}".to_string(),
            Some(format!("Basic realm={}", arc.realm)),
        ),
        Some(a) if *a == format!("Basic {}", arc.key) => {
            let mut body: serde_json::Value =
                serde_json::from_str(&arc.token.1).unwrap_or(serde_json::Value::Null);
            if arc.echo {
                for k in ["client_id", "msi_res_id"] {
                    if let (Some(v), Some(o)) = (s.query.get(k), body.as_object_mut()) {
                        o.insert(k.to_string(), v.clone().into());
                    }
                }
            }
            let text = if body.is_null() {
                arc.token.1.clone()
            } else {
                body.to_string()
            };
            (arc.token.0, text, None)
        }
        Some(_) => (403, r#"{"error":"wrong key"}"#.to_string(), None),
    }
}

fn handle(req: &Req, script: &Script) -> Reply {
    let s = seen(req);
    // Per-identity answers (Script::per_client): the Entra token names the client it was
    // issued to, and the refresh token the Entra token it was exchanged for.
    let client_marker = format!(
        "aad-{}",
        s.form.get("client_id").cloned().unwrap_or_default()
    );
    let exchanged_marker = s
        .form
        .get("access_token")
        .and_then(|t| {
            let payload = URL_SAFE_NO_PAD.decode(t.split('.').nth(1)?).ok()?;
            let v: serde_json::Value = serde_json::from_slice(&payload).ok()?;
            Some(v["m"].as_str()?.to_string())
        })
        .unwrap_or_default();
    let (status, body, www) = match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/metadata/identity/oauth2/token") => (script.imds.0, script.imds.1.clone(), None),
        ("GET", ARC_PATH) => arc(&s, &script.arc),
        ("POST", p) if p.ends_with("/oauth2/v2.0/token") => {
            (script.aad.0, script.aad.1.clone(), None)
        }
        ("POST", "/") => (script.ib.0, script.ib.1.clone(), None),
        ("GET", "/v2/") => (
            script.challenge.0,
            "{}".to_string(),
            script.challenge.1.clone(),
        ),
        ("POST", "/oauth2/exchange") => (script.exchange.0, script.exchange.1.clone(), None),
        _ => (404, "{}".to_string(), None),
    };
    let body = body
        .replace("AAD_FOR_CLIENT", &aad_token(&client_marker))
        .replace("REFRESH_FOR_AAD", &marked_refresh_token(&exchanged_marker));
    let headers = www
        .map(|w| vec![("WWW-Authenticate".to_string(), w)])
        .unwrap_or_default();
    Reply::WithHeaders(status, headers, body.into_bytes())
}

/// The variable a debug build takes as the root of the Arc agent's files.
pub const ARC_ROOT_ENV: &str = "KUBELET_KEYRING_TEST_AZCMAGENT_ROOT";

/// The agent's key directory under a test `root`.
pub fn arc_token_dir(root: &std::path::Path) -> std::path::PathBuf {
    root.join("var/opt/azcmagent/tokens")
}

/// Writes the agent's key file `name` holding `key` under `root`; returns its path, what
/// the challenge names.
pub fn arc_key_file(root: &std::path::Path, name: &str, key: &str) -> String {
    let dir = arc_token_dir(root);
    std::fs::create_dir_all(&dir).expect("mkdir tokens");
    let path = dir.join(name);
    std::fs::write(&path, key).expect("write key");
    path.display().to_string()
}

/// Makes `root` an Arc-enabled machine by the agent's binary alone (no variables).
pub fn arc_himds(root: &std::path::Path) {
    let bin = root.join("opt/azcmagent/bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    std::fs::write(bin.join("himds"), "").expect("himds");
}

impl Fake {
    /// The environment of an Arc-enabled machine whose agent is this fake and whose files
    /// are under `root`: `IDENTITY_ENDPOINT`, `IMDS_ENDPOINT` and the test root.
    pub fn arc_env(&self, root: &std::path::Path) -> Vec<(String, String)> {
        vec![
            ("IDENTITY_ENDPOINT".into(), self.url(ARC_PATH)),
            ("IMDS_ENDPOINT".into(), self.url("")),
            (ARC_ROOT_ENV.into(), root.display().to_string()),
        ]
    }

    /// The requests to the Arc agent, in order.
    pub fn arc_calls(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path == ARC_PATH)
            .collect()
    }
}

/// Checks the client assertion a certificate credential sent: header, claims, and the RS256
/// signature against the certificate's public key (with openssl).
pub fn assert_assertion(
    aad: &Seen,
    dir: &std::path::Path,
    cert_pem: &std::path::Path,
    token_url: &str,
) {
    assert_eq!(
        aad.form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!aad.form.contains_key("client_secret"));
    let assertion = &aad.form["client_assertion"];
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    // x5t: base64url SHA-1 of the certificate's DER.
    let fp = String::from_utf8(super::tls::openssl(
        &[
            "x509",
            "-in",
            cert_pem.to_str().expect("utf-8"),
            "-noout",
            "-fingerprint",
            "-sha1",
        ],
        dir,
    ))
    .expect("utf-8");
    let hex: String = fp
        .trim()
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .replace(':', "");
    let sha1: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(header["x5t"], URL_SAFE_NO_PAD.encode(&sha1));

    let c = claims(assertion);
    assert_eq!(c["aud"], token_url);
    assert_eq!(c["iss"], CLIENT);
    assert_eq!(c["sub"], CLIENT);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() == 36));
    let (iat, exp) = (
        c["iat"].as_u64().expect("iat"),
        c["exp"].as_u64().expect("exp"),
    );
    assert!(iat.abs_diff(now_s()) < 120 && exp > iat && exp - iat <= 3600);
    assert_eq!(c["nbf"], c["iat"]);

    // The signature verifies with the certificate's public key.
    std::fs::write(dir.join("input"), format!("{}.{}", parts[0], parts[1])).expect("write");
    std::fs::write(
        dir.join("sig"),
        URL_SAFE_NO_PAD.decode(parts[2]).expect("b64"),
    )
    .expect("write");
    let pubkey = super::tls::openssl(
        &[
            "x509",
            "-in",
            cert_pem.to_str().expect("utf-8"),
            "-noout",
            "-pubkey",
        ],
        dir,
    );
    std::fs::write(dir.join("pub.pem"), pubkey).expect("write");
    let verified = super::tls::openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "input",
        ],
        dir,
    );
    assert!(String::from_utf8_lossy(&verified).contains("Verified OK"));
}
