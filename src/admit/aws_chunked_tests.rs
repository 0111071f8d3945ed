//! Tests of `aws_chunked.rs`.
use std::pin::Pin;

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

fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|e| match e {})
        .boxed_unsync()
}

#[test]
fn rewrites_the_head() {
    let mut parts = head(&[
        ("content-encoding", "aws-chunked"),
        ("content-length", "66824"),
        (DECODED_LENGTH, "66560"),
        (TRAILER, "x-amz-checksum-md5"),
        (SDK_CHECKSUM_ALGORITHM, "MD5"),
    ]);
    let (payload, _) =
        decode_signed_chunks(&mut parts, empty(), None, Expected::default(), None).unwrap();
    assert_eq!(
        payload,
        Payload::Unsigned,
        "a trailer S3 has no checksum for is dropped"
    );
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
    decode_signed_chunks(&mut parts, empty(), None, Expected::default(), None).unwrap();
    assert_eq!(parts.headers[CONTENT_ENCODING], "gzip,br");
    assert_eq!(parts.headers[CONTENT_LENGTH], "0");
    assert_eq!(parts.headers[SDK_CHECKSUM_ALGORITHM], "CRC32");

    for bad in [None, Some("x"), Some("-1"), Some("")] {
        let mut headers = vec![("content-encoding", "aws-chunked")];
        headers.extend(bad.map(|v| (DECODED_LENGTH, v)));
        let result = decode_signed_chunks(
            &mut head(&headers),
            empty(),
            None,
            Expected::default(),
            None,
        );
        assert!(matches!(result, Err(MalformedChunks(_))), "{bad:?}");
    }
}

#[test]
fn keeps_a_declared_checksum_trailer_in_the_head() {
    let mut parts = head(&[
        ("content-encoding", "gzip, aws-chunked"),
        ("content-length", "66824"),
        (DECODED_LENGTH, "66560"),
        (TRAILER, " X-Amz-Checksum-CRC32 "),
        (SDK_CHECKSUM_ALGORITHM, "CRC32"),
    ]);
    let (payload, body) = decode_signed_chunks(
        &mut parts,
        empty(),
        Some(Computed::Crc32c),
        Expected::default(),
        None,
    )
    .unwrap();
    assert_eq!(payload, Payload::StreamingUnsignedTrailer);
    let h = &parts.headers;
    assert_eq!(h[CONTENT_ENCODING], "aws-chunked,gzip");
    assert_eq!(h[DECODED_LENGTH], "66560");
    assert_eq!(
        h[TRAILER], "x-amz-checksum-crc32",
        "the client's, not --checksum's"
    );
    assert_eq!(h[SDK_CHECKSUM_ALGORITHM], "CRC32");
    let framed = framed_len(66560, Algorithm::Crc32);
    assert_eq!(h[CONTENT_LENGTH], framed.to_string().as_str());
    assert_eq!(body.size_hint().exact(), Some(framed));
    // 65536 + 1024: `10000\r\n` ... `\r\n` + `400\r\n` ... `\r\n` + `0\r\n` + trailer + `\r\n`.
    assert_eq!(framed, (5 + 4 + 65536) + (3 + 4 + 1024) + 3 + 31 + 2);

    // Without a trailer, --checksum frames the decoded body with its own.
    let mut parts = head(&[("content-encoding", "aws-chunked"), (DECODED_LENGTH, "10")]);
    let (payload, _) = decode_signed_chunks(
        &mut parts,
        empty(),
        Some(Computed::Crc64Nvme),
        Expected::default(),
        None,
    )
    .unwrap();
    assert_eq!(payload, Payload::StreamingUnsignedTrailer);
    assert_eq!(parts.headers[TRAILER], "x-amz-checksum-crc64nvme");
    assert_eq!(parts.headers[CONTENT_ENCODING], "aws-chunked");
    // ... but not an empty one, and not a second checksum trailer.
    let mut parts = head(&[("content-encoding", "aws-chunked"), (DECODED_LENGTH, "0")]);
    let (payload, _) = decode_signed_chunks(
        &mut parts,
        empty(),
        Some(Computed::Crc64Nvme),
        Expected::default(),
        None,
    )
    .unwrap();
    assert_eq!(payload, Payload::Unsigned);
    let mut parts = head(&[
        ("content-encoding", "aws-chunked"),
        (DECODED_LENGTH, "10"),
        (TRAILER, "x-amz-checksum-crc32,x-amz-checksum-sha1"),
    ]);
    let (payload, _) =
        decode_signed_chunks(&mut parts, empty(), None, Expected::default(), None).unwrap();
    assert_eq!(payload, Payload::Unsigned);
    assert!(!parts.headers.contains_key(TRAILER));
}

