//! `GET /v2/` on the registry, the Bearer challenge it answers with, and where that
//! challenge lets the Entra ID token go.
//!
//! The realm decides where the Entra token goes, so [`exchange_url`] checks it before
//! anything is sent: its host must be the login server, or another ACR login server
//! (geo-replicas answer for each other), and its scheme https. With `endpoints.registry` set
//! (tests, private-link proxies), every registry request goes to that base instead, and the
//! realm may also name that base.
//!
//! # `WWW-Authenticate`
//!
//! [`parse`] reads header values as RFC 9110 section 11.6.1 defines them, enough for
//! registry challenges.
//!
//! A header value holds one or more challenges, `scheme [token68 | param *(, param)]`, where a
//! param is `name = value` and the value is a token or a quoted string with `\` escapes.
//! Names are case-insensitive; blanks around `=` and `,` are allowed; empty list elements
//! (`a=1,,b=2`) are skipped; unquoted values may be URLs (`realm=https://r/token`), which the
//! RFC's token grammar would refuse. ACR sends
//! `Bearer realm="https://x.azurecr.io/oauth2/token",service="x.azurecr.io"`, but unquoted
//! values and several challenges in one value (`Basic realm="x", Bearer realm=...`) parse too.
//! The upstream plugin's parser mis-sliced the last unquoted value; this one is a small
//! tokenizer with no index arithmetic on untrusted lengths.

use std::collections::BTreeMap;

use crate::config::{split_url, Settings};
use crate::error::{error_code, transient, Error, Stage};
use crate::host::is_login_server;
use crate::http::{Body, Call, Http, Route};

/// What the challenge told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Where to post the exchange.
    pub exchange_url: String,
    /// The `service` to name.
    pub service: String,
}

/// The registry base URL for a login server.
pub fn base_url(settings: &Settings, login_server: &str) -> String {
    match &settings.registry_base {
        Some(b) => b.as_url(),
        None => format!("https://{login_server}"),
    }
}

/// `GET /v2/` and the checks on its challenge.
pub fn challenge(settings: &Settings, http: &Http, login_server: &str) -> Result<Directive, Error> {
    let url = format!("{}/v2/", base_url(settings, login_server));
    let reply = http.send(&Call {
        stage: Stage::Challenge,
        url: &url,
        query: &[],
        headers: &[],
        body: Body::Get,
        route: Route::Proxied,
        retry_status: transient,
        hint: "can the node reach the registry (DNS, private endpoint, firewall, proxy)?",
    })?;
    let fail = |problem: String| Error::Response {
        stage: Stage::Challenge,
        url: url.clone(),
        problem,
    };
    if reply.status != 401 {
        let hint = match reply.status {
            200 => format!("{login_server} did not ask for credentials; is it an ACR login server?"),
            404 => format!("{login_server} has no registry API; check the registry name"),
            403 => format!("{login_server} refused the client: check the registry's network rules (firewall, private endpoint)"),
            _ => "the registry failed; retry later".into(),
        };
        return Err(Error::Status {
            stage: Stage::Challenge,
            url,
            status: reply.status,
            code: error_code(reply.body.expose()),
            hint: format!("expected 401 with a Bearer challenge; {hint}"),
        });
    }
    let bearer = find_bearer(reply.www_authenticate.iter().map(String::as_str))
        .ok_or_else(|| fail("the 401 has no parsable Bearer WWW-Authenticate challenge; is this an ACR login server?".into()))?;
    let (Some(realm), Some(service)) = (bearer.param("realm"), bearer.param("service")) else {
        return Err(fail(
            "the Bearer challenge lacks realm or service; is this an ACR login server?".into(),
        ));
    };
    if service.is_empty() {
        return Err(fail("the Bearer challenge has an empty service".into()));
    }
    let exchange_url =
        exchange_url(settings, login_server, realm).map_err(|e| fail(e.to_string()))?;
    Ok(Directive {
        exchange_url,
        service: service.to_string(),
    })
}

