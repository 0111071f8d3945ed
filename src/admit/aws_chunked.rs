//! aws-chunked request bodies: decoding the chunks a client signed, and framing a body as
//! unsigned aws-chunked with a checksum trailer.
//!
//! A client signing with `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` frames its body as
//! `hex-size;chunk-signature=<sig>\r\n<data>\r\n` ... `0;chunk-signature=<sig>\r\n`, then optional
//! trailer lines and an empty line. Its chunk signatures use the client's key, which S3 does not
//! know, so the proxy decodes the framing while streaming (`decoder`); with `--access-file` it
//! checks them against the client's key first. Without a trailer the plain body goes as
//! `UNSIGNED-PAYLOAD`. With a checksum trailer the body is framed again as
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (`hex-size\r\n<data>\r\n` ... `0\r\n`, the client's
//! `x-amz-checksum-*` trailer, no `x-amz-trailer-signature`), so S3 verifies the client's checksum.
//! A plain body the proxy adds a checksum to (`--checksum`) is framed the same way, with the
//! checksum it computes while streaming ([`encode_with_checksum`]).
//!
//! The proxy chooses the chunk size (64 KiB), so the framed length is known before the first byte
//! and goes upstream as `Content-Length`; a body shorter or longer than declared fails, so S3
//! never stores a truncated object.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::admit::identity::ChunkSignatures;
use crate::body::hooked::{Given, Hook, Hooked, Step};
use crate::body::{BoxError, ClientBodyError, ProxyBody};
use crate::sign::checksum::{Algorithm, Computed, Hasher};
use crate::sign::digest::{Expected, Verified};
use crate::sign::Payload;

mod decoder;

use decoder::Decoder;

/// Longest chunk header or trailer line accepted, CRLF included.
const MAX_LINE: usize = 4096;
/// Largest chunk size accepted (and at most 16 hex digits).
const MAX_CHUNK_SIZE: u64 = 1 << 40;
/// Most trailer lines accepted after the final chunk.
const MAX_TRAILER_LINES: usize = 64;
const DECODED_LENGTH: &str = "x-amz-decoded-content-length";
const TRAILER: &str = "x-amz-trailer";
const SDK_CHECKSUM_ALGORITHM: &str = "x-amz-sdk-checksum-algorithm";

/// Why an aws-chunked body could not be decoded: its head is refused at once, its framing
/// surfaces as the decoded body's error.
#[derive(Debug, thiserror::Error)]
#[error("malformed aws-chunked body: {0}")]
pub struct MalformedChunks(String);

impl From<MalformedChunks> for ClientBodyError {
    fn from(e: MalformedChunks) -> Self {
        ClientBodyError::Malformed(e.to_string())
    }
}

impl MalformedChunks {
    fn new(why: impl Into<String>) -> Self {
        MalformedChunks(why.into())
    }
}

fn malformed<T>(why: impl Into<String>) -> Result<T, MalformedChunks> {
    Err(MalformedChunks(why.into()))
}

/// Rewrites the request head for the body S3 gets, wraps the body in a streaming decoder (and
/// encoder), and says how that body is signed.
///
/// - An `x-amz-trailer` naming one checksum (`x-amz-checksum-crc32`, ...) is kept: the decoded
///   body is framed again as unsigned aws-chunked ending in the client's checksum trailer, and
///   goes as `STREAMING-UNSIGNED-PAYLOAD-TRAILER` (see [`frame_headers`] for the head).
/// - Else, with `add` (`--checksum`) and a body that is not empty, the same with the checksum the
///   proxy computes while streaming.
/// - Else the decoded body goes as `UNSIGNED-PAYLOAD`: `Content-Length` becomes
///   `x-amz-decoded-content-length` (which is removed), `aws-chunked` is removed from
///   `Content-Encoding` (other codings are kept), and `x-amz-trailer` is removed.
///
/// With `expected` digests (a bridged `Content-MD5`), the decoded payload is checked against
/// them as it streams (`digest::Verified`): a mismatch fails the body before its last data is
/// framed. With `chunks` (the client's SigV4 was verified), every chunk signature, the final
/// one's and the trailer's are checked against the client's key, and the body's last data is
/// held until they are (see `decoder`): a wrong one fails the body with
/// `AuthError::SignatureDoesNotMatch`.
///
/// Malformed framing, a decoded length other than the declared one, or a declared checksum
/// trailer that is missing or not a value of its algorithm, fails the body.
pub fn decode_signed_chunks(
    parts: &mut http::request::Parts,
    body: ProxyBody,
    add: Option<Computed>,
    expected: Expected,
    chunks: Option<Box<ChunkSignatures>>,
) -> Result<(Payload, ProxyBody), MalformedChunks> {
    let headers = &mut parts.headers;
    let declared = headers
        .get(DECODED_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            MalformedChunks("x-amz-decoded-content-length is missing or invalid".into())
        })?;
    let keep = declared_checksum(headers);
    let mut decoder = Decoder::new(body, declared);
    if let Some(algorithm) = keep {
        decoder = decoder.keeping(algorithm);
    }
    if let Some(chunks) = chunks {
        decoder = decoder.checking(chunks);
    }
    let add = add.filter(|_| declared > 0);
    if expected.is_empty() {
        return frame_decoded(headers, decoder, declared, keep, add);
    }
    let verified = Verified::new(decoder, expected, Some(declared));
    frame_decoded(headers, verified, declared, keep, add)
}

