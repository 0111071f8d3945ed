//! A client's signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) decoded with their
//! signatures checked: the fuzzer's data is signed by aws-sigv4 as a client would (the request,
//! each chunk, the final chunk, the trailer), the framed body is then edited in transit and cut
//! into frames. Whatever the edits: a body that decodes to its end is exactly the signed data,
//! and one that fails never gave out all of it (its last data is held until every signature is
//! checked). The unedited body always decodes.
//!
//! Input:
//! ```text
//! options: the chunk size, then frame sizes (decimal); letters: t = with a signed
//!          x-amz-checksum-crc32 trailer, k = keep that trailer (x-amz-trailer declares it;
//!          only with t)
//! edits:   f N (flip the byte at N), i N TEXT (insert), d N M (delete M bytes at N), ';'-separated
//! DATA...
//! ```
#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::http::Headers;
use bytes::Bytes;
use http::request::Parts;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use libfuzzer_sys::fuzz_target;
use s3x_proxy::body::BoxError;
use s3x_proxy::sign::digest::Expected;
use s3x_proxy::admit::identity::{AccessControl, AccessList, BodyCheck, SessionKey};

const SECRET: &str = "writer-secret-0123456789";
const FILE: &str = r#"
[[client]]
name = "writer"
access_key_id = "AKIDWRITER"
secret_access_key = "writer-secret-0123456789"
allow = [{ bucket = "data--usw2-az1--x-s3", access = "read-write" }]
"#;

fn time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn identity() -> Identity {
    Credentials::new("AKIDWRITER", SECRET, None, None, "fuzz").into()
}

/// The signed head of a PUT of `len` bytes, and its signature.
fn head(len: usize, trailer: bool, keep: bool) -> (Parts, String) {
    let url = "http://127.0.0.1:8080/data--usw2-az1--x-s3/key";
    let len = len.to_string();
    let mut headers = vec![
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", len.as_str()),
    ];
    if keep {
        headers.push(("x-amz-trailer", "x-amz-checksum-crc32"));
    }
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity = identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(time())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let marker = match trailer {
        true => SignableBody::StreamingSignedPayloadTrailer,
        false => SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()),
    };
    let signable = SignableRequest::new("PUT", url, headers.iter().copied(), marker).unwrap();
    let (instructions, seed) = sign(signable, &params).unwrap().into_parts();
    let mut builder = http::Request::builder().method("PUT").uri(url);
    for (name, value) in &headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    let (mut parts, ()) = request.into_parts();
    parts
        .headers
        .insert("host", "127.0.0.1:8080".parse().unwrap());
    parts.uri = "/data--usw2-az1--x-s3/key".parse().unwrap();
    (parts, seed)
}

