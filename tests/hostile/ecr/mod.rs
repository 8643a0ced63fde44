//! Hostile input: ecr. What a hostile or broken AWS peer (the ECR API behind
//! `AWS_ENDPOINT_URL_ECR`, STS, the EKS Pod Identity / ECS container credentials endpoint,
//! the instance metadata service) can send, and what must still hold: every answer the AWS
//! SDK reads stops at keyring-net's cap, an answer that does not parse is a protocol error
//! naming the endpoint, never a refusal pointing at the role, and a peer's expiry becomes a
//! time only through `keyring_api::lifetime` (clamped, never overflowing).

mod peers;
mod processes_and_files;

use std::io::Write;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::flood::{Flood, FLOOD, MOST_TAKEN};
use crate::common::http::{Fake, Reply};
use crate::common::tls::{assert_ca_refused, hostile_ca_settings};
use crate::common::*;

const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const ROLE_ANNOTATION: &str = "eks.amazonaws.com/ecr-role-arn";
const ROLE: &str = "arn:aws:iam::111111111111:role/team-pull";
/// The invocation's budget, which one ECR call may take whole.
const DEADLINE: Duration = Duration::from_secs(50);

// ---------------------------------------------------------------------------------------
// Running the binary.

/// Runs `get-credentials` on `request` with the sandbox's environment (no AWS credentials,
/// IMDS off) plus `env`; the output and how long it took.
fn run(s: &Sandbox, request: &str, env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = s.command(&["--no-cache"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = run_with(cmd, request.as_bytes());
    (out, started.elapsed())
}

/// Static node credentials, as a hostile endpoint's tests need them to get as far as the call.
const KEYS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "secret-canary-51e2"),
];

/// An address where nothing listens.
fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Answers every request with `status` and the JSON (or XML) `body`.
fn fake(status: u16, body: &'static str) -> Fake {
    Fake::start("Content-Type: application/x-amz-json-1.1\r\n", move |_| {
        Reply::With(status, body.as_bytes().to_vec())
    })
}

/// `explain --json --fetch` for `image`: the fetch report of its one image.
fn fetch_report(s: &Sandbox, image: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = s.command(&["explain", "--json", "--fetch", image]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with(cmd, b"");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("explain --json: {e}: {text} / {}", stderr(&out)));
    let fetch = report
        .pointer("/0/fetch")
        .or_else(|| report.pointer("/images/0/fetch"))
        .unwrap_or_else(|| panic!("no fetch report in {report}"));
    fetch.clone()
}
