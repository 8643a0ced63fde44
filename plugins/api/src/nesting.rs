//! Nesting bounded before a YAML or JSON text named by others is parsed ([`check_nesting`]).
//!
//! A config nests a few levels. A hostile one nested thousands deep makes the YAML parser
//! (libyaml, under `serde_norway`) crawl or hold hundreds of megabytes before anything looks
//! at it: 200 KB of `[` nested 100,000 deep took over 30 s, 1 MB of `- - - ...` took 160 MB.
//! So every such text (the plugin's `--config`, each file `validate-config` checks, an
//! `azure.json` written as YAML) passes [`check_nesting`] first: one pass over the bytes, no
//! parsing, a one-line [`TooNested`] when refused.

/// Deepest nesting of `[...]` / `{...}` accepted (and, for YAML, the most of them whatever
/// their size): a config nests a few levels, and the YAML scanner's work grows with the
/// square of the depth (200 KB nested 100,000 deep took over 30 s).
pub const MAX_FLOW_DEPTH: usize = 64;

/// For YAML with more than [`MAX_FLOW_DEPTH`] brackets: the most (bytes × brackets) parsed,
/// a bound on the scanner's work.
const MAX_YAML_WORK: u64 = 1 << 25;

/// Deepest block nesting accepted, in levels of indentation ([`check_nesting`]): a config
/// nests a few levels (the bundled, example and upstream ones at most 8), and serde_norway gives up at
/// 128 nested collections anyway, but only after libyaml has scanned them all.
pub const MAX_BLOCK_DEPTH: usize = 64;

/// Why a YAML or JSON text is refused before it is parsed ([`check_nesting`]).
#[derive(Debug, thiserror::Error)]
pub enum TooNested {
    /// JSON nested deeper than [`MAX_FLOW_DEPTH`].
    #[error("nested deeper than {MAX_FLOW_DEPTH} levels")]
    Json,
    /// YAML with too many brackets for its size.
    #[error(
        "{brackets} flow collections ([...], {{...}}) in {bytes} bytes, which may be nested that \
         deep: more than is parsed safely; write lists and maps in block style, or the file as JSON"
    )]
    Yaml {
        /// `[` and `{` in the text.
        brackets: u64,
        /// Its size.
        bytes: u64,
    },
    /// YAML whose block collections (`- `, `? `, `key:` and deeper-indented lines) nest deeper
    /// than [`MAX_BLOCK_DEPTH`] levels of indentation.
    #[error(
        "nested deeper than {MAX_BLOCK_DEPTH} levels of block indentation (`- `, `? `, `key:` \
         and indented lines) at line {line}: more than is parsed safely"
    )]
    Block {
        /// The first line (from 1) that goes past the limit.
        line: usize,
    },
}

/// Refuses a YAML or JSON text nested deeper than is parsed safely, before it is parsed:
/// flow collections (`[...]`, `{...}`) as [`check_flow`] says, and block collections
/// (unless the text is JSON, whose exact depth the flow check bounds) at most
/// [`MAX_BLOCK_DEPTH`] levels of indentation ([`block_too_deep`]).
pub fn check_nesting(text: &[u8]) -> Result<(), TooNested> {
    check_flow(text)?;
    match block_too_deep(text, MAX_BLOCK_DEPTH) {
        Some(line) if !is_json(text) => Err(TooNested::Block { line }),
        _ => Ok(()),
    }
}

