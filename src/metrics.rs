//! Metrics: every Prometheus series the proxy exports, registered on a registry it is given.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Metric names (the interface contract in DESIGN.md; the table in docs/metrics.md is checked against them).
pub mod names {
    /// Requests answered, by operation and status.
    pub const REQUESTS: &str = "s3x_proxy_requests_total";
    /// Request head in to response head out.
    pub const REQUEST_DURATION: &str = "s3x_proxy_request_duration_seconds";
    /// Time S3 took to answer with a response head.
    pub const UPSTREAM_DURATION: &str = "s3x_proxy_upstream_duration_seconds";
    /// CreateSession calls, by mode and result.
    pub const SESSIONS_CREATED: &str = "s3x_proxy_sessions_created_total";
    /// CreateSession latency.
    pub const CREATE_SESSION_DURATION: &str = "s3x_proxy_create_session_duration_seconds";
    /// Session cache lookups, by result.
    pub const CACHE_LOOKUPS: &str = "s3x_proxy_session_cache_lookups_total";
    /// Sessions in the cache.
    pub const CACHE_ENTRIES: &str = "s3x_proxy_session_cache_entries";
    /// Body bytes, by direction.
    pub const BYTES: &str = "s3x_proxy_bytes_total";
    /// Client connections open now.
    pub const CONNECTIONS_ACTIVE: &str = "s3x_proxy_connections_active";
    /// Client connections resting between requests, holding no HTTP state.
    pub const CONNECTIONS_IDLE: &str = "s3x_proxy_connections_idle";
    /// Connections to S3 open now (in use, or idle in a pool).
    pub const UPSTREAM_CONNECTIONS: &str = "s3x_proxy_upstream_connections";
    /// Requests sent to S3 again, by reason.
    pub const UPSTREAM_RETRIES: &str = "s3x_proxy_upstream_retries_total";
    /// Bodies cut short, by direction.
    pub const BODIES_INCOMPLETE: &str = "s3x_proxy_bodies_incomplete_total";
    /// Requests a legacy-tool bridge served, by kind (DESIGN §3.2).
    pub const COMPAT: &str = "s3x_proxy_compat_total";
}

/// Latency buckets, 100 µs to 30 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// `reason` label values of `s3x_proxy_upstream_retries_total`.
pub const RETRY_REASONS: &[&str] = &[
    "expired_token",
    "invalid_token",
    "connect_error",
    "iam_credentials",
    "wrong_region",
];

/// Result label values of session cache lookups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh session was cached.
    Hit,
    /// No usable session: the request waited for CreateSession.
    Miss,
    /// A cached session was used and a background refresh started.
    Refresh,
}

impl Lookup {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Hit => "hit",
            Lookup::Miss => "miss",
            Lookup::Refresh => "refresh",
        }
    }
}

/// The proxy's metrics. Cheap to clone (every field is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    /// `s3x_proxy_requests_total{operation,status[,bucket]}`.
    pub requests: IntCounterVec,
    /// `s3x_proxy_request_duration_seconds{operation}`.
    pub request_duration: HistogramVec,
    /// `s3x_proxy_upstream_duration_seconds{operation}`.
    pub upstream_duration: HistogramVec,
    /// `s3x_proxy_sessions_created_total{mode,result}`.
    pub sessions_created: IntCounterVec,
    /// `s3x_proxy_create_session_duration_seconds`.
    pub create_session_duration: Histogram,
    /// `s3x_proxy_session_cache_lookups_total{result}`.
    pub cache_lookups: IntCounterVec,
    /// `s3x_proxy_session_cache_entries`.
    pub cache_entries: IntGauge,
    /// `s3x_proxy_bytes_total{direction="upload"}`.
    pub bytes_upload: IntCounter,
    /// `s3x_proxy_bytes_total{direction="download"}`.
    pub bytes_download: IntCounter,
    /// `s3x_proxy_bodies_incomplete_total{direction="upload"}`.
    pub incomplete_upload: IntCounter,
    /// `s3x_proxy_bodies_incomplete_total{direction="download"}`.
    pub incomplete_download: IntCounter,
    /// `s3x_proxy_connections_active`.
    pub connections_active: IntGauge,
    /// `s3x_proxy_connections_idle`: open HTTP/1.1 connections resting between requests.
    pub connections_idle: IntGauge,
    /// `s3x_proxy_upstream_retries_total{reason}`.
    pub upstream_retries: IntCounterVec,
    /// `s3x_proxy_compat_total{kind}`.
    pub compat: IntCounterVec,
    /// Whether `requests` carries a `bucket` label (`--metrics-bucket-label`).
    pub bucket_label: bool,
}

