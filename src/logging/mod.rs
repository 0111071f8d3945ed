//! Logging: the tracing setup of the binary (filter, format, redaction, writer thread), and how
//! errors are written into log lines (their whole cause chain, once).

pub(crate) mod access_log;
pub(crate) mod redact;

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal, Write};

use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::logging::access_log::{AccessFormat, Shape};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// Directives added to the default filter (`RUST_LOG` unset): aws-config's own warnings repeat
/// the credential chain's debug output (kilobytes per attempt); the proxy logs the cause itself.
const QUIET_DEFAULTS: &[&str] = &["aws_config=error", "aws_smithy_runtime=error"];

/// An error and all its causes, joined with ": " (hyper's and aws-config's errors hide the
/// useful part inside).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}

/// The filter: `RUST_LOG` when set, else `info` with [`QUIET_DEFAULTS`]. aws-sigv4 traces
/// canonical requests (with token headers) at trace level, and so does the proxy's own signing:
/// `aws_sigv4=warn` and `s3x_proxy::sign=warn` are added last, so they replace a user's
/// `aws_sigv4=…` or `s3x_proxy::sign=…`, but a more specific directive
/// (`aws_sigv4::http_request=trace`, `s3x_proxy::sign::fast=trace`) still wins. That is only a
/// first line of defence: [`init`] redacts every byte written.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let filter = match rust_log.map(EnvFilter::try_new) {
        Some(Ok(filter)) => filter,
        _ => QUIET_DEFAULTS.iter().fold(EnvFilter::new("info"), |f, d| {
            f.add_directive(static_directive(d))
        }),
    };
    filter
        .add_directive(static_directive("aws_sigv4=warn"))
        .add_directive(static_directive("s3x_proxy::sign=warn"))
}

fn static_directive(directive: &str) -> tracing_subscriber::filter::Directive {
    directive.parse().expect("static directive")
}

/// Sets up logging to stderr through a writer thread, so a request never waits on a
/// `write(2)`; when the queue is full, callers wait rather than lose lines. Worker threads hand
/// their lines over in batches ([`Batched`]), and the writer thread buffers what it takes off
/// the queue and flushes whenever the queue is empty: under load one `write(2)` carries many
/// lines, and no line waits while the proxy is idle. Every event is
/// redacted ([`crate::logging::redact`]) before it is queued, in both formats and whatever the filter.
/// Hold the guard until exit: dropping it flushes the lines still queued.
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let ansi = std::io::stderr().is_terminal();
    dispatch(format, filter(rust_log.as_deref()), writer, ansi).init();
    guard
}

/// The subscriber [`init`] installs, writing to `writer` (the writer thread's queue).
pub fn dispatch(
    format: LogFormat,
    filter: EnvFilter,
    writer: NonBlocking,
    ansi: bool,
) -> tracing::Dispatch {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::logging::redact::Redacting(Batched(writer)))
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder
            .event_format(AccessFormat::new(
                tracing_subscriber::fmt::format(),
                Shape::Text,
            ))
            .finish()
            .into(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .event_format(AccessFormat::new(
                tracing_subscriber::fmt::format().json().flatten_event(true),
                Shape::Json,
            ))
            .finish()
            .into(),
    }
}

/// Lines a thread queues before handing them over regardless.
const BATCH_BYTES: usize = 32 * 1024;

thread_local! {
    static BATCHING: Cell<bool> = const { Cell::new(false) };
    static PENDING: RefCell<Option<(Vec<u8>, NonBlocking)>> = const { RefCell::new(None) };
}

/// Log lines written on this thread are queued here until [`flush_thread`] (or
/// [`BATCH_BYTES`]), instead of one hand-over per line. A worker calls this at start and
/// flushes whenever its runtime is about to wait for I/O, so a line waits at most for the
/// request work already in hand. Handing over a line wakes the writer thread (a futex call):
/// at tens of thousands of access lines a second, one hand-over per line was the largest cost
/// of logging at `info`.
pub fn batch_this_thread() {
    BATCHING.with(|b| b.set(true));
}

