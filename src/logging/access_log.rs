//! Access log: the formatter of the access line (target [`TARGET`], written by the request's
//! record when its response is done), in the same bytes as tracing-subscriber's default text
//! and JSON formatters, without their per-field `write!` machinery.
//!
//! [`AccessFormat`] wraps the default formatter: every other event goes to it unchanged. An
//! access event is written into a per-thread line buffer: the timestamp from a per-thread prefix
//! re-made once a second, integers with `itoa`, the millisecond figures (exact thousandths) as
//! integers, plain strings copied. Anything out of the ordinary (a string that needs escaping, a
//! float that is not a whole number of microseconds, a `Debug` value) is written the way the
//! default formatter writes it (`{:?}`, serde_json); a message that needs sanitizing, or a span
//! whose JSON fields do not parse, hands the whole event to the default formatter. The property
//! tests in `access_log_tests.rs` check both shapes, with and without ANSI, byte for byte.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

mod json;

/// The target of the access line.
pub const TARGET: &str = "s3x_proxy::access";

/// The line shape [`AccessFormat`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// tracing-subscriber's `Full` text format.
    Text,
    /// tracing-subscriber's JSON format with `flatten_event(true)` (current span and span list
    /// shown, as by default).
    Json,
}

/// A [`FormatEvent`] that writes access events itself and hands every other event to `inner`
/// (which must be the default formatter of the same [`Shape`]: its output is what this one
/// reproduces).
pub struct AccessFormat<F> {
    inner: F,
    shape: Shape,
}

impl<F> AccessFormat<F> {
    /// Access events in `shape`, everything else through `inner`.
    pub fn new(inner: F, shape: Shape) -> Self {
        Self { inner, shape }
    }
}

thread_local! {
    /// The line being written, and a scratch string for `Debug` values.
    static LINE: RefCell<(String, String)> = const { RefCell::new((String::new(), String::new())) };
    /// `YYYY-MM-DDTHH:MM:SS.` of the second last seen on this thread.
    static CLOCK: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl<S, N, F> FormatEvent<S, N> for AccessFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() != TARGET {
            return self.inner.format_event(ctx, writer, event);
        }
        let ansi = writer.has_ansi_escapes();
        let written = LINE.with(|cell| {
            let Ok(mut cell) = cell.try_borrow_mut() else {
                return None; // Re-entered (a field's Debug logged): the default path.
            };
            let (line, scratch) = &mut *cell;
            line.clear();
            let done = match self.shape {
                Shape::Text => text_line(line, scratch, ctx, event, ansi),
                Shape::Json => json::line(line, scratch, ctx, event),
            };
            done.then(|| writer.write_str(line))
        });
        match written {
            Some(result) => result,
            None => self.inner.format_event(ctx, writer, event),
        }
    }
}

/// tracing-subscriber's ANSI styles (nu-ansi-term's codes), as the default formatter paints.
mod ansi {
    pub const BOLD: &str = "\x1b[1m";
    pub const DIMMED: &str = "\x1b[2m";
    pub const ITALIC: &str = "\x1b[3m";
    pub const RESET: &str = "\x1b[0m";
}

/// `text` in `style` when ANSI is on.
fn paint(line: &mut String, ansi: bool, style: &str, text: &str) {
    if ansi {
        line.push_str(style);
        line.push_str(text);
        line.push_str(ansi::RESET);
    } else {
        line.push_str(text);
    }
}

/// The text line; false when the default formatter must write it.
fn text_line<S, N>(
    line: &mut String,
    scratch: &mut String,
    ctx: &FmtContext<'_, S, N>,
    event: &Event<'_>,
    ansi: bool,
) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    if ansi {
        line.push_str(ansi::DIMMED);
        timestamp(line);
        line.push_str(ansi::RESET);
    } else {
        timestamp(line);
    }
    line.push(' ');
    level(line, *event.metadata().level(), ansi);
    line.push(' ');
    if let Some(scope) = ctx.event_scope() {
        let mut seen = false;
        for span in scope.from_root() {
            paint(line, ansi, ansi::BOLD, span.metadata().name());
            seen = true;
            let ext = span.extensions();
            if let Some(fields) = ext.get::<FormattedFields<N>>() {
                if !fields.is_empty() {
                    paint(line, ansi, ansi::BOLD, "{");
                    line.push_str(fields);
                    paint(line, ansi, ansi::BOLD, "}");
                }
            }
            paint(line, ansi, ansi::DIMMED, ":");
        }
        if seen {
            line.push(' ');
        }
    }
    paint(line, ansi, ansi::DIMMED, event.metadata().target());
    paint(line, ansi, ansi::DIMMED, ":");
    line.push(' ');
    let mut visitor = TextFields {
        line,
        scratch,
        ansi,
        first: true,
        ok: true,
    };
    event.record(&mut visitor);
    if !visitor.ok {
        return false;
    }
    line.push('\n');
    true
}

/// The level as `FmtLevel` shows it (five columns; coloured with ANSI).
fn level(line: &mut String, level: Level, ansi: bool) {
    let (text, colour) = match level {
        Level::TRACE => ("TRACE", "\x1b[35m"),
        Level::DEBUG => ("DEBUG", "\x1b[34m"),
        Level::INFO => (" INFO", "\x1b[32m"),
        Level::WARN => (" WARN", "\x1b[33m"),
        Level::ERROR => ("ERROR", "\x1b[31m"),
    };
    paint(line, ansi, colour, text);
}

