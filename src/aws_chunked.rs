//! aws-chunked request bodies: decoding the chunks a client signed, and framing a body as
//! unsigned aws-chunked with a checksum trailer.
//!
//! A client signing with `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` frames its body as
//! `hex-size;chunk-signature=<sig>\r\n<data>\r\n` ... `0;chunk-signature=<sig>\r\n`, then optional
//! trailer lines and an empty line. Its chunk signatures use the client's (fake) key, so the proxy
//! decodes the framing while streaming. Without a trailer the plain body goes as
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
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::body::{BoxError, ClientBodyError, ProxyBody};
use crate::checksum::{Algorithm, Computed, Hasher};
use crate::content_md5::{ContentMd5, Verified};
use crate::sign::Payload;

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
/// With `md5` (a bridged `Content-MD5`), the decoded payload is checked against it as it streams
/// (`content_md5::Verified`): a mismatch fails the body before its last data is framed.
///
/// Malformed framing, a decoded length other than the declared one, or a declared checksum
/// trailer that is missing or not a value of its algorithm, fails the body.
pub fn decode_signed_chunks(
    parts: &mut http::request::Parts,
    body: ProxyBody,
    add: Option<Computed>,
    md5: Option<ContentMd5>,
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
    let add = add.filter(|_| declared > 0);
    match md5 {
        Some(md5) => {
            let verified = Verified::new(decoder, md5, Some(declared));
            frame_decoded(headers, verified, declared, keep, add)
        }
        None => frame_decoded(headers, decoder, declared, keep, add),
    }
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
        frame_headers(headers, declared, algorithm, encoder.left)?;
        return Ok((Payload::StreamingUnsignedTrailer, encoder.boxed_unsync()));
    }
    if let Some(computed) = add {
        let algorithm = computed.algorithm();
        let encoder = Encoder::new(decoded, declared, algorithm, Some(Hasher::new(computed)));
        frame_headers(headers, declared, algorithm, encoder.left)?;
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
    frame_headers(headers, length, algorithm, encoder.left)?;
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

/// Where the decoder is in the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk header line `hex-size[;ext]*\r\n`.
    Header,
    /// Inside a chunk's data; this many bytes remain (never 0).
    Data(u64),
    /// Expecting the CRLF after a chunk's data; this many of its bytes were seen.
    DataEnd(usize),
    /// After the zero-size chunk: trailer lines (this many so far) until an empty line.
    Trailer(usize),
    /// The framing is complete; only the end of the inner body may follow.
    End,
    /// Finished or failed; nothing more is produced.
    Closed,
}

/// Streams the data of an aws-chunked body. Holds at most one inbound frame plus one partial
/// header line; data is emitted as zero-copy slices of the inbound frames as soon as it arrives.
struct Decoder {
    inner: ProxyBody,
    state: State,
    /// The unconsumed rest of the latest inbound data frame.
    input: Bytes,
    /// A header or trailer line read so far (bounded by `MAX_LINE`).
    line: BytesMut,
    declared: u64,
    emitted: u64,
    /// The checksum trailer to keep (the one `x-amz-trailer` declared), and its value once read.
    keep: Option<Algorithm>,
    kept: Option<String>,
}

impl Decoder {
    fn new(inner: ProxyBody, declared: u64) -> Self {
        Decoder {
            inner,
            state: State::Header,
            input: Bytes::new(),
            line: BytesMut::new(),
            declared,
            emitted: 0,
            keep: None,
            kept: None,
        }
    }

    /// Keeps the value of the trailer `algorithm` names (other trailer lines, such as the
    /// client's `x-amz-trailer-signature`, are dropped); the body fails without it.
    fn keeping(mut self, algorithm: Algorithm) -> Self {
        self.keep = Some(algorithm);
        self
    }