/// Hands this thread's queued lines to the writer thread.
pub fn flush_thread() {
    let pending = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        match p.as_mut() {
            Some((lines, sink)) if !lines.is_empty() => Some((std::mem::take(lines), sink.clone())),
            _ => None,
        }
    });
    if let Some((lines, mut sink)) = pending {
        let _ = sink.write_all(&lines);
    }
}

/// A [`MakeWriter`] over the writer thread's queue that batches on the threads that asked for
/// it ([`batch_this_thread`]) and passes lines straight on elsewhere.
#[derive(Clone)]
pub struct Batched(pub NonBlocking);

impl<'a> MakeWriter<'a> for Batched {
    type Writer = BatchedWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        BatchedWriter(&self.0)
    }
}

/// The writer of [`Batched`].
pub struct BatchedWriter<'a>(&'a NonBlocking);

impl Write for BatchedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !BATCHING.with(Cell::get) {
            self.0.clone().write_all(buf)?;
            return Ok(buf.len());
        }
        let full = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            let (lines, _) =
                p.get_or_insert_with(|| (Vec::with_capacity(BATCH_BYTES), self.0.clone()));
            lines.extend_from_slice(buf);
            lines.len() >= BATCH_BYTES
        });
        if full {
            flush_thread();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    /// What the writer thread wrote, and a signal for each write.
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<(std::sync::Mutex<Vec<u8>>, std::sync::Condvar)>);

    impl Sink {
        fn seen(&self) -> String {
            String::from_utf8(self.0 .0.lock().unwrap().clone()).unwrap()
        }

        /// Waits (10 s at most) until what was written ends with `end`; returns all of it.
        fn wait_for(&self, end: &str) -> String {
            let (written, wrote) = &*self.0;
            let (written, _) = wrote
                .wait_timeout_while(
                    written.lock().unwrap(),
                    std::time::Duration::from_secs(10),
                    |w| !w.ends_with(end.as_bytes()),
                )
                .unwrap();
            String::from_utf8(written.clone()).unwrap()
        }
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 .0.lock().unwrap().extend_from_slice(buf);
            self.0 .1.notify_all();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_batching_thread_hands_its_lines_over_when_it_flushes_others_at_once() {
        let sink = Sink::default();
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(sink.clone());
        let made = Batched(writer);
        let direct = |line: &str| {
            std::thread::scope(|scope| {
                scope.spawn(|| made.make_writer().write_all(line.as_bytes()).unwrap());
            })
        };
        direct("direct\n");
        assert_eq!(
            sink.wait_for("direct\n"),
            "direct\n",
            "a thread that does not batch passes lines on"
        );
        std::thread::scope(|scope| {
            scope.spawn(|| {
                batch_this_thread();
                made.make_writer().write_all(b"one\n").unwrap();
                made.make_writer().write_all(b"two\n").unwrap();
                // A line passed on after these two is written before them: they are queued on
                // this thread until it flushes.
                direct("after\n");
                assert_eq!(
                    sink.wait_for("after\n"),
                    "direct\nafter\n",
                    "queued on the thread until it flushes"
                );
                flush_thread();
            });
        });
        drop(guard); // Flushes the writer thread.
        assert_eq!(sink.seen(), "direct\nafter\none\ntwo\n");
    }

    #[test]
    fn chains_name_every_cause_once() {
        let e = Outer(std::io::Error::other("inner cause"));
        assert_eq!(chain(&e), "outer: inner cause");
    }

    #[test]
    fn the_default_filter_quiets_aws_config_and_rust_log_wins() {
        let default = filter(None).to_string();
        assert!(default.contains("aws_config=error"), "{default}");
        let custom = filter(Some("debug")).to_string();
        assert!(!custom.contains("aws_config=error"), "{custom}");
        assert!(custom.contains("aws_sigv4=warn"), "{custom}");
        assert!(custom.contains("s3x_proxy::sign=warn"), "{custom}");
    }
}