/// Why a challenge's realm is not where the Entra ID token may go (the registry's answer is
/// unusable: [`Error::Response`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealmRefused {
    /// The realm is not an `http(s)://` URL.
    #[error("the challenge realm is not an http(s) URL")]
    NotAUrl,
    /// An ACR login server's realm over plain http.
    #[error(
        "the challenge realm of {login_server} is not https; refusing to send a token in clear"
    )]
    NotHttps {
        /// The login server that sent the challenge.
        login_server: String,
    },
    /// A realm host that is neither the login server, another ACR login server, nor the
    /// configured `endpoints.registry`.
    #[error("the challenge realm's host {host} is not {login_server} nor an ACR login server; refusing to send the Entra ID token there")]
    ForeignHost {
        /// The realm's host, lower-cased.
        host: String,
        /// The login server that sent the challenge.
        login_server: String,
    },
}

/// Where the exchange goes, after checking the realm; see the module docs.
pub fn exchange_url(
    settings: &Settings,
    login_server: &str,
    realm: &str,
) -> Result<String, RealmRefused> {
    let (scheme, authority, _) = split_url(realm).ok_or(RealmRefused::NotAUrl)?;
    let authority = authority.to_ascii_lowercase();
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    // No port: ACR serves on 443 only.
    let acr_realm = !authority.contains(':')
        && (authority == login_server || is_login_server(&authority, &settings.registry_suffixes));
    match &settings.registry_base {
        Some(base) if acr_realm || authority == base.authority => {
            Ok(format!("{}/oauth2/exchange", base.as_url()))
        }
        None if acr_realm && scheme == "https" => {
            Ok(format!("https://{authority}/oauth2/exchange"))
        }
        None if acr_realm => Err(RealmRefused::NotHttps {
            login_server: login_server.to_string(),
        }),
        _ => Err(RealmRefused::ForeignHost {
            host: host.to_string(),
            login_server: login_server.to_string(),
        }),
    }
}

/// One challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme, as sent (`Bearer`).
    pub scheme: String,
    /// Parameters by lower-cased name; the first occurrence wins.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by name (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Why a header value did not parse. The texts never quote the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but blanks.
    #[error("empty header")]
    Empty,
    /// A character that cannot start or continue a challenge at this point.
    #[error("unexpected character at byte {0}")]
    Unexpected(usize),
    /// A quoted string with no closing quote.
    #[error("unterminated quoted string")]
    Unterminated,
}

/// Parses one header value into its challenges.
pub fn parse(value: &str) -> Result<Vec<Challenge>, ParseError> {
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    p.skip_list_separators();
    if p.at_end() {
        return Err(ParseError::Empty);
    }
    loop {
        p.skip_list_separators();
        if p.at_end() {
            break;
        }
        let scheme = p.token().ok_or(ParseError::Unexpected(p.i))?;
        let mut challenge = Challenge {
            scheme: scheme.to_string(),
            params: BTreeMap::new(),
        };
        p.skip_ws();
        // `scheme token68` (`Basic abc==`): no parameters; the token68 is skipped, it carries
        // nothing a registry needs. It is one only if a list separator or the end follows.
        let save = p.i;
        if p.token68() {
            p.skip_ws();
            if matches!(p.peek(), None | Some(b',')) {
                out.push(challenge);
                continue;
            }
        }
        p.i = save;
        // Parameters until the next challenge (a token not followed by '=') or the end.
        loop {
            p.skip_list_separators();
            if p.at_end() {
                break;
            }
            let save = p.i;
            let name = p.token().ok_or(ParseError::Unexpected(p.i))?;
            p.skip_ws();
            if p.peek() != Some(b'=') {
                // A new challenge starts here.
                p.i = save;
                break;
            }
            p.i += 1;
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()?
            } else {
                p.bare_value()
                    .ok_or(ParseError::Unexpected(p.i))?
                    .to_string()
            };
            challenge
                .params
                .entry(name.to_ascii_lowercase())
                .or_insert(value);
            p.skip_ws();
            match p.peek() {
                None | Some(b',') => {}
                Some(_) => return Err(ParseError::Unexpected(p.i)),
            }
        }
        out.push(challenge);
    }
    Ok(out)
}

