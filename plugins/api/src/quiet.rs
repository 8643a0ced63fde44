//! Keeps third-party log lines (cloud SDKs, HTTP stacks, auth libraries) in their place while
//! a backend runs: `quiet::run("keyring_ecr", || ...)`.
//!
//! They can carry secrets: at TRACE the AWS smithy runtime logs whole response bodies and the
//! decoded output, ECR authorization token included (the ECR model does not mark it
//! sensitive), and HTTP and auth libraries may log response bodies. And the kubelet
//! appends our stderr to its error, where one line of ours says what failed. So a wrapper
//! around the process's subscriber drops, for every target outside the calling crate:
//!
//! * all TRACE events and spans, at any verbosity: they are where bodies and outputs go;
//! * any event with a `body` field, at any verbosity;
//! * INFO, WARN and ERROR events unless the user asked for debug output (`-vv`).
//!
//! DEBUG lines (attempts, endpoints, timeouts, retry decisions) stay available with `-vv`;
//! they carry no body, and credentials' `Debug` output is redacted.

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_core::span::Current;

/// Runs `f` with the filter in place; events whose target starts with `own` (the calling
/// crate, e.g. `"keyring_ecr"`) are left to the process's subscriber.
pub fn run<T>(own: &'static str, f: impl FnOnce() -> T) -> T {
    let quiet = Dispatch::new(Quiet {
        own,
        inner: tracing::dispatcher::get_default(Dispatch::clone),
        max: LevelFilter::current(),
        verbose: tracing::enabled!(Level::DEBUG),
    });
    tracing::dispatcher::with_default(&quiet, f)
}

struct Quiet {
    own: &'static str,
    inner: Dispatch,
    max: LevelFilter,
    verbose: bool,
}

impl Quiet {
    fn muted(&self, meta: &Metadata<'_>) -> bool {
        if meta.target().starts_with(self.own) {
            return false;
        }
        *meta.level() == Level::TRACE
            || meta.fields().field("body").is_some()
            || (!self.verbose && *meta.level() <= Level::INFO)
    }
}

impl Subscriber for Quiet {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.muted(meta) {
            // `sometimes`, not `never`: interest is cached per call site for the whole
            // process, and outside this backend the process's own filter decides.
            Interest::sometimes()
        } else {
            self.inner.register_callsite(meta)
        }
    }
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        !self.muted(meta) && self.inner.enabled(meta)
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values)
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows)
    }
    fn event(&self, event: &Event<'_>) {
        if !self.muted(event.metadata()) {
            self.inner.event(event)
        }
    }
    fn enter(&self, span: &Id) {
        self.inner.enter(span)
    }
    fn exit(&self, span: &Id) {
        self.inner.exit(span)
    }
    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }
    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }
    fn current_span(&self) -> Current {
        self.inner.current_span()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A subscriber that records the targets and levels of the events up to its level.
    #[derive(Clone)]
    struct Seen(Arc<Mutex<Vec<(String, Level)>>>, Level);

    impl Subscriber for Seen {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            *m.level() <= self.1
        }
        fn max_level_hint(&self) -> Option<LevelFilter> {
            Some(LevelFilter::from_level(self.1))
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            let m = e.metadata();
            self.0
                .lock()
                .unwrap()
                .push((m.target().to_string(), *m.level()));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn events_at(level: Level) -> Vec<(String, Level)> {
        let seen = Seen(Arc::default(), level);
        tracing::subscriber::with_default(seen.clone(), || {
            run("keyring_api::quiet::tests", || {
                tracing::trace!(target: "aws_smithy_runtime::client", "body");
                tracing::debug!(target: "aws_smithy_runtime::client", "attempt");
                tracing::warn!(target: "gcp_auth::types", body = "SECRET", "token request failed");
                tracing::warn!(target: "gcp_auth::types", retries = 1, "failed to refresh token");
                tracing::trace!("ours, trace");
                tracing::warn!("ours, warn");
            })
        });
        let got = seen.0.lock().unwrap().clone();
        got
    }

    #[test]
    fn third_party_trace_and_bodies_never_pass_and_warnings_only_when_verbose() {
        let ours = "keyring_api::quiet::tests".to_string();
        let t = |s: &str| s.to_string();
        assert_eq!(
            events_at(Level::TRACE),
            [
                (t("aws_smithy_runtime::client"), Level::DEBUG),
                (t("gcp_auth::types"), Level::WARN),
                (ours.clone(), Level::TRACE),
                (ours.clone(), Level::WARN),
            ]
        );
        assert_eq!(events_at(Level::WARN), [(ours, Level::WARN)]);
    }
}
