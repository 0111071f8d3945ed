//! The aws-chunked decoder (`decode_signed_chunks`) on any request head and any body, split
//! into any frames: it never panics, never emits more than the declared length, and succeeds
//! exactly when an independent whole-buffer reading of the framing does, with the same bytes.
//!
//! Input (text lines, then the raw body):
//! ```text
//! x-amz-decoded-content-length value ("-": no such header)
//! Content-Encoding value ("-": none)
//! options: frame sizes in decimal, and letters: t = x-amz-trailer header (one S3 has no
//!          checksum for, so the decoded body goes as UNSIGNED-PAYLOAD; a checksum trailer that
//!          is kept and framed again is covered by `aws_chunked_tests.rs`), T = an HTTP
//!          trailers frame after the first data frame, E = the body fails at its end,
//!          p = the body is Pending before each frame
//! BODY...
//! ```
#![no_main]

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use s3x_proxy::admit::aws_chunked::decode_signed_chunks;
use s3x_proxy::body::BoxError;
use s3x_proxy::sign::digest::Expected;

const MAX_LINE: usize = 4096;
const MAX_CHUNK_SIZE: u64 = 1 << 40;
const MAX_TRAILER_LINES: usize = 64;

/// The client's body: these frames, maybe Pending before each, maybe failing at the end.
struct Feed {
    frames: VecDeque<Frame<Bytes>>,
    pending: bool,
    parked: bool,
    fail_at_end: bool,
}

impl Body for Feed {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.pending && !this.parked {
            this.parked = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.parked = false;
        match this.frames.pop_front() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None if this.fail_at_end => {
                this.fail_at_end = false;
                Poll::Ready(Some(Err("the client went away".into())))
            }
            None => Poll::Ready(None),
        }
    }
}

/// The declared length as the decoder must read it.
fn declared_length(value: Option<&HeaderValue>) -> Option<u64> {
    let s = value?.to_str().ok()?.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One line up to LF, which must end in CRLF and be at most `MAX_LINE` bytes with it.
fn take_line(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let lf = rest.iter().position(|&b| b == b'\n')?;
    if lf + 1 > MAX_LINE {
        return None;
    }
    let line = rest[..=lf].strip_suffix(b"\r\n")?;
    Some((line, &rest[lf + 1..]))
}

fn chunk_size(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = std::str::from_utf8(line[..end].trim_ascii()).ok()?;
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16)
        .ok()
        .filter(|&n| n <= MAX_CHUNK_SIZE)
}

/// The whole body decoded at once, or `None` when its framing or length is wrong.
fn reference(body: &[u8], declared: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let (line, after) = take_line(rest)?;
        let size = chunk_size(line)?;
        rest = after;
        if size == 0 {
            break;
        }
        if size > declared - out.len() as u64 || (rest.len() as u64) < size + 2 {
            return None;
        }
        let (data, after) = rest.split_at(size as usize);
        out.extend_from_slice(data);
        rest = after.strip_prefix(b"\r\n")?;
    }
    let mut trailers = 0;
    loop {
        let (line, after) = take_line(rest)?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if trailers >= MAX_TRAILER_LINES || !line.contains(&b':') {
            return None;
        }
        trailers += 1;
    }
    (rest.is_empty() && out.len() as u64 == declared).then_some(out)
}

