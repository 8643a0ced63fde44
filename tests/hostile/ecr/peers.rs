//! What an AWS peer sends: a flood (every answer the SDK reads stops at the cap), a 200 that
//! does not parse, an expiry beyond any clock.

use super::*;

// ---------------------------------------------------------------------------------------
// A peer that answers every request with 200 and a body of FLOOD bytes.

/// Answers every request on 127.0.0.1 with `200`, its content type, a `Content-Length` of
/// [`FLOOD`] and that many bytes (`prefix`, then `A`s), written in 64 KiB pieces until the
/// reader hangs up; records how many bytes each connection took. Stops when dropped.
struct Flood {
    base: String,
    taken: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    fn start(content_type: &'static str, prefix: &'static str) -> Flood {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (taken, stop) = (taken.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut workers = Vec::new();
                while !stop.load(Ordering::SeqCst)
                    && workers.len() < 20
                    && started.elapsed() < Duration::from_secs(60)
                {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let taken = taken.clone();
                            workers.push(std::thread::spawn(move || {
                                let n = flood(conn, content_type, prefix);
                                taken.lock().expect("lock").push(n);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Flood {
            base,
            taken,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops serving and returns what each connection took.
    fn taken(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.taken.lock().expect("lock").clone()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request and answers it with the flood; the bytes the reader took.
fn flood(conn: TcpStream, content_type: &str, prefix: &str) -> u64 {
    conn.set_nonblocking(false).expect("blocking");
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    // A reader that stops reading but holds the connection must not hold the test forever.
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return 0;
        }
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let mut conn = conn;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {FLOOD}\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(head.as_bytes()).is_err() || conn.write_all(prefix.as_bytes()).is_err() {
        return 0;
    }
    let mut sent = prefix.len();
    let piece = vec![b'A'; 64 << 10];
    while sent < FLOOD {
        let n = piece.len().min(FLOOD - sent);
        match conn.write(&piece[..n]) {
            Ok(0) | Err(_) => break,
            Ok(k) => sent += k,
        }
    }
    sent as u64
}

// ---------------------------------------------------------------------------------------
// #13: every answer the AWS SDK reads stops at the cap.

/// Each AWS peer the SDK reads, flooding: the run ends in one line within the deadline, and
/// no connection took more than the cap and the socket buffers of the 64 MiB offered (the
/// old code read it all: 2.3 GB of memory for a longer flood).
#[test]
fn every_answer_the_aws_sdk_reads_stops_at_the_cap() {
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let ecr_request = request(VERSIONS[0], &format!("{HOST}/app"));
    let sa_req = sa_request(&format!("{HOST}/app"), &token, &[(ROLE_ANNOTATION, ROLE)]);
    type Case = (&'static str, &'static str, &'static str);
    let cases: [Case; 4] = [
        (
            "ECR",
            "application/x-amz-json-1.1",
            r#"{"authorizationData":[{"authorizationToken":""#,
        ),
        (
            "STS",
            "text/xml",
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>",
        ),
        ("container credentials", "application/json", r#"{"AccessKeyId":""#),
        ("IMDS", "text/plain", ""),
    ];
    for (peer, content_type, prefix) in cases {
        let flood = Flood::start(content_type, prefix);
        let s = Sandbox::new();
        let url = flood.base.clone();
        let creds_url = format!("{url}/creds");
        let ecr_url = closed_port_url();
        let (url, creds_url, ecr_url) = (url.as_str(), creds_url.as_str(), ecr_url.as_str());
        let (req, env): (&str, Vec<(&str, &str)>) = match peer {
            "ECR" => (
                &ecr_request,
                [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", url)].to_vec(),
            ),
            "STS" => (
                &sa_req,
                vec![
                    ("AWS_ENDPOINT_URL_STS", url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
            "container credentials" => (
                &ecr_request,
                vec![
                    ("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
            _ => (
                &ecr_request,
                vec![
                    ("AWS_EC2_METADATA_DISABLED", "false"),
                    ("AWS_EC2_METADATA_SERVICE_ENDPOINT", url),
                    ("AWS_ENDPOINT_URL_ECR", ecr_url),
                ],
            ),
        };
        let (out, took) = run(&s, req, &env);
        let taken = flood.taken();
        let err = stderr(&out);
        assert!(
            matches!(out.status.code(), Some(1 | 2)) && err.lines().count() == 1,
            "{peer}: exit {:?}: {err}",
            out.status.code()
        );
        assert!(!err.contains("secret-canary"), "{peer}: {err}");
        assert!(took < DEADLINE, "{peer}: {took:?}");
        assert!(!taken.is_empty(), "{peer}: the peer was never asked: {err}");
        assert!(
            taken.iter().all(|&n| n < MOST_TAKEN),
            "{peer}: a connection took {taken:?} bytes of {FLOOD}: {err}"
        );
        if peer != "IMDS" {
            // IMDS failures end the node's chain as "no credentials", which says so.
            assert!(err.contains("larger than 1 MiB"), "{peer}: {err}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// #17: a 200 whose body does not parse is an unreadable answer, not a refusal.

#[test]
fn an_ecr_200_that_does_not_parse_is_an_unreadable_answer_not_a_refusal() {
    for body in [
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":"NaN"}]}"#,
        "<html>captive portal</html>",
    ] {
        let ecr = fake(200, body);
        let s = Sandbox::new();
        let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", ecr.base())];
        let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
        let line = assert_one_line_failure(&out, &["secret-canary-51e2"]);
        assert!(
            line.contains("unreadable answer from") && line.contains(ecr.base()),
            "{body}: {line}"
        );
        assert!(!line.contains("refused"), "{body}: {line}");
        let report = fetch_report(&s, &format!("{HOST}/app"), &env);
        assert_eq!(report["error_kind"], "protocol", "{body}: {report}");
    }
}

#[test]
fn an_sts_200_that_does_not_parse_is_an_unreadable_answer_not_a_refusal() {
    let sts = fake(200, "<html>not STS</html>");
    let s = Sandbox::new();
    let token = sa_token("sts.amazonaws.com", "team", "puller", "uid-1", 1);
    let req = sa_request(&format!("{HOST}/app"), &token, &[(ROLE_ANNOTATION, ROLE)]);
    let ecr = closed_port_url();
    let env = [
        ("AWS_ENDPOINT_URL_STS", sts.base()),
        ("AWS_ENDPOINT_URL_ECR", ecr.as_str()),
    ];
    let (out, _) = run(&s, &req, &env);
    let line = assert_one_line_failure(&out, &["sig-canary"]);
    assert!(
        line.contains("unreadable answer from") && line.contains(sts.base()),
        "{line}"
    );
    assert!(line.contains(ROLE), "{line}");
    assert!(
        !line.contains("refused") && !line.contains("check the role ARN"),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------
// A peer's expiry becomes a time only through keyring_api::lifetime.

#[test]
fn an_ecr_expiry_beyond_any_clock_is_clamped_and_one_before_the_epoch_is_expired() {
    let s = Sandbox::new();
    // AWS:pw, expiring 1e300 seconds after the epoch: the SDK makes that i64::MAX seconds,
    // which the old code took as the token's expiry (the year 292 billion); it is clamped to
    // keyring_api::lifetime's ten-year horizon, and the lifetime is the usual 12 h cap.
    let far = fake(
        200,
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":1e300}]}"#,
    );
    let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", far.base())];
    let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
    let resp = stdout_json(&out);
    let secs = go_secs(resp["cacheDuration"].as_str().expect("cacheDuration"));
    assert!(
        ((12 * 3600 * 9 / 10)..=12 * 3600).contains(&secs),
        "{resp}: {}",
        stderr(&out)
    );
    let report = fetch_report(&s, &format!("{HOST}/app"), &env);
    let horizon = 10 * 365 * 24 * 3600;
    let expires_in = report["expires_in_secs"].as_i64().expect("expires_in_secs");
    assert!((horizon - 60..=horizon).contains(&expires_in), "{report}");
    // Before the epoch by as much: expired when it arrived (the epoch, by the clamp), so for
    // this pull only: cacheDuration 0s, a warning naming the clock, never a negative or
    // overflowing lifetime.
    let past = fake(
        200,
        r#"{"authorizationData":[{"authorizationToken":"QVdTOnB3","expiresAt":-1e300}]}"#,
    );
    let env = [KEYS[0], KEYS[1], ("AWS_ENDPOINT_URL_ECR", past.base())];
    let (out, _) = run(&s, &request(VERSIONS[0], &format!("{HOST}/app")), &env);
    let resp = stdout_json(&out);
    assert_eq!(resp["cacheDuration"], "0s", "{resp}");
    let err = stderr(&out);
    assert!(err.contains("s ago by this node's clock"), "{err}");
}
