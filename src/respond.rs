//! Respond: relay S3's answer, count body bytes, record metrics, and write the access log line
//! when the response body has been sent (or dropped).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::{DateTime, Format};

use http::{header, Response, StatusCode};
use http_body_util::BodyExt;
use prometheus::IntCounter;
use tokio::time::Instant;

use crate::body::{full, ProxyBody};
use crate::metrics::{Lookup, Metrics};
use crate::sign::strip_hop_by_hop;
use crate::xml;

/// Everything the access log line says about one request; filled in as the request moves on.
#[derive(Debug)]
pub struct RequestRecord {
    /// The request id (also in error bodies).
    pub request_id: String,
    /// HTTP method.
    pub method: http::Method,
    /// S3 operation name.
    pub operation: &'static str,
    /// Bucket, if known and names are logged.
    pub bucket: Option<String>,
    /// Object path, if names are logged.
    pub key: Option<String>,
    /// Response status.
    pub status: u16,
    /// Session cache lookup result, for session-signed requests.
    pub lookup: Option<Lookup>,
    /// Time S3 took to return the response head.
    pub upstream: Option<Duration>,
    /// When the request head arrived.
    pub started: Instant,
    /// The connection's span, entered when the line is written (the body may finish on
    /// another task, as h2 streams do).
    pub span: tracing::Span,
    /// Request body bytes sent upstream.
    pub bytes_up: Arc<AtomicU64>,
    /// Response body bytes sent to the client.
    pub bytes_down: Arc<AtomicU64>,
}

impl RequestRecord {
    /// A record for a request that arrived now.
    pub fn new(request_id: String, method: http::Method) -> Self {
        Self {
            request_id,
            method,
            operation: "Unknown",
            bucket: None,
            key: None,
            status: 0,
            lookup: None,
            upstream: None,
            started: Instant::now(),
            span: tracing::Span::current(),
            bytes_up: Arc::default(),
            bytes_down: Arc::default(),
        }
    }
}

/// Milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        let _entered = self.span.enter();
        tracing::info!(
            target: "s3x_proxy::access",
            request_id = %self.request_id,
            method = %self.method,
            operation = self.operation,
            bucket = self.bucket.as_deref().unwrap_or("-"),
            key = self.key.as_deref().unwrap_or("-"),
            status = self.status,
            bytes_up = self.bytes_up.load(Ordering::Relaxed),
            bytes_down = self.bytes_down.load(Ordering::Relaxed),
            total_ms = millis(self.started.elapsed()),
            upstream_ms = self.upstream.map(millis),
            session = self.lookup.map(Lookup::as_str).unwrap_or("-"),
            "request"
        );
    }
}

/// Wraps a request body so its bytes count toward the upload metric and the access log.
pub fn count_upload(body: ProxyBody, metrics: &Metrics, record: &RequestRecord) -> ProxyBody {
    counting(
        body,
        metrics.bytes_upload.clone(),
        record.bytes_up.clone(),
        (),
    )
}

/// Counts a body's data bytes into `counter` and `total`; `keep` lives as long as the body.
fn counting<K: Send + 'static>(
    body: ProxyBody,
    counter: IntCounter,
    total: Arc<AtomicU64>,
    keep: K,
) -> ProxyBody {
    body.map_frame(move |frame| {
        let _ = &keep;
        if let Some(data) = frame.data_ref() {
            counter.inc_by(data.len() as u64);
            total.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    })
    .boxed_unsync()
}

/// Finishes a response: strips hop-by-hop headers, records the request metrics, and attaches
/// the record to the body so the access line is written once the body is done.
pub fn finish(
    mut response: Response<ProxyBody>,
    mut record: RequestRecord,
    metrics: &Metrics,
) -> Response<ProxyBody> {
    strip_hop_by_hop(response.headers_mut());
    record.status = response.status().as_u16();
    metrics.record_request(record.operation, record.status, record.bucket.as_deref());
    metrics
        .request_duration
        .with_label_values(&[record.operation])
        .observe(record.started.elapsed().as_secs_f64());
    let counter = metrics.bytes_download.clone();
    let total = record.bytes_down.clone();
    // The record rides with the body: its access line is written when the body is dropped.
    response.map(|body| counting(body, counter, total, record))
}

/// The client's own CreateSession, answered with placeholder credentials (never real ones):
/// the proxy strips whatever the client later signs with them.
pub fn local_create_session(request_id: &str) -> Response<ProxyBody> {
    let expires = SystemTime::now() + Duration::from_secs(300);
    let secs = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let expiration = DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .unwrap_or_default();
    let body = xml::create_session_body(
        "S3XPROXYPLACEHOLDERKEY",
        "s3x-proxy-placeholder-secret-never-used",
        &format!("s3x-proxy-placeholder-token-{request_id}"),
        &expiration,
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::CONTENT_LENGTH, body.len())
        .header("x-amz-request-id", request_id)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(crate::body::empty()))
}

/// Request ids: unique in the process, unpredictable enough to not collide across restarts.
pub struct RequestIds {
    seed: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestIds {
    /// A generator seeded from the clock and the process id.
    pub fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            seed,
            next: AtomicU64::new(0),
        }
    }

    /// The next id: 16 hex digits, like S3's.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mixed =
            (self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        format!("{mixed:016X}")
    }
}