/// The decoded body as it goes upstream: framed again with the kept trailer or the added
/// checksum, else plain (see [`decode_signed_chunks`]).
fn frame_decoded<S: Source>(
    headers: &mut HeaderMap,
    decoded: S,
    declared: u64,
    keep: Option<Algorithm>,
    add: Option<Computed>,
) -> Result<(Payload, ProxyBody), MalformedChunks> {
    if let Some(algorithm) = keep {
        let encoder = Encoder::new(decoded, declared, algorithm, None);
        frame_headers(headers, declared, algorithm, encoder.hook().left)?;
        return Ok((Payload::StreamingUnsignedTrailer, encoder.boxed_unsync()));
    }
    if let Some(computed) = add {
        let algorithm = computed.algorithm();
        let encoder = Encoder::new(decoded, declared, algorithm, Some(Hasher::new(computed)));
        frame_headers(headers, declared, algorithm, encoder.hook().left)?;
        return Ok((Payload::StreamingUnsignedTrailer, encoder.boxed_unsync()));
    }
    strip_aws_chunked(headers)?;
    headers.insert(CONTENT_LENGTH, HeaderValue::from(declared));
    headers.remove(DECODED_LENGTH);
    // A trailer that is not one checksum arrives after the body, too late to become a header, so
    // it is dropped. S3 rejects `x-amz-sdk-checksum-algorithm` that has neither an
    // `x-amz-checksum-*` header nor a trailer, so that header goes too unless a checksum remains.
    if headers.remove(TRAILER).is_some()
        && !headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-"))
    {
        headers.remove(SDK_CHECKSUM_ALGORITHM);
    }
    Ok((Payload::Unsigned, decoded.boxed_unsync()))
}

/// Frames a plain body of `length` bytes as unsigned aws-chunked with the checksum the proxy
/// computes while streaming as its trailer, and rewrites the head to match ([`frame_headers`]).
/// The body is signed as `STREAMING-UNSIGNED-PAYLOAD-TRAILER`; one shorter or longer than
/// `length` fails.
pub fn encode_with_checksum(
    headers: &mut HeaderMap,
    body: ProxyBody,
    length: u64,
    computed: Computed,
) -> Result<ProxyBody, MalformedChunks> {
    let algorithm = computed.algorithm();
    let encoder = Encoder::new(body, length, algorithm, Some(Hasher::new(computed)));
    frame_headers(headers, length, algorithm, encoder.hook().left)?;
    Ok(encoder.boxed_unsync())
}

