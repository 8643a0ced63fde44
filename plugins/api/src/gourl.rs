//! The part of Go's `net/url.Parse` the kubelet's matching relies on, for `http://` and
//! `https://` URLs: the unescaped host (user-info dropped) and the unescaped path, with the
//! same errors. Query and fragment are split off (and the fragment's escapes checked) exactly
//! as Go does, then thrown away. Bytes, not `str`: `%ff` in a host or path is legal in Go and
//! yields a byte that is not UTF-8.
//!
//! Behaviour follows the Go releases the spec's vectors were computed with (section 8 of the
//! spec): an unbracketed host with several colons (`a:1:2`) parses, its port check applying to
//! the text after the last colon.

/// A URL that parsed: only the parts the kubelet's matching reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// `URL.Host`: host and optional `:port`, unescaped, without user-info.
    pub host: Vec<u8>,
    /// `URL.Path`: unescaped.
    pub path: Vec<u8>,
}

/// Why Go's `url.Parse` would refuse the text. The texts are Go's, with the offending bytes
/// quoted as Go's `strconv.Quote` does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// A byte below 0x20 or 0x7f.
    #[error("net/url: invalid control character in URL")]
    ControlCharacter,
    /// A `%` not followed by two hex digits, or a `%xx` the host may not hold.
    #[error("invalid URL escape {}", go_quote(.0))]
    Escape(Vec<u8>),
    /// A byte a host may not hold.
    #[error("invalid character {} in host name", go_quote(.0))]
    HostCharacter(Vec<u8>),
    /// A port that is not all digits.
    #[error("invalid port {} after host", go_quote(.0))]
    Port(Vec<u8>),
    /// `[` without `]`.
    #[error("missing ']' in host")]
    MissingBracket,
    /// Bad user-info characters.
    #[error("net/url: invalid userinfo")]
    UserInfo,
}

/// Parses `scheme_rest`, the text after `http:` or `https:` (so it starts with `//`).
/// Callers build it as `"https://" + s` minus the scheme, as `ParseSchemelessURL` does.
pub fn parse_after_scheme(raw: &[u8]) -> Result<Parsed, UrlError> {
    // url.Parse cuts the fragment first and checks only its escapes.
    let (mut rest, fragment) = match raw.iter().position(|&b| b == b'#') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    if rest.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(UrlError::ControlCharacter);
    }
    // Query: a single trailing '?' is ForceQuery; otherwise cut at the first '?'.
    if let Some(i) = rest.iter().position(|&b| b == b'?') {
        rest = &rest[..i];
    }
    // Authority: after "//", up to the first '/'.
    let after = rest.strip_prefix(b"//").unwrap_or(rest);
    let (authority, path) = match after.iter().position(|&b| b == b'/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, &b""[..]),
    };
    let host = parse_authority(authority)?;
    let path = unescape(path, Mode::Path)?;
    if let Some(f) = fragment {
        unescape(f, Mode::Fragment)?;
    }
    Ok(Parsed { host, path })
}

fn parse_authority(authority: &[u8]) -> Result<Vec<u8>, UrlError> {
    match authority.iter().rposition(|&b| b == b'@') {
        None => parse_host(authority),
        Some(i) => {
            // Go checks the host first, so a bad host is the error even when the user-info is
            // bad too.
            let host = parse_host(&authority[i + 1..])?;
            let userinfo = &authority[..i];
            if !userinfo.iter().all(|&c| valid_userinfo_byte(c)) {
                return Err(UrlError::UserInfo);
            }
            // Go unescapes the user name and the password (split at the first ':') apart, so
            // an escape error quotes at most the end of the user name.
            let (user, password) = match userinfo.iter().position(|&b| b == b':') {
                Some(colon) => (&userinfo[..colon], &userinfo[colon + 1..]),
                None => (userinfo, &b""[..]),
            };
            unescape(user, Mode::UserInfo)?;
            unescape(password, Mode::UserInfo)?;
            Ok(host)
        }
    }
}

fn valid_userinfo_byte(c: u8) -> bool {
    // Go iterates runes; every non-ASCII rune is refused, as is every non-ASCII byte here.
    c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c)
}

fn parse_host(host: &[u8]) -> Result<Vec<u8>, UrlError> {
    if host.first() == Some(&b'[') {
        let i = host
            .iter()
            .rposition(|&b| b == b']')
            .ok_or(UrlError::MissingBracket)?;
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(UrlError::Port(colon_port.to_vec()));
        }
        if let Some(zone) = find(&host[..i], b"%25") {
            let mut out = unescape(&host[..zone], Mode::Host)?;
            out.extend(unescape(&host[zone..i], Mode::Zone)?);
            out.extend(unescape(&host[i..], Mode::Host)?);
            return Ok(out);
        }
    } else if let Some(i) = host.iter().rposition(|&b| b == b':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(UrlError::Port(colon_port.to_vec()));
        }
    }
    unescape(host, Mode::Host)
}

