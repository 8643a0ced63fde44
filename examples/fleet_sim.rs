//! Fleet simulation: how many ECR `GetAuthorizationToken` calls a fleet makes, with the
//! upstream plugin's behaviour (the kubelet's in-memory cache only) and with kubelet-keyring's
//! shared on-disk cache, against the per-account, per-region rate quota.
//!
//! ```sh
//! cargo run --release --example fleet_sim -- --nodes 10000 --hours 24     # the documented large run
//! cargo run --example fleet_sim -- --nodes 50 --hours 6                   # a quick one
//! ```
//!
//! Model (deterministic for a seed):
//! * Every node boots (all at t=0, or spread over `--scale-up-minutes`) and pulls a burst of
//!   `--boot-burst` distinct images at once, then `--pulls-per-hour` more at random times.
//!   Images come from a mix of registries: two ECR private registries (accounts or regions),
//!   ECR Public, and Docker Hub (no ECR call), with skewed popularity inside each.
//! * The kubelet caches an answer in memory for its `cacheDuration` under the registry key,
//!   loses it when it restarts (`--restarts-per-day`, random times), and deduplicates
//!   concurrent lookups per *image* only: a burst of N images of one registry runs N plugins.
//! * Upstream plugin: every exec is one API call; `cacheDuration` = half the 12 h token life.
//! * kubelet-keyring: an exec first reads the node's disk cache (fresh for half the token
//!   life less up to 10% jitter, survives kubelet restarts); concurrent misses of one registry
//!   take one lock and make one call.
//! * Quota: a token bucket of `--bucket` calls refilled at `--refill` per second (AWS's
//!   documented GetAuthorizationToken throttle shape; check your account's live quota).

use std::collections::HashMap;

#[derive(Clone, Copy)]
struct Params {
    nodes: u64,
    hours: u64,
    pulls_per_hour: f64,
    boot_burst: u64,
    restarts_per_day: f64,
    scale_up_minutes: u64,
    bucket: f64,
    refill: f64,
    seed: u64,
}

/// Results of one policy.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Plugin executions.
    pub execs: u64,
    /// ECR API calls.
    pub calls: u64,
    /// Most calls in any one second.
    pub peak_per_sec: u64,
    /// Calls the token bucket would have throttled.
    pub throttled: u64,
}

const TOKEN_LIFE: u64 = 12 * 3600;
const CACHE_FOR: u64 = TOKEN_LIFE / 2;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

/// Registry of an image: 0, 1 = ECR private (two accounts/regions), 2 = ECR Public, 3 = Hub.
fn pick_registry(r: &mut Rng) -> u8 {
    match r.unit() {
        x if x < 0.55 => 0,
        x if x < 0.75 => 1,
        x if x < 0.85 => 2,
        _ => 3,
    }
}

/// An event on one node: a group of simultaneous pulls (registry, image) or a kubelet restart.
enum Event {
    Pulls(Vec<(u8, u32)>),
    Restart,
}