/// The first `Bearer` challenge among several header values.
pub fn find_bearer<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    values
        .into_iter()
        .filter_map(|v| parse(v).ok())
        .flatten()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    /// RFC 9110 `token`: `!#$%&'*+-.^_`|~`, digits and letters.
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start)
            .then(|| std::str::from_utf8(&self.s[start..self.i]).ok())
            .flatten()
    }

    /// An unquoted value. RFC 9110 wants a token, but realms are URLs and some servers send
    /// them unquoted (`realm=https://r/token`): anything up to a blank, a comma or a quote.
    fn bare_value(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_graphic() && b != b',' && b != b'"')
        {
            self.i += 1;
        }
        (self.i > start)
            .then(|| std::str::from_utf8(&self.s[start..self.i]).ok())
            .flatten()
    }

    /// `token68` without its padding: letters, digits, `-._~+/`. Returns whether any.
    fn token68(&mut self) -> bool {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            self.i += 1;
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        self.i > start
    }

    /// A quoted string starting at the opening quote; returns the unescaped content.
    fn quoted(&mut self) -> Result<String, ParseError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(ParseError::Unterminated),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| ParseError::Unexpected(self.i));
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self.peek().ok_or(ParseError::Unterminated)?;
                    out.push(c);
                    self.i += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn one(v: &str) -> Challenge {
        let mut all = parse(v).unwrap();
        assert_eq!(all.len(), 1, "{v}: {all:?}");
        all.remove(0)
    }

    #[test]
    fn acrs_own_challenge_gives_realm_and_service() {
        let c = one(
            r#"Bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(
            c.param("realm"),
            Some("https://myacr.azurecr.io/oauth2/token")
        );
        assert_eq!(c.param("service"), Some("myacr.azurecr.io"));
        assert_eq!(c.param("SERVICE"), Some("myacr.azurecr.io"));
    }

    #[test]
    fn unquoted_values_blanks_and_any_case_parse() {
        // Unquoted values, including the last one (upstream's parser mis-sliced that).
        let c = one("bearer Realm=https://r.example/oauth2/token , service = r.example");
        assert_eq!(c.param("realm"), Some("https://r.example/oauth2/token"));
        assert_eq!(c.param("service"), Some("r.example"));
        let c = one("Bearer service=x.azurecr.io,realm=https://x.azurecr.io/oauth2/token");
        assert_eq!(c.param("realm"), Some("https://x.azurecr.io/oauth2/token"));
        // Scopes with commas and colons inside quotes; escapes; empty values.
        let c =
            one(r#"Bearer realm="https://a/t",scope="repository:x/y:pull,push",error="a\"b",e="""#);
        assert_eq!(c.param("scope"), Some("repository:x/y:pull,push"));
        assert_eq!(c.param("error"), Some("a\"b"));
        assert_eq!(c.param("e"), Some(""));
        // Empty list elements and trailing commas are allowed.
        let c = one(r#"Bearer ,realm="r",, service="s","#);
        assert_eq!(c.param("realm"), Some("r"));
        assert_eq!(c.param("service"), Some("s"));
        // The first of a duplicated parameter wins.
        let c = one(r#"Bearer realm="first", realm="second""#);
        assert_eq!(c.param("realm"), Some("first"));
        // No parameters.
        assert!(one("Bearer").params.is_empty());
    }

    #[test]
    fn several_challenges_in_one_value_parse_and_the_bearer_is_found() {
        let all = parse(r#"Basic realm="basic", Bearer realm="https://r/t",service="s""#).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].scheme, "Basic");
        assert_eq!(all[1].param("service"), Some("s"));
        let all = parse("Negotiate abc+/==, Bearer realm=r").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].param("realm"), Some("r"));
        let b = find_bearer(["Basic realm=x", r#"Bearer realm="r",service="s""#]).unwrap();
        assert_eq!(b.param("realm"), Some("r"));
        assert_eq!(find_bearer(["Basic realm=x"]), None);
        assert_eq!(find_bearer(["Bearer realm=\"unterminated"]), None);
    }

    #[test]
    fn malformed_values_are_refused_without_quoting_them() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("  , "), Err(ParseError::Empty));
        assert_eq!(parse(r#"Bearer realm="x"#), Err(ParseError::Unterminated));
        assert!(matches!(
            parse("Bearer realm=\"a\" junk"),
            Err(ParseError::Unexpected(_))
        ));
        assert!(matches!(
            parse("Bearer realm=\"a\",service= ,"),
            Err(ParseError::Unexpected(_))
        ));
        assert!(matches!(
            parse("Bearer realm=\"a\" service=b"),
            Err(ParseError::Unexpected(_))
        ));
        assert!(matches!(
            parse("\"Bearer\""),
            Err(ParseError::Unexpected(_))
        ));
        // The error text never quotes the header.
        let e = parse("Bearer realm=\"secret-ish").unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    fn settings(registry: Option<&str>) -> Settings {
        Config {
            endpoints: crate::config::Endpoints {
                registry: registry.map(Into::into),
                ..Default::default()
            },
            ..Default::default()
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn the_realm_must_be_an_https_acr_login_server() {
        let s = settings(None);
        let login = "myacr.azurecr.io";
        assert_eq!(
            exchange_url(&s, login, "https://myacr.azurecr.io/oauth2/token").unwrap(),
            "https://myacr.azurecr.io/oauth2/exchange"
        );
        assert_eq!(
            exchange_url(&s, login, "https://MyAcr.azurecr.io/oauth2/token?x=1").unwrap(),
            "https://myacr.azurecr.io/oauth2/exchange"
        );
        // A geo-replica or DNL login server of the same cloud may be the realm.
        assert_eq!(
            exchange_url(
                &s,
                "myacr.eastus.geo.azurecr.io",
                "https://myacr.azurecr.io/oauth2/token"
            )
            .unwrap(),
            "https://myacr.azurecr.io/oauth2/exchange"
        );
        for bad in [
            "https://evil.example/oauth2/token",
            "https://myacr.azurecr.io.evil.example/oauth2/token",
            "https://myacr.azurecr.io:8443/oauth2/token",
            "http://myacr.azurecr.io/oauth2/token",
            "myacr.azurecr.io/oauth2/token",
            "ftp://myacr.azurecr.io/",
        ] {
            assert!(exchange_url(&s, login, bad).is_err(), "{bad}");
        }
        let e = exchange_url(&s, login, "https://evil.example/x").unwrap_err();
        assert_eq!(
            e,
            RealmRefused::ForeignHost {
                host: "evil.example".into(),
                login_server: login.into()
            }
        );
        assert!(
            e.to_string().contains("evil.example") && e.to_string().contains("refusing"),
            "{e}"
        );
        assert_eq!(
            exchange_url(&s, login, "http://myacr.azurecr.io/oauth2/token"),
            Err(RealmRefused::NotHttps {
                login_server: login.into()
            })
        );
        assert_eq!(
            exchange_url(&s, login, "myacr.azurecr.io/oauth2/token"),
            Err(RealmRefused::NotAUrl)
        );
    }

    #[test]
    fn with_a_registry_override_the_realm_may_name_that_base() {
        let s = settings(Some("http://127.0.0.1:5000"));
        let login = "myacr.azurecr.io";
        assert_eq!(base_url(&s, login), "http://127.0.0.1:5000");
        for ok in [
            "https://myacr.azurecr.io/oauth2/token",
            "http://127.0.0.1:5000/oauth2/token",
        ] {
            assert_eq!(
                exchange_url(&s, login, ok).unwrap(),
                "http://127.0.0.1:5000/oauth2/exchange",
                "{ok}"
            );
        }
        assert!(exchange_url(&s, login, "http://127.0.0.1:5001/oauth2/token").is_err());
        assert!(exchange_url(&s, login, "https://evil.example/oauth2/token").is_err());
        assert_eq!(base_url(&settings(None), login), "https://myacr.azurecr.io");
    }
}
