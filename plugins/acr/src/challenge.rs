//! `WWW-Authenticate` parsing (RFC 9110 section 11.6.1), enough for registry challenges.
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

    fn one(v: &str) -> Challenge {
        let mut all = parse(v).unwrap();
        assert_eq!(all.len(), 1, "{v}: {all:?}");
        all.remove(0)
    }

    #[test]
    fn acr_challenge() {
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
    fn unquoted_blanks_and_case() {
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
    fn several_challenges() {
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
    fn malformed() {
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
}
