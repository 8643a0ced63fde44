//! `kubelet-keyring explain IMAGE...`: for each image, which backend would answer and why
//! (and why the others would not), where the credential would come from, and the cache state.
//! For an image with mirrors ([`crate::mirrors`]): where they are configured, the strategy,
//! and for each mirror's image which backend would answer it.
//! Read-only: nothing is fetched unless `--fetch` is given, nothing is written to the cache,
//! and no secret is ever printed (passwords and tokens are reported as redacted).

use keyring_api::backend::Query;
use keyring_api::wire::ApiVersion;
use keyring_api::ImageName;
use serde::Serialize;

use crate::args::GlobalArgs;
use crate::cache::memory::MemoryCache;
use crate::cache::Freshness;
use crate::chain::Chain;
use crate::core::NoCache;
use crate::exit::Failure;
use crate::io::{open_cache, search_paths, write_stdout};

/// The report for one image.
#[derive(Debug, Serialize)]
pub struct Report {
    /// As typed.
    pub input: String,
    /// Normalized, as the kubelet sends it; absent when the reference is invalid.
    pub image: Option<String>,
    /// Why the reference is invalid.
    pub error: Option<String>,
    /// The cache's view.
    pub cache: String,
    /// Each backend of the chain, in order.
    pub backends: Vec<BackendReport>,
    /// The backend that would answer, if any.
    pub answered_by: Option<String>,
    /// The image's mirrors, when it has some.
    pub mirrors: Option<MirrorsReport>,
    /// With `--fetch`: what the real exchange returned (no secrets).
    pub fetch: Option<FetchReport>,
}

/// One backend's part.
#[derive(Debug, Serialize)]
pub struct BackendReport {
    /// Its name.
    pub name: String,
    #[serde(flatten)]
    /// What it says.
    pub explanation: keyring_api::backend::Explanation,
}

/// An image's mirrors, as `get-credentials` would ask them.
#[derive(Debug, Serialize)]
pub struct MirrorsReport {
    /// Where they are configured (`mirrors.registries[0]`, a `hosts.toml`, `registries.conf`).
    pub origin: String,
    /// `mirrorOnly`, `mirrorFirst` or `mirrorLast`.
    pub strategy: String,
    /// The strategy in words.
    pub order: String,
    /// Each mirror, in the order the runtime tries them.
    pub mirrors: Vec<MirrorReport>,
    /// Whether the source image is asked too (every strategy but `mirrorOnly`).
    pub source_asked: bool,
}

/// One mirror of an image.
#[derive(Debug, Serialize)]
pub struct MirrorReport {
    /// As configured.
    pub location: String,
    /// The mirror's image, asked of the chain.
    pub image: String,
    /// The backend that would answer it, if any.
    pub answered_by: Option<String>,
    /// Each backend's part for the mirror's image.
    pub backends: Vec<BackendReport>,
}

/// The result of `--fetch`.
#[derive(Debug, Serialize)]
pub struct FetchReport {
    /// Whether the exchange succeeded.
    pub ok: bool,
    /// The error, one line, when it failed.
    pub error: Option<String>,
    /// The failure's kind (`misconfigured`, `denied`, `unavailable`, `protocol`), when a
    /// backend failed.
    pub error_kind: Option<String>,
    /// What `get-credentials` does about that kind.
    pub consequence: Option<String>,
    /// The backend that answered.
    pub backend: Option<String>,
    /// `auth` keys with their user names; passwords redacted.
    pub credentials: Vec<(String, String)>,
    /// `cacheKeyType`.
    pub cache_key_type: Option<String>,
    /// The `cacheDuration` that would be sent.
    pub cache_duration: Option<String>,
    /// Seconds until the credential expires, when known.
    pub expires_in_secs: Option<i64>,
    /// Where it came from.
    pub source: Option<String>,
}