fn header(value: &[u8]) -> Result<Option<HeaderValue>, ()> {
    match value {
        b"-" => Ok(None),
        v => HeaderValue::from_bytes(v).map(Some).map_err(|_| ()),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(4, |&b| b == b'\n');
    let (Some(length), Some(encoding), Some(options)) = (lines.next(), lines.next(), lines.next())
    else {
        return;
    };
    let body = lines.next().unwrap_or_default();
    let (Ok(length), Ok(encoding)) = (header(length), header(encoding)) else {
        return;
    };
    let options = String::from_utf8_lossy(options);
    let sizes: Vec<usize> = options
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let (trailer_header, trailers_frame, fail_at_end, pending) = (
        options.contains('t'),
        options.contains('T'),
        options.contains('E'),
        options.contains('p'),
    );

    let mut request = http::Request::builder()
        .method("PUT")
        .uri("/b--usw2-az1--x-s3/key")
        .body(())
        .unwrap();
    let headers = request.headers_mut();
    if let Some(v) = length {
        headers.insert("x-amz-decoded-content-length", v);
    }
    if let Some(v) = encoding {
        headers.insert(http::header::CONTENT_ENCODING, v);
    }
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    );
    if trailer_header {
        headers.insert(
            "x-amz-trailer",
            HeaderValue::from_static("x-amz-checksum-md5"),
        );
        headers.insert(
            "x-amz-sdk-checksum-algorithm",
            HeaderValue::from_static("MD5"),
        );
    }
    let declared = declared_length(request.headers().get("x-amz-decoded-content-length"));

    let mut frames = VecDeque::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() && !sizes.is_empty() && frames.len() < 4096 {
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        frames.push_back(Frame::data(Bytes::copy_from_slice(&rest[..n])));
        rest = &rest[n..];
        if trailers_frame && frames.len() == 1 {
            frames.push_back(Frame::trailers(HeaderMap::new()));
        }
    }
    if !rest.is_empty() {
        frames.push_back(Frame::data(Bytes::copy_from_slice(rest)));
    }
    let feed = Feed {
        frames,
        pending,
        parked: false,
        fail_at_end,
    };

    let (mut parts, ()) = request.into_parts();
    let decoded = decode_signed_chunks(
        &mut parts,
        feed.boxed_unsync(),
        None,
        Expected::default(),
        None,
    );
    let (declared, mut decoded) = match (declared, decoded) {
        (Some(declared), Ok((payload, decoded))) => {
            assert_eq!(payload, s3x_proxy::sign::Payload::Unsigned);
            (declared, decoded)
        }
        (None, Ok(_)) => panic!(
            "an invalid decoded length was accepted: {:?}",
            parts.headers
        ),
        (Some(_), Err(e)) => {
            assert!(
                encoding_rejected(&parts.headers),
                "a valid head was refused: {e}"
            );
            return;
        }
        (None, Err(_)) => return,
    };
    // The head now describes the decoded body.
    let h = &parts.headers;
    assert_eq!(
        h.get(http::header::CONTENT_LENGTH),
        Some(&HeaderValue::from(declared))
    );
    assert!(h.get("x-amz-decoded-content-length").is_none());
    assert!(h.get("x-amz-trailer").is_none());
    if trailer_header {
        assert!(h.get("x-amz-sdk-checksum-algorithm").is_none());
    }
    for value in h.get_all(http::header::CONTENT_ENCODING) {
        let value = value.to_str().expect("ASCII");
        assert!(
            !value
                .split(',')
                .any(|c| c.trim().eq_ignore_ascii_case("aws-chunked")),
            "{value:?}"
        );
    }

    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut ending = None;
    for _ in 0..1_000_000 {
        let hint = decoded.size_hint();
        if !decoded.is_end_stream() {
            assert_eq!(hint.exact(), Some(declared - out.len() as u64));
        }
        match Pin::new(&mut decoded).poll_frame(&mut cx) {
            Poll::Pending => assert!(pending, "Pending from a body that never is"),
            Poll::Ready(Some(Ok(frame))) => {
                let data = frame.into_data().expect("only data frames come out");
                out.extend_from_slice(&data);
                assert!(
                    out.len() as u64 <= declared,
                    "more than the declared length"
                );
            }
            Poll::Ready(Some(Err(e))) => {
                ending = Some(Err(e.to_string()));
                break;
            }
            Poll::Ready(None) => {
                ending = Some(Ok(()));
                break;
            }
        }
    }
    let ending = ending.expect("the decoder finishes");
    // Once finished, it stays finished.
    assert!(decoded.is_end_stream());
    assert!(matches!(
        Pin::new(&mut decoded).poll_frame(&mut cx),
        Poll::Ready(None)
    ));

    let expected = reference(body, declared);
    match (&ending, &expected) {
        (Ok(()), Some(want)) => {
            assert!(!fail_at_end, "a failed body decoded as complete");
            assert_eq!(&out, want);
        }
        (Ok(()), None) => panic!("malformed framing accepted: {} bytes out", out.len()),
        (Err(e), Some(_)) => assert!(fail_at_end, "well-formed framing refused: {e}"),
        (Err(_), None) => {}
    }
});

/// A head whose Content-Encoding the decoder cannot read (not visible ASCII).
fn encoding_rejected(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .any(|v| v.to_str().is_err())
}