/// The first line (from 1) whose block nesting goes past `limit` levels, if any.
///
/// YAML's own model, without parsing: a block collection lives at a column, and a nested one
/// at a greater column. The columns open at a line are kept on a stack: a line pops those
/// right of its indentation and pushes its own, then one more for each indicator that opens
/// a nested node on the same line (`- `, `? `, `: `), so `- - - x` is four levels at one
/// line. The stack's height is the depth. A sequence written at its key's column
/// (`key:` then `- item`) shares the key's level, so the true nesting is at most twice the
/// count; lines inside a block scalar (`key: |`) are text, not nesting, and are skipped. A
/// multi-line flow collection or quoted scalar can only count more than it nests.
fn block_too_deep(text: &[u8], limit: usize) -> Option<usize> {
    let mut columns: Vec<usize> = Vec::with_capacity(limit + 1);
    // The column of a block scalar's node: more indented lines are its text.
    let mut scalar_at: Option<usize> = None;
    for (n, line) in text.split(|&b| b == b'\n').enumerate() {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let mut rest = &line[indent..];
        let blank = rest.iter().all(u8::is_ascii_whitespace);
        if let Some(column) = scalar_at {
            if blank || indent > column {
                continue;
            }
            scalar_at = None;
        }
        if blank || rest[0] == b'#' {
            continue;
        }
        while columns.last().is_some_and(|&c| c > indent) {
            columns.pop();
        }
        let mut column = indent;
        loop {
            // Columns only grow along a line, and the pops left none right of the indent.
            if columns.last() != Some(&column) {
                columns.push(column);
            }
            if columns.len() > limit {
                return Some(n + 1);
            }
            let opens = matches!(rest, [b'-' | b'?' | b':', b' ' | b'\t', ..]);
            let skip = 1 + rest[1..]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
            if !opens || rest.len() == skip || rest[skip] == b'#' || rest[skip] == b'\r' {
                break;
            }
            column += skip;
            rest = &rest[skip..];
        }
        if is_block_scalar_header(rest) {
            scalar_at = Some(column);
        }
    }
    None
}

/// Whether a line's node (what follows its indentation and indicators) ends in a block
/// scalar header: `|` or `>` with optional chomping and indentation indicators, alone or
/// after `key:` or a tag or anchor, before an optional comment.
fn is_block_scalar_header(node: &[u8]) -> bool {
    let code = match node
        .windows(2)
        .position(|w| w[0].is_ascii_whitespace() && w[1] == b'#')
    {
        Some(i) => &node[..i],
        None => node,
    };
    let mut tokens = code
        .split(u8::is_ascii_whitespace)
        .filter(|t| !t.is_empty())
        .rev();
    let Some(last) = tokens.next() else {
        return false;
    };
    let header = matches!(last.first(), Some(b'|' | b'>'))
        && last[1..]
            .iter()
            .all(|b| matches!(b, b'-' | b'+' | b'1'..=b'9'));
    header
        && tokens
            .next()
            .is_none_or(|t| t.ends_with(b":") || t.starts_with(b"!") || t.starts_with(b"&"))
}

/// Whether the text is JSON (which YAML reads in flow style, indentation meaningless).
fn is_json(text: &[u8]) -> bool {
    looks_like_json(text) && serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
}