fn valid_optional_port(port: &[u8]) -> bool {
    match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Go's `strconv.Quote` of a byte string: `"` and `\\` escaped, invalid UTF-8 bytes as
/// `\xNN`, ASCII controls as `\n`-style or `\xNN`, other non-printable runes as `\uNNNN` /
/// `\UNNNNNNNN`. Go's "printable" is Unicode's L, M, N, P, S categories plus the ASCII space;
/// without category tables this treats as non-printable the C and Z categories that can be
/// told apart with `std` (controls, white space) and the format and private-use characters,
/// and leaves unassigned code points printable (Go would escape them).
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c if c == ' ' || c.is_ascii() || go_printable(c) => out.push(c),
                c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint` for non-ASCII runes; see [`go_quote`].
fn go_printable(c: char) -> bool {
    let n = u32::from(c);
    let format = matches!(n, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0xE0001 | 0xE0020..=0xE007F);
    let private = matches!(n, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    let noncharacter = matches!(n, 0xFDD0..=0xFDEF) || n & 0xFFFE == 0xFFFE;
    !(c.is_control() || c.is_whitespace() || format || private || noncharacter)
}

#[cfg(test)]
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Host,
    Zone,
    Path,
    UserInfo,
    Fragment,
}

/// Go's `shouldEscape` for the host and zone modes, the only ones where it decides an error.
fn host_byte_needs_escape(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c))
}

fn unhex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `unescape`: decodes `%xx`, with the host-mode restrictions.
fn unescape(s: &[u8], mode: Mode) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' {
            let (hi, lo) = match (
                s.get(i + 1).and_then(|&c| unhex(c)),
                s.get(i + 2).and_then(|&c| unhex(c)),
            ) {
                (Some(hi), Some(lo)) => (hi, lo),
                _ => return Err(UrlError::Escape(s[i..(i + 3).min(s.len())].to_vec())),
            };
            let escape = &s[i..i + 3];
            // In a host, %-encoding is only for non-ASCII bytes, and %25 (RFC 6874 zones).
            if mode == Mode::Host && hi < 8 && escape != b"%25" {
                return Err(UrlError::Escape(escape.to_vec()));
            }
            let v = hi << 4 | lo;
            if mode == Mode::Zone && escape != b"%25" && v != b' ' && host_byte_needs_escape(v) {
                return Err(UrlError::Escape(escape.to_vec()));
            }
            out.push(v);
            i += 3;
        } else {
            if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && host_byte_needs_escape(c) {
                return Err(UrlError::HostCharacter(s[i..i + 1].to_vec()));
            }
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<(String, String), UrlError> {
        let full = format!("//{s}");
        parse_after_scheme(full.as_bytes()).map(|u| (lossy(&u.host), lossy(&u.path)))
    }

    #[test]
    fn table_d_of_the_spec() {
        let ok: &[(&str, &str, &str)] = &[
            ("registry.io/*", "registry.io", "/*"),
            ("registry.io:", "registry.io:", ""),
            ("registry.io/pa th", "registry.io", "/pa th"),
            ("host.io/%20", "host.io", "/ "),
            ("*", "*", ""),
            ("**.io", "**.io", ""),
            ("", "", ""),
            ("user:pw@host.io/x", "host.io", "/x"),
            ("https://gcr.io", "https:", "//gcr.io"),
            ("[::1]:5000/x", "[::1]:5000", "/x"),
            ("host.io:99999", "host.io:99999", ""),
            ("reg.io/a?b=c#frag", "reg.io", "/a"),
            ("reg.io/a%2Fb", "reg.io", "/a/b"),
            ("h%C3%A9.io", "hé.io", ""),
            ("[fe80::1%25en0]:80", "[fe80::1%en0]:80", ""),
        ];
        for &(s, host, path) in ok {
            assert_eq!(p(s), Ok((host.into(), path.into())), "{s:?}");
        }
        let bad = [
            "%invalid%",
            "registry.io:*",
            "registry.io:abc",
            "reg istry.io",
            "host.io/%zz",
            "ho%20st.io",
            "[::1",
            "a\tb",
            "reg.io#%zz",
            "us er@reg.io",
            "reg|io",
        ];
        for s in bad {
            assert!(p(s).is_err(), "{s:?} should fail");
        }
        assert_eq!(
            p("%invalid%").unwrap_err().to_string(),
            "invalid URL escape \"%in\""
        );
    }
}