/// Runs `explain`.
pub fn run(args: &GlobalArgs, images: &[String], json: bool, fetch: bool) -> Result<(), Failure> {
    let config = crate::io::load_config(args)?;
    let paths = search_paths(args);
    let disk = if args.no_cache {
        None
    } else {
        open_cache(args, &config, &paths)
    };
    // Several images in one process: remember what the disk said.
    let memory = MemoryCache::default();
    let chain = Chain::new(&config, paths)?;
    let now = keyring_api::Clock::invocation().now();
    let mut reports = Vec::new();
    for input in images {
        let mut report = Report {
            input: input.clone(),
            image: None,
            error: None,
            cache: String::new(),
            backends: Vec::new(),
            answered_by: None,
            mirrors: None,
            fetch: None,
        };
        let image = match ImageName::parse(input) {
            Ok(i) => i,
            Err(e) => {
                report.error = Some(e.to_string());
                reports.push(report);
                continue;
            }
        };
        report.image = Some(image.to_string());
        report.cache = match (&disk, memory.find(disk.as_ref(), &image, now)) {
            (None, _) => "not used (--no-cache, or the directory was refused)".into(),
            (Some(_), Some((e, d))) => format!(
                "fresh {} entry for {:?} from {} ({}), {}s left",
                e.cache_key_type,
                e.key,
                e.backend,
                e.source,
                d.as_secs()
            ),
            (Some(d), None) => match d.find(&image, now, false) {
                Some((e, left)) if matches!(e.freshness(now), Freshness::Stale(_)) => format!(
                    "stale entry for {:?} from {}: served only if the backend fails ({}s at a time)",
                    e.key,
                    e.backend,
                    left.as_secs()
                ),
                _ => format!("miss ({})", d.dir().display()),
            },
        };
        let query = Query::new(image);
        (report.answered_by, report.backends) = explain_chain(&chain, &query);
        report.mirrors = chain.mirrors(&query.image).route.map(|route| {
            let mirrors = route
                .mirrors
                .iter()
                .map(|m| {
                    let (answered_by, backends) =
                        explain_chain(&chain, &Query::new(m.image.clone()));
                    MirrorReport {
                        location: m.location.clone(),
                        image: m.image.to_string(),
                        answered_by,
                        backends,
                    }
                })
                .collect();
            MirrorsReport {
                origin: route.origin,
                strategy: route.strategy.as_str().into(),
                order: route.strategy.says().into(),
                mirrors,
                source_asked: route.strategy != crate::mirrors::Strategy::MirrorOnly,
            }
        });
        if fetch {
            let turn = crate::core::answer(&query, ApiVersion::V1, &NoCache, |q| chain.resolve(q));
            report.fetch = Some(fetch_report(turn.result, now));
        }
        reports.push(report);
    }
    let text = if json {
        let mut t =
            serde_json::to_string_pretty(&reports).map_err(|e| Failure::Internal(e.to_string()))?;
        t.push('\n');
        t
    } else {
        render(&reports)
    };
    write_stdout(text.as_bytes())?;
    if reports.iter().any(|r| r.error.is_some()) {
        return Err(Failure::BadInput(
            "some image references are invalid".into(),
        ));
    }
    if reports
        .iter()
        .any(|r| r.fetch.as_ref().is_some_and(|f| !f.ok))
    {
        return Err(Failure::Internal("a fetch failed".into()));
    }
    Ok(())
}

/// Each backend's explanation for `query`, and the first that would answer.
fn explain_chain(chain: &Chain, query: &Query) -> (Option<String>, Vec<BackendReport>) {
    let mut answered_by = None;
    let mut reports = Vec::new();
    for (name, explanation) in chain.explain(query) {
        if answered_by.is_none() && explanation.applies == Some(true) {
            answered_by = Some(name.to_string());
        }
        reports.push(BackendReport {
            name: name.to_string(),
            explanation,
        });
    }
    (answered_by, reports)
}