/// The checksum named by `x-amz-trailer`, when it names exactly one that S3 knows.
fn declared_checksum(headers: &HeaderMap) -> Option<Algorithm> {
    let mut names = headers
        .get_all(TRAILER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty());
    match (names.next(), names.next()) {
        (Some(name), None) => Algorithm::from_header(name),
        _ => None,
    }
}

/// The head of a body framed by the proxy: `Content-Encoding: aws-chunked` first (other codings
/// kept after it), `x-amz-decoded-content-length`, `x-amz-trailer`, and the framed length as
/// `Content-Length`.
pub fn frame_headers(
    headers: &mut HeaderMap,
    decoded: u64,
    algorithm: Algorithm,
    framed: u64,
) -> Result<(), MalformedChunks> {
    strip_aws_chunked(headers)?;
    let coding = match headers.get(CONTENT_ENCODING) {
        Some(other) => {
            let value = format!("aws-chunked,{}", other.to_str().unwrap_or_default());
            HeaderValue::from_str(&value)
                .map_err(|_| MalformedChunks("bad Content-Encoding".into()))?
        }
        None => HeaderValue::from_static("aws-chunked"),
    };
    headers.insert(CONTENT_ENCODING, coding);
    headers.insert(DECODED_LENGTH, HeaderValue::from(decoded));
    headers.insert(TRAILER, HeaderValue::from_static(algorithm.header()));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(framed));
    Ok(())
}

/// Removes `aws-chunked` from `Content-Encoding`, keeping other codings; drops an empty header.
fn strip_aws_chunked(headers: &mut HeaderMap) -> Result<(), MalformedChunks> {
    let mut kept = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = value
            .to_str()
            .map_err(|_| MalformedChunks("Content-Encoding is not ASCII".into()))?;
        kept.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
                .map(str::to_owned),
        );
    }
    headers.remove(CONTENT_ENCODING);
    if !kept.is_empty() {
        let value = HeaderValue::from_str(&kept.join(","))
            .map_err(|_| MalformedChunks("bad Content-Encoding".into()))?;
        headers.insert(CONTENT_ENCODING, value);
    }
    Ok(())
}

/// The data size of each chunk the proxy frames (the last may be shorter).
pub const CHUNK: u64 = 64 * 1024;

/// The length of `decoded` bytes framed in [`CHUNK`]s, with a trailer of `algorithm`.
pub fn framed_len(decoded: u64, algorithm: Algorithm) -> u64 {
    // `hex-size\r\n` data `\r\n`
    let chunk = |size: u64| hex_len(size) + 2 + size + 2;
    let (full, rest) = (decoded / CHUNK, decoded % CHUNK);
    let data = full * chunk(CHUNK) + if rest > 0 { chunk(rest) } else { 0 };
    // `0\r\n`, `name:value\r\n`, `\r\n`
    let trailer = algorithm.header().len() + 1 + algorithm.value_len() + 2;
    data + 3 + trailer as u64 + 2
}

fn hex_len(n: u64) -> u64 {
    u64::from((64 - n.leading_zeros()).div_ceil(4).max(1))
}

/// A body that [`Encoder`] frames: a plain body, or the decoder of a client's signed chunks,
/// which may carry the client's checksum trailer.
trait Source: Body<Data = Bytes, Error = BoxError> + Unpin + Send + 'static {
    /// The trailer value it carries, once it has ended.
    fn trailer(&mut self) -> Option<String> {
        None
    }
}

impl Source for ProxyBody {}

impl Source for Decoder {
    fn trailer(&mut self) -> Option<String> {
        self.hook_mut().kept.take()
    }
}

impl<S: Source> Source for Verified<S> {
    fn trailer(&mut self) -> Option<String> {
        self.inner_mut().trailer()
    }
}

/// Frames the `length` data bytes of a body as unsigned aws-chunked in [`CHUNK`]s, ending with
/// a checksum trailer: computed here (`hasher`) or the source's own. Each chunk header is written
/// ahead of its data, which passes through as the same (zero-copy) slices, so the encoder holds
/// no more than one inbound frame plus a few header bytes.
type Encoder<S> = Hooked<S, Framing>;

