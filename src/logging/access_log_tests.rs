//! Tests of the access line's formatter: each event goes to two fmt layers at once, one with
//! tracing-subscriber's default formatter and one with [`AccessFormat`], and both must write the
//! same bytes (timestamps blanked: they are read a few microseconds apart; the timestamp has its
//! own test).

use std::io::Write;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tracing_subscriber::fmt::format;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;

use super::*;
use crate::metrics::Lookup;
use crate::respond::record::RequestRecord;

const CASES: u32 = 256;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        blank_timestamps(&String::from_utf8_lossy(&self.0.lock().unwrap()))
    }
}

/// A subscriber with the default formatter writing to `reference` and ours to `ours`.
fn both(shape: Shape, ansi: bool, reference: &Sink, ours: &Sink) -> tracing::Dispatch {
    let (r, o) = (reference.clone(), ours.clone());
    let registry = tracing_subscriber::registry();
    match shape {
        Shape::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(move || r.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(move || o.clone())
                    .event_format(AccessFormat::new(format(), Shape::Text)),
            )
            .into(),
        Shape::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_ansi(ansi)
                    .with_writer(move || r.clone()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_ansi(ansi)
                    .with_writer(move || o.clone())
                    .event_format(AccessFormat::new(
                        format().json().flatten_event(true),
                        Shape::Json,
                    )),
            )
            .into(),
    }
}

/// Runs `emit` under [`both`] for every shape and ANSI setting; the two outputs must match.
fn assert_same_lines(emit: impl Fn()) -> Result<(), TestCaseError> {
    for shape in [Shape::Text, Shape::Json] {
        for ansi in [false, true] {
            let (reference, ours) = (Sink::default(), Sink::default());
            tracing::dispatcher::with_default(&both(shape, ansi, &reference, &ours), &emit);
            let expected = reference.text();
            prop_assert!(!expected.is_empty());
            prop_assert_eq!(ours.text(), expected, "{:?}, ansi {}", shape, ansi);
        }
    }
    Ok(())
}

/// Every `YYYY-MM-DDTHH:MM:SS.ffffffZ` replaced by `<time>`.
fn blank_timestamps(text: &str) -> String {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
    let bytes = text.as_bytes();
    let fits = |at: usize| {
        bytes.len() >= at + SHAPE.len()
            && SHAPE.iter().zip(&bytes[at..]).all(|(s, b)| match s {
                b'd' => b.is_ascii_digit(),
                s => s == b,
            })
    };
    let (mut out, mut at, mut from) = (String::new(), 0, 0);
    while at < bytes.len() {
        if fits(at) {
            out.push_str(&text[from..at]);
            out.push_str("<time>");
            at += SHAPE.len();
            from = at;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[from..]);
    out
}

/// Strings with what needs escaping in either shape: quotes, backslashes, controls, ANSI
/// escapes, C1 controls, non-ASCII, and names the redaction looks for.
fn odd_string() -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => any::<char>(),
        3 => prop::sample::select(vec![
            '"', '\\', '\n', '\t', '\r', '\u{1b}', '\u{7}', '\u{7f}', '\u{85}', '\u{9b}',
            '\u{200b}', '\u{301}', 'é', '☃', ' ', '=', '{', '}', ':', '/', '%', '\'', '\0',
        ]),
    ];
    prop_oneof![
        prop::collection::vec(chars, 0..24).prop_map(|c| c.into_iter().collect()),
        Just("photos/x-amz-security-token=abc".to_owned()),
    ]
}

fn any_peer() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u16; 8]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
    ]
}

fn any_method() -> impl Strategy<Value = http::Method> {
    prop::sample::select(vec![
        "GET", "PUT", "HEAD", "POST", "DELETE", "PURGE", "M-SEARCH",
    ])
    .prop_map(|m| http::Method::from_bytes(m.as_bytes()).unwrap())
}

/// Up to three nested spans, each with a string field (or the connection span's shape).
fn any_spans() -> impl Strategy<Value = Vec<(bool, String)>> {
    prop::collection::vec((any::<bool>(), odd_string()), 0..3)
}

fn in_spans(spans: &[(bool, String)], f: &dyn Fn()) {
    match spans.split_first() {
        None => f(),
        Some(((conn, value), rest)) => {
            let span = match conn {
                true => tracing::info_span!("conn", client.addr = %value),
                false => tracing::debug_span!(
                    "request",
                    id = value.as_str(),
                    operation = tracing::field::Empty
                ),
            };
            let _entered = span.enter();
            if !conn {
                // A line before and after the span's fields change (JSON keeps each span's
                // object until they do).
                f();
                span.record("operation", "GetObject");
            }
            in_spans(rest, f);
        }
    }
}

#[derive(Debug, Clone)]
struct Record {
    id: String,
    peer: SocketAddr,
    method: http::Method,
    client: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    log_names: bool,
    status: u16,
    lookup: Option<Lookup>,
    upstream: Option<Duration>,
    took: Duration,
    bytes: (u64, u64),
    cut: (bool, bool),
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..5_000_000).prop_map(Duration::from_nanos),
        (0u64..100_000_000_000).prop_map(Duration::from_nanos),
        any::<u32>().prop_map(|s| Duration::from_secs(u64::from(s))),
    ]
}

