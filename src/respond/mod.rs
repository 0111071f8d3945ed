//! Respond: finish every response (relayed or the proxy's own): strip hop-by-hop headers,
//! record metrics, count the body, and let the access line be written when the body is done.

pub(crate) mod record;

use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::{DateTime, Format};
use http::{header, Response, StatusCode};

use crate::body::{full, Counted, ProxyBody};
use crate::metrics::Metrics;
use crate::respond::record::RequestRecord;
use crate::xml;

/// Finishes a response: records the request metrics, and attaches the record to the body so
/// the access line is written once the body is done.
pub fn finish(
    response: Response<ProxyBody>,
    mut record: RequestRecord,
    metrics: &Metrics,
) -> Response<ProxyBody> {
    record.status = response.status().as_u16();
    metrics.record_request(record.operation, record.status, record.bucket.as_deref());
    if !record.bridges.is_empty() {
        metrics.record_bridges(record.bridges);
    }
    metrics
        .request_duration
        .with_label_values(&[record.operation])
        .observe(record.started.elapsed().as_secs_f64());
    let counter = metrics.bytes_download.clone();
    let cuts = metrics.incomplete_download.clone();
    let tally = record.down.clone();
    let status = response.status();
    let body_due = record.method != http::Method::HEAD
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED;
    // The record rides with the body: its access line is written when the body is dropped,
    // after the body has said whether it was cut short.
    response.map(|body| {
        let counted =
            Counted::new(body, counter, cuts, tally, body_due, record).flush_before_failing();
        http_body_util::BodyExt::boxed_unsync(counted)
    })
}

/// The client's own CreateSession, answered with placeholder credentials (never real ones):
/// the proxy strips whatever the client later signs with them. SSE settings the client asked
/// for are answered as S3 answers them (the proxy's own CreateSession carries them, from the
/// client's data requests).
pub fn local_create_session(request_id: &str, request: &http::HeaderMap) -> Response<ProxyBody> {
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
    create_session_answer(request_id, request, body)
}

/// GetBucketLocation on a directory bucket, which S3 Express does not serve: the zone's region.
pub fn bucket_location(request_id: &str, region: &str) -> Response<ProxyBody> {
    let body = xml::location_body(region);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::CONTENT_LENGTH, body.len())
        .header("x-amz-request-id", request_id)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(crate::body::empty()))
}

/// A CreateSession answer with `body` (a `CreateSessionResult`), echoing the SSE settings the
/// request asked for.
pub fn create_session_answer(
    request_id: &str,
    request: &http::HeaderMap,
    body: String,
) -> Response<ProxyBody> {
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::CONTENT_LENGTH, body.len())
        .header("x-amz-request-id", request_id)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(crate::body::empty()));
    for name in crate::session::create_session::SSE_HEADERS {
        if let Some(value) = request.get(*name) {
            response.headers_mut().insert(*name, value.clone());
        }
    }
    response
}

/// Builds an S3-style XML error response (no body for HEAD, as S3 does), with `details`:
/// elements S3 writes after `<Message>` for some errors (`<HeadersNotSigned>`, the SHA-256s of
/// `XAmzContentSHA256Mismatch`).
pub fn error_response_with(
    status: StatusCode,
    (code, message): (&str, &str),
    details: &[(&str, String)],
    request_id: &str,
    head_only: bool,
) -> Response<ProxyBody> {
    let body = xml::error_body_with(code, message, details, request_id);
    let builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml")
        .header("x-amz-request-id", request_id)
        .header(header::CONTENT_LENGTH, body.len());
    let body = if head_only {
        crate::body::empty()
    } else {
        full(body)
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(crate::body::empty()))
}
