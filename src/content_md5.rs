//! Content-MD5 on directory buckets: S3 Express refuses the header (`501 NotImplemented`), which
//! older tools send on every upload, so the proxy removes it, checks the MD5 itself as the body
//! streams, and sends a checksum S3 Express accepts instead (DESIGN §3.2).
//!
//! - [`bridge`] decides, for a request to a Zonal endpoint, what the body must hash to and which
//!   checksum goes upstream in place of the header (CRC-32, or `--checksum`'s algorithm; for
//!   DeleteObjects, which S3 wants a checksum on, always CRC-32).
//! - [`Verified`] checks a streamed body: when its last bytes arrive, it finishes the MD5 before
//!   it passes them on, and fails instead if the digest differs, so the upstream request dies
//!   unfinished and S3 stores nothing. A body kept in memory is checked with [`ContentMd5::check`]
//!   before anything is sent.
//!
//! Only requests that carry `Content-MD5` (or DeleteObjects) reach this module.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName};
use http::request::Parts;
use http::Method;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use md5::{Digest, Md5};

use crate::body::{BoxError, ProxyBody};
use crate::checksum::{self, Computed};
use crate::compat::{Bridge, Bridges};
use crate::operation::Operation;
use crate::route::Route;
use crate::sign::Payload;

/// The header this module bridges.
pub const CONTENT_MD5: HeaderName = HeaderName::from_static("content-md5");

/// What is wrong with a `Content-MD5` or the body it describes (the client's fault: 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// The header is not the base64 of 16 bytes (S3's `InvalidDigest`).
    #[error("Content-MD5 is not the base64 of an MD5 digest")]
    Invalid,
    /// The body does not hash to the header's digest (S3's `BadDigest`).
    #[error("the body's MD5 is {calculated}, Content-MD5 said {expected}")]
    Mismatch {
        /// The digest the client sent, base64.
        expected: String,
        /// The digest of what arrived, base64.
        calculated: String,
    },
}

/// A parsed `Content-MD5`: the digest the body must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentMd5([u8; 16]);

impl ContentMd5 {
    /// Parses a header value: the (padded) base64 of 16 bytes, blanks around it allowed.
    pub fn parse(value: &[u8]) -> Result<Self, DigestError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim_ascii())
            .map_err(|_| DigestError::Invalid)?;
        decoded
            .try_into()
            .map(ContentMd5)
            .map_err(|_| DigestError::Invalid)
    }

    /// Checks a whole body held in memory.
    pub fn check(&self, body: &[u8]) -> Result<(), DigestError> {
        self.matches(Md5::new_with_prefix(body))
    }

    fn matches(&self, hasher: Md5) -> Result<(), DigestError> {
        let calculated: [u8; 16] = hasher.finalize().into();
        if calculated == self.0 {
            return Ok(());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        Err(DigestError::Mismatch {
            expected: b64.encode(self.0),
            calculated: b64.encode(calculated),
        })
    }
}

/// What the bridge does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bridged {
    /// The digest the body must have (the header is gone from the request).
    pub md5: Option<ContentMd5>,
    /// The checksum the proxy adds in its place (see `checksum::to_add` for where it goes).
    pub add: Option<Computed>,
}

/// The bridge for one request, noted in `bridges` when used: [`bridge`] on a request to a Zonal
/// endpoint that [`applies`] to; `None` for every other request, untouched.
pub fn for_request(
    route: &Route,
    parts: &mut Parts,
    payload: Payload,
    flag: Option<Computed>,
    bridges: &mut Bridges,
) -> Result<Option<Bridged>, DigestError> {
    if !applies(route.endpoint.is_zonal(), route.operation, &parts.headers) {
        return Ok(None);
    }
    let bridged = bridge(
        &parts.method,
        route.operation,
        &mut parts.headers,
        payload,
        flag,
    )?;
    if bridged.is_some() {
        bridges.add(Bridge::ContentMd5);
    }
    Ok(bridged)
}

/// `body`, checked against `md5` as it streams when there is one ([`Verified`]).
pub fn verify(body: ProxyBody, md5: Option<ContentMd5>, length: Option<u64>) -> ProxyBody {
    match md5 {
        Some(md5) => Verified::new(body, md5, length).boxed_unsync(),
        None => body,
    }
}

/// Whether a request to this endpoint may need the bridge: a cheap test, so that the common
/// request pays one header lookup.
pub fn applies(zonal: bool, operation: Operation, headers: &HeaderMap) -> bool {
    zonal && (operation == Operation::DeleteObjects || headers.contains_key(CONTENT_MD5))
}