/// A whole-buffer decoder of unsigned aws-chunked framing, written apart from the one under
/// test: the data, the chunk sizes and the trailer lines.
fn parse_unsigned(framed: &[u8]) -> (Vec<u8>, Vec<usize>, Vec<String>) {
    let text_line = |pos: &mut usize| {
        let end = *pos
            + framed[*pos..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap();
        let line = String::from_utf8(framed[*pos..end].to_vec()).unwrap();
        *pos = end + 2;
        line
    };
    let (mut pos, mut data, mut sizes) = (0, Vec::new(), Vec::new());
    loop {
        let line = text_line(&mut pos);
        assert!(!line.contains(';'), "no chunk extensions: {line}");
        let size = usize::from_str_radix(&line, 16).unwrap();
        if size == 0 {
            break;
        }
        sizes.push(size);
        data.extend_from_slice(&framed[pos..pos + size]);
        assert_eq!(&framed[pos + size..pos + size + 2], b"\r\n");
        pos += size + 2;
    }
    let mut trailers = Vec::new();
    loop {
        let line = text_line(&mut pos);
        if line.is_empty() {
            break;
        }
        trailers.push(line);
    }
    assert_eq!(pos, framed.len(), "nothing after the trailers");
    (data, sizes, trailers)
}

/// Collects a body, checking that its size hint is exact all along.
async fn collect_exact(
    mut body: impl Body<Data = Bytes, Error = BoxError> + Unpin,
) -> Result<Vec<u8>, BoxError> {
    let mut out = Vec::new();
    let total = body.size_hint().exact().expect("an exact length");
    while let Some(frame) = body.frame().await {
        out.extend_from_slice(&frame?.into_data().unwrap());
        assert_eq!(body.size_hint().exact(), Some(total - out.len() as u64));
    }
    assert_eq!(out.len() as u64, total);
    Ok(out)
}

fn plain(data: &[u8], split: impl FnMut() -> usize + Send + Unpin + 'static) -> ProxyBody {
    Feed(Bytes::copy_from_slice(data), split).boxed_unsync()
}

#[tokio::test]
async fn frames_a_plain_body_with_the_checksum_it_computes_at_any_split() {
    let c = CHUNK as usize;
    for (i, len) in [1, 100, c - 1, c, c + 1, 3 * c + 17, 0]
        .into_iter()
        .enumerate()
    {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 300) as u8).collect();
        for computed in [Computed::Crc32c, Computed::Crc64Nvme] {
            let name = computed.algorithm().header();
            let tail = format!("{name}:{}\r\n\r\n", computed.of(&data));
            let expected = encode(&data, c, "", &tail);
            for (seed, max) in [(0, usize::MAX), (1, 1), (2, 7), (3, 5000), (4, 70_000)] {
                let split = xorshift(seed * 31 + i as u64 + 1, max.min(1 << 20) as u64);
                let split: Box<dyn FnMut() -> usize + Send + Unpin> = if max == usize::MAX {
                    Box::new(|| usize::MAX)
                } else {
                    Box::new(split)
                };
                let mut headers = HeaderMap::new();
                let body =
                    encode_with_checksum(&mut headers, plain(&data, split), len as u64, computed)
                        .unwrap();
                let framed = collect_exact(body).await.unwrap();
                assert!(framed == expected, "len {len} seed {seed} {computed:?}");
                assert_eq!(headers[CONTENT_LENGTH], framed.len().to_string().as_str());
                let (decoded, sizes, trailers) = parse_unsigned(&framed);
                assert!(decoded == data);
                assert!(sizes.iter().rev().skip(1).all(|&s| s == c), "{sizes:?}");
                assert_eq!(trailers, [tail.trim_end()]);
            }
        }
    }
}

#[tokio::test]
async fn a_plain_body_of_another_length_fails() {
    for (len, declared, want) in [(99, 100, "1 bytes short"), (101, 100, "longer than")] {
        let data = vec![1u8; len];
        let body = encode_with_checksum(
            &mut HeaderMap::new(),
            plain(&data, || 10),
            declared,
            Computed::Crc32c,
        )
        .unwrap();
        let error = body.collect().await.unwrap_err().to_string();
        assert!(error.contains(want), "{error}");
    }
}

