//! Differential test: the Rust re-implementations of kubelet behaviour against the kubelet's
//! own Go code, restated in `kubeletref.go`.
//!
//! Usage: `differential <kubeletref binary> [--cases N] [--seed S] [--show K] [--only KIND]`.
//! It generates N cases per kind (biased toward the characters that matter: `* ? [ ] ^ - \ %
//! : @ / . #`, digits, upper case, IPv6 brackets, ports, escapes, non-ASCII), pipes them as
//! JSON lines through the Go program, computes the Rust answer for each, and prints up to K
//! mismatches per kind and a final line `N cases, M mismatches`. Exit status 1 when anything
//! differs. Run by hand through `run.sh`; not part of CI (it needs Go).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use base64::Engine as _;
use keyring_api::fuzzing::filepath_match;
use keyring_api::pattern::{
    is_default_registry_match, keyring_key, parse_schemeless, urls_match, validate_match_image,
    Keyring, Target,
};
use keyring_api::{duration, ImageName};
use keyring_docker_config::{decode_auth, parse_config_json, parse_dockercfg, Entries};
use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut go = None;
    let (mut per_kind, mut seed, mut show, mut only) = (20_000usize, 1u64, 8usize, None);
    let mut i = 1;
    while i < args.len() {
        let value = |i: usize| args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--cases" => (per_kind, i) = (value(i).parse().unwrap_or(per_kind), i + 1),
            "--seed" => (seed, i) = (value(i).parse().unwrap_or(seed), i + 1),
            "--show" => (show, i) = (value(i).parse().unwrap_or(show), i + 1),
            "--only" => (only, i) = (Some(value(i)), i + 1),
            path => go = Some(path.to_string()),
        }
        i += 1;
    }
    let Some(go) = go else {
        eprintln!("usage: differential <kubeletref binary> [--cases N] [--seed S] [--show K] [--only KIND]");
        std::process::exit(2);
    };

    let mut rng = Rng(seed);
    let mut cases: Vec<Case> = Vec::new();
    for kind in KINDS {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        cases.extend(fixed_cases(kind));
        for _ in 0..per_kind {
            cases.push(generate(kind, &mut rng));
        }
    }

    let answers = run_go(&go, &cases);
    let mut total: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    for (case, go) in cases.iter().zip(&answers) {
        let counts = total.entry(case.kind).or_default();
        counts.0 += 1;
        for (label, rust_says, go_says) in compare(case, go) {
            counts.1 += 1;
            let n = shown.entry(case.kind).or_default();
            *n += 1;
            if *n <= show {
                println!(
                    "MISMATCH {label}\n  input: {}\n  rust:  {rust_says}\n  go:    {go_says}",
                    case.describe()
                );
            }
        }
    }
    let (mut n, mut m) = (0, 0);
    for (kind, (cases, mismatches)) in &total {
        println!("{kind:>10}: {cases} cases, {mismatches} mismatches");
        n += cases;
        m += mismatches;
    }
    println!("{n} cases, {m} mismatches");
    if m > 0 {
        std::process::exit(1);
    }
}

const KINDS: [&str; 12] = [
    "url",
    "match",
    "glob",
    "key",
    "keyring",
    "hub",
    "auth",
    "cfgjson",
    "dockercfg",
    "image",
    "dur",
    "durfmt",
];

/// One case: kind plus its inputs (`a`, `b` strings, `l` a list, `n` a number, `bytes` for the
/// kinds whose input is raw bytes, sent to Go as hex in `a`).
#[derive(Clone, Default)]
struct Case {
    kind: &'static str,
    a: String,
    b: String,
    l: Vec<String>,
    n: i64,
    bytes: Vec<u8>,
    bytes_b: Vec<u8>,
}

impl Case {
    fn to_json(&self) -> Value {
        let (a, b) = match self.kind {
            "glob" => (hex(&self.bytes), hex(&self.bytes_b)),
            "cfgjson" | "dockercfg" => (hex(&self.bytes), String::new()),
            _ => (self.a.clone(), self.b.clone()),
        };
        json!({"k": self.kind, "a": a, "b": b, "l": self.l, "n": self.n})
    }

    fn describe(&self) -> String {
        match self.kind {
            "glob" => format!(
                "filepath.Match({:?}, {:?})",
                String::from_utf8_lossy(&self.bytes),
                String::from_utf8_lossy(&self.bytes_b)
            ),
            "cfgjson" | "dockercfg" => {
                let text = String::from_utf8_lossy(&self.bytes);
                let short: String = text.chars().take(400).collect();
                format!(
                    "{} {short:?} (hex {})",
                    self.kind,
                    hex(&self.bytes[..self.bytes.len().min(200)])
                )
            }
            "keyring" => format!("keys {:?} image {:?}", self.l, self.b),
            "match" => format!("URLsMatchStr({:?}, {:?})", self.a, self.b),
            "durfmt" => format!("Duration({}).String()", self.n),
            kind => format!("{kind} {:?}", self.a),
        }
    }
}

