//! Record: what the access log line says about one request, filled in as the request moves on
//! and written when its response body is done; and the request ids.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::body::{Counted, DrainRule, ProxyBody, Tally};
use crate::metrics::{Lookup, Metrics};
use crate::route::compat::Bridges;

/// Everything the access log line says about one request.
#[derive(Debug)]
pub struct RequestRecord {
    /// The request id (also in error bodies).
    pub request_id: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// The client's name in the access file (`--access-file`), once known.
    pub client_name: Option<String>,
    /// HTTP method.
    pub method: http::Method,
    /// S3 operation name.
    pub operation: &'static str,
    /// Bucket, if known (the `--metrics-bucket-label` value; logged only with `log_names`).
    pub bucket: Option<String>,
    /// Object key, if known and names are logged.
    pub key: Option<String>,
    /// Whether bucket and key appear in the access line (`--log-object-names`).
    pub log_names: bool,
    /// Response status.
    pub status: u16,
    /// Session cache lookup result, for session-signed requests.
    pub lookup: Option<Lookup>,
    /// The legacy-tool bridges this request used (`compat`).
    pub bridges: Bridges,
    /// Time S3 took to return the response head.
    pub upstream: Option<Duration>,
    /// When the request head arrived.
    pub started: Instant,
    /// The span the line is written in (the body may finish on another task, as h2 streams do).
    pub span: tracing::Span,
    /// The request body (client → S3).
    pub up: Arc<Tally>,
    /// The response body (S3 → client).
    pub down: Arc<Tally>,
}

impl RequestRecord {
    /// A record for a request from `client` that arrived now.
    pub fn new(request_id: String, peer: SocketAddr, method: http::Method) -> Self {
        Self {
            request_id,
            peer,
            client_name: None,
            method,
            operation: "Unknown",
            bucket: None,
            key: None,
            log_names: true,
            status: 0,
            lookup: None,
            bridges: Bridges::default(),
            upstream: None,
            started: Instant::now(),
            span: tracing::Span::current(),
            up: Arc::default(),
            down: Arc::default(),
        }
    }

    /// Wraps a request body so its bytes (and whether it was cut short) count toward the
    /// upload metrics and this record.
    /// Left unread (the proxy answered first), it is read to its end, up to a bound, so the
    /// client reads the answer (see [`DrainRule`]).
    pub fn count_upload(&self, body: ProxyBody, metrics: &Metrics, drain: DrainRule) -> ProxyBody {
        let counted = Counted::new(
            body,
            metrics.bytes_upload.clone(),
            metrics.incomplete_upload.clone(),
            self.up.clone(),
            true,
            (),
        )
        .drain_when_abandoned(drain);
        http_body_util::BodyExt::boxed_unsync(counted)
    }

    /// What was cut short: `-`, `upload`, `download` or `both`.
    fn incomplete(&self) -> &'static str {
        match (
            self.up.cut.load(Ordering::Relaxed),
            self.down.cut.load(Ordering::Relaxed),
        ) {
            (false, false) => "-",
            (true, false) => "upload",
            (false, true) => "download",
            (true, true) => "both",
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
        let (bucket, key) = match self.log_names {
            true => (self.bucket.as_deref(), self.key.as_deref()),
            false => (None, None),
        };
        tracing::info!(
            target: "s3x_proxy::access",
            request_id = %self.request_id,
            peer = %crate::logging::access_log::Peer(self.peer),
            client = self.client_name.as_deref().unwrap_or("-"),
            method = %self.method,
            operation = self.operation,
            bucket = bucket.unwrap_or("-"),
            key = key.unwrap_or("-"),
            status = self.status,
            bytes_up = self.up.bytes.load(Ordering::Relaxed),
            bytes_down = self.down.bytes.load(Ordering::Relaxed),
            incomplete = self.incomplete(),
            total_ms = millis(self.started.elapsed()),
            upstream_ms = self.upstream.map(millis),
            session = self.lookup.map(Lookup::as_str).unwrap_or("-"),
            compat = %self.bridges,
            "request"
        );
    }
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
        hex::encode_upper(self.mix(n).to_be_bytes())
    }

    fn mix(&self, n: u64) -> u64 {
        (self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_sixteen_uppercase_hex_digits_of_the_mixed_counter() {
        let ids = RequestIds::new();
        for n in 0..1000 {
            assert_eq!(ids.next(), format!("{:016X}", ids.mix(n)));
        }
        let small = RequestIds {
            seed: 0,
            next: AtomicU64::new(0),
        };
        assert_eq!(small.next(), "0000000000000000");
    }
}