/// `data` framed in signed chunks of `size`, the final chunk, and the signed trailer if any.
fn framed(data: &[u8], size: usize, seed: &str, trailer: bool) -> Vec<u8> {
    let identity = identity();
    let params = v4::SigningParams::<()>::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(time())
        .settings(())
        .build()
        .unwrap();
    let mut out = Vec::new();
    let mut previous = seed.to_owned();
    for chunk in data.chunks(size).chain([&[][..]]) {
        let bytes = Bytes::copy_from_slice(chunk);
        previous = v4::sign_chunk(&bytes, &previous, &params)
            .unwrap()
            .into_parts()
            .1;
        out.extend_from_slice(
            format!("{:x};chunk-signature={previous}\r\n", chunk.len()).as_bytes(),
        );
        if !chunk.is_empty() {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
    }
    if trailer {
        use base64::Engine;
        let crc = crc32fast::hash(data).to_be_bytes();
        let value = base64::engine::general_purpose::STANDARD.encode(crc);
        let mut headers = Headers::new();
        headers.insert("x-amz-checksum-crc32", value.clone());
        let signature = v4::sign_trailer(&headers, &previous, &params)
            .unwrap()
            .into_parts()
            .1;
        out.extend_from_slice(format!("x-amz-checksum-crc32:{value}\r\n").as_bytes());
        out.extend_from_slice(format!("x-amz-trailer-signature:{signature}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Applies the edits; true when any was made.
fn edit(body: &mut Vec<u8>, edits: &str) -> bool {
    let mut edited = false;
    for e in edits.split(';') {
        let mut words = e.split_whitespace();
        let (Some(op), Some(at)) = (
            words.next(),
            words.next().and_then(|n| n.parse::<usize>().ok()),
        ) else {
            continue;
        };
        let at = at % (body.len() + 1);
        match op {
            "f" if at < body.len() => body[at] ^= 0x01,
            "i" => {
                let text = words.next().unwrap_or("x");
                body.splice(at..at, text.bytes());
            }
            "d" => {
                let n = words
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(1);
                body.drain(at..(at + n).min(body.len()));
            }
            _ => continue,
        }
        edited = true;
    }
    edited
}

/// The data of an unsigned aws-chunked body (as the proxy frames it again).
fn unframe(framed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = framed;
    loop {
        let lf = rest
            .iter()
            .position(|&b| b == b'\n')
            .expect("a chunk header");
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..lf - 1]).unwrap(), 16).unwrap();
        rest = &rest[lf + 1..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let (Some(options), Some(edits)) = (lines.next(), lines.next()) else {
        return;
    };
    let payload = lines.next().unwrap_or_default();
    let options = String::from_utf8_lossy(options);
    let edits = String::from_utf8_lossy(edits);
    let numbers: Vec<usize> = options
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let size = numbers.first().copied().unwrap_or(64).clamp(1, 1 << 16);
    let frames: Vec<usize> = numbers.iter().skip(1).map(|&n| n.max(1)).collect();
    // A kept trailer needs one to keep.
    let trailer = options.contains('t');
    let keep = trailer && options.contains('k');

    let (mut parts, seed) = head(payload.len(), trailer, keep);
    let access = AccessControl::new(
        AccessList::parse(FILE, "fuzz").unwrap(),
        SessionKey::random(),
    );
    let admission = access
        .verify_sigv4(&parts, time())
        .expect("the signed head verifies");
    let BodyCheck::Chunks(chunks) = admission.body else {
        panic!("a chunk-signed request gets its chunks checked");
    };
    let mut body = framed(payload, size, &seed, trailer);
    let edited = edit(&mut body, &edits);

    let mut out: Vec<Result<Frame<Bytes>, BoxError>> = Vec::new();
    let mut rest = Bytes::from(body);
    let mut i = 0;
    while !rest.is_empty() && out.len() < 4096 {
        let n = frames
            .get(i % frames.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        out.push(Ok(Frame::data(rest.split_to(n.min(rest.len())))));
        i += 1;
    }
    if !rest.is_empty() {
        out.push(Ok(Frame::data(rest)));
    }
    let feed = StreamBody::new(futures_util::stream::iter(out)).boxed_unsync();
    let decoded = s3x_proxy::admit::aws_chunked::decode_signed_chunks(
        &mut parts,
        feed,
        None,
        Expected::default(),
        Some(chunks),
    );
    let Ok((_, mut decoded)) = decoded else {
        panic!("the signed head is refused");
    };
    let mut cx = Context::from_waker(Waker::noop());
    let mut got = Vec::new();
    let ending = loop {
        match Pin::new(&mut decoded).poll_frame(&mut cx) {
            Poll::Pending => panic!("Pending from a body that never is"),
            Poll::Ready(Some(Ok(frame))) => {
                // With a kept trailer the body is framed again: only data frames are counted
                // as the payload when it is not.
                got.extend_from_slice(&frame.into_data().unwrap_or_default());
            }
            Poll::Ready(Some(Err(e))) => break Err(e.to_string()),
            Poll::Ready(None) => break Ok(()),
        }
    };
    if keep {
        // The body went out framed again with the client's trailer: the payload is inside.
        match ending {
            Ok(()) => assert_eq!(
                unframe(&got),
                payload,
                "a body that decoded is the signed data"
            ),
            Err(e) => assert!(edited, "the unedited body failed: {e}"),
        }
        return;
    }
    match ending {
        Ok(()) => assert_eq!(got, payload, "a body that decoded is the signed data"),
        Err(e) => {
            assert!(edited, "the unedited body failed: {e}");
            assert!(
                payload.is_empty() || got.len() < payload.len(),
                "a failed body gave out all its data: {e}"
            );
        }
    }
});