impl Metrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn new(registry: &Registry, bucket_label: bool) -> prometheus::Result<Self> {
        let request_labels: &[&str] = if bucket_label {
            &["operation", "status", "bucket"]
        } else {
            &["operation", "status"]
        };
        let histogram = |name: &str, help: &str| {
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())
        };
        let bytes = IntCounterVec::new(
            Opts::new(names::BYTES, "Body bytes relayed, by direction."),
            &["direction"],
        )?;
        let incomplete = IntCounterVec::new(
            Opts::new(
                names::BODIES_INCOMPLETE,
                "Bodies cut short (failed or abandoned before their end), by direction.",
            ),
            &["direction"],
        )?;
        let metrics = Self {
            requests: IntCounterVec::new(
                Opts::new(
                    names::REQUESTS,
                    "Requests answered, by S3 operation and HTTP status.",
                ),
                request_labels,
            )?,
            request_duration: HistogramVec::new(
                histogram(
                    names::REQUEST_DURATION,
                    "Time from request head in to response head out.",
                ),
                &["operation"],
            )?,
            upstream_duration: HistogramVec::new(
                histogram(
                    names::UPSTREAM_DURATION,
                    "Time S3 took to return a response head.",
                ),
                &["operation"],
            )?,
            sessions_created: IntCounterVec::new(
                Opts::new(
                    names::SESSIONS_CREATED,
                    "CreateSession calls, by mode and result.",
                ),
                &["mode", "result"],
            )?,
            create_session_duration: Histogram::with_opts(histogram(
                names::CREATE_SESSION_DURATION,
                "Latency of CreateSession calls.",
            ))?,
            cache_lookups: IntCounterVec::new(
                Opts::new(names::CACHE_LOOKUPS, "Session cache lookups, by result."),
                &["result"],
            )?,
            cache_entries: IntGauge::new(names::CACHE_ENTRIES, "Sessions in the cache.")?,
            bytes_upload: bytes.with_label_values(&["upload"]),
            bytes_download: bytes.with_label_values(&["download"]),
            incomplete_upload: incomplete.with_label_values(&["upload"]),
            incomplete_download: incomplete.with_label_values(&["download"]),
            connections_active: IntGauge::new(
                names::CONNECTIONS_ACTIVE,
                "Client connections open now.",
            )?,
            connections_idle: IntGauge::new(
                names::CONNECTIONS_IDLE,
                "Client connections open between requests that hold no HTTP state (HTTP/1.1 \
                 connections idle for --client-rest-after give their buffers back).",
            )?,
            upstream_retries: IntCounterVec::new(
                Opts::new(
                    names::UPSTREAM_RETRIES,
                    "Requests sent to S3 again, by reason.",
                ),
                &["reason"],
            )?,
            compat: IntCounterVec::new(
                Opts::new(
                    names::COMPAT,
                    "Requests a bridge for tools that predate directory buckets served, by kind.",
                ),
                &["kind"],
            )?,
            bucket_label,
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.request_duration.clone()))?;
        registry.register(Box::new(metrics.upstream_duration.clone()))?;
        registry.register(Box::new(metrics.sessions_created.clone()))?;
        registry.register(Box::new(metrics.create_session_duration.clone()))?;
        registry.register(Box::new(metrics.cache_lookups.clone()))?;
        registry.register(Box::new(metrics.cache_entries.clone()))?;
        registry.register(Box::new(bytes))?;
        registry.register(Box::new(incomplete))?;
        registry.register(Box::new(metrics.connections_active.clone()))?;
        registry.register(Box::new(metrics.connections_idle.clone()))?;
        registry.register(Box::new(metrics.upstream_retries.clone()))?;
        registry.register(Box::new(metrics.compat.clone()))?;
        // Series that alerts and dashboards rate() exist from the start, at zero.
        for result in ["hit", "miss", "refresh"] {
            metrics.cache_lookups.with_label_values(&[result]);
        }
        for mode in ["ReadOnly", "ReadWrite"] {
            for result in ["ok", "error"] {
                metrics.sessions_created.with_label_values(&[mode, result]);
            }
        }
        for reason in RETRY_REASONS {
            metrics.upstream_retries.with_label_values(&[reason]);
        }
        for bridge in crate::route::compat::Bridge::ALL {
            metrics.compat.with_label_values(&[bridge.kind()]);
        }
        Ok(metrics)
    }

    /// Counts the bridges one request used.
    pub fn record_bridges(&self, bridges: crate::route::compat::Bridges) {
        for bridge in bridges.iter() {
            self.compat.with_label_values(&[bridge.kind()]).inc();
        }
    }

    /// Counts one answered request.
    pub fn record_request(&self, operation: &str, status: u16, bucket: Option<&str>) {
        let status = status.to_string();
        if self.bucket_label {
            let bucket = bucket.unwrap_or("");
            self.requests
                .with_label_values(&[operation, &status, bucket])
                .inc();
        } else {
            self.requests.with_label_values(&[operation, &status]).inc();
        }
    }
}

/// A new, unregistered `s3x_proxy_upstream_connections` gauge, for an upstream to count its
/// connections in.
pub fn upstream_connections_gauge() -> prometheus::Result<IntGauge> {
    IntGauge::new(
        names::UPSTREAM_CONNECTIONS,
        "Connections to S3 open now: in use, or idle in a pool.",
    )
}

/// Registers the upstream's gauge of its connections, or (for an upstream that keeps none, as
/// tests inject) one that stays at zero.
pub fn register_upstream_connections(
    registry: &Registry,
    gauge: Option<IntGauge>,
) -> prometheus::Result<IntGauge> {
    let gauge = match gauge {
        Some(gauge) => gauge,
        None => upstream_connections_gauge()?,
    };
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

/// Renders the registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if encoder.encode(&registry.gather(), &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}
