//! Metrics end to end: the real binary records a cache hit, successful fetches (docker config,
//! GCP metadata token from a fake metadata server) and a failed fetch (the fake answering
//! 500), and `kubelet-keyring metrics` folds them into the textfile.
//!
//! Always: the file's series and values, counters across folds, no secret in any file of the
//! metrics directory, nothing written when metrics are off.
//! Also against the real peers (`#[ignore = "needs ..."]`, see `crate::common`): Debian's
//! `prometheus-node-exporter` serving the directory with only its textfile collector, scraped
//! after each step; `promtool check metrics` on the file; `promtool check rules` and
//! `promtool test rules` on the example alert rules. A missing peer fails the test.
#![cfg(feature = "gcp")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::common::http::{json, Fake};
use crate::common::*;

const V1: &str = "credentialprovider.kubelet.k8s.io/v1";
const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
const SECRETS: [&str; 3] = ["metrics-user", "metrics-s3cret", "ya29.metrics-token"];
const DOCKER: &str = r#"backend="docker-config",registry="reg.example.com""#;
const GCR: &str = r#"backend="gcp",registry="gcr.io""#;
const US_GCR: &str = r#"backend="gcp",registry="us.gcr.io""#;

/// A sandbox with a docker config for reg.example.com and a metrics directory.
struct World {
    s: Sandbox,
    metrics: PathBuf,
    metadata: Fake,
    metadata_fails: Arc<AtomicBool>,
}

impl World {
    fn new() -> World {
        let s = Sandbox::new();
        s.docker_config(
            r#"{"auths":{"reg.example.com":{"username":"metrics-user","password":"metrics-s3cret"}}}"#,
        );
        let metadata_fails = Arc::new(AtomicBool::new(false));
        let fails = metadata_fails.clone();
        let metadata = Fake::start(
            "Content-Type: application/json\r\nMetadata-Flavor: Google\r\n",
            move |r| {
                if fails.load(Ordering::SeqCst) {
                    json(500, r#"{"error":"backend down"}"#)
                } else if r.path == TOKEN_PATH {
                    json(
                        200,
                        r#"{"access_token":"ya29.metrics-token","expires_in":3600,"token_type":"Bearer"}"#,
                    )
                } else {
                    json(404, "not found")
                }
            },
        );
        let metrics = s.tmp.path().join("metrics");
        World {
            s,
            metrics,
            metadata,
            metadata_fails,
        }
    }

    /// The binary with the metrics flag (or not) and the fake metadata server.
    fn command(&self, args: &[&str], metrics: bool) -> Command {
        let mut c = self.s.command(args);
        c.env("GCE_METADATA_HOST", self.metadata.host());
        if metrics {
            c.arg("--metrics-dir").arg(&self.metrics);
        }
        c
    }

    fn get(&self, image: &str) -> Output {
        run_with(self.command(&[], true), request(V1, image).as_bytes())
    }

    /// `kubelet-keyring metrics`, then the file.
    fn fold(&self) -> String {
        let out = run_with(self.command(&["metrics"], true), b"");
        assert!(out.status.success(), "metrics: {}", stderr(&out));
        assert!(out.stdout.is_empty());
        std::fs::read_to_string(self.metrics.join("kubelet-keyring.prom")).expect("the textfile")
    }
}

/// The value of the sample `name{labels}` in `text`.
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().expect("a number"))
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A sample line as (name, sorted labels, value): node_exporter re-orders labels and writes
/// numbers its own way (1.7e+09).
fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
    let (series, value) = line.rsplit_once(' ').expect("name{labels} value");
    let Some((name, labels)) = series.split_once('{') else {
        return (series.into(), Vec::new(), value.parse().expect("a number"));
    };
    let mut out = Vec::new();
    let mut rest = labels.strip_suffix('}').expect("}");
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label=\"");
        let mut val = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => val.push(chars.next().expect("escape").1),
                (i, '"') => break i,
                (_, c) => val.push(c),
            }
        };
        out.push((key.to_string(), val));
        rest = after[end + 1..].trim_start_matches(',');
    }
    out.sort();
    (name.into(), out, value.parse().expect("a number"))
}

