//! The text rules of Go's `encoding/json` that serde_json does not share: invalid UTF-8 and
//! unpaired surrogate escapes become U+FFFD instead of failing the document, and object keys
//! match field names case-insensitively, with Go's folding.

/// The document as Go's `encoding/json` reads it, made acceptable to serde_json without
/// changing what it means: every byte that is not valid UTF-8 becomes U+FFFD (one per byte,
/// as Go's decoder does, where `from_utf8_lossy` would merge a run), and a `\uXXXX` escape of
/// an unpaired surrogate becomes `\uFFFD` (Go decodes it so; serde_json refuses it).
pub(super) fn go_json_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    let mut text: std::borrow::Cow<'_, str> = match std::str::from_utf8(bytes) {
        Ok(t) => t.into(),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 16);
            let mut rest = bytes;
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(t) => {
                        out.push_str(t);
                        break;
                    }
                    Err(e) => {
                        let (good, bad) = rest.split_at(e.valid_up_to());
                        out.push_str(std::str::from_utf8(good).unwrap_or_default());
                        let n = e.error_len().unwrap_or(bad.len());
                        out.extend(std::iter::repeat_n('\u{FFFD}', n));
                        rest = &bad[n..];
                    }
                }
            }
            out.into()
        }
    };
    if text.contains("\\u") || text.contains("\\U") {
        if let Some(fixed) = fix_lone_surrogates(&text) {
            text = fixed.into();
        }
    }
    text
}

/// Rewrites `\uD800`-`\uDFFF` escapes that are not a high-low pair to `\uFFFD`, inside
/// strings only. `None` when there is nothing to change.
fn fix_lone_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let hex4 = |i: usize| -> Option<u16> {
        let s = text.get(i..i + 4)?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u16::from_str_radix(s, 16).ok()
    };
    let escape_at = |i: usize| -> Option<u16> {
        (b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u'))
            .then(|| hex4(i + 2))
            .flatten()
    };
    let mut out: Option<String> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if let Some(u) = escape_at(i) {
                    let high = (0xD800..0xDC00).contains(&u);
                    let paired =
                        high && escape_at(i + 6).is_some_and(|l| (0xDC00..0xE000).contains(&l));
                    if paired {
                        i += 12;
                        continue;
                    }
                    if (0xD800..0xE000).contains(&u) {
                        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                        o.push_str(&text[copied..i]);
                        o.push_str("\\uFFFD");
                        i += 6;
                        copied = i;
                        continue;
                    }
                }
                i += 2; // any other escape, including \\ and \"
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

/// Go's case-insensitive key match for our ASCII field names: ASCII case folding, plus the
/// one non-ASCII fold that reaches our letters (U+017F LATIN SMALL LETTER LONG S ~ `s`).
pub(crate) fn key_is(key: &str, field: &str) -> bool {
    let mut k = key.chars();
    for f in field.chars() {
        match k.next() {
            Some(c) if c.eq_ignore_ascii_case(&f) => {}
            Some('\u{17f}') if f.eq_ignore_ascii_case(&'s') => {}
            _ => return false,
        }
    }
    k.next().is_none()
}
