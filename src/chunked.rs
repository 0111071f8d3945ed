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

use crate::body::{BoxError, ProxyBody};
use crate::error::RequestError;

/// Longest chunk header or trailer line accepted, CRLF included.
const MAX_LINE: usize = 4096;
/// Largest chunk size accepted (and at most 16 hex digits).
const MAX_CHUNK_SIZE: u64 = 1 << 40;
/// Most trailer lines accepted after the final chunk.
const MAX_TRAILER_LINES: usize = 64;
const DECODED_LENGTH: &str = "x-amz-decoded-content-length";
const TRAILER: &str = "x-amz-trailer";
const SDK_CHECKSUM_ALGORITHM: &str = "x-amz-sdk-checksum-algorithm";

/// Why an aws-chunked body could not be decoded; surfaces as the decoded body's error.
#[derive(Debug, thiserror::Error)]
#[error("malformed aws-chunked body: {0}")]
pub struct MalformedChunks(String);

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
) -> Result<ProxyBody, RequestError> {
    let headers = &mut parts.headers;
    let declared = headers
        .get(DECODED_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(RequestError::BadChunkedBody)?;
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
fn strip_aws_chunked(headers: &mut HeaderMap) -> Result<(), RequestError> {
    let mut kept = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = value.to_str().map_err(|_| RequestError::BadChunkedBody)?;
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
        let value =
            HeaderValue::from_str(&kept.join(",")).map_err(|_| RequestError::BadChunkedBody)?;
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
mod tests {
    use super::*;

    const SIG: &str = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";

    /// A test body yielding `data` in frames whose lengths come from `split`.
    struct Feed<F>(Bytes, F);

    impl<F: FnMut() -> usize + Unpin> Body for Feed<F> {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            let this = &mut *self;
            let n = (this.1)().min(this.0.len());
            let frame = (!this.0.is_empty()).then(|| this.0.split_to(n.max(1)));
            Poll::Ready(frame.map(|b| Ok(Frame::data(b))))
        }
    }

    fn decoder(
        encoded: &[u8],
        declared: u64,
        split: impl FnMut() -> usize + Send + Unpin + 'static,
    ) -> Decoder {
        let feed = Feed(Bytes::copy_from_slice(encoded), split);
        Decoder::new(feed.boxed_unsync(), declared)
    }

    async fn decode(
        encoded: &[u8],
        declared: u64,
        split: impl FnMut() -> usize + Send + Unpin + 'static,
    ) -> Result<Bytes, BoxError> {
        Ok(decoder(encoded, declared, split)
            .collect()
            .await?
            .to_bytes())
    }

    /// Frames `data` in chunks of `size`, with `ext` after each size and `tail` after the last.
    fn encode(data: &[u8], size: usize, ext: &str, tail: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in data.chunks(size).chain([&[][..]]) {
            out.extend_from_slice(format!("{:x}{ext}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            if !chunk.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(tail.as_bytes());
        out
    }

    fn xorshift(mut s: u64, max: u64) -> impl FnMut() -> usize {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % max) as usize + 1
        }
    }

    /// The docs example: 65536 + 1024 bytes of 'a', chunk sizes 10000, 400, 0 (hex).
    fn docs_example() -> (Vec<u8>, Vec<u8>) {
        let data = vec![b'a'; 66560];
        let encoded = encode(&data, 65536, &format!(";chunk-signature={SIG}"), "\r\n");
        assert!(encoded.starts_with(format!("10000;chunk-signature={SIG}\r\naaa").as_bytes()));
        let second = format!("\r\n400;chunk-signature={SIG}\r\n");
        assert!(encoded
            .windows(second.len())
            .any(|w| w == second.as_bytes()));
        assert!(encoded.ends_with(format!("a\r\n0;chunk-signature={SIG}\r\n\r\n").as_bytes()));
        (data, encoded)
    }

    #[tokio::test]
    async fn decodes_docs_example_at_any_split() {
        let (data, encoded) = docs_example();
        assert_eq!(decode(&encoded, 66560, || usize::MAX).await.unwrap(), data);
        assert_eq!(decode(&encoded, 66560, || 1).await.unwrap(), data);
        for seed in 1..20u64 {
            let split = xorshift(
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                [3, 100, 5000, 70000][seed as usize % 4],
            );
            assert_eq!(
                decode(&encoded, 66560, split).await.unwrap(),
                data,
                "seed {seed}"
            );
        }
    }

    #[tokio::test]
    async fn decodes_trailer_and_unsigned_variants() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let tail =
            format!("x-amz-checksum-crc32:sOO8/Q==\r\nx-amz-trailer-signature:{SIG}\r\n\r\n");
        let trailer = encode(&data, 4096, &format!(";chunk-signature={SIG}"), &tail);
        let unsigned = encode(&data, 3000, "", "\r\n");
        let other_ext = encode(&data, 999, ";foo=bar;chunk-signature=00 ", "\r\n");
        for encoded in [trailer, unsigned, other_ext] {
            assert_eq!(decode(&encoded, 10_000, || 1).await.unwrap(), data);
            assert_eq!(
                decode(&encoded, 10_000, xorshift(7, 300)).await.unwrap(),
                data
            );
        }
    }

    async fn decode_err(encoded: &[u8], declared: u64) -> String {
        for split in [usize::MAX, 1] {
            let mut body = decoder(encoded, declared, move || split);
            let mut error = None;
            while let Some(frame) = body.frame().await {
                assert!(error.is_none(), "frames after the error");
                error = frame.err();
            }
            let error = error.expect("an error").to_string();
            assert!(error.starts_with("malformed aws-chunked body: "), "{error}");
            if split == 1 {
                return error;
            }
        }
        unreachable!()
    }

    #[tokio::test]
    async fn rejects_malformed_framing() {
        let sig = ";chunk-signature=00";
        let good = String::from_utf8(encode(b"hello world", 5, sig, "\r\n")).unwrap();
        let (n, long) = (good.len(), "x".repeat(5000));
        let cases = [
            (format!("zz{sig}\r\nhello\r\n0{sig}\r\n\r\n"), 5, "not hex"),
            (
                format!("{sig}\r\nhello\r\n0{sig}\r\n\r\n"),
                5,
                "bad chunk size",
            ),
            (format!("5{sig}\r\nhelloX\r\n0{sig}\r\n\r\n"), 5, "CRLF"),
            (format!("5{sig}\nhello\r\n0{sig}\r\n\r\n"), 5, "CRLF"),
            (good[..n - 2].to_string(), 11, "ended before"),
            (good[..20].to_string(), 11, "ended before"),
            (good.clone(), 12, "decoded 11 bytes"),
            (good.clone(), 10, "exceed the declared"),
            (format!("{good}x"), 11, "after the final chunk"),
            (format!("0{sig}\r\nnocolon\r\n\r\n"), 0, "trailer"),
            (format!("5;{long}\r\nhello\r\n0\r\n\r\n"), 5, "over 4096"),
            ("7".repeat(4097), 5, "over 4096"),
            (format!("10000000001{sig}\r\n"), u64::MAX, "too large"),
            (
                format!("00000000000000005{sig}\r\nhello\r\n"),
                5,
                "bad chunk size",
            ),
        ];
        for (encoded, declared, want) in cases {
            let error = decode_err(encoded.as_bytes(), declared).await;
            assert!(error.contains(want), "{error} (wanted {want})");
        }
    }

    #[tokio::test]
    async fn truncated_body_fails_only_at_end_of_stream() {
        let data = vec![b'z'; 3000];
        let encoded = encode(&data, 2000, "", "\r\n");
        let mut body = decoder(&encoded[..2500], 3000, || 100);
        let mut got = 0;
        let error = loop {
            match body.frame().await.expect("no end before the error") {
                Ok(frame) => got += frame.into_data().unwrap().len(),
                Err(e) => break e,
            }
        };
        assert_eq!(got, 2500 - 6 - 4 - 2); // headers "7d0\r\n" twice and the CRLF after chunk 1
        assert!(error.to_string().contains("ended before"));
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn streams_large_body_in_bounded_memory() {
        let data: Bytes = (0..64 << 20)
            .map(|i: u32| (i >> 9) as u8)
            .collect::<Vec<u8>>()
            .into();
        let encoded = encode(&data, 1 << 20, &format!(";chunk-signature={SIG}"), "\r\n");
        let mut body = decoder(&encoded, data.len() as u64, || 16 << 10);
        let mut at = 0;
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(chunk.len() <= 16 << 10 && body.buffered() <= (16 << 10) + MAX_LINE);
            assert_eq!(chunk, data.slice(at..at + chunk.len()));
            at += chunk.len();
        }
        assert_eq!(at, data.len());
    }

    fn head(headers: &[(&str, &str)]) -> http::request::Parts {
        let mut request = http::Request::put("/key");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn rewrites_the_head() {
        let empty = || {
            http_body_util::Empty::new()
                .map_err(|e| match e {})
                .boxed_unsync()
        };
        let mut parts = head(&[
            ("content-encoding", "aws-chunked"),
            ("content-length", "66824"),
            (DECODED_LENGTH, "66560"),
            (TRAILER, "x-amz-checksum-crc32"),
            (SDK_CHECKSUM_ALGORITHM, "CRC32"),
        ]);
        decode_signed_chunks(&mut parts, empty()).unwrap();
        let h = &parts.headers;
        assert_eq!(h[CONTENT_LENGTH], "66560");
        for gone in [
            CONTENT_ENCODING.as_str(),
            DECODED_LENGTH,
            TRAILER,
            SDK_CHECKSUM_ALGORITHM,
        ] {
            assert!(!h.contains_key(gone), "{gone}");
        }

        let mut parts = head(&[
            ("content-encoding", "aws-chunked,gzip"),
            ("content-encoding", "AWS-Chunked, br"),
            (DECODED_LENGTH, "0"),
            (SDK_CHECKSUM_ALGORITHM, "CRC32"),
        ]);
        decode_signed_chunks(&mut parts, empty()).unwrap();
        assert_eq!(parts.headers[CONTENT_ENCODING], "gzip,br");
        assert_eq!(parts.headers[CONTENT_LENGTH], "0");
        assert_eq!(parts.headers[SDK_CHECKSUM_ALGORITHM], "CRC32");

        for bad in [None, Some("x"), Some("-1"), Some("")] {
            let mut headers = vec![("content-encoding", "aws-chunked")];
            headers.extend(bad.map(|v| (DECODED_LENGTH, v)));
            let result = decode_signed_chunks(&mut head(&headers), empty());
            assert!(
                matches!(result, Err(RequestError::BadChunkedBody)),
                "{bad:?}"
            );
        }
    }
}
