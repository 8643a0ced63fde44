//! Go `time.Duration` text, both ways.
//!
//! The kubelet parses `cacheDuration` with Go's `time.ParseDuration` and prints durations with
//! `Duration.String()`. [`format()`] reproduces `String()` exactly (`5m0s`, `1h0m0s`, `1.5s`,
//! `500ms`), so what we send looks like what the kubelet itself would write; [`parse`]
//! accepts what `ParseDuration` accepts, for config files (`defaultCacheDuration: 12h`).

use std::time::Duration;

/// Formats like Go's `time.Duration.String()` for a non-negative duration.
/// Durations beyond Go's range (about 292 years) saturate at `i64::MAX` nanoseconds.
pub fn format(d: Duration) -> String {
    let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    format_nanos(nanos)
}

/// Formats a signed nanosecond count like Go's `time.Duration.String()`.
pub fn format_nanos(d: i64) -> String {
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::with_capacity(24);
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".into();
        }
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (int, frac) = split_frac(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (secs, frac) = split_frac(u, 9);
        u = secs;
        let s = u % 60;
        u /= 60;
        if u > 0 {
            let m = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&u.to_string());
                out.push('h');
            }
            out.push_str(&m.to_string());
            out.push('m');
        }
        out.push_str(&s.to_string());
        out.push_str(&frac);
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// Splits `v` into `v / 10^prec` and the fraction text (".5", "" when zero), trailing zeros
/// dropped, as Go's `fmtFrac` does.
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    let scale = 10u64.pow(prec);
    let (int, mut frac) = (v / scale, v % scale);
    if frac == 0 {
        return (int, String::new());
    }
    let mut digits = prec as usize;
    while frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    (int, format!(".{frac:0digits$}"))
}

/// Why a duration string was refused; the text names the input as Go's error does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: {0}")]
pub struct ParseError(String);

/// Parses like Go's `time.ParseDuration`, returning signed nanoseconds.
pub fn parse(s: &str) -> Result<i64, ParseError> {
    let err = |reason: &str| ParseError(format!("{reason} {s:?}"));
    let mut rest = s.as_bytes();
    let mut neg = false;
    if let Some((&c, tail)) = rest.split_first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            rest = tail;
        }
    }
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err("invalid duration"));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        // Integer part.
        if !(rest[0] == b'.' || rest[0].is_ascii_digit()) {
            return Err(err("invalid duration"));
        }
        let int_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &rest[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|&v| v <= 1 << 63)
                .ok_or_else(|| err("invalid duration"))?;
        }
        let pre = int_len > 0;
        rest = &rest[int_len..];
        // Fraction.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if rest.first() == Some(&b'.') {
            rest = &rest[1..];
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            post = n > 0;
            let mut overflow = false;
            for &c in &rest[..n] {
                if overflow {
                    continue;
                }
                if frac > (i64::MAX as u64) / 10 {
                    overflow = true;
                    continue;
                }
                let y = frac * 10 + u64::from(c - b'0');
                if y > 1 << 63 {
                    overflow = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
            rest = &rest[n..];
        }
        if !pre && !post {
            return Err(err("invalid duration"));
        }
        // Unit.
        let unit_len = rest
            .iter()
            .take_while(|&&c| c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(err("missing unit in duration"));
        }
        let unit: u64 = match &rest[..unit_len] {
            b"ns" => 1,
            // "us", "µs" (U+00B5 micro sign), "μs" (U+03BC Greek mu)
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            u => {
                let u = String::from_utf8_lossy(u);
                return Err(err(&format!("unknown unit {u:?} in duration")));
            }
        };
        rest = &rest[unit_len..];
        if v > (1u64 << 63) / unit {
            return Err(err("invalid duration"));
        }
        v *= unit;
        if frac > 0 {
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(err("invalid duration"));
            }
        }
        // Go adds in uint64 and then checks `> 1<<63`; the add itself wraps, so two terms of
        // exactly 1<<63 ns sum to 0 and pass. Kept: this must accept what Go accepts.
        total = total.wrapping_add(v);
        if total > 1 << 63 {
            return Err(err("invalid duration"));
        }
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > i64::MAX as u64 {
        return Err(err("invalid duration"));
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (500_000_000, "500ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (300_000_000_000, "5m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (21_600_000_000_000, "6h0m0s"),
            (4 * 3_600_000_000_000 + 1, "4h0m0.000000001s"),
            (-1_000_000_000, "-1s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for &(n, want) in cases {
            assert_eq!(format_nanos(n), want, "{n}");
        }
        assert_eq!(format(Duration::from_secs(300)), "5m0s");
        assert_eq!(
            format(Duration::from_secs(u64::MAX)),
            "2562047h47m16.854775807s"
        );
    }

    #[test]
    fn parses_like_go() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("-0", 0),
            ("5m0s", 300_000_000_000),
            ("12h", 43_200_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("-1m", -60_000_000_000),
            ("+3s", 3_000_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("1µs", 1_000),
            ("1μs", 1_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ];
        for &(s, want) in ok {
            assert_eq!(parse(s), Ok(want), "{s}");
        }
        for bad in [
            "",
            "5",
            "1d",
            "m",
            ".s",
            "1.2.3s",
            "-",
            "9223372036854775808ns",
            "5 m",
            "1h ",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(
            parse("1d").unwrap_err().to_string(),
            "time: unknown unit \"d\" in duration \"1d\""
        );
    }

    // Found by the differential test against Go 1.19 (fuzz/differential).
    #[test]
    fn regression_two_terms_of_2_pow_63_wrap_to_zero_as_in_go() {
        assert_eq!(parse("-9223372036854775808ns9223372036854775808ns"), Ok(0));
        assert_eq!(parse("9223372036854775808ns9223372036854775808ns"), Ok(0));
        assert_eq!(
            parse("9223372036854775808ns9223372036854775808ns9223372036854775807ns"),
            Ok(i64::MAX)
        );
        assert!(parse("9223372036854775808ns1ns").is_err());
    }

    #[test]
    fn every_formatted_duration_parses_back_to_the_same_nanoseconds() {
        for n in [
            1,
            999,
            1_000,
            123_456_789,
            1_000_000_000,
            86_400_000_000_000,
            i64::MAX,
        ] {
            assert_eq!(parse(&format_nanos(n)), Ok(n));
        }
    }
}
