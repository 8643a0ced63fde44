//! Why a pattern does not match a target, step by step as the kubelet checks (for `explain`):
//! the same parse and comparisons as [`super::urls_match`], each failure named.

use super::{parse_schemeless, split_host_port};
use crate::goglob;

/// Why a pattern does not match a target, in the order the kubelet checks (for `explain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The pattern is not a URL Go would parse: the kubelet skips it.
    Unparsable(String),
    /// The target is not a URL Go would parse.
    TargetUnparsable(String),
    /// Ports differ (an absent port only equals an absent port).
    Port {
        /// The pattern's port, `""` when absent.
        pattern: String,
        /// The target's port, `""` when absent.
        target: String,
    },
    /// The hosts have different numbers of DNS labels (a `*` covers exactly one).
    LabelCount {
        /// Labels in the pattern's host.
        pattern: usize,
        /// Labels in the target's host.
        target: usize,
    },
    /// The pattern's path is not a prefix of the target's.
    Path,
    /// A label's glob does not match (or is malformed).
    Label {
        /// The pattern label.
        pattern: String,
        /// The target label.
        target: String,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Unparsable(e) => write!(f, "the pattern does not parse ({e}); the kubelet ignores it"),
            Mismatch::TargetUnparsable(e) => write!(f, "the image does not parse ({e})"),
            Mismatch::Port { pattern, target } => {
                let show = |p: &str| if p.is_empty() { "no port".to_string() } else { format!("port {p}") };
                write!(f, "ports differ: pattern has {}, image has {}", show(pattern), show(target))
            }
            Mismatch::LabelCount { pattern, target } => write!(
                f,
                "the pattern's host has {pattern} labels, the image's {target}; each * covers exactly one label"
            ),
            Mismatch::Path => f.write_str("the pattern's path is not a prefix of the image's path"),
            Mismatch::Label { pattern, target } => {
                write!(f, "label {pattern:?} does not match {target:?}")
            }
        }
    }
}

/// Like [`urls_match`](super::urls_match), but says why not.
pub fn explain_match(pattern: &str, target: &str) -> Result<(), Mismatch> {
    let glob =
        parse_schemeless(pattern.as_bytes()).map_err(|e| Mismatch::Unparsable(e.to_string()))?;
    let t = parse_schemeless(target.as_bytes())
        .map_err(|e| Mismatch::TargetUnparsable(e.to_string()))?;
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (gh, gp) = split_host_port(&glob.host);
    let (th, tp) = split_host_port(&t.host);
    if gp != tp {
        return Err(Mismatch::Port {
            pattern: lossy(gp),
            target: lossy(tp),
        });
    }
    let (gl, tl): (Vec<&[u8]>, Vec<&[u8]>) = (
        gh.split(|&b| b == b'.').collect(),
        th.split(|&b| b == b'.').collect(),
    );
    if gl.len() != tl.len() {
        return Err(Mismatch::LabelCount {
            pattern: gl.len(),
            target: tl.len(),
        });
    }
    if !t.path.starts_with(&glob.path) {
        return Err(Mismatch::Path);
    }
    for (g, l) in gl.iter().zip(&tl) {
        if goglob::matches(g, l) != Ok(true) {
            return Err(Mismatch::Label {
                pattern: lossy(g),
                target: lossy(l),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::urls_match;
    use super::*;

    #[test]
    fn explain_agrees_with_urls_match_and_names_the_reason() {
        let cases = [
            ("reg.io", "reg.io/a"),
            ("reg.io", "reg.io:5000/a"),
            ("*.io", "a.b.io/x"),
            ("reg.io/team", "reg.io/other"),
            ("*.reg.io", "a.other.io/x"),
            ("%zz", "reg.io/a"),
            ("reg[.io", "reg[.io/a"),
        ];
        for (p, t) in cases {
            assert_eq!(explain_match(p, t).is_ok(), urls_match(p, t), "{p} {t}");
        }
        assert!(matches!(
            explain_match("reg.io", "reg.io:5000/a"),
            Err(Mismatch::Port { .. })
        ));
        assert!(matches!(
            explain_match("*.io", "a.b.io/x"),
            Err(Mismatch::LabelCount {
                pattern: 2,
                target: 3
            })
        ));
        assert_eq!(
            explain_match("reg.io/team", "reg.io/other"),
            Err(Mismatch::Path)
        );
        assert!(explain_match("*.reg.io", "a.other.io/x")
            .unwrap_err()
            .to_string()
            .contains("\"reg\""));
    }
}