fn events(p: &Params, node: u64) -> Vec<(u64, Event)> {
    let mut r = Rng(p.seed ^ (node + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let end = p.hours * 3600;
    let boot = if p.scale_up_minutes == 0 {
        0
    } else {
        r.next() % (p.scale_up_minutes * 60)
    };
    let mut ev = Vec::new();
    let burst = (0..p.boot_burst)
        .map(|_| {
            let reg = pick_registry(&mut r);
            (reg, (r.unit().powi(3) * 200.0) as u32) // skewed popularity
        })
        .collect();
    ev.push((boot, Event::Pulls(burst)));
    let mut t = boot as f64;
    if p.pulls_per_hour > 0.0 {
        loop {
            t += r.exp(p.pulls_per_hour / 3600.0);
            if t >= end as f64 {
                break;
            }
            let reg = pick_registry(&mut r);
            ev.push((
                t as u64,
                Event::Pulls(vec![(reg, (r.unit().powi(3) * 200.0) as u32)]),
            ));
        }
    }
    let mut t = boot as f64;
    if p.restarts_per_day > 0.0 {
        loop {
            t += r.exp(p.restarts_per_day / 86400.0);
            if t >= end as f64 {
                break;
            }
            ev.push((t as u64, Event::Restart));
        }
    }
    ev.sort_by_key(|(t, _)| *t);
    ev
}

/// Runs both policies; returns (upstream, kubelet-keyring).
fn simulate(p: &Params) -> (Outcome, Outcome) {
    let mut calls_at: [HashMap<u64, u64>; 2] = [HashMap::new(), HashMap::new()];
    let mut out = [Outcome::default(), Outcome::default()];
    for node in 0..p.nodes {
        for (policy, o) in out.iter_mut().enumerate() {
            let shared_cache = policy == 1;
            let mut kubelet: HashMap<u8, u64> = HashMap::new(); // registry -> expiry
            let mut disk: HashMap<u8, u64> = HashMap::new();
            let mut jitter = Rng(p.seed ^ node.wrapping_mul(31) ^ 0xA5A5);
            for (t, e) in events(p, node) {
                match e {
                    Event::Restart => kubelet.clear(),
                    Event::Pulls(group) => {
                        // Images in one group are pulled at once: each distinct image whose
                        // registry is not in the kubelet cache runs its own plugin process.
                        let mut execs_per_reg: std::collections::BTreeMap<u8, u64> =
                            Default::default();
                        let mut seen = std::collections::HashSet::new();
                        for (reg, img) in group {
                            if reg == 3 || !seen.insert((reg, img)) {
                                continue;
                            }
                            if kubelet.get(&reg).is_some_and(|&exp| t < exp) {
                                continue;
                            }
                            *execs_per_reg.entry(reg).or_default() += 1;
                        }
                        for (reg, n) in execs_per_reg {
                            o.execs += n;
                            let calls = if shared_cache {
                                if disk.get(&reg).is_some_and(|&exp| t < exp) {
                                    0
                                } else {
                                    // Up to 10% of the lifetime is taken off at random, as
                                    // the cache does, so refreshes of nodes booted together
                                    // spread out.
                                    let life =
                                        CACHE_FOR - (CACHE_FOR as f64 * 0.1 * jitter.unit()) as u64;
                                    disk.insert(reg, t + life);
                                    1 // one process calls; the others wait on the lock
                                }
                            } else {
                                n
                            };
                            o.calls += calls;
                            *calls_at[policy].entry(t).or_default() += calls;
                            // The kubelet keeps the answer as long as it was told.
                            let told = if shared_cache {
                                disk[&reg].saturating_sub(t)
                            } else {
                                CACHE_FOR
                            };
                            kubelet.insert(reg, t + told);
                        }
                    }
                }
            }
        }
    }
    for (policy, o) in out.iter_mut().enumerate() {
        let mut secs: Vec<(u64, u64)> = calls_at[policy].iter().map(|(&t, &n)| (t, n)).collect();
        secs.sort();
        o.peak_per_sec = secs.iter().map(|&(_, n)| n).max().unwrap_or(0);
        // Token bucket over the per-second call counts.
        let (mut tokens, mut last) = (p.bucket, 0u64);
        for (t, n) in secs {
            tokens = (tokens + (t - last) as f64 * p.refill).min(p.bucket);
            last = t;
            let ok = (n as f64).min(tokens.floor());
            tokens -= ok;
            o.throttled += n - ok as u64;
        }
    }
    (out[0].clone(), out[1].clone())
}

fn parse_args() -> Result<Params, String> {
    let mut p = Params {
        nodes: 1000,
        hours: 24,
        pulls_per_hour: 6.0,
        boot_burst: 20,
        restarts_per_day: 1.0,
        scale_up_minutes: 10,
        bucket: 200.0,
        refill: 20.0,
        seed: 42,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{} needs a value", pair[0]));
        };
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--nodes" => p.nodes = num(value)? as u64,
            "--hours" => p.hours = num(value)? as u64,
            "--pulls-per-hour" => p.pulls_per_hour = num(value)?,
            "--boot-burst" => p.boot_burst = num(value)? as u64,
            "--restarts-per-day" => p.restarts_per_day = num(value)?,
            "--scale-up-minutes" => p.scale_up_minutes = num(value)? as u64,
            "--bucket" => p.bucket = num(value)?,
            "--refill" => p.refill = num(value)?,
            "--seed" => p.seed = num(value)? as u64,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(p)
}

#[allow(clippy::print_stdout)]
fn main() -> std::process::ExitCode {
    let p = match parse_args() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fleet_sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let (up, kk) = simulate(&p);
    println!(
        "{} nodes, {} h, boot burst {} images, {} pulls/h/node, {} kubelet restarts/day/node, scale-up over {} min; quota bucket {} refill {}/s",
        p.nodes, p.hours, p.boot_burst, p.pulls_per_hour, p.restarts_per_day, p.scale_up_minutes, p.bucket, p.refill
    );
    println!(
        "{:<34}{:>12}{:>12}{:>14}{:>12}",
        "policy", "execs", "API calls", "peak calls/s", "throttled"
    );
    for (name, o) in [
        ("upstream (kubelet cache only)", &up),
        ("kubelet-keyring (shared cache)", &kk),
    ] {
        println!(
            "{name:<34}{:>12}{:>12}{:>14}{:>12}",
            o.execs, o.calls, o.peak_per_sec, o.throttled
        );
    }
    println!(
        "API calls: {:.1}x fewer with the shared cache ({:.2} per node per day)",
        up.calls as f64 / kk.calls.max(1) as f64,
        kk.calls as f64 / p.nodes as f64 / (p.hours as f64 / 24.0)
    );
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Params {
        Params {
            nodes: 40,
            hours: 24,
            pulls_per_hour: 6.0,
            boot_burst: 20,
            restarts_per_day: 2.0,
            scale_up_minutes: 0,
            bucket: 200.0,
            refill: 20.0,
            seed: 7,
        }
    }

    #[test]
    fn the_shared_cache_bounds_calls_per_node_and_registry() {
        let p = small();
        let (up, kk) = simulate(&p);
        // The kubelet side differs only by the jittered (shorter) durations it is told.
        assert!(
            kk.execs >= up.execs && kk.execs < up.execs * 12 / 10,
            "{up:?} {kk:?}"
        );
        // With the disk cache: at most one call per node, per ECR registry, per 6 h.
        // Jitter shortens a lifetime by up to 10%: one more refresh at most per registry.
        let bound = p.nodes * 3 * ((p.hours * 3600).div_ceil(CACHE_FOR * 9 / 10) + 1);
        assert!(kk.calls <= bound, "{} > {bound}", kk.calls);
        assert!(
            up.calls > kk.calls * 2,
            "upstream {} vs {}",
            up.calls,
            kk.calls
        );
    }

    #[test]
    fn a_fleet_scale_up_is_throttled_without_the_shared_cache_only() {
        // 1000 nodes booting over 10 minutes, 20 images each.
        let mut p = small();
        p.nodes = 1000;
        p.scale_up_minutes = 10;
        let (up, kk) = simulate(&p);
        assert!(up.throttled > 0);
        assert_eq!(kk.throttled, 0, "{kk:?}");
        assert_eq!(simulate(&p), (up, kk), "deterministic for a seed");
    }
}
