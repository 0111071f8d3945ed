//! Content-MD5 on directory buckets: S3 Express refuses the header (`501 NotImplemented`), which
//! older tools send on every upload, so the proxy removes it, checks the MD5 itself as the body
//! streams, and sends a checksum S3 Express accepts instead (DESIGN §3.2).
//!
//! - [`bridge`] decides, for a request to a Zonal endpoint, what the body must hash to and which
//!   checksum goes upstream in place of the header (CRC-32, or `--checksum`'s algorithm; for
//!   DeleteObjects, which S3 wants a checksum on, always CRC-32).
//! - The MD5 is checked by the body `digest` verifies (`digest::Verified`, shared with a signed
//!   `x-amz-content-sha256`): when a streamed body's last bytes arrive, it finishes the MD5 before
//!   it passes them on, and fails instead if the digest differs, so the upstream request dies
//!   unfinished and S3 stores nothing. A body kept in memory is checked before anything is sent.
//!
//! Only requests that carry `Content-MD5` (or DeleteObjects) reach this module.

use http::header::{HeaderMap, HeaderName};
use http::request::Parts;
use http::Method;

use crate::route::compat::{Bridge, Bridges};
use crate::route::operation::Operation;
use crate::route::Route;
use crate::sign::checksum::{self, Computed};
use crate::sign::Payload;

pub use crate::sign::digest::{ContentMd5, DigestError, Verified};

/// The header this module bridges.
pub const CONTENT_MD5: HeaderName = HeaderName::from_static("content-md5");

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

#[cfg(test)]
#[path = "content_md5_tests.rs"]
mod tests;
