//! Decodes aws-chunked request bodies whose chunks were signed by the client, into the plain body.
//!
//! A client signing with `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` frames its body as
//! `hex-size;chunk-signature=<sig>\r\n<data>\r\n` ... `0;chunk-signature=<sig>\r\n`, then optional
//! trailer lines and an empty line. Its chunk signatures use the client's (fake) key, so the proxy
//! strips the framing while streaming and sends the plain body as `UNSIGNED-PAYLOAD` instead.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::body::{BoxError, ClientBodyError, ProxyBody};

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

/// Rewrites the request head for the decoded body and wraps the body in a streaming decoder.
///
/// `Content-Length` becomes `x-amz-decoded-content-length` (which is removed), `aws-chunked` is
/// removed from `Content-Encoding` (other codings are kept), and `x-amz-trailer` is removed.
/// Malformed framing, or a decoded length other than the declared one, fails the body.
pub fn decode_signed_chunks(
    parts: &mut http::request::Parts,
    body: ProxyBody,
) -> Result<ProxyBody, MalformedChunks> {
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
    strip_aws_chunked(headers)?;
    headers.insert(CONTENT_LENGTH, HeaderValue::from(declared));
    headers.remove(DECODED_LENGTH);
    // The trailer (a client-computed checksum and its signature) arrives after the body, too late
    // to become a header, so it is dropped: S3 does not verify that checksum (TLS still protects
    // the bytes in transit). S3 rejects `x-amz-sdk-checksum-algorithm` that has neither an
    // `x-amz-checksum-*` header nor a trailer, so that header goes too unless a checksum remains.
    if headers.remove(TRAILER).is_some()
        && !headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-"))
    {
        headers.remove(SDK_CHECKSUM_ALGORITHM);
    }
    Ok(Decoder::new(body, declared).boxed_unsync())
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
        }
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
        Ok(())
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
