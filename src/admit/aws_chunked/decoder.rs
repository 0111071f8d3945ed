//! The streaming decoder of a client's aws-chunked body (see `aws_chunked`), which also checks
//! the client's chunk signatures when its SigV4 signature was verified (`--access-file`).
//!
//! With signatures to check, each chunk's data is hashed as it passes and the chunk's
//! signature is checked as its last byte arrives, before that byte is passed on; the final
//! empty chunk's signature, and the trailer's for the trailer variant, are checked as their
//! lines arrive. The last data of the body is held back until the client's body has ended
//! with its framing complete and every signature right, so the upstream request, whose
//! length is the decoded length, cannot end before then: a tampered chunk, a forged signature
//! or a changed trailer makes it fail unfinished, and S3 stores nothing.

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use super::{malformed, MalformedChunks, MAX_CHUNK_SIZE, MAX_LINE, MAX_TRAILER_LINES};
use crate::admit::identity::{AuthError, ChunkSignatures, SIGNATURE_LEN};
use crate::body::hooked::{Given, Hook, Hooked, Polled, Step};
use crate::body::{BoxError, ProxyBody};
use crate::sign::checksum::Algorithm;

/// The most trailer bytes kept for a trailer signature's check.
const MAX_SIGNED_TRAILER: usize = 8192;
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Why decoding stopped: the framing, or a signature.
#[derive(Debug)]
pub(super) enum DecodeError {
    Malformed(MalformedChunks),
    Signature(AuthError),
}

impl From<MalformedChunks> for DecodeError {
    fn from(e: MalformedChunks) -> Self {
        DecodeError::Malformed(e)
    }
}

impl From<AuthError> for DecodeError {
    fn from(e: AuthError) -> Self {
        DecodeError::Signature(e)
    }
}

impl From<DecodeError> for BoxError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Malformed(e) => e.into(),
            DecodeError::Signature(e) => e.into(),
        }
    }
}

fn unsigned(why: &'static str) -> DecodeError {
    DecodeError::Signature(AuthError::SignatureDoesNotMatch(why))
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

/// The signature checks of one body: the running chain, the current chunk's signature, the
/// trailer lines seen so far.
struct Signatures {
    chain: Box<ChunkSignatures>,
    presented: Option<[u8; SIGNATURE_LEN]>,
    trailer: Vec<(String, String)>,
    trailer_bytes: usize,
    trailer_signed: bool,
}

/// Streams the data of an aws-chunked body. Holds at most one inbound frame plus one partial
/// header line (and, when it checks signatures, the last data slice until the end and the
/// trailer lines); data is emitted as zero-copy slices of the inbound frames as it arrives.
pub(super) type Decoder = Hooked<ProxyBody, Decoding>;

/// The state of a [`Decoder`].
pub(super) struct Decoding {
    state: State,
    /// The unconsumed rest of the latest inbound data frame.
    input: Bytes,
    /// A header or trailer line read so far (bounded by `MAX_LINE`).
    line: BytesMut,
    declared: u64,
    emitted: u64,
    /// The checksum trailer to keep (the one `x-amz-trailer` declared), and its value once read.
    keep: Option<Algorithm>,
    pub(super) kept: Option<String>,
    /// The client's chunk signatures, when they are checked.
    signatures: Option<Signatures>,
    /// The body's last data, held until the body has ended well.
    held: Option<Bytes>,
}

impl Decoder {
    pub(super) fn new(inner: ProxyBody, declared: u64) -> Self {
        let decoding = Decoding {
            state: State::Header,
            input: Bytes::new(),
            line: BytesMut::new(),
            declared,
            emitted: 0,
            keep: None,
            kept: None,
            signatures: None,
            held: None,
        };
        Hooked::wrap(inner, decoding)
    }

    /// Keeps the value of the trailer `algorithm` names (other trailer lines, such as the
    /// client's `x-amz-trailer-signature`, are dropped); the body fails without it.
    pub(super) fn keeping(mut self, algorithm: Algorithm) -> Self {
        self.hook_mut().keep = Some(algorithm);
        self
    }

    /// Checks every chunk signature (and the trailer's) against `chain`.
    pub(super) fn checking(mut self, chain: Box<ChunkSignatures>) -> Self {
        self.hook_mut().signatures = Some(Signatures {
            chain,
            presented: None,
            trailer: Vec::new(),
            trailer_bytes: 0,
            trailer_signed: false,
        });
        self
    }

    /// Bytes held inside the decoder.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        let decoding = self.hook();
        let held = decoding.held.as_ref().map_or(0, Bytes::len);
        decoding.input.len() + decoding.line.len() + held
    }
}