fn any_record() -> impl Strategy<Value = Record> {
    (
        (
            odd_string(),
            any_peer(),
            any_method(),
            prop::option::of(odd_string()),
        ),
        (
            prop::option::of(odd_string()),
            prop::option::of(odd_string()),
            any::<bool>(),
        ),
        (
            any::<u16>(),
            prop::option::of(prop::sample::select(vec![
                Lookup::Hit,
                Lookup::Miss,
                Lookup::Refresh,
            ])),
            prop::option::of(any_duration()),
            any_duration(),
        ),
        (any::<(u64, u64)>(), any::<(bool, bool)>()),
    )
        .prop_map(
            |(
                (id, peer, method, client),
                (bucket, key, log_names),
                (status, lookup, upstream, took),
                (bytes, cut),
            )| Record {
                id,
                peer,
                method,
                client,
                bucket,
                key,
                log_names,
                status,
                lookup,
                upstream,
                took,
                bytes,
                cut,
            },
        )
}

impl Record {
    /// Drops a [`RequestRecord`] with these values: the access line is written.
    fn write(&self) {
        let mut record = RequestRecord::new(self.id.clone(), self.peer, self.method.clone());
        record.client_name = self.client.clone();
        record.operation = "GetObject";
        record.bucket = self.bucket.clone();
        record.key = self.key.clone();
        record.log_names = self.log_names;
        record.status = self.status;
        record.lookup = self.lookup;
        record.upstream = self.upstream;
        if let Some(started) = record.started.checked_sub(self.took) {
            record.started = started;
        }
        record.up.bytes.store(self.bytes.0, Ordering::Relaxed);
        record.down.bytes.store(self.bytes.1, Ordering::Relaxed);
        record.up.cut.store(self.cut.0, Ordering::Relaxed);
        record.down.cut.store(self.cut.1, Ordering::Relaxed);
        drop(record);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The access line of any request, in any spans, is the default formatter's, byte for byte.
    #[test]
    fn access_lines_are_the_default_formatters(record in any_record(), spans in any_spans()) {
        assert_same_lines(|| in_spans(&spans, &|| record.write()))?;
    }

    /// Any field types and values on the access target (floats of every kind, odd messages),
    /// and other targets, which go to the default formatter.
    #[test]
    fn any_event_is_written_as_the_default_formatter_writes_it(
        float in prop_oneof![any::<f64>(), (0u64..1_000_000_000).prop_map(|n| n as f64 / 1000.0),
            Just(f64::NAN), Just(f64::INFINITY), Just(-0.0), Just(1e-7), Just(1e16), Just(1e21)],
        integers in any::<(u64, i64, bool)>(),
        text in odd_string(),
        message in odd_string(),
        spans in any_spans(),
    ) {
        let (u, i, b) = integers;
        assert_same_lines(|| in_spans(&spans, &|| {
            tracing::info!(target: "s3x_proxy::access", f = float, u, i, b, s = text.as_str(), d = ?text, p = %text, "{message}");
            tracing::warn!(target: "s3x_proxy::access", r#type = "x", f = float, "request");
            tracing::error!(target: "s3x_proxy::access", f = float);
            let error = std::io::Error::other(text.clone());
            tracing::warn!(target: "s3x_proxy::access", error = &error as &(dyn std::error::Error + 'static), s = text.as_str());
            tracing::info!(target: "s3x_proxy::other", f = float, s = text.as_str(), "{message}");
        }))?;
    }
}

/// The timestamp is the one tracing-subscriber's timer would have written at that moment.
#[test]
fn the_timestamp_is_the_default_timers() {
    for _ in 0..2000 {
        let default = || {
            let mut s = String::new();
            tracing_subscriber::fmt::time::SystemTime
                .format_time(&mut Writer::new(&mut s))
                .unwrap();
            s
        };
        let before = default();
        let mut ours = String::new();
        timestamp(&mut ours);
        let after = default();
        assert_eq!(ours.len(), before.len(), "{ours} {before}");
        assert!(before <= ours && ours <= after, "{before} {ours} {after}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A peer is displayed as std displays a `SocketAddr`, with or without width.
    #[test]
    fn peers_display_as_socket_addrs_do(peer in any_peer(), width in 0usize..50) {
        prop_assert_eq!(Peer(peer).to_string(), peer.to_string());
        prop_assert_eq!(format!("{:>width$}", Peer(peer)), format!("{peer:>width$}"));
    }
}

#[test]
fn thousandths_are_written_as_debug_writes_them() {
    for n in (0u64..3000).chain([999_999_999_999, 123_456_789_012_345]) {
        let value = n as f64 / 1000.0;
        let mut ours = String::new();
        push_thousandths(&mut ours, thousandths(value).unwrap());
        assert_eq!(ours, format!("{value:?}"));
    }
    assert_eq!(thousandths(0.0001), None);
    assert_eq!(thousandths(-0.0), None);
    assert_eq!(thousandths(f64::NAN), None);
    assert_eq!(thousandths(1e12), None);
}

/// Through the proxy's own logging, the access line is still redacted.
#[test]
fn access_lines_are_redacted() {
    for format in [
        crate::logging::LogFormat::Text,
        crate::logging::LogFormat::Json,
    ] {
        let sink = Sink::default();
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(sink.clone());
        let filter = crate::logging::filter(Some("info"));
        let dispatch = crate::logging::dispatch(format, filter, writer, false);
        tracing::dispatcher::with_default(&dispatch, || {
            let mut record = RequestRecord::new(
                "0123456789ABCDEF".into(),
                SocketAddr::from(([127, 0, 0, 1], 1)),
                http::Method::GET,
            );
            record.key = Some("a/x-amz-security-token=SECRETVALUE".into());
        });
        drop(guard);
        let out = sink.text();
        assert!(out.contains("s3x_proxy::access"), "{out}");
        assert!(!out.contains("SECRETVALUE"), "{out}");
        assert!(out.contains("token=[redacted]"), "{out}");
    }
}
