//! An endpoint that accepts connections and never answers, for each cloud backend (ACR, GCP,
//! ECR), and two invocations of one image: the first takes the registry's cache lock and waits
//! on the endpoint, the second waits on that lock, then on the endpoint itself. Both must fail
//! cleanly (non-zero exit, exactly one line on stderr) in under 55 s each, inside the
//! kubelet's 60 s: the lock wait and the backend call share one budget
//! (`keyring_api::deadline`).
//!
//! Each case takes up to ~50 s of wall time, so the three run on threads of one test, and the
//! measured times are printed (`cargo test --test tests hang:: -- --nocapture`).
#![cfg(all(feature = "acr", feature = "gcp", feature = "ecr"))]

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::common::http::{silent, Fake};
use crate::common::*;

/// What the kubelet leaves us, less the margin every invocation must keep.
const LIMIT: Duration = Duration::from_secs(55);

/// A backend pointed at a silent endpoint: the sandbox, the image, and the command line.
struct Case {
    name: &'static str,
    image: &'static str,
    sandbox: Sandbox,
    silent: Fake,
    /// Global flags and environment on top of the sandbox's.
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
}

impl Case {
    fn command(&self) -> Command {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut c = self.sandbox.command(&args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }
}

fn acr() -> Case {
    let silent = silent();
    let sandbox = Sandbox::new();
    let config = sandbox.tmp.path().join("keyring.yaml");
    write(
        &config,
        &format!(
            "apiVersion: kubelet-keyring/v1alpha1\nkind: KeyringConfig\nbackends: [acr]\n\
             acr:\n  endpoints:\n    imds: {}\n    authorityHost: {}\n    registry: {}\n",
            silent.url("/metadata/identity/oauth2/token"),
            silent.url("/"),
            silent.base()
        ),
    );
    Case {
        name: "acr",
        image: "myacr.azurecr.io/team/app",
        args: vec!["--config".into(), config.display().to_string()],
        env: vec![],
        sandbox,
        silent,
    }
}

fn gcp() -> Case {
    let silent = silent();
    let sandbox = Sandbox::new();
    let (pem, _) = rsa_key(sandbox.tmp.path());
    let key = sandbox.tmp.path().join("sa.json");
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "abc",
        "private_key": pem,
        "client_email": "puller@proj.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": silent.url("/token"),
    });
    write(&key, &json.to_string());
    Case {
        name: "gcp",
        image: "us-docker.pkg.dev/proj/repo/app",
        args: vec![],
        env: vec![
            ("GOOGLE_APPLICATION_CREDENTIALS", key.display().to_string()),
            ("GCE_METADATA_HOST", silent.host()),
        ],
        sandbox,
        silent,
    }
}

fn ecr() -> Case {
    let silent = silent();
    let sandbox = Sandbox::new();
    Case {
        name: "ecr",
        image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        args: vec![],
        env: vec![
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_ENDPOINT_URL_ECR", silent.base().into()),
        ],
        sandbox,
        silent,
    }
}

/// Starts one invocation for `image`.
fn spawn(case: &Case) -> (Child, Instant) {
    use std::io::Write as _;
    let started = Instant::now();
    let mut child = case.command().spawn().expect("spawn kubelet-keyring");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request(VERSIONS[0], case.image).as_bytes())
        .expect("write request");
    (child, started)
}

/// Runs the two invocations: the second starts once the first is waiting on the endpoint
/// (so it holds the lock). Returns each one's output and wall time.
fn run(case: &Case) -> [(Output, Duration); 2] {
    let first = spawn(case);
    let until = Instant::now() + Duration::from_secs(10);
    while case.silent.requests().is_empty() {
        assert!(
            Instant::now() < until,
            "{}: the first invocation never reached the endpoint",
            case.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = spawn(case);
    [first, second].map(|(child, started)| {
        let out = child.wait_with_output().expect("wait");
        (out, started.elapsed())
    })
}

#[test]
fn two_invocations_against_a_silent_endpoint_fail_in_one_line_within_55s() {
    let threads: Vec<_> = [acr as fn() -> Case, gcp, ecr]
        .into_iter()
        .map(|make| {
            std::thread::spawn(move || {
                let case = make();
                let runs = run(&case);
                // Both ran against one cache directory, the sandbox's.
                assert!(case.sandbox.cache.is_dir(), "{}: no cache dir", case.name);
                (case.name, runs)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in threads {
        let (name, runs) = t.join().expect("case thread");
        for (i, (out, took)) in runs.iter().enumerate() {
            let which = ["first", "second"][i];
            let err = stderr(out);
            eprintln!(
                "hang: {name} {which}: exit {:?} in {:.1} s: {}",
                out.status.code(),
                took.as_secs_f64(),
                err.trim_end()
            );
            if out.status.success() || err.lines().count() != 1 || !out.stdout.is_empty() {
                failures.push(format!("{name} {which}: not a one-line failure: {err}"));
            }
            if *took >= LIMIT {
                failures.push(format!("{name} {which}: took {took:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