/// Now, as tracing-subscriber's `SystemTime` timer writes it (`2026-12-08T00:36:30.123456Z`):
/// the part up to the seconds is made once a second per thread.
pub(crate) fn timestamp(line: &mut String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    CLOCK.with(|clock| {
        let mut clock = clock.borrow_mut();
        if clock.0 != secs {
            clock.1.clear();
            seconds_prefix(&mut clock.1, secs);
            clock.0 = secs;
        }
        line.push_str(&clock.1);
    });
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(micros);
    for _ in digits.len()..6 {
        line.push('0');
    }
    line.push_str(digits);
    line.push('Z');
}

/// `YYYY-MM-DDTHH:MM:SS.` of `secs` since the epoch (UTC).
pub(crate) fn seconds_prefix(out: &mut String, secs: u64) {
    let at = UNIX_EPOCH + std::time::Duration::from_secs(secs);
    let _ = write!(out, "{}", humantime::format_rfc3339_seconds(at));
    out.pop(); // `Z`
    out.push('.');
}

/// Whether `s` is written between quotes as it is by `{:?}` (printable ASCII, no `"` or `\`).
fn debug_plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// `value` as `{:?}` shows an `f64` when it is a whole number of thousandths below 10^12 (the
/// access line's milliseconds): the same digits as the shortest round-trip form, which any
/// decimal of at most 15 significant digits is. None otherwise.
pub(crate) fn thousandths(value: f64) -> Option<(u64, u16)> {
    if value.is_sign_negative() || value.is_nan() || value >= 1e12 {
        return None;
    }
    let n = (value * 1000.0).round();
    if n / 1000.0 != value {
        return None;
    }
    let n = n as u64;
    Some((n / 1000, (n % 1000) as u16))
}

/// `whole.frac` with the fraction's trailing zeros dropped, and at least one digit after the
/// point (`0.0`, `1.5`, `12.345`).
pub(crate) fn push_thousandths(line: &mut String, (whole, frac): (u64, u16)) {
    line.push_str(itoa::Buffer::new().format(whole));
    line.push('.');
    let digits = [frac / 100, frac / 10 % 10, frac % 10];
    let keep = match (digits[1], digits[2]) {
        (0, 0) => 1,
        (_, 0) => 2,
        _ => 3,
    };
    for d in &digits[..keep] {
        line.push(char::from(b'0' + *d as u8));
    }
}

/// The event's fields as tracing-subscriber's `DefaultFields` writes them.
struct TextFields<'a> {
    line: &'a mut String,
    scratch: &'a mut String,
    ansi: bool,
    first: bool,
    ok: bool,
}

impl TextFields<'_> {
    /// The separator and `name=` (the message has no name).
    fn name(&mut self, field: &Field) {
        if !self.first {
            self.line.push(' ');
        }
        self.first = false;
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        paint(self.line, self.ansi, ansi::ITALIC, name);
        paint(self.line, self.ansi, ansi::DIMMED, "=");
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.record_debug(field, &format_args!("{value}"));
        }
        self.name(field);
        if debug_plain(value) {
            self.line.push('"');
            self.line.push_str(value);
            self.line.push('"');
        } else {
            let _ = write!(self.line, "{value:?}");
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        match thousandths(value) {
            Some(t) => push_thousandths(self.line, t),
            None => {
                let _ = write!(self.line, "{value:?}");
            }
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_error(&mut self, _: &Field, _: &(dyn std::error::Error + 'static)) {
        self.ok = false; // Written with its sources, sanitized: the default formatter's way.
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() != "message" {
            self.name(field);
            let _ = write!(self.line, "{value:?}");
            return;
        }
        // The message is sanitized (ANSI escapes and other controls): left to the default
        // formatter unless there is nothing to sanitize.
        self.scratch.clear();
        let _ = write!(self.scratch, "{value:?}");
        if !self.scratch.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            self.ok = false;
            return;
        }
        if !self.first {
            self.line.push(' ');
        }
        self.first = false;
        self.line.push_str(self.scratch);
    }
}

/// A client address, `Display`ed as `SocketAddr` displays it: an IPv4 address in one write of
/// digits made with `itoa` (std's `Ipv4Addr` runs `core::fmt` per octet, about 2,000
/// instructions per access line); IPv6, or any width or precision, through std.
pub struct Peer(pub SocketAddr);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let SocketAddr::V4(v4) = self.0 else {
            return self.0.fmt(f);
        };
        if f.width().is_some() || f.precision().is_some() {
            return self.0.fmt(f);
        }
        let mut out = [0u8; 21]; // 255.255.255.255:65535
        let mut len = 0;
        let mut push = |bytes: &[u8]| {
            out[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        for (i, octet) in v4.ip().octets().into_iter().enumerate() {
            if i > 0 {
                push(b".");
            }
            push(itoa::Buffer::new().format(octet).as_bytes());
        }
        push(b":");
        push(itoa::Buffer::new().format(v4.port()).as_bytes());
        f.write_str(std::str::from_utf8(&out[..len]).map_err(|_| fmt::Error)?)
    }
}

/// The span an event belongs to as the JSON formatter picks it: its explicit parent, else the
/// current span.
fn current_span<'a, S, N>(
    ctx: &'a FmtContext<'_, S, N>,
    event: &Event<'_>,
) -> Option<SpanRef<'a, S>>
where
    S: Subscriber + for<'l> LookupSpan<'l>,
    N: for<'w> FormatFields<'w> + 'static,
{
    event
        .parent()
        .and_then(|id| ctx.span(id))
        .or_else(|| ctx.lookup_current())
}

#[cfg(test)]
#[path = "access_log_tests.rs"]
mod tests;
