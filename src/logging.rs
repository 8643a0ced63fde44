//! Logging: every line to stderr (the kubelet shows it only when the plugin fails), warnings
//! and errors by default, more with each `-v`. Secrets are never logged.
//!
//! A line that cannot be written is dropped, never a failure: whatever reads stderr may have
//! gone away (EPIPE) or stopped reading (a full pipe, where a plain `write` blocks for ever
//! and no deadline reaches it), and the answer on stdout and the exit code must not depend on
//! it. Every line of this program goes through [`line()`] or the formatter's [`Stderr`],
//! which write through [`keyring_api::process::write_stderr`]: a line waits at most
//! [`PATIENCE`] for stderr to take it, and once one had to be dropped so, later lines are
//! written only if stderr takes them at once (a stalled reader costs an invocation 2 s, not 2 s
//! a line). Write errors are ignored (`eprintln!` panics on them, and a panic while printing
//! the panic aborted the process before it answered); SIGPIPE is ignored, as Rust's runtime
//! sets it up.
//!
//! The formatter (tracing-subscriber's `fmt` on its span registry) is built at the first line
//! that is actually written, not at start-up: a cache hit logs nothing at the default level,
//! and building the registry (a 32 KiB shard table, its code pages) was a tenth of such a
//! process's own time. [`Lazy`] answers the level questions itself and hands everything else
//! to the formatter once it exists.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};
use tracing_core::span::Current;

/// The level for `-v` given `verbose` times.
pub fn level(verbose: u8) -> Level {
    match verbose {
        0 => Level::WARN,
        1 => Level::INFO,
        2 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Installs the process's subscriber: stderr, `level(verbose)` and up, built on first use.
pub fn init(verbose: u8) {
    // Only fails if a subscriber is already set, and then that one is kept.
    let _ = tracing::subscriber::set_global_default(Lazy::new(level(verbose), || {
        use std::io::IsTerminal;
        formatter(|| Stderr, std::io::stderr().is_terminal())
    }));
}

/// Writes `text` and a newline on stderr in one write, or drops them if stderr cannot take
/// them.
pub fn line(text: &str) {
    let mut out = String::with_capacity(text.len() + 1);
    out.push_str(text);
    out.push('\n');
    let _ = Stderr.write_all(out.as_bytes());
}

/// How long a line waits for stderr to take it: the kubelet drains its pipe as we write, so
/// a pipe still full after this has a reader that stopped reading.
pub const PATIENCE: Duration = Duration::from_secs(2);

/// Set once a line was dropped because stderr did not take it within [`PATIENCE`].
static STALLED: AtomicBool = AtomicBool::new(false);

/// Stderr for log lines: every write succeeds, whatever became of the bytes (see the module
/// docs for how long it waits).
#[derive(Debug, Clone, Copy)]
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // Held so that lines of other threads never interleave with this one's pieces.
        let _whole = std::io::stderr().lock();
        let wait = match STALLED.load(Ordering::Relaxed) {
            true => Duration::ZERO,
            false => PATIENCE,
        };
        if !keyring_api::process::write_stderr(bytes, wait) {
            STALLED.store(true, Ordering::Relaxed);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line format: level, spans, message and fields; no time (the kubelet's own log line has
/// one) and no target. Filtering is [`Lazy`]'s.
fn formatter<W>(writer: W, ansi: bool) -> Dispatch
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(writer)
            .with_max_level(LevelFilter::TRACE)
            .with_ansi(ansi)
            .with_target(false)
            .without_time()
            // Its fallback for a failed write is `eprintln!`, which panics on the same error.
            .log_internal_errors(false)
            .finish(),
    )
}

/// A subscriber that filters by level and builds the real one (`make`) when the first
/// span or event at that level arrives.
pub struct Lazy<F> {
    max: LevelFilter,
    make: F,
    inner: OnceLock<Dispatch>,
}

impl<F: Fn() -> Dispatch> Lazy<F> {
    /// Events and spans up to `max`, given to what `make` builds.
    pub fn new(max: Level, make: F) -> Self {
        Lazy {
            max: LevelFilter::from_level(max),
            make,
            inner: OnceLock::new(),
        }
    }

    /// Whether the real subscriber has been built.
    pub fn is_built(&self) -> bool {
        self.inner.get().is_some()
    }

    fn inner(&self) -> &Dispatch {
        self.inner.get_or_init(&self.make)
    }
}

impl<F: Fn() -> Dispatch + Send + Sync + 'static> Subscriber for Lazy<F> {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.enabled(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner().new_span(span)
    }
    fn event(&self, event: &Event<'_>) {
        self.inner().event(event)
    }
    // A span id exists only once `new_span` has built the real subscriber.
    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(d) = self.inner.get() {
            d.record(span, values)
        }
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        if let Some(d) = self.inner.get() {
            d.record_follows_from(span, follows)
        }
    }
    fn enter(&self, span: &Id) {
        if let Some(d) = self.inner.get() {
            d.enter(span)
        }
    }
    fn exit(&self, span: &Id) {
        if let Some(d) = self.inner.get() {
            d.exit(span)
        }
    }
    fn clone_span(&self, id: &Id) -> Id {
        match self.inner.get() {
            Some(d) => d.clone_span(id),
            None => id.clone(),
        }
    }
    fn try_close(&self, id: Id) -> bool {
        match self.inner.get() {
            Some(d) => d.try_close(id),
            None => false,
        }
    }
    fn current_span(&self) -> Current {
        match self.inner.get() {
            Some(d) => d.current_span(),
            None => Current::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the formatter writes.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lazy(level: Level, buf: &Buf) -> Arc<Lazy<impl Fn() -> Dispatch + Send + Sync>> {
        let buf = buf.clone();
        Arc::new(Lazy::new(level, move || {
            let buf = buf.clone();
            formatter(move || buf.clone(), false)
        }))
    }

    fn text(buf: &Buf) -> String {
        String::from_utf8(buf.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn nothing_is_built_until_a_line_at_the_level_is_written() {
        let buf = Buf::default();
        let sub = lazy(Level::WARN, &buf);
        tracing::dispatcher::with_default(&Dispatch::from(sub.clone()), || {
            tracing::debug!("cache hit");
            tracing::info!("not shown");
            let _span = tracing::debug_span!("backend", name = "ecr").entered();
        });
        assert!(!sub.is_built());
        assert_eq!(text(&buf), "");
        tracing::dispatcher::with_default(&Dispatch::from(sub.clone()), || {
            tracing::warn!(dir = "/x", "running without the cache");
        });
        assert!(sub.is_built());
        assert_eq!(text(&buf), " WARN running without the cache dir=\"/x\"\n");
    }

    #[test]
    fn spans_reach_the_formatter_at_their_level() {
        let buf = Buf::default();
        let sub = lazy(Level::DEBUG, &buf);
        tracing::dispatcher::with_default(&Dispatch::from(sub.clone()), || {
            let _span = tracing::debug_span!("backend", name = "ecr").entered();
            tracing::debug!("asking");
            tracing::trace!("not shown");
        });
        assert_eq!(text(&buf), "DEBUG backend{name=\"ecr\"}: asking\n");
    }
}