struct GoAnswer {
    ok: bool,
    v: Vec<String>,
    e: String,
}

fn run_go(go: &str, cases: &[Case]) -> Vec<GoAnswer> {
    let mut child = Command::new(go)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {go}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let lines: Vec<String> = cases.iter().map(|c| c.to_json().to_string()).collect();
    let writer = std::thread::spawn(move || {
        for line in lines {
            writeln!(stdin, "{line}").expect("write to Go");
        }
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut answers = Vec::with_capacity(cases.len());
    for line in BufReader::new(stdout).lines() {
        let v: Value = serde_json::from_str(&line.expect("read from Go")).expect("Go JSON");
        answers.push(GoAnswer {
            ok: v["ok"].as_bool().unwrap_or(false),
            v: v["v"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            e: v["e"].as_str().unwrap_or_default().to_string(),
        });
    }
    writer.join().expect("writer thread");
    let status = child.wait().expect("Go exit");
    assert!(status.success(), "{go} failed: {status}");
    assert_eq!(
        answers.len(),
        cases.len(),
        "Go answered a different number of cases"
    );
    answers
}

/// The Rust answer for a case, compared with Go's: a list of (what, rust, go) differences.
fn compare(case: &Case, go: &GoAnswer) -> Vec<(String, String, String)> {
    let mut diffs = Vec::new();
    let mut differ = |label: &str, rust: String, go: String| {
        if rust != go {
            diffs.push((format!("{} {label}", case.kind), rust, go));
        }
    };
    let go_result = || {
        if go.ok {
            format!("ok {:?}", go.v)
        } else {
            "error".to_string()
        }
    };
    match case.kind {
        "url" => {
            let rust = match parse_schemeless(case.a.as_bytes()) {
                Ok(p) => format!("ok {:?}", [hex(&p.host), hex(&p.path)]),
                Err(_) => "error".into(),
            };
            differ("parse", rust, go_result());
            if !go.ok {
                let rust_msg = validate_match_image(&case.a)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                differ("error text", rust_msg, go.e.clone());
            }
        }
        "match" => {
            let go_says = go.ok.to_string();
            differ(
                "urls_match",
                urls_match(&case.a, &case.b).to_string(),
                go_says.clone(),
            );
            differ(
                "Target::matched_by",
                Target::new(&case.b).matched_by(&case.a).to_string(),
                go_says,
            );
        }
        "glob" => {
            let rust = match filepath_match(&case.bytes, &case.bytes_b) {
                Ok(m) => m.to_string(),
                Err(_) => "ErrBadPattern".into(),
            };
            // Against newer Go's answer (v[0]); and the match itself must agree with 1.19 too.
            differ(
                "filepath.Match",
                rust.clone(),
                go.v.first().cloned().unwrap_or_default(),
            );
            differ(
                "filepath.Match matched (Go 1.19)",
                (rust == "true").to_string(),
                go.ok.to_string(),
            );
        }
        "key" => {
            let rust = match keyring_key(&case.a) {
                Ok(k) => format!("ok {:?}", [hex(&k)]),
                Err(_) => "error".into(),
            };
            differ("keyring key", rust, go_result());
        }
        "keyring" => {
            let mut ring = Keyring::new();
            for (i, loc) in case.l.iter().enumerate() {
                let _ = ring.add(loc, i);
            }
            let (found, _) = ring.lookup(&Target::new(&case.b));
            let rust: Vec<String> = found.iter().map(|e| e.value.to_string()).collect();
            differ("lookup", format!("{rust:?}"), format!("{:?}", go.v));
        }
        "hub" => differ(
            "isDefaultRegistryMatch",
            is_default_registry_match(&case.a).to_string(),
            go.ok.to_string(),
        ),
        "auth" => {
            let rust = match decode_auth(&case.a) {
                Ok((u, p)) => format!("ok {u:?} {:?}", p.expose()),
                Err(_) => "error".into(),
            };
            let go_says = if go.ok {
                format!("ok {:?} {:?}", lossy_hex(&go.v[0]), lossy_hex(&go.v[1]))
            } else {
                "error".into()
            };
            differ("decode", rust, go_says);
        }
        "cfgjson" | "dockercfg" => {
            let parsed = if case.kind == "cfgjson" {
                parse_config_json(&case.bytes)
            } else {
                parse_dockercfg(&case.bytes)
            };
            let rust = match parsed {
                Ok(entries) => format!("ok {:?}", entry_lines(&entries)),
                Err(_) => "error".into(),
            };
            let go_says = if go.ok {
                // Go keeps the raw bytes of a decoded `auth`; Rust stores text with invalid
                // UTF-8 replaced. Compare after the same replacement.
                let mut lines: Vec<String> =
                    go.v.iter()
                        .map(|l| {
                            l.split(' ')
                                .map(|h| hex(lossy_hex(h).as_bytes()))
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .collect();
                lines.sort();
                format!("ok {lines:?}")
            } else {
                "error".into()
            };
            differ("parse", rust, go_says);
        }
        "image" => {
            let rust = match ImageName::parse(&case.a) {
                Ok(name) => format!("ok {:?}", [name.as_str()]),
                Err(_) => "error".into(),
            };
            differ("ParseNormalizedNamed", rust, go_result());
        }
        "dur" => {
            let rust = match duration::parse(&case.a) {
                Ok(n) => format!("ok {:?}", [n.to_string()]),
                Err(_) => "error".into(),
            };
            differ("ParseDuration", rust, go_result());
        }
        "durfmt" => differ(
            "String",
            duration::format_nanos(case.n),
            go.v.first().cloned().unwrap_or_default(),
        ),
        other => panic!("unknown kind {other}"),
    }
    diffs
}

fn entry_lines(entries: &Entries) -> Vec<String> {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|(k, e)| {
            [
                k.as_bytes(),
                e.username.as_bytes(),
                e.password.expose().as_bytes(),
                e.email.as_bytes(),
            ]
            .map(hex)
            .join(" ")
        })
        .collect();
    lines.sort();
    lines
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex from Go"))
        .collect()
}

fn lossy_hex(s: &str) -> String {
    String::from_utf8_lossy(&unhex(s)).into_owned()
}

// ---------------------------------------------------------------------------------------
// Generation.

/// splitmix64: small, seedable, good enough to spread cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Single characters that steer the Go parsers and globs.
const TRICKY: &[&str] = &[
    "*",
    "?",
    "[",
    "]",
    "^",
    "-",
    "\\",
    "%",
    ":",
    "@",
    "/",
    ".",
    "#",
    "0",
    "1",
    "9",
    "A",
    "Z",
    "a",
    "b",
    "z",
    "K",
    "k",
    "s",
    "S",
    "_",
    "~",
    "!",
    "$",
    "&",
    "'",
    "(",
    ")",
    "+",
    ",",
    ";",
    "=",
    "<",
    ">",
    "\"",
    " ",
    "\t",
    "\u{7f}",
    "|",
    "{",
    "}",
    "`",
    "é",
    "☺",
    "\u{17f}",
    "\u{212a}",
    "\u{fffd}",
    "\u{a0}",
    "\u{85}",
    "\u{200b}",
    "\u{301}",
    "%25",
    "%2",
    "%41",
    "%2F",
    "%3F",
    "%e2%98%ba",
    "%C3%A9",
    "%ff",
    "%zz",
    "::",
];

fn tricky_string(rng: &mut Rng, max: usize) -> String {
    let n = rng.below(max + 1);
    (0..n).map(|_| rng.pick(TRICKY)).collect()
}

const LABELS: &[&str] = &[
    "a",
    "b",
    "io",
    "registry",
    "docker",
    "gcr",
    "k8s",
    "com",
    "amazonaws",
    "dkr",
    "ecr",
    "us-east-1",
    "123",
    "localhost",
    "*",
    "**",
    "*a",
    "a*",
    "*-*",
    "a*b",
    "[a-c]",
    "[^a]",
    "[!a]",
    "[a-]",
    "[-a]",
    "[]a]",
    "[",
    "]",
    "[]",
    "[a",
    "a]",
    "reg[0-9]",
    "reg[^0-9]",
    "?",
    "%2A",
    "%25",
    "%41",
    "%C3%A9",
    "%e2%98%ba",
    "%zz",
    "%",
    "é",
    "☺",
    "A",
    "Reg",
    "REG",
    "K",
    "\u{212a}",
    "x-y",
    "-",
    "_",
    "~",
    "!",
    "$",
    "&",
    "'",
    "(",
    ")",
    "+",
    ",",
    ";",
    "=",
    "<",
    ">",
    "\"",
    " ",
    "",
    "\\",
    "^",
    "@",
    "a@b",
    "0",
    "00",
    "1",
];

const PORTS: &[&str] = &[
    "", "", "", "", ":5000", ":5000", ":", ":0", ":99999", ":abc", ":5000:1", ":-1", ": 5", ":*",
    ":٣",
];

const PATHS: &[&str] = &[
    "",
    "",
    "",
    "/",
    "/x",
    "/team",
    "/team/app",
    "/teamz/app",
    "/v1/",
    "/v2/",
    "/v1",
    "/v2",
    "/v2/team",
    "/v1//",
    "/*",
    "/%2F",
    "/%zz",
    "/a%25b",
    "/a%2",
    "/?",
    "?q",
    "?",
    "#f",
    "#%zz",
    "/a#%zz",
    "//",
    "/ ",
    "/☺",
    "/library/nginx",
    "/A",
    "/a?b#c",
];

const HOST_FORMS: &[&str] = &[
    "[::1]",
    "[::1]:5000",
    "[fe80::1%25en0]",
    "[fe80::1%25en0]:80",
    "[fe80::1%25%41]",
    "[::1",
    "[a:b]",
    "[[]::1*",
    "[::1]x",
    "[::1]:",
    "[::1]:a",
    "::1",
    "a:1:2",
    "[::1]]:5",
    "[::]",
    "[%25]",
    "[fe80::1%en0]",
    "[fe80::1%2541%20]",
];

fn host(rng: &mut Rng) -> String {
    if rng.chance(8) {
        return rng.pick(HOST_FORMS).to_string();
    }
    let labels = 1 + rng.below(4);
    let mut h: Vec<String> = (0..labels).map(|_| rng.pick(LABELS).to_string()).collect();
    if rng.chance(10) {
        let i = rng.below(h.len());
        h[i] = tricky_string(rng, 4);
    }
    h.join(".")
}

fn url_like(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(10) {
        s.push_str(rng.pick(&[
            "user:pw@", "u@", "@", "us er@", "u%41@", "a@b@", "u:p:q@", "%zz@",
        ]));
    }
    s.push_str(&host(rng));
    s.push_str(rng.pick(PORTS));
    s.push_str(rng.pick(PATHS));
    if rng.chance(10) {
        s.push_str(&tricky_string(rng, 4));
    }
    s
}

/// A pattern derived from a target, so that a good share of pairs match.
fn derive_pattern(rng: &mut Rng, target: &str) -> String {
    let (hostport, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, ""),
    };
    let (hostname, port) = match hostport.rfind(':') {
        Some(i) if !hostport.starts_with('[') || hostport[..i].ends_with(']') => {
            (&hostport[..i], &hostport[i..])
        }
        _ => (hostport, ""),
    };
    let mut labels: Vec<String> = hostname.split('.').map(String::from).collect();
    for label in labels.iter_mut() {
        if !rng.chance(35) {
            continue;
        }
        let chars: Vec<char> = label.chars().collect();
        let tail: String = chars.iter().skip(1).collect();
        *label = match rng.below(8) {
            0 => "*".into(),
            1 if !chars.is_empty() => format!("{}*", chars[0]),
            2 if !chars.is_empty() => format!("*{}", chars[chars.len() - 1]),
            3 if !chars.is_empty() => format!("[{}]{tail}", chars[0]),
            4 if !chars.is_empty() => format!("[^{}]{tail}", chars[0]),
            5 if !chars.is_empty() => format!("[a-z0-9]{tail}"),
            6 => label.to_uppercase(),
            _ => format!("{label}*"),
        };
    }
    let port = if rng.chance(15) {
        rng.pick(PORTS)
    } else {
        port
    };
    let cut = if path.is_empty() {
        0
    } else {
        rng.below(path.len() + 1)
    };
    let path = path.get(..cut).unwrap_or(path);
    let mut p = format!("{}{port}{path}", labels.join("."));
    if rng.chance(10) {
        p.insert_str(
            0,
            rng.pick(&["https://", "http://", "HTTPS://", "oci://", "//"]),
        );
    }
    if rng.chance(5) {
        p.push_str(rng.pick(&["/", "/v1/", "/v2/", "#x", "?y", "%", "z"]));
    }
    p
}

const DOMAINS: &[&str] = &[
    "",
    "",
    "",
    "docker.io/",
    "index.docker.io/",
    "localhost/",
    "localhost:5000/",
    "reg.io/",
    "Reg.IO/",
    "a.b.c/",
    "url:5000/",
    "[::1]/",
    "[::1]:5000/",
    "[fe80::1]:80/",
    "[AB]/",
    "[zz]/",
    "a_b/",
    "-a.io/",
    "a-.io/",
    "1.2.3.4:0/",
    "Foo/",
    "foo/",
    "a.io:/",
    ":5000/",
    "a..b/",
    "123456789.dkr.ecr.us-east-1.amazonaws.com/",
    "gcr.io/",
    "ÜBER.io/",
    "a.io:5000:1/",
    "a_b.io/",
    "my_reg.local/",
    "a__b.c-d/",
    "a-_b.io/",
];

const COMPONENTS: &[&str] = &[
    "nginx", "library", "a", "b__c", "d--e", "f.g", "a___b", "-b", "b-", "B", "ünï", "x_y", "a.-b",
    "v1", "v2", "ab..c", "a_.b", "0", "a.b.c", "_a", "root", D64,
];

const D64: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn image_reference(rng: &mut Rng) -> String {
    if rng.chance(5) {
        return tricky_string(rng, 12);
    }
    if rng.chance(3) {
        return D64.into();
    }
    let mut s = rng.pick(DOMAINS).to_string();
    let n = 1 + rng.below(3);
    let parts: Vec<&str> = (0..n).map(|_| rng.pick(COMPONENTS)).collect();
    s.push_str(&parts.join(if rng.chance(3) { "//" } else { "/" }));
    if rng.chance(3) {
        s.push_str(&"x".repeat(250));
    }
    let long_tag = format!(":{}", "a".repeat(128));
    let longer_tag = format!(":{}", "a".repeat(129));
    let tags = [
        "",
        "",
        "",
        ":tag",
        ":",
        ":1.25",
        ":-x",
        ":_x",
        ":X.Y",
        ":a/b",
        long_tag.as_str(),
        longer_tag.as_str(),
    ];
    s.push_str(tags[rng.below(tags.len())]);
    let digests = [
        String::new(),
        String::new(),
        String::new(),
        format!("@sha256:{D64}"),
        format!("@sha256:{}", D64.to_uppercase()),
        format!("@sha384:{}", "a".repeat(96)),
        format!("@sha512:{}", "0".repeat(128)),
        format!("@md5:{D64}"),
        "@sha256:abc".into(),
        "@".into(),
        format!("@sha256+b64:{D64}"),
        format!("@SHA256:{D64}"),
        format!("@sha256:{D64}0"),
        format!("@sha256:{}", &D64[..32]),
        format!("@a-b_c.d+e:{D64}"),
    ];
    s.push_str(&digests[rng.below(digests.len())]);
    if rng.chance(5) {
        let at = rng.below(s.len() + 1);
        if s.is_char_boundary(at) {
            s.insert_str(at, rng.pick(TRICKY));
        }
    }
    s
}

/// A normalized-looking image name, for match targets.
fn target(rng: &mut Rng) -> String {
    if rng.chance(40) {
        if let Ok(name) = ImageName::parse(&image_reference(rng)) {
            return name.to_string();
        }
    }
    url_like(rng)
}

fn auth_value(rng: &mut Rng) -> String {
    if rng.chance(5) {
        return tricky_string(rng, 10);
    }
    let mut plain: Vec<u8> = rng
        .pick(&[
            "foo:bar",
            "user:pa:ss:word",
            ":bar",
            "foo:",
            "pants",
            "",
            ":",
            "foo:bar\n",
            "é:☺",
        ])
        .into();
    if rng.chance(20) {
        plain = (0..rng.below(12)).map(|_| rng.next() as u8).collect();
    }
    let mut s = if rng.chance(50) {
        base64::engine::general_purpose::STANDARD.encode(&plain)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&plain)
    };
    for _ in 0..rng.below(3) {
        let piece = rng.pick(&[
            "\n", "\r\n", "\r", " ", "=", "==", "\t", "-", "_", "A", "\u{a0}", "\u{3000}",
            "\u{85}", "\u{2028}", "\u{b}", "é",
        ]);
        let at = if rng.chance(50) {
            s.len()
        } else {
            rng.below(s.len() + 1)
        };
        if s.is_char_boundary(at) {
            s.insert_str(at, piece);
        }
    }
    if rng.chance(10) && !s.is_empty() {
        s.pop();
    }
    s
}

/// JSON escapes Go and serde_json may treat differently: lone surrogates, a valid pair, and
/// plain ones. Written with doubled backslashes: these are JSON text, not Rust escapes.
const JSON_ESCAPES: &[&str] = &[
    "\\ud800",
    "\\udc00x",
    "\\ud83d\\ude00",
    "\\u00e9",
    "\\u0000",
    "\\/",
    "\\u017f",
];

/// Raw bytes that are not UTF-8 (or are, for contrast), put inside JSON strings.
const RAW_BYTES: &[&[u8]] = &[
    b"\xff",
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82\xac",
];

fn json_string(rng: &mut Rng, text: &str) -> Vec<u8> {
    // Mostly a proper JSON string; sometimes raw bytes or escapes Go and Rust treat specially.
    let mut out = serde_json::to_vec(text).expect("string to JSON");
    if rng.chance(8) {
        out.pop();
        out.extend_from_slice(rng.pick(JSON_ESCAPES).as_bytes());
        out.push(b'"');
    }
    if rng.chance(4) {
        out.pop();
        out.extend_from_slice(RAW_BYTES[rng.below(RAW_BYTES.len())]);
        out.push(b'"');
    }
    out
}

fn json_scalar(rng: &mut Rng) -> Vec<u8> {
    let s: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1e400",
        "1.5",
        "[]",
        "{}",
        "[1,[2]]",
        "{\"a\":{\"b\":null}}",
        "\"x\"",
    ];
    s[rng.below(s.len())].as_bytes().to_vec()
}

fn entry_doc(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(8) {
        return json_scalar(rng);
    }
    let fields = [
        "username",
        "Username",
        "USERNAME",
        "u\u{17f}ername",
        "password",
        "PASSWORD",
        "pa\u{17f}\u{17f}word",
        "email",
        "Email",
        "auth",
        "AUTH",
        "Auth",
        "identitytoken",
        "registrytoken",
        "x",
        "auths",
    ];
    let mut out = b"{".to_vec();
    for i in 0..rng.below(5) {
        if i > 0 {
            out.push(b',');
        }
        out.extend(serde_json::to_vec(rng.pick(&fields)).expect("key"));
        out.push(b':');
        if rng.chance(15) {
            out.extend(json_scalar(rng));
        } else {
            let text = if rng.chance(50) {
                auth_value(rng)
            } else {
                tricky_string(rng, 6)
            };
            out.extend(json_string(rng, &text));
        }
    }
    out.push(b'}');
    out
}

fn registry_map(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(8) {
        return json_scalar(rng);
    }
    let keys = [
        "reg.io",
        "https://index.docker.io/v1/",
        "r",
        "R",
        "http://foo.example.com",
        "é",
        "auths",
    ];
    let mut out = b"{".to_vec();
    for i in 0..rng.below(4) {
        if i > 0 {
            out.push(b',');
        }
        let key = if rng.chance(80) {
            rng.pick(&keys).to_string()
        } else {
            tricky_string(rng, 5)
        };
        out.extend(json_string(rng, &key));
        out.push(b':');
        out.extend(entry_doc(rng));
    }
    out.push(b'}');
    out
}

fn config_doc(rng: &mut Rng, legacy: bool) -> Vec<u8> {
    let mut doc = if legacy {
        registry_map(rng)
    } else {
        let top = [
            "auths",
            "Auths",
            "AUTHS",
            "auth\u{17f}",
            "HttpHeaders",
            "httpheaders",
            "credsStore",
            "credHelpers",
            "x",
        ];
        let mut out = b"{".to_vec();
        for i in 0..rng.below(4) {
            if i > 0 {
                out.push(b',');
            }
            let key = rng.pick(&top);
            out.extend(json_string(rng, key));
            out.push(b':');
            if key.to_lowercase().starts_with("auth") {
                out.extend(registry_map(rng));
            } else if key.eq_ignore_ascii_case("httpheaders") && rng.chance(70) {
                out.extend(if rng.chance(50) {
                    b"{\"A\":\"b\",\"C\":null}".to_vec()
                } else {
                    json_scalar(rng)
                });
            } else {
                out.extend(json_scalar(rng));
            }
        }
        out.push(b'}');
        if rng.chance(3) {
            out = json_scalar(rng);
        }
        out
    };
    if rng.chance(2) {
        let depth = 120 + rng.below(20);
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        doc = if legacy {
            format!("{{\"r\":{{\"x\":{nested}}}}}").into_bytes()
        } else {
            format!("{{\"x\":{nested},\"auths\":{{}}}}").into_bytes()
        };
    }
    if rng.chance(10) {
        let junk: &[&[u8]] = &[
            b" ",
            b"\n",
            b"\xef\xbb\xbf",
            b"x",
            b"}",
            b"\t\r\n",
            b"\x00",
            b"{}",
        ];
        let piece = junk[rng.below(junk.len())];
        if rng.chance(50) {
            doc.extend_from_slice(piece);
        } else {
            let mut v = piece.to_vec();
            v.extend_from_slice(&doc);
            doc = v;
        }
    }
    doc
}

fn duration_text(rng: &mut Rng) -> String {
    if rng.chance(5) {
        return tricky_string(rng, 6);
    }
    let mut s = String::from(rng.pick(&["", "", "", "-", "+", "--"]));
    for _ in 0..1 + rng.below(3) {
        let int = match rng.below(6) {
            0 => String::new(),
            1 => "0".into(),
            2 => "9223372036854775807".into(),
            3 => "9223372036854775808".into(),
            4 => (rng.next() % 100_000).to_string(),
            _ => rng.below(10).to_string(),
        };
        s.push_str(&int);
        if rng.chance(30) {
            s.push('.');
            let digits = rng.below(25);
            s.extend((0..digits).map(|_| char::from(b'0' + rng.below(10) as u8)));
        }
        s.push_str(rng.pick(&[
            "ns", "us", "µs", "μs", "ms", "s", "m", "h", "h", "m", "d", "", "S", "hh", "µ", "sm",
        ]));
    }
    if rng.chance(3) {
        s = "0".into();
    }
    s
}

fn duration_nanos(rng: &mut Rng) -> i64 {
    let units = [
        1i64,
        1_000,
        1_000_000,
        1_000_000_000,
        60_000_000_000,
        3_600_000_000_000,
    ];
    match rng.below(5) {
        0 => rng.next() as i64,
        1 => [0, 1, -1, i64::MAX, i64::MIN, i64::MIN + 1][rng.below(6)],
        2 => (rng.next() % 1000) as i64 * units[rng.below(units.len())],
        3 => -((rng.next() % 100_000) as i64) * units[rng.below(units.len())],
        _ => (rng.next() % 10_000_000_000_000) as i64,
    }
}

fn generate(kind: &'static str, rng: &mut Rng) -> Case {
    let mut c = Case {
        kind,
        ..Case::default()
    };
    match kind {
        "url" | "key" => {
            c.a = if rng.chance(70) {
                url_like(rng)
            } else {
                tricky_string(rng, 12)
            };
            if kind == "key" && rng.chance(40) {
                c.a.insert_str(
                    0,
                    rng.pick(&[
                        "https://", "http://", "HTTPS://", "oci://", "https:/", "http:",
                    ]),
                );
            }
        }
        "match" => {
            c.b = target(rng);
            c.a = if rng.chance(60) {
                derive_pattern(rng, &c.b)
            } else {
                url_like(rng)
            };
            if rng.chance(5) {
                std::mem::swap(&mut c.a, &mut c.b);
            }
        }
        "glob" => {
            let label = rng.pick(LABELS);
            c.bytes_b = if rng.chance(50) {
                label.into()
            } else {
                tricky_string(rng, 6).into()
            };
            c.bytes = if rng.chance(50) {
                tricky_string(rng, 8).into()
            } else {
                derive_pattern(rng, label).into()
            };
            if rng.chance(5) {
                // Invalid UTF-8 in pattern or name: Go decodes it as U+FFFD of width 1.
                let raw: &[&[u8]] = &[b"\xff", b"\xe2\x98", b"\xc0", b"\xed\xa0\x80"];
                let target = if rng.chance(50) {
                    &mut c.bytes
                } else {
                    &mut c.bytes_b
                };
                target.extend_from_slice(raw[rng.below(raw.len())]);
            }
        }
        "keyring" => {
            c.b = target(rng);
            let n = 1 + rng.below(6);
            c.l = (0..n)
                .map(|_| match rng.below(4) {
                    0 => derive_pattern(rng, &c.b),
                    1 => rng
                        .pick(&[
                            "https://index.docker.io/v1/",
                            "index.docker.io",
                            "docker.io",
                            "index.docker.io/v2/",
                            "http://index.docker.io",
                            "*.docker.io",
                            "docker.io/library",
                        ])
                        .to_string(),
                    _ => url_like(rng),
                })
                .collect();
            if rng.chance(20) {
                c.b = rng
                    .pick(&[
                        "docker.io/library/nginx",
                        "nginx",
                        "foo/bar",
                        "docker.io",
                        "a:1/c",
                        "",
                    ])
                    .to_string();
            }
        }
        "hub" => {
            c.a = if rng.chance(50) {
                target(rng)
            } else {
                tricky_string(rng, 8)
            };
        }
        "auth" => c.a = auth_value(rng),
        "cfgjson" => c.bytes = config_doc(rng, false),
        "dockercfg" => c.bytes = config_doc(rng, true),
        "image" => c.a = image_reference(rng),
        "dur" => c.a = duration_text(rng),
        "durfmt" => c.n = duration_nanos(rng),
        other => panic!("unknown kind {other}"),
    }
    c
}

/// Hand-picked cases from the spec and from earlier findings, always run.
fn fixed_cases(kind: &'static str) -> Vec<Case> {
    let s = |a: &str| Case {
        kind,
        a: a.into(),
        ..Case::default()
    };
    let pair = |a: &str, b: &str| Case {
        kind,
        a: a.into(),
        b: b.into(),
        ..Case::default()
    };
    let ring = |keys: &[&str], image: &str| Case {
        kind,
        l: keys.iter().map(|k| k.to_string()).collect(),
        b: image.into(),
        ..Case::default()
    };
    match kind {
        "url" => [
            "%invalid%",
            "registry.io:*",
            "reg istry.io",
            "[::1]:5000/x",
            "a:1:2",
            "[fe80::1%25en0]:80",
            "h%C3%A9.io",
            "reg.io#%zz",
            "us er@reg.io",
            "\"q\".io",
            "a\tb",
            "ho%20st.io",
            "us er@*a.K. /v1",
            "%e2%98%ba:٣#%zz",
            "%2é",
        ]
        .map(s)
        .to_vec(),
        "match" => vec![
            pair("[::1]/foo", "[::1]/foo"),
            pair("[::1]", "[::1]/foo"),
            pair("[::1]:5000", "[::1]:5000/foo"),
            pair("reg.io/v2/app", "reg.io/v2/app"),
            pair("registry.io:", "registry.io/app"),
            pair("a:1:2", "a:1:2/x"),
            pair("https://gcr.io", "gcr.io/x"),
            pair("*kubernetes.io", "k8s.io"),
        ],
        "glob" => [("b*,[", ""), ("a[", "x"), ("*x[", "xxx"), ("[", "a")]
            .map(|(p, n)| Case {
                kind,
                bytes: p.into(),
                bytes_b: n.into(),
                ..Case::default()
            })
            .to_vec(),
        "keyring" => vec![
            ring(&["reg.io/v2/app"], "reg.io/v2/app"),
            ring(&["[::1]"], "[::1]/foo"),
            ring(
                &["https://index.docker.io/v1/", "other.io"],
                "docker.io/library/nginx",
            ),
        ],
        "image" => [
            "[::1]/foo:tag",
            "Foo/bar",
            "MyRegistry.io/Foo",
            "[AB]/foo",
            "a.io:/foo",
            "localhost:5000/foo:tag",
            "docker.i_o/nginx",
            "my_reg.local/team/app:1",
        ]
        .map(s)
        .to_vec(),
        "auth" => [
            "Zm9vOmJhcg==",
            "Zm9vOmJhcg",
            "Zm9vOm\nJhcg==\n",
            "Zm9vOmJhcg== ",
            "Zm9vOmJhcg=",
            "Zm9v-mJhcg",
            "cGFudHM=",
            "Zm9vOmJhcl==",
            "Zm9vOmJhcg=\n=",
        ]
        .map(s)
        .to_vec(),
        "dur" => [
            "0",
            "-0",
            "1.5h",
            "9223372036854775807ns",
            "-9223372036854775808ns",
            "9223372036854775808ns",
            ".s",
            "1d",
            "0.0000000000000000000001h",
            "-9223372036854775808ns9223372036854775808ns",
        ]
        .map(s)
        .to_vec(),
        "cfgjson" | "dockercfg" => {
            let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
            let mut docs: Vec<Vec<u8>> = [
                r#"{"auths":{"reg.io":{"auth":"Zm9vOmJhcg=="}}}"#.to_string(),
                r#"{"credHelpers":1e400}"#.into(),
                r#"{"credsStore":1e400,"auths":{"r":{}}}"#.into(),
                r#"{"credHelpers":{"gcr.io":1e400}}"#.into(),
                r#"{"x":1e400,"auths":{"r":{"y":1e400}}}"#.into(),
                format!(r#"{{"x":{},"auths":{{}}}}"#, deep(5000)),
                format!(r#"{{"credHelpers":{},"auths":{{}}}}"#, deep(200)),
                format!(r#"{{"credsStore":{{"a":{}}}}}"#, deep(200)),
                format!(r#"{{"r":{{"x":{}}}}}"#, deep(5000)),
                format!(
                    r#"{{"auths":{{"r{}":{{"username":"{}"}}}}}}"#,
                    JSON_ESCAPES[0], JSON_ESCAPES[1]
                ),
                format!(
                    r#"{{"r{}":{{"username":"{}"}}}}"#,
                    JSON_ESCAPES[0], JSON_ESCAPES[1]
                ),
                format!(r#"{{"credsStore{}":1}}"#, JSON_ESCAPES[0]),
            ]
            .map(String::into_bytes)
            .to_vec();
            let mut raw = br#"{"auths":{"r":{"username":"a"#.to_vec();
            raw.extend_from_slice(RAW_BYTES[1]);
            raw.extend_from_slice(br#"b"}}}"#);
            docs.push(raw);
            docs.into_iter()
                .map(|bytes| Case {
                    kind,
                    bytes,
                    ..Case::default()
                })
                .collect()
        }
        _ => Vec::new(),
    }
}