impl Decoding {
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
    fn step(&mut self) -> Result<Option<Bytes>, DecodeError> {
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
                    if let Some(signatures) = &mut self.signatures {
                        signatures.chain.data(&data);
                        if remaining == n {
                            let presented = signatures.presented.take();
                            let presented =
                                presented.ok_or(unsigned("a chunk without signature"))?;
                            signatures.chain.end_chunk(&presented)?;
                        }
                        if self.emitted == self.declared {
                            self.held = Some(data);
                            continue;
                        }
                    }
                    return Ok(Some(data));
                }
                State::DataEnd(seen) => {
                    if self.input[0] != b"\r\n"[seen] {
                        return Err(
                            MalformedChunks::new("chunk data is not followed by CRLF").into()
                        );
                    }
                    self.input.advance(1);
                    self.state = if seen == 0 {
                        State::DataEnd(1)
                    } else {
                        State::Header
                    };
                }
                State::End => return Err(MalformedChunks::new("data after the final chunk").into()),
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
    fn end_line(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return Err(MalformedChunks::new("a line does not end with CRLF").into());
        };
        self.state = match self.state {
            State::Header => {
                let size = parse_size(line)?;
                if let Some(signatures) = &mut self.signatures {
                    let presented = chunk_signature(line)?;
                    match size {
                        0 => signatures.chain.end_chunk(&presented)?,
                        _ => signatures.presented = Some(presented),
                    }
                }
                match size {
                    0 => State::Trailer(0),
                    size if size > self.declared - self.emitted => {
                        return Err(MalformedChunks::new(format!(
                            "chunks exceed the declared decoded length {}",
                            self.declared
                        ))
                        .into())
                    }
                    size => State::Data(size),
                }
            }
            State::Trailer(_) if line.is_empty() => {
                if let Some(signatures) = &self.signatures {
                    if signatures.chain.expects_trailer() && !signatures.trailer_signed {
                        return Err(unsigned("the trailer signature is missing"));
                    }
                }
                State::End
            }
            State::Trailer(n) if n < MAX_TRAILER_LINES && line.contains(&b':') => {
                if let Some(signatures) = &mut self.signatures {
                    signatures.trailer_line(line)?;
                }
                self.trailer_line(line)?;
                State::Trailer(n + 1)
            }
            State::Trailer(_) => {
                return Err(MalformedChunks::new("bad or too many trailer lines").into())
            }
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

    /// Decoding has stopped, with `result`: the data held back goes last if the body ended
    /// well, else the failure.
    fn close(&mut self, result: Result<(), BoxError>) -> Polled {
        self.state = State::Closed;
        self.input.clear();
        let last = self.held.take().filter(|_| result.is_ok());
        if let Some(held) = last {
            return Poll::Ready(Some(Ok(Frame::data(held))));
        }
        Poll::Ready(result.err().map(Err))
    }
}

impl Signatures {
    /// A trailer line of a body whose signatures are checked: kept for the trailer signature,
    /// or that signature itself, checked against the lines before it. Nothing may follow it.
    fn trailer_line(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        if self.trailer_signed {
            return Err(unsigned("a trailer line after the trailer signature"));
        }
        let colon = line.iter().position(|&b| b == b':').unwrap_or_default();
        let name = String::from_utf8_lossy(line[..colon].trim_ascii()).to_ascii_lowercase();
        let value = line[colon + 1..].trim_ascii();
        if name == TRAILER_SIGNATURE {
            self.chain.end_trailer(&self.trailer, value)?;
            self.trailer_signed = true;
            return Ok(());
        }
        if !self.chain.expects_trailer() {
            return Err(unsigned("a trailer on a body signed without trailer"));
        }
        self.trailer_bytes += line.len();
        if self.trailer_bytes > MAX_SIGNED_TRAILER {
            return Err(MalformedChunks::new("the trailer is too long").into());
        }
        let value = String::from_utf8_lossy(value).into_owned();
        self.trailer.push((name, value));
        Ok(())
    }
}

impl Hook<ProxyBody> for Decoding {
    fn before(&mut self, _: &mut Context<'_>) -> Step {
        if self.state == State::Closed {
            return ControlFlow::Break(Poll::Ready(None));
        }
        match self.step() {
            Ok(Some(data)) => ControlFlow::Break(Poll::Ready(Some(Ok(Frame::data(data))))),
            Ok(None) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(self.close(Err(e.into()))),
        }
    }

    fn frame(&mut self, given: Given, _: &mut ProxyBody, _: &mut Context<'_>) -> Step {
        let result = match given {
            Some(Ok(frame)) => {
                // HTTP trailers of the inner body, if any, are ignored.
                if let Ok(data) = frame.into_data() {
                    self.input = data;
                }
                return ControlFlow::Continue(());
            }
            Some(Err(e)) => Err(e),
            None => self.finish().map_err(BoxError::from),
        };
        ControlFlow::Break(self.close(result))
    }

    fn is_end_stream(&self, _: &ProxyBody) -> bool {
        self.state == State::Closed && self.held.is_none()
    }

    fn size_hint(&self, _: &ProxyBody) -> SizeHint {
        let held = self.held.as_ref().map_or(0, |h| h.len() as u64);
        match self.state {
            State::Closed => SizeHint::with_exact(held),
            _ => SizeHint::with_exact(self.declared.saturating_sub(self.emitted) + held),
        }
    }
}

/// The `chunk-signature=` extension of a chunk header line: 64 hex digits.
fn chunk_signature(line: &[u8]) -> Result<[u8; SIGNATURE_LEN], DecodeError> {
    let extension = line.splitn(2, |&b| b == b';').nth(1).unwrap_or_default();
    let value = extension.trim_ascii().strip_prefix(b"chunk-signature=");
    value
        .and_then(|v| v.try_into().ok())
        .ok_or(unsigned("a chunk without a chunk-signature"))
}

pub(super) fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Parses the hex size before any `;extension` of a chunk header line.
pub(super) fn parse_size(line: &[u8]) -> Result<u64, MalformedChunks> {
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