/// Removes `Content-MD5` from a request to a Zonal endpoint (where [`applies`] said so) and says
/// what the body must hash to, and which checksum to send instead:
/// - PutObject: `flag` (`--checksum`), else CRC-32, unless the request carries a checksum of its
///   own or is an append (the rules of `checksum::to_add`);
/// - DeleteObjects without an `x-amz-checksum-*` of its own: CRC-32, with or without MD5;
/// - UploadPart: none. S3 refuses a part with a checksum when its CreateMultipartUpload named no
///   algorithm, as the clients that send `Content-MD5` create theirs; the proxy's MD5 check and
///   TLS cover the part.
///
/// Only PUT and POST carry a body to check; on other methods the header is just removed.
/// `None`: nothing to bridge (a DeleteObjects that brings its own checksum).
pub fn bridge(
    method: &Method,
    operation: Operation,
    headers: &mut HeaderMap,
    payload: Payload,
    flag: Option<Computed>,
) -> Result<Option<Bridged>, DigestError> {
    let carries_body = matches!(*method, Method::PUT | Method::POST);
    let md5 = match take(headers) {
        Ok(md5) => md5.filter(|_| carries_body),
        Err(e) if carries_body => return Err(e),
        Err(_) => None,
    };
    let add = match operation {
        Operation::DeleteObjects => (!has_checksum(headers)).then_some(Computed::Crc32),
        _ if md5.is_some() => checksum::to_add(
            Some(flag.unwrap_or(Computed::Crc32)),
            operation,
            headers,
            payload,
        ),
        _ => None,
    };
    if md5.is_none() && add.is_none() {
        return Ok(None);
    }
    Ok(Some(Bridged { md5, add }))
}

/// Removes every `Content-MD5` and parses it; two of them are as bad as a malformed one.
fn take(headers: &mut HeaderMap) -> Result<Option<ContentMd5>, DigestError> {
    let mut values = match headers.entry(CONTENT_MD5) {
        http::header::Entry::Occupied(entry) => entry.remove_entry_mult().1,
        http::header::Entry::Vacant(_) => return Ok(None),
    };
    let first = values.next().ok_or(DigestError::Invalid)?;
    if values.next().is_some() {
        return Err(DigestError::Invalid);
    }
    ContentMd5::parse(first.as_bytes()).map(Some)
}

/// A checksum header, or the SDK's promise of one, is present.
fn has_checksum(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-amz-checksum-")
            || name == "x-amz-sdk-checksum-algorithm"
            || name == "x-amz-trailer"
    })
}

/// A body whose MD5 is checked as it streams (see the module doc). With `length`, the check
/// happens as the frame that completes it arrives, before that frame is passed on; without,
/// when the body ends (or says it has ended). On a mismatch it fails with
/// [`DigestError::Mismatch`] in place of the frame or the end, and yields nothing after.
pub struct Verified<B> {
    inner: B,
    expected: ContentMd5,
    /// The running MD5; `None` once checked.
    hasher: Option<Md5>,
    /// Data bytes still due, when the length is known.
    remaining: Option<u64>,
    failed: bool,
}

impl<B> Verified<B> {
    /// Checks `inner` against `expected`; `length` is its data length when known.
    pub fn new(inner: B, expected: ContentMd5, length: Option<u64>) -> Self {
        Self {
            inner,
            expected,
            hasher: Some(Md5::new()),
            remaining: length,
            failed: false,
        }
    }

    /// The body inside.
    pub fn get_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Finishes the MD5 (once) and compares it.
    fn finish(&mut self) -> Result<(), BoxError> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        self.expected.matches(hasher).map_err(|e| {
            self.failed = true;
            BoxError::from(e)
        })
    }
}

impl<B> Body for Verified<B>
where
    B: Body<Data = Bytes, Error = BoxError> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            None => return Poll::Ready(this.finish().err().map(Err)),
            error => return Poll::Ready(error),
        };
        if let (Some(data), Some(hasher)) = (frame.data_ref(), this.hasher.as_mut()) {
            hasher.update(data);
            let last = match this.remaining.as_mut() {
                Some(remaining) => {
                    *remaining = remaining.saturating_sub(data.len() as u64);
                    *remaining == 0
                }
                None => false,
            };
            if last || this.inner.is_end_stream() {
                if let Err(e) = this.finish() {
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        // Not before the check: an empty body must still be polled to be checked.
        self.failed || (self.hasher.is_none() && self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "content_md5_tests.rs"]
mod tests;
