//! Keeps gcp_auth's own log lines off stderr.
//!
//! gcp_auth logs every retry at WARN and, on a failed token request, the response body at
//! WARN. The kubelet appends our stderr to its error, where we want exactly one line, and a
//! body is never ours to print. While this backend runs, a wrapper around the process's
//! subscriber drops every gcp_auth event that carries a `body` field, and gcp_auth's
//! INFO/WARN/ERROR events unless the user asked for debug output (`-vv`).

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_core::span::Current;

/// Runs `f` with gcp_auth's noisy events filtered out.
pub(crate) fn run<T>(f: impl FnOnce() -> T) -> T {
    let quiet = Dispatch::new(Quiet {
        inner: tracing::dispatcher::get_default(Dispatch::clone),
        max: LevelFilter::current(),
        // Would the process's subscriber show a debug line of ours?
        verbose: tracing::enabled!(Level::DEBUG),
    });
    tracing::dispatcher::with_default(&quiet, f)
}

struct Quiet {
    inner: Dispatch,
    max: LevelFilter,
    verbose: bool,
}

impl Quiet {
    fn muted(&self, meta: &Metadata<'_>) -> bool {
        meta.target().starts_with("gcp_auth")
            && (meta.fields().field("body").is_some()
                || (!self.verbose && *meta.level() <= Level::INFO))
    }
}

impl Subscriber for Quiet {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.muted(meta) {
            Interest::never()
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
