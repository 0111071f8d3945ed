//! Logging: the tracing setup of the binary (filter, format, redaction, writer thread), and how
//! errors are written into log lines (their whole cause chain, once).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
/// canonical requests (with token headers) at trace level: `aws_sigv4=warn` is added last, so it
/// replaces a user's `aws_sigv4=…`, but a more specific directive (`aws_sigv4::http_request=trace`)
/// still wins. That is only a first line of defence: [`init`] redacts every byte written.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    let filter = match rust_log.map(EnvFilter::try_new) {
        Some(Ok(filter)) => filter,
        _ => QUIET_DEFAULTS.iter().fold(EnvFilter::new("info"), |f, d| {
            f.add_directive(static_directive(d))
        }),
    };
    filter.add_directive(static_directive("aws_sigv4=warn"))
}

fn static_directive(directive: &str) -> tracing_subscriber::filter::Directive {
    directive.parse().expect("static directive")
}

/// Sets up logging to stderr through a writer thread, so a request never waits on a
/// `write(2)`; when the queue is full, callers wait rather than lose lines. Every event is
/// redacted ([`crate::redact`]) before it is queued, in both formats and whatever the filter.
/// Hold the guard until exit: dropping it flushes the lines still queued.
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(rust_log.as_deref()))
        .with_writer(crate::redact::Redacting(writer))
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

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
    }
}