/// A client's signed framing of `data` in `size` chunks with a crc32 trailer (and its
/// signature): the body, and the trailer line S3 must get.
fn client_trailer_body(data: &[u8], size: usize) -> (Vec<u8>, String) {
    let crc = "sOO8/Q==";
    let tail = format!("x-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{SIG}\r\n\r\n");
    let body = encode(data, size, &format!(";chunk-signature={SIG}"), &tail);
    (body, format!("x-amz-checksum-crc32:{crc}"))
}

async fn reframe(
    encoded: &[u8],
    declared: u64,
    split: impl FnMut() -> usize + Send + Unpin + 'static,
    add: Option<Computed>,
) -> Result<(HeaderMap, Vec<u8>), BoxError> {
    let mut parts = head(&[
        ("content-encoding", "aws-chunked"),
        (DECODED_LENGTH, &declared.to_string()),
        (TRAILER, "x-amz-checksum-crc32"),
    ]);
    if add.is_some() {
        parts.headers.remove(TRAILER);
    }
    let (payload, body) = decode_signed_chunks(
        &mut parts,
        plain(encoded, split),
        add,
        Expected::default(),
        None,
    )
    .unwrap();
    assert_eq!(payload, Payload::StreamingUnsignedTrailer);
    let framed = collect_exact(body).await?;
    Ok((parts.headers, framed))
}

#[tokio::test]
async fn reframes_signed_chunks_keeping_the_client_trailer_at_any_split() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for client_chunk in [8192, 65536, 100_000] {
        let (encoded, trailer) = client_trailer_body(&data, client_chunk);
        let expected = encode(&data, CHUNK as usize, "", &format!("{trailer}\r\n\r\n"));
        for seed in 0..12u64 {
            let max = [1, 3, 100, 5000, 70_000, 300_000][seed as usize % 6];
            let split = xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, max);
            let (headers, framed) = reframe(&encoded, 200_000, split, None).await.unwrap();
            assert!(
                framed == expected,
                "client chunk {client_chunk}, seed {seed}"
            );
            assert_eq!(headers[CONTENT_LENGTH], framed.len().to_string().as_str());
            let (decoded, _, trailers) = parse_unsigned(&framed);
            assert!(decoded == data);
            assert_eq!(trailers, [trailer.as_str()], "no x-amz-trailer-signature");
        }
    }
}

#[tokio::test]
async fn reframes_signed_chunks_with_a_computed_checksum() {
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
    let encoded = encode(&data, 8192, &format!(";chunk-signature={SIG}"), "\r\n");
    let (headers, framed) = reframe(
        &encoded,
        70_000,
        xorshift(5, 999),
        Some(Computed::Crc64Nvme),
    )
    .await
    .unwrap();
    assert_eq!(headers[TRAILER], "x-amz-checksum-crc64nvme");
    let (decoded, sizes, trailers) = parse_unsigned(&framed);
    assert!(decoded == data);
    assert_eq!(sizes, [65536, 70_000 - 65536]);
    let want = format!("x-amz-checksum-crc64nvme:{}", Computed::Crc64Nvme.of(&data));
    assert_eq!(trailers, [want]);
}

