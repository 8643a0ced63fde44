//! Whole-process timing without a shell: spawns each command directly with its stdin read
//! from a file, round-robin, and prints the median wall time of each and its ratio to the
//! first (the baseline, e.g. `cat`). hyperfine 1.15 cannot feed stdin, so the `bench/`
//! scripts otherwise time `sh -c ...`, whose start-up sits in every figure.
//!
//! ```sh
//! cargo run --release --example exec_bench -- --runs 500 \
//!     cat  req.json cat resp.json -- \
//!     ours req.json target/release/kubelet-keyring --cache-dir /tmp/c
//! ```
//!
//! Each group is `NAME STDIN_FILE PROGRAM [ARGS...]`, groups separated by `--`.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

struct Case {
    name: String,
    stdin: String,
    argv: Vec<String>,
    times: Vec<Duration>,
}

fn parse(args: &[String]) -> Result<(usize, Vec<Case>), String> {
    let mut runs = 300;
    let mut rest = args;
    if rest.first().map(String::as_str) == Some("--runs") {
        runs = rest
            .get(1)
            .ok_or("--runs needs a number")?
            .parse()
            .map_err(|e| format!("--runs: {e}"))?;
        rest = &rest[2..];
    }
    let mut cases = Vec::new();
    for group in rest.split(|a| a == "--") {
        let [name, stdin, argv @ ..] = group else {
            return Err("each group is NAME STDIN_FILE PROGRAM [ARGS...]".into());
        };
        if argv.is_empty() {
            return Err(format!("{name}: no program"));
        }
        cases.push(Case {
            name: name.clone(),
            stdin: stdin.clone(),
            argv: argv.to_vec(),
            times: Vec::new(),
        });
    }
    if cases.is_empty() {
        return Err("no commands".into());
    }
    Ok((runs, cases))
}

fn once(c: &Case) -> Result<Duration, String> {
    let stdin = std::fs::File::open(&c.stdin).map_err(|e| format!("{}: {e}", c.stdin))?;
    let start = Instant::now();
    let status = Command::new(&c.argv[0])
        .args(&c.argv[1..])
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", c.argv[0]))?;
    let took = start.elapsed();
    if !status.success() {
        return Err(format!("{} exited with {status}", c.name));
    }
    Ok(took)
}

#[allow(clippy::print_stdout)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (runs, mut cases) = match parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("exec_bench: {e}");
            return ExitCode::from(2);
        }
    };
    for round in 0..runs + 20 {
        for c in cases.iter_mut() {
            match once(c) {
                Ok(t) if round >= 20 => c.times.push(t), // the first 20 rounds warm up
                Ok(_) => {}
                Err(e) => {
                    eprintln!("exec_bench: {e}");
                    return ExitCode::from(1);
                }
            }
        }
    }
    let median = |c: &mut Case| {
        c.times.sort();
        c.times[c.times.len() / 2]
    };
    let base = median(&mut cases[0]);
    println!(
        "{:<24}{:>12}{:>10}",
        "command (no shell)", "median", "ratio"
    );
    for c in cases.iter_mut() {
        let m = median(c);
        println!(
            "{:<24}{:>10.3}ms{:>9.2}x",
            c.name,
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
    ExitCode::SUCCESS
}