/// The flow half of [`check_nesting`]: refuses a text whose `[...]` / `{...}` nesting could
/// make the YAML parser crawl: libyaml's
/// scanner does work proportional to the flow depth for every token, so a 200 KB file
/// nested 100,000 deep takes minutes. Checked without parsing, in one pass:
///
/// * at most [`MAX_FLOW_DEPTH`] brackets in all: the depth cannot be more;
/// * JSON (which `serde_json`, depth-limited itself, accepts): its exact depth, at most
///   [`MAX_FLOW_DEPTH`];
/// * other YAML: bytes × brackets at most [`MAX_YAML_WORK`], a bound on the scanner's
///   work whatever the quoting (telling a YAML bracket from one inside a scalar takes the
///   scanner itself): a few KB of YAML may hold hundreds of brackets, a large file few.
fn check_flow(text: &[u8]) -> Result<(), TooNested> {
    let brackets = text.iter().filter(|&&b| b == b'[' || b == b'{').count() as u64;
    if brackets <= MAX_FLOW_DEPTH as u64 {
        return Ok(());
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok() {
        return match json_depth(text) <= MAX_FLOW_DEPTH {
            true => Ok(()),
            false => Err(TooNested::Json),
        };
    }
    if looks_like_json(text) && is_too_deep_for_serde_json(text) {
        return Err(TooNested::Json);
    }
    let bytes = text.len() as u64;
    match bytes.saturating_mul(brackets) <= MAX_YAML_WORK {
        true => Ok(()),
        false => Err(TooNested::Yaml { brackets, bytes }),
    }
}

/// The nesting depth of valid JSON text.
fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn looks_like_json(text: &[u8]) -> bool {
    matches!(text.trim_ascii_start().first(), Some(b'{' | b'['))
}

/// Whether `serde_json` refused the text for its own depth limit (128).
fn is_too_deep_for_serde_json(text: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(text)
        .is_err_and(|e| e.to_string().starts_with("recursion limit exceeded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_before_parsing_whatever_the_syntax() {
        let nested = |depth: usize| format!("a: {}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(check_nesting(nested(MAX_FLOW_DEPTH).as_bytes()).is_ok());
        let deep = nested(100_000);
        let e = check_nesting(deep.as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                TooNested::Yaml {
                    brackets: 100_000,
                    ..
                }
            ),
            "{e}"
        );
        // JSON: the exact depth counts, not how many collections there are.
        let json = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let wide = format!("[{}]", vec![r#"{"a": ["[", "{"]}"#; 10_000].join(","));
        assert!(check_nesting(wide.as_bytes()).is_ok());
        assert!(check_nesting(json(MAX_FLOW_DEPTH).as_bytes()).is_ok());
        for depth in [MAX_FLOW_DEPTH + 1, 100, 100_000] {
            let e = check_nesting(json(depth).as_bytes()).unwrap_err();
            assert!(matches!(e, TooNested::Json), "{depth}: {e}");
        }
        // YAML: a few KB may hold hundreds of brackets, a large file few.
        let lists = "- [a, b]\n".repeat(300);
        assert!(check_nesting(lists.as_bytes()).is_ok());
        let big = format!("{lists}{}", "# padding\n".repeat(100_000));
        assert!(check_nesting(big.as_bytes()).is_err());
        assert_eq!(json_depth(br#"{"a": "]]}", "b": [[{"c": "\\\"["}]]}"#), 4);
    }

    #[test]
    fn block_nesting_is_bounded_before_parsing() {
        let dashes = |n: usize| format!("{}x\n", "- ".repeat(n));
        // `- ` n times, then the scalar: n + 1 levels.
        assert!(check_nesting(dashes(MAX_BLOCK_DEPTH - 1).as_bytes()).is_ok());
        for text in [
            dashes(MAX_BLOCK_DEPTH),
            dashes(500_000),
            format!("{}x\n", "? ".repeat(500_000)),
            format!("a:\n{}x\n", "  - ".repeat(100)),
        ] {
            let e = check_nesting(text.as_bytes()).unwrap_err();
            assert!(matches!(e, TooNested::Block { line: _ }), "{e}");
            assert!(e.to_string().contains("nested deeper than 64"), "{e}");
        }
        let indented = |n: usize| {
            (0..n)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect::<String>()
        };
        assert!(check_nesting(indented(MAX_BLOCK_DEPTH).as_bytes()).is_ok());
        let e = check_nesting(indented(1_400).as_bytes()).unwrap_err();
        assert!(matches!(e, TooNested::Block { line: 65 }), "{e}");
        // Going back out frees the levels: many shallow lines are not deep.
        let wide = "a:\n  b:\n    - c: 1\n      d: 2\n".repeat(10_000);
        assert!(check_nesting(wide.as_bytes()).is_ok());
        // Levels at the columns 0 (`- `), 2 (`a:`, `b:`), 4 (`- `) and 6 (`c`).
        let mixed = b"- a: 1\n  b:\n    - c\n";
        assert_eq!(block_too_deep(mixed, 4), None);
        assert_eq!(block_too_deep(mixed, 3), Some(3));
        // A block scalar's text is not nesting, however it is indented, but what follows it
        // at the key's column is.
        let script: String = (0..200)
            .map(|i| format!("  {}x\n", " ".repeat(i)))
            .collect();
        for header in ["|", ">-", "|2", "!!str |", "&a >+ # text"] {
            let text = format!("run: {header}\n{script}next: 1\n");
            assert!(check_nesting(text.as_bytes()).is_ok(), "{header}");
        }
        let hidden = format!("- k: |\n    text\n  o:\n{}", indented(200));
        assert!(check_nesting(hidden.as_bytes()).is_err());
        // JSON reads in flow style: its indentation is not nesting.
        let json: String = format!(
            "{{\n{}\"a\": 1}}\n",
            (0..200)
                .map(|i| format!("{}\"k{i}\": 1,\n", " ".repeat(i)))
                .collect::<String>()
        );
        assert!(block_too_deep(json.as_bytes(), MAX_BLOCK_DEPTH).is_some());
        assert!(check_nesting(json.as_bytes()).is_ok());
    }
}