#[tokio::test]
async fn a_bad_or_missing_client_trailer_fails_the_body() {
    let data = vec![b'q'; 5000];
    let framed = |tail: &str| encode(&data, 1000, &format!(";chunk-signature={SIG}"), tail);
    let cases = [
        (framed("\r\n"), "x-amz-checksum-crc32 is missing"),
        (
            framed(&format!("x-amz-trailer-signature:{SIG}\r\n\r\n")),
            "is missing",
        ),
        (
            framed("x-amz-checksum-crc32:AAAA\r\n\r\n"),
            "not a base64 CRC32",
        ),
        (
            framed("x-amz-checksum-crc32:AAAAAA\r\n\r\n"),
            "not a base64 CRC32",
        ),
        (framed("x-amz-checksum-crc32:AAAA\nAA==\r\n\r\n"), "CRLF"),
        (
            framed("x-amz-checksum-crc32:AA AAA==\r\n\r\n"),
            "not a base64",
        ),
        (
            framed("x-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"),
            "appears twice",
        ),
    ];
    for (encoded, want) in cases {
        for split in [1, 64, usize::MAX] {
            let error = reframe(&encoded, 5000, move || split, None)
                .await
                .unwrap_err();
            let error = error.to_string();
            assert!(error.contains(want), "{error} (wanted {want})");
        }
    }
    // Truncated: the body fails, with no final chunk ever sent.
    let (encoded, _) = client_trailer_body(&data, 1000);
    let mut parts = head(&[
        ("content-encoding", "aws-chunked"),
        (DECODED_LENGTH, "5000"),
        (TRAILER, "x-amz-checksum-crc32"),
    ]);
    let cut = &encoded[..encoded.len() - 20];
    let (_, mut body) = decode_signed_chunks(
        &mut parts,
        plain(cut, || 300),
        None,
        Expected::default(),
        None,
    )
    .unwrap();
    let mut out = Vec::new();
    let error = loop {
        match body.frame().await.expect("an error before the end") {
            Ok(frame) => out.extend_from_slice(&frame.into_data().unwrap()),
            Err(e) => break e,
        }
    };
    assert!(error.to_string().contains("ended before"), "{error}");
    assert!(!out.windows(3).any(|w| w == b"\n0\r"), "no final chunk");
    assert!(body.frame().await.is_none());
}

#[tokio::test]
async fn the_encoder_streams_in_bounded_memory() {
    let len = 32u64 << 20;
    let source = Feed(Bytes::from(vec![7u8; len as usize]), || 16 << 10);
    let mut encoder = Encoder::new(
        source.boxed_unsync(),
        len,
        Algorithm::Crc32c,
        Some(Hasher::new(Computed::Crc32c)),
    );
    let mut total = 0;
    while let Some(frame) = encoder.frame().await {
        let held: usize = encoder.hook().ready.iter().map(Bytes::len).sum();
        assert!(held <= (16 << 10) + 16, "{held}");
        total += frame.unwrap().into_data().unwrap().len() as u64;
    }
    assert_eq!(total, framed_len(len, Algorithm::Crc32c));
}

/// Decodes a client's signed framing of `data` with `md5` to check: what comes out before the
/// body ends or fails, and the failure.
async fn decode_checked(
    data: &[u8],
    md5: &[u8; 16],
    trailer: bool,
    split: impl FnMut() -> usize + Send + Unpin + 'static,
) -> (Vec<u8>, Option<BoxError>) {
    let (encoded, _) = client_trailer_body(data, 1000);
    let encoded = match trailer {
        true => encoded,
        false => encode(data, 1000, &format!(";chunk-signature={SIG}"), "\r\n"),
    };
    let declared = data.len().to_string();
    let mut headers = vec![
        ("content-encoding", "aws-chunked"),
        (DECODED_LENGTH, &*declared),
    ];
    if trailer {
        headers.push((TRAILER, "x-amz-checksum-crc32"));
    }
    let md5 = crate::sign::content_md5::ContentMd5::parse(
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, md5).as_bytes(),
    )
    .unwrap();
    let mut parts = head(&headers);
    let (_, mut body) = decode_signed_chunks(
        &mut parts,
        plain(&encoded, split),
        None,
        Expected::from(md5),
        None,
    )
    .unwrap();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => out.extend_from_slice(&frame.into_data().unwrap()),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

#[tokio::test]
async fn the_decoded_payload_is_checked_against_content_md5_before_its_end() {
    use md5::Digest;
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let right: [u8; 16] = md5::Md5::digest(&data).into();
    let wrong = [0u8; 16];
    for (seed, trailer) in [(1u64, true), (2, false), (3, true), (4, false)] {
        let split = xorshift(seed, [1, 300, 7000][seed as usize % 3]);
        let (out, error) = decode_checked(&data, &right, trailer, split).await;
        assert!(error.is_none(), "{error:?}");
        let decoded = match trailer {
            true => parse_unsigned(&out).0,
            false => out,
        };
        assert!(decoded == data);

        let split = xorshift(seed, [1, 300, 7000][seed as usize % 3]);
        let (out, error) = decode_checked(&data, &wrong, trailer, split).await;
        let error = error.expect("a mismatch fails the body");
        assert!(
            error.is::<crate::sign::content_md5::DigestError>(),
            "{error}"
        );
        // The last data never went out, nor the final chunk and trailer.
        if trailer {
            assert!(!out.windows(3).any(|w| w == b"\n0\r"), "no final chunk");
        } else {
            assert!(out.len() < data.len(), "{}", out.len());
        }
    }
}