/// The state of an [`Encoder`].
struct Framing {
    algorithm: Algorithm,
    /// Computes the trailer's value; `None`: the source's trailer is passed on.
    hasher: Option<Hasher>,
    /// Data bytes still due from the source.
    remaining: u64,
    /// Data bytes still due in the chunk being written.
    chunk_left: u64,
    /// A chunk was started (its data needs a CRLF after it).
    started: bool,
    /// Framed bytes ready to go: at most a header and the slices of one inbound frame.
    ready: VecDeque<Bytes>,
    /// Framed bytes not yet produced.
    left: u64,
    /// The source has ended (or failed): only `ready` remains.
    ended: bool,
}

impl<S: Source> Encoder<S> {
    fn new(inner: S, length: u64, algorithm: Algorithm, hasher: Option<Hasher>) -> Self {
        let framing = Framing {
            algorithm,
            hasher,
            remaining: length,
            chunk_left: 0,
            started: false,
            ready: VecDeque::new(),
            left: framed_len(length, algorithm),
            ended: false,
        };
        Hooked::wrap(inner, framing)
    }
}

impl Framing {
    /// Frames one inbound data slice.
    fn push(&mut self, mut data: Bytes) -> Result<(), MalformedChunks> {
        if data.len() as u64 > self.remaining {
            return malformed("the body is longer than its declared length");
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&data);
        }
        self.remaining -= data.len() as u64;
        while !data.is_empty() {
            if self.chunk_left == 0 {
                let size = CHUNK.min(self.remaining + data.len() as u64);
                let crlf = if self.started { "\r\n" } else { "" };
                self.ready
                    .push_back(Bytes::from(format!("{crlf}{size:x}\r\n")));
                self.started = true;
                self.chunk_left = size;
            }
            let take = self.chunk_left.min(data.len() as u64);
            self.ready.push_back(data.split_to(take as usize));
            self.chunk_left -= take;
        }
        Ok(())
    }

    /// The source ended: the last chunk's CRLF, the final chunk and the trailer.
    fn finish(&mut self, source: &mut impl Source) -> Result<(), MalformedChunks> {
        if self.remaining > 0 {
            return malformed(format!(
                "the body ended {} bytes short of its declared length",
                self.remaining
            ));
        }
        let value = match &self.hasher {
            Some(hasher) => hasher.finish(),
            None => source
                .trailer()
                .ok_or_else(|| MalformedChunks("the checksum trailer is missing".into()))?,
        };
        if value.len() != self.algorithm.value_len() {
            return malformed(format!("bad {} value", self.algorithm.header()));
        }
        let crlf = if self.started { "\r\n" } else { "" };
        let name = self.algorithm.header();
        let tail = format!("{crlf}0\r\n{name}:{value}\r\n\r\n");
        self.ready.push_back(Bytes::from(tail));
        Ok(())
    }
}

impl<S: Source> Hook<S> for Framing {
    fn before(&mut self, _: &mut Context<'_>) -> Step {
        if let Some(bytes) = self.ready.pop_front() {
            self.left = self.left.saturating_sub(bytes.len() as u64);
            return ControlFlow::Break(Poll::Ready(Some(Ok(Frame::data(bytes)))));
        }
        if self.ended {
            return ControlFlow::Break(Poll::Ready(None));
        }
        ControlFlow::Continue(())
    }

    fn frame(&mut self, given: Given, source: &mut S, _: &mut Context<'_>) -> Step {
        let result = match given {
            // HTTP trailers of the inner body, if any, are ignored.
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => self.push(data).map_err(BoxError::from),
                Err(_) => Ok(()),
            },
            Some(Err(e)) => Err(e),
            None => {
                self.ended = true;
                self.finish(source).map_err(BoxError::from)
            }
        };
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.ended = true;
                self.ready.clear();
                self.left = 0;
                ControlFlow::Break(Poll::Ready(Some(Err(e))))
            }
        }
    }

    fn is_end_stream(&self, _: &S) -> bool {
        self.ended && self.ready.is_empty()
    }

    fn size_hint(&self, _: &S) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
#[path = "aws_chunked_tests.rs"]
mod tests;
