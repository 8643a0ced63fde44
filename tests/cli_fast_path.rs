//! `cli::parse_kubelet_argv` (the kubelet's command lines, parsed without clap) against clap
//! itself: wherever the fast path answers, clap must accept the same command line and
//! environment and produce the same `Cli`; and the kubelet's own forms must take the fast path.
//! The flags and variables come from the one table both parsers are built from
//! (`args::FLAGS`), so a new flag is tested here without a line more.
//!
//! One test in this binary, because clap reads the process environment, which it sets.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use clap::Parser;
use kubelet_keyring::args::{Kind, FLAGS};
use kubelet_keyring::cli::{parse_kubelet_argv, Cli};

/// Every global flag's variable.
fn vars() -> Vec<&'static str> {
    FLAGS.iter().filter_map(|f| f.env).collect()
}

/// Words command lines are made of: every flag in every form (each twice, so repeats
/// happen), values of every kind, and near misses.
fn words() -> Vec<OsString> {
    let mut flags: Vec<String> = Vec::new();
    for f in &FLAGS {
        let long = format!("--{}", f.long);
        match f.kind {
            Kind::Path { .. } => flags.extend([
                long.clone(),
                long.clone(),
                format!("{long}=/x"),
                format!("{long}="),
                format!("{long}==x"),
            ]),
            Kind::Switch => flags.extend([long.clone(), long.clone(), format!("{long}=true")]),
            Kind::Count { short } => flags.extend([
                format!("-{short}"),
                format!("-{short}{short}"),
                format!("-{short}{short}{short}"),
                long.clone(),
                format!("{long}=2"),
            ]),
        }
    }
    let mut w: Vec<OsString> = flags.into_iter().map(OsString::from).collect();
    w.extend(
        [
            "get-credentials",
            "get-credentials",
            "/r",
            "/r",
            "relative/dir",
            "a dir with spaces",
            "=",
            "",
            "-",
            "--",
            "-x",
            "-vx",
            "-V",
            "-h",
            "--help",
            "--version",
            "--root",
            "--no-cache-dir",
            "get-credential",
            "GET-CREDENTIALS",
            "get-credentials=1",
            "explain",
            "cache",
            "path",
            "man",
        ]
        .into_iter()
        .map(OsString::from),
    );
    w.push(OsString::from_vec(b"/not\xffutf8".to_vec()));
    w
}

/// Values an environment variable can have in a case (`None`: unset).
fn env_values(var: &str) -> Vec<Option<OsString>> {
    let mut v: Vec<Option<&str>> = vec![None, None, None, Some("")];
    let switch = FLAGS
        .iter()
        .any(|f| f.env == Some(var) && f.kind == Kind::Switch);
    if switch {
        v.extend([
            Some("1"),
            Some("TRUE"),
            Some("yes"),
            Some("Off"),
            Some("n"),
            Some("maybe"),
            Some(" 1"),
        ]);
    } else {
        v.extend([Some("/from/env"), Some("-dash"), Some("rel")]);
    }
    v.into_iter().map(|s| s.map(OsString::from)).collect()
}

/// xorshift64*: deterministic cases, the same in every run.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Checks one case; returns whether the fast path answered.
fn check(argv: &[OsString], env: &BTreeMap<&'static str, OsString>) -> bool {
    for var in vars() {
        match env.get(var) {
            Some(v) => std::env::set_var(var, v),
            None => std::env::remove_var(var),
        }
    }
    let fast = parse_kubelet_argv(argv, |name| env.get(name).cloned());
    let Some(fast) = fast else { return false };
    let full = std::iter::once(OsString::from("kubelet-keyring")).chain(argv.iter().cloned());
    match Cli::try_parse_from(full) {
        Ok(clap) => assert_eq!(
            format!("{fast:?}"),
            format!("{clap:?}"),
            "argv {argv:?}, env {env:?}"
        ),
        Err(e) => panic!("fast path accepted what clap refuses: argv {argv:?}, env {env:?}: {e}"),
    }
    true
}

#[test]
fn the_fast_path_agrees_with_clap_wherever_it_answers() {
    // The kubelet's own forms take the fast path.
    let kubelet_forms: [&[&str]; 7] = [
        &[],
        &["get-credentials"],
        &[
            "get-credentials",
            "--config",
            "/etc/kubernetes/keyring.yaml",
        ],
        &[
            "--root-dir",
            "/var/lib/kubelet",
            "--cache-dir=/run/keyring",
            "-v",
        ],
        &["get-credentials", "--no-cache", "-vvv"],
        &["--config=/etc/k.yaml", "get-credentials", "--verbose"],
        &[
            "get-credentials",
            "--metrics-dir",
            "/var/lib/prometheus/node-exporter",
        ],
    ];
    let mut env = BTreeMap::new();
    for form in kubelet_forms {
        let argv: Vec<OsString> = form.iter().map(OsString::from).collect();
        assert!(check(&argv, &env), "not on the fast path: {form:?}");
    }
    env.insert("KUBELET_KEYRING_NO_CACHE", OsString::from("true"));
    env.insert("KUBELET_KEYRING_CONFIG", OsString::from("/etc/k.yaml"));
    env.insert("KUBELET_KEYRING_METRICS_DIR", OsString::from("/m"));
    assert!(check(&[OsString::from("get-credentials")], &env));

    // Generated command lines and environments.
    let words = words();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut cases, mut fast) = (0, 0);
    for _ in 0..50_000 {
        let argv: Vec<OsString> = (0..rng.below(6))
            .map(|_| words[rng.below(words.len())].clone())
            .collect();
        let mut env = BTreeMap::new();
        for var in vars() {
            let values = env_values(var);
            if let Some(v) = values[rng.below(values.len())].clone() {
                env.insert(var, v);
            }
        }
        cases += 1;
        if check(&argv, &env) {
            fast += 1;
        }
    }
    // Enough of them take the fast path for the comparison to mean something.
    assert!(
        fast * 20 > cases,
        "only {fast} of {cases} cases took the fast path"
    );
    eprintln!("{fast} of {cases} generated cases took the fast path; clap agreed on all");
}
