//! Tests of `aws_chunked.rs`.
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
    let tail = format!("x-amz-checksum-crc32:sOO8/Q==\r\nx-amz-trailer-signature:{SIG}\r\n\r\n");
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
        assert!(matches!(result, Err(MalformedChunks(_))), "{bad:?}");
    }
}
