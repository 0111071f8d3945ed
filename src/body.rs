//! Bodies: the one boxed body type streamed both ways, reading small bodies, byte counting,
//! and the errors of a client's request body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use prometheus::IntCounter;

/// Any error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request the proxy sends and every response it returns.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// What was wrong with the body a client sent (its fault: 4xx).
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// The client's request body could not be read (it broke off or stalled).
    #[error("the request body could not be read: {0}")]
    Read(#[source] BoxError),
    /// The body's framing (aws-chunked) or the headers that describe it are broken.
    #[error("{0}")]
    Malformed(String),
    /// A body of unknown length that is too large to hold and cannot be split into parts.
    #[error("this request needs a Content-Length header")]
    LengthRequired,
}

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// Reads a whole body into memory, failing once it grows past `limit` bytes.
pub async fn collect_limited(mut body: ProxyBody, limit: usize) -> Result<Bytes, BoxError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > limit {
                return Err(format!("body larger than {limit} bytes").into());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Counts a body's data bytes into `counter` and `total`; `keep` lives as long as the body (the
/// access-log record rides on the response body this way, and is written when it is dropped).
pub fn counting<K: Send + 'static>(
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