/// What `--fetch` reports: the response `get-credentials` would write without a cache (the
/// same [`crate::core::answer`]), user names only, or the one-line error.
fn fetch_report(
    result: Result<crate::core::Answered, Failure>,
    now: std::time::SystemTime,
) -> FetchReport {
    let a = match result {
        Ok(a) => a,
        Err(e) => {
            let kind = match &e {
                Failure::Backend(p) => Some(p.kind),
                _ => None,
            };
            return FetchReport {
                ok: false,
                error: Some(e.one_line()),
                error_kind: kind.map(|k| k.as_str().to_string()),
                consequence: kind.map(|k| k.consequence().to_string()),
                backend: None,
                credentials: Vec::new(),
                cache_key_type: None,
                cache_duration: None,
                expires_in_secs: None,
                source: None,
            };
        }
    };
    let expires_in_secs = a.expires_at.map(|t| match t.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    });
    FetchReport {
        ok: true,
        error: None,
        error_kind: None,
        consequence: None,
        backend: (a.backend != "none").then_some(a.backend),
        credentials: a
            .response
            .auth
            .iter()
            .map(|(k, auth)| (k.clone(), auth.username.clone()))
            .collect(),
        cache_key_type: Some(a.response.cache_key_type.as_str().into()),
        cache_duration: a.response.cache_duration.map(keyring_api::duration::format),
        expires_in_secs,
        source: Some(a.source),
    }
}

fn render(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        match (&r.image, &r.error) {
            (_, Some(e)) => {
                out.push_str(&format!("{}: invalid image reference: {e}\n\n", r.input));
                continue;
            }
            (Some(i), None) if *i != r.input => {
                out.push_str(&format!("image {i} (from {:?})\n", r.input))
            }
            (Some(i), None) => out.push_str(&format!("image {i}\n")),
            (None, None) => {}
        }
        out.push_str(&format!("  cache: {}\n", r.cache));
        render_backends(&mut out, &r.backends, "  ");
        let nobody = "nobody (the answer is \"no credentials\")";
        match &r.mirrors {
            None => out.push_str(&format!(
                "  answered by: {}\n",
                r.answered_by.as_deref().unwrap_or(nobody)
            )),
            Some(m) => {
                out.push_str(&format!(
                    "  mirrors ({}): {}; credentials {}: {}\n",
                    m.origin,
                    m.mirrors
                        .iter()
                        .map(|x| x.image.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    m.strategy,
                    m.order
                ));
                for x in &m.mirrors {
                    out.push_str(&format!(
                        "  mirror {} ({}): answered by {}\n",
                        x.location,
                        x.image,
                        x.answered_by.as_deref().unwrap_or("nobody")
                    ));
                    render_backends(&mut out, &x.backends, "    ");
                }
                out.push_str(&format!(
                    "  source {}: {}\n",
                    r.image.as_deref().unwrap_or_default(),
                    match (m.source_asked, &r.answered_by) {
                        (false, _) => "not asked (mirrorOnly)".to_string(),
                        (true, who) =>
                            format!("answered by {}", who.as_deref().unwrap_or("nobody")),
                    }
                ));
                out.push_str(
                    "  answered by: the credentials found above, under the source's registry, \
                     in the strategy's order\n",
                );
            }
        }
        if let Some(f) = &r.fetch {
            if f.ok {
                out.push_str(&format!(
                    "  fetch: ok from {} ({}), cacheKeyType {}, cacheDuration {}{}\n",
                    f.backend.as_deref().unwrap_or("nobody"),
                    f.source.as_deref().unwrap_or("-"),
                    f.cache_key_type.as_deref().unwrap_or("-"),
                    f.cache_duration.as_deref().unwrap_or("-"),
                    f.expires_in_secs
                        .map(|s| format!(", credential expires in {s}s"))
                        .unwrap_or_default()
                ));
                for (k, u) in &f.credentials {
                    out.push_str(&format!("      {k}: user {u:?}, password redacted\n"));
                }
            } else {
                out.push_str(&format!(
                    "  fetch: FAILED: {}\n",
                    f.error.as_deref().unwrap_or("")
                ));
                if let (Some(kind), Some(then)) = (&f.error_kind, &f.consequence) {
                    out.push_str(&format!("      kind {kind}: {then}\n"));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// The lines of each backend's part, indented by `indent`.
fn render_backends(out: &mut String, backends: &[BackendReport], indent: &str) {
    for p in backends {
        let mark = match p.explanation.applies {
            Some(true) => "answers",
            Some(false) => "passes",
            None => "unknown",
        };
        out.push_str(&format!(
            "{indent}{} [{mark}]: {}\n",
            p.name, p.explanation.summary
        ));
        for d in &p.explanation.details {
            out.push_str(&format!("{indent}    {d}\n"));
        }
    }
}