/// Nothing secret in any file of the metrics directory.
fn assert_no_secret(dir: &Path) {
    for f in std::fs::read_dir(dir).unwrap() {
        let f = f.unwrap().path();
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for s in SECRETS {
            assert!(!text.contains(s), "{} holds {s}", f.display());
        }
    }
}

/// The steps, each followed by `check(step, file)`: a successful docker-config fetch, a hit,
/// a successful GCP fetch, a failed GCP fetch.
fn scenario(w: &World, check: &mut dyn FnMut(&str, &str)) {
    let before = now_secs();
    stdout_json(&w.get("reg.example.com/team/app"));
    // The fetch wrote the file itself; the timer's fold is not needed to see it.
    let text = std::fs::read_to_string(w.metrics.join("kubelet-keyring.prom")).unwrap();
    assert_eq!(
        sample(&text, "kubelet_keyring_fetches_total", DOCKER),
        Some(1.0)
    );
    check("fetch", &w.fold());

    stdout_json(&w.get("reg.example.com/other"));
    let text = w.fold();
    assert_eq!(
        sample(&text, "kubelet_keyring_cache_hits_total", DOCKER),
        Some(1.0),
        "{text}"
    );
    check("hit", &text);

    stdout_json(&w.get("gcr.io/project/app"));
    let text = w.fold();
    assert_eq!(
        sample(&text, "kubelet_keyring_fetches_total", GCR),
        Some(1.0)
    );
    let left = sample(&text, "kubelet_keyring_token_seconds_left", GCR).unwrap();
    assert!((3500.0..=3600.0).contains(&left), "{left}\n{text}");
    let ok_at = sample(&text, "kubelet_keyring_last_success_timestamp_seconds", GCR).unwrap();
    assert!(
        ok_at >= before.floor() && ok_at <= now_secs() + 1.0,
        "{ok_at}"
    );
    check("gcp", &text);

    w.metadata_fails.store(true, Ordering::SeqCst);
    let out = w.get("us.gcr.io/project/app");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = std::fs::read_to_string(w.metrics.join("kubelet-keyring.prom")).unwrap();
    let failures = |kind: &str| {
        sample(
            &text,
            "kubelet_keyring_fetch_failures_total",
            &format!("{US_GCR},kind=\"{kind}\""),
        )
    };
    assert_eq!(failures("unavailable"), Some(1.0), "{text}");
    assert_eq!(failures("denied"), Some(0.0), "{text}");
    assert!(sample(
        &text,
        "kubelet_keyring_last_failure_timestamp_seconds",
        US_GCR
    )
    .is_some());
    assert_eq!(
        sample(&text, "kubelet_keyring_last_failure_timestamp_seconds", GCR),
        None
    );
    check("failure", &w.fold());
    assert_no_secret(&w.metrics);
}

