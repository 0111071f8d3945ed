//! The access line in tracing-subscriber's flattened JSON shape: `timestamp`, `level`, the
//! event's fields, `target`, the current `span` and the `spans` list. A span's JSON object is
//! made by serde_json as the default formatter makes it, once per span (kept in the span's
//! extensions until its fields change).

use std::fmt::{self, Write as _};
use std::io;

use serde::ser::{SerializeMap, Serializer as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::{FmtContext, FormatFields, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::{current_span, push_thousandths, thousandths, timestamp};

/// The line; false when the default formatter must write it.
pub(super) fn line<S, N>(
    line: &mut String,
    scratch: &mut String,
    ctx: &FmtContext<'_, S, N>,
    event: &Event<'_>,
) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    timestamp(line);
    line.push_str("\",\"level\":\"");
    line.push_str(match *meta.level() {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    });
    line.push('"');
    event.record(&mut JsonFields { line, scratch });
    line.push_str(",\"target\":");
    string(line, meta.target());
    if let Some(current) = current_span(ctx, event) {
        line.push_str(",\"span\":");
        if !write_span::<S, N>(line, &current) {
            return false;
        }
        line.push_str(",\"spans\":[");
        if let Some(leaf) = ctx.lookup_current() {
            for (i, span) in leaf.scope().from_root().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                if !write_span::<S, N>(line, &span) {
                    return false;
                }
            }
        }
        line.push(']');
    }
    line.push_str("}\n");
    true
}

/// A span's JSON object as last made, and the formatted fields it was made from.
struct SpanJson {
    fields: String,
    object: String,
}

/// Writes `span`'s object (its fields and `name`); false when its fields are not a JSON object
/// (the default formatter says so in its own way).
fn write_span<S, N>(line: &mut String, span: &SpanRef<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let fields = {
        let ext = span.extensions();
        let Some(fields) = ext.get::<FormattedFields<N>>() else {
            return false;
        };
        if let Some(made) = ext.get::<SpanJson>() {
            if made.fields == fields.fields {
                line.push_str(&made.object);
                return true;
            }
        }
        fields.fields.clone()
    };
    let Some(object) = span_object(&fields, span.metadata().name()) else {
        return false;
    };
    line.push_str(&object);
    span.extensions_mut().replace(SpanJson { fields, object });
    true
}

/// The object tracing-subscriber's JSON formatter writes for a span with these fields.
fn span_object(fields: &str, name: &str) -> Option<String> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(fields) else {
        return None;
    };
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    let mut map = serializer.serialize_map(None).ok()?;
    for (key, value) in &fields {
        map.serialize_entry(key, value).ok()?;
    }
    map.serialize_entry("name", name).ok()?;
    map.end().ok()?;
    String::from_utf8(out).ok()
}

/// `io::Write` into the line, for serde_json (which writes whole UTF-8 runs and ASCII escapes).
struct Out<'a>(&'a mut String);

impl io::Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = std::str::from_utf8(buf).map_err(io::Error::other)?;
        self.0.push_str(text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `s` as a JSON string, escaped as serde_json escapes.
fn string(line: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        line.push('"');
        line.push_str(s);
        line.push('"');
    } else {
        let _ = serde_json::to_writer(Out(line), s);
    }
}

/// The event's fields as tracing-serde's map visitor writes them, each after a comma.
struct JsonFields<'a> {
    line: &'a mut String,
    scratch: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        string(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        string(self.line, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.line.push_str(itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        match thousandths(value) {
            Some(t) => push_thousandths(self.line, t),
            None => {
                let _ = serde_json::to_writer(Out(self.line), &value);
            }
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.scratch.clear();
        let _ = write!(self.scratch, "{value:?}");
        string(self.line, self.scratch);
    }
}