    /// Notes a trailer line, `name:value`, keeping the value of the declared checksum.
    fn trailer_line(&mut self, line: &[u8]) -> Result<(), MalformedChunks> {
        let Some(algorithm) = self.keep else {
            return Ok(());
        };
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return malformed("a trailer line has no colon");
        };
        let name = String::from_utf8_lossy(&line[..colon]);
        if Algorithm::from_header(&name) != Some(algorithm) {
            return Ok(());
        }
        if self.kept.is_some() {
            return malformed(format!("the trailer {} appears twice", algorithm.header()));
        }
        let value = line[colon + 1..].trim_ascii();
        if value.len() != algorithm.value_len() || !value.iter().all(|&b| is_base64(b)) {
            return malformed(format!(
                "the trailer {} is not a base64 {} value",
                algorithm.header(),
                algorithm.name()
            ));
        }
        self.kept = Some(String::from_utf8_lossy(value).into_owned());
        Ok(())
    }

    /// Consumes `input` until a data slice can be emitted (`Some`) or the input is used up.
    fn step(&mut self) -> Result<Option<Bytes>, MalformedChunks> {
        while !self.input.is_empty() {
            match self.state {
                State::Header | State::Trailer(_) => {
                    if self.fill_line()? {
                        let line = self.line.split();
                        self.end_line(&line)?;
                    }
                }
                State::Data(remaining) => {
                    let n = remaining.min(self.input.len() as u64);
                    let data = self.input.split_to(n as usize);
                    self.emitted += n;
                    self.state = match remaining - n {
                        0 => State::DataEnd(0),
                        left => State::Data(left),
                    };
                    return Ok(Some(data));
                }
                State::DataEnd(seen) => {
                    if self.input[0] != b"\r\n"[seen] {
                        return malformed("chunk data is not followed by CRLF");
                    }
                    self.input.advance(1);
                    self.state = if seen == 0 {
                        State::DataEnd(1)
                    } else {
                        State::Header
                    };
                }
                State::End => return malformed("data after the final chunk"),
                State::Closed => self.input.clear(),
            }
        }
        Ok(None)
    }

    /// Moves input up to and including the next LF into `line`; true once the line is complete.
    fn fill_line(&mut self) -> Result<bool, MalformedChunks> {
        let (take, done) = match self.input.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (self.input.len(), false),
        };
        if self.line.len() + take > MAX_LINE {
            return malformed(format!(
                "a chunk header or trailer line is over {MAX_LINE} bytes"
            ));
        }
        self.line.extend_from_slice(&self.input[..take]);
        self.input.advance(take);
        Ok(done)
    }

    /// Acts on a complete header or trailer line.
    fn end_line(&mut self, line: &[u8]) -> Result<(), MalformedChunks> {
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return malformed("a line does not end with CRLF");
        };
        self.state = match self.state {
            State::Header => match parse_size(line)? {
                0 => State::Trailer(0),
                size if size > self.declared - self.emitted => {
                    return malformed(format!(
                        "chunks exceed the declared decoded length {}",
                        self.declared
                    ))
                }
                size => State::Data(size),
            },
            State::Trailer(_) if line.is_empty() => State::End,
            State::Trailer(n) if n < MAX_TRAILER_LINES && line.contains(&b':') => {
                self.trailer_line(line)?;
                State::Trailer(n + 1)
            }
            State::Trailer(_) => return malformed("bad or too many trailer lines"),
            other => other,
        };
        Ok(())
    }

    /// The inner body ended: the framing must be complete and the length right.
    fn finish(&mut self) -> Result<(), MalformedChunks> {
        if self.state != State::End {
            return malformed("the body ended before the final chunk");
        }
        if self.emitted != self.declared {
            return malformed(format!(
                "decoded {} bytes but x-amz-decoded-content-length is {}",
                self.emitted, self.declared
            ));
        }
        match self.keep {
            Some(algorithm) if self.kept.is_none() => malformed(format!(
                "the declared trailer {} is missing",
                algorithm.header()
            )),
            _ => Ok(()),
        }
    }

    /// Bytes held inside the decoder.
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.input.len() + self.line.len()
    }
}

impl Body for Decoder {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.state == State::Closed {
                return Poll::Ready(None);
            }
            let result = match this.step() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(None) => match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        // HTTP trailers of the inner body, if any, are ignored.
                        if let Ok(data) = frame.into_data() {
                            this.input = data;
                        }
                        continue;
                    }
                    Some(Err(e)) => Err(e),
                    None => this.finish().map_err(BoxError::from),
                },
                Err(e) => Err(e.into()),
            };
            this.state = State::Closed;
            this.input.clear();
            return Poll::Ready(result.err().map(Err));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Closed
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Closed => SizeHint::with_exact(0),
            _ => SizeHint::with_exact(self.declared.saturating_sub(self.emitted)),
        }
    }
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
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
        self.kept.take()
    }
}

impl<S: Source> Source for Verified<S> {
    fn trailer(&mut self) -> Option<String> {
        self.get_mut().trailer()
    }
}

/// Frames the `length` data bytes of a body as unsigned aws-chunked in [`CHUNK`]s, ending with
/// a checksum trailer: computed here (`hasher`) or the source's own. Each chunk header is written
/// ahead of its data, which passes through as the same (zero-copy) slices, so the encoder holds
/// no more than one inbound frame plus a few header bytes.
struct Encoder<S> {
    inner: S,
    algorithm: Algorithm,
    /// Computes the trailer's value; `None`: the source's trailer is passed on.
    hasher: Option<Hasher>,
    /// Data bytes still due from `inner`.
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
        Encoder {
            inner,
            algorithm,
            hasher,
            remaining: length,
            chunk_left: 0,
            started: false,
            ready: VecDeque::new(),
            left: framed_len(length, algorithm),
            ended: false,
        }
    }

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
    fn finish(&mut self) -> Result<(), MalformedChunks> {
        if self.remaining > 0 {
            return malformed(format!(
                "the body ended {} bytes short of its declared length",
                self.remaining
            ));
        }
        let value = match &self.hasher {
            Some(hasher) => hasher.finish(),
            None => self
                .inner
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

impl<S: Source> Body for Encoder<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(bytes) = this.ready.pop_front() {
                this.left = this.left.saturating_sub(bytes.len() as u64);
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            let result = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                // HTTP trailers of the inner body, if any, are ignored.
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.push(data).map_err(BoxError::from),
                    Err(_) => Ok(()),
                },
                Some(Err(e)) => Err(e),
                None => {
                    this.ended = true;
                    this.finish().map_err(BoxError::from)
                }
            };
            if let Err(e) = result {
                this.ended = true;
                this.ready.clear();
                this.left = 0;
                return Poll::Ready(Some(Err(e)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.ready.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// Parses the hex size before any `;extension` of a chunk header line.
fn parse_size(line: &[u8]) -> Result<u64, MalformedChunks> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return malformed("bad chunk size");
    }
    let size = digits.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(acc << 4 | u64::from(digit))
    });
    match size {
        None => malformed("the chunk size is not hex"),
        Some(size) if size > MAX_CHUNK_SIZE => malformed("the chunk size is too large"),
        Some(size) => Ok(size),
    }
}

#[cfg(test)]
#[path = "aws_chunked_tests.rs"]
mod tests;