#[test]
fn hits_fetches_and_failures_reach_the_textfile_and_counters_persist() {
    let w = World::new();
    scenario(&w, &mut |_, _| {});
    // Folding again counts nothing twice; the counters live in the state file.
    let text = w.fold();
    assert_eq!(
        sample(&text, "kubelet_keyring_cache_hits_total", DOCKER),
        Some(1.0)
    );
    // A hit with the variable instead of the flag finds the same cache entry (the metrics
    // setting does not change the cache context) and is counted.
    let mut c = w.command(&[], false);
    c.env("KUBELET_KEYRING_METRICS_DIR", &w.metrics);
    stdout_json(&run_with(
        c,
        request(V1, "reg.example.com/team/app").as_bytes(),
    ));
    let text = w.fold();
    assert_eq!(
        sample(&text, "kubelet_keyring_cache_hits_total", DOCKER),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "kubelet_keyring_fetches_total", DOCKER),
        Some(1.0)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(w.metrics.join("kubelet-keyring.prom"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn metrics_off_writes_nothing_and_the_command_says_what_it_needs() {
    let w = World::new();
    for image in ["reg.example.com/app", "reg.example.com/app", "gcr.io/p/i"] {
        stdout_json(&run_with(
            w.command(&[], false),
            request(V1, image).as_bytes(),
        ));
    }
    assert!(!w.metrics.exists());
    let mut names: Vec<_> = std::fs::read_dir(w.s.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["cache", "cwd", "home", "root"]);
    let out = run_with(w.command(&["metrics"], false), b"");
    let err = assert_one_line_exit(&out, 2, &[]);
    assert!(err.contains("--metrics-dir"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The real peers.

/// node_exporter, killed when dropped.
struct Exporter {
    child: Child,
    port: u16,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    fn start(dir: &Path) -> Exporter {
        let bin = peer(
            "prometheus-node-exporter",
            "the Debian package prometheus-node-exporter",
        );
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-node-exporter");
        let e = Exporter { child, port };
        let until = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "node_exporter did not listen in 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        e
    }

    fn scrape(&self) -> String {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"));
        body
    }
}

fn promtool(args: &[&str], stdin: &[u8]) -> Output {
    let bin = peer("promtool", "the Debian package prometheus");
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_with(cmd, stdin)
}

#[test]
#[ignore = "needs prometheus-node-exporter and promtool"]
fn node_exporter_serves_the_series_and_promtool_finds_nothing_wrong() {
    let w = World::new();
    std::fs::create_dir_all(&w.metrics).unwrap();
    let exporter = Exporter::start(&w.metrics);
    let mut check = |step: &str, file: &str| {
        let scraped = exporter.scrape();
        // Every sample of the file is served as written, and the collector read it cleanly.
        let served: Vec<_> = scraped
            .lines()
            .filter(|l| l.starts_with("kubelet_keyring_") || l.starts_with("node_textfile_"))
            .map(parse_sample)
            .collect();
        for line in file.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                served.contains(&parse_sample(line)),
                "{step}: node_exporter does not serve {line}"
            );
        }
        assert!(
            scraped.lines().any(|l| l == "node_textfile_scrape_error 0"),
            "{step}: textfile collector error"
        );
        let want = match step {
            "fetch" => format!("kubelet_keyring_fetches_total{{{DOCKER}}} 1"),
            "hit" => format!("kubelet_keyring_cache_hits_total{{{DOCKER}}} 1"),
            "gcp" => format!("kubelet_keyring_fetches_total{{{GCR}}} 1"),
            _ => format!("kubelet_keyring_fetch_failures_total{{{US_GCR},kind=\"unavailable\"}} 1"),
        };
        assert!(served.contains(&parse_sample(&want)), "{step}: no {want}");
        let out = promtool(&["check", "metrics"], file.as_bytes());
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "{step}: promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
    };
    scenario(&w, &mut check);
    let scraped = exporter.scrape();
    for s in SECRETS {
        assert!(!scraped.contains(s), "the scrape holds {s}");
    }
    for name in [
        "kubelet_keyring_token_seconds_left",
        "kubelet_keyring_last_failure_timestamp_seconds",
    ] {
        assert!(scraped.contains(&format!("# TYPE {name} gauge")), "{name}");
    }
}

const ALERT_RULES: &str = "examples/prometheus/kubelet-keyring-alerts.yml";

#[test]
#[ignore = "needs promtool"]
fn the_example_alert_rules_pass_promtool_and_fire_when_they_should() {
    for args in [
        &["check", "rules", ALERT_RULES][..],
        &["test", "rules", "tests/data/metrics-alerts.test.yml"],
    ] {
        let out = promtool(args, b"");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
    }
}

#[test]
fn the_readme_shows_the_example_alert_rules() {
    let rules = ALERT_RULES;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let file = std::fs::read_to_string(root.join(rules)).unwrap();
    let body: String = file
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        readme.contains(&body),
        "README's Metrics section must show {rules}"
    );
}
