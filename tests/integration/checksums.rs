//! Checksums end to end: a client's checksum trailer on chunks it signed reaches S3 (which
//! verifies it), and `--checksum` adds one the proxy computes to PutObject bodies that carry
//! none, so a body corrupted on its way to S3 is refused rather than stored.

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::Fault;
use s3x_proxy::sign::checksum::Computed;

use crate::harness::{data, Harness, Options, Reply, BUCKET};

const FAKE_SIG: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const FAKE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=FAKE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature=00";

fn crc32(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(body).to_be_bytes())
}

/// A body framed as a client signing its chunks frames it (the signatures are fake: the proxy
/// never checks them), with a crc32 trailer of `crc` and a trailer signature.
fn signed_with_trailer(body: &[u8], chunk: usize, crc: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        out.extend_from_slice(
            format!("{:x};chunk-signature={FAKE_SIG}\r\n", piece.len()).as_bytes(),
        );
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0;chunk-signature={FAKE_SIG}\r\n").as_bytes());
    out.extend_from_slice(format!("x-amz-checksum-crc32:{crc}\r\n").as_bytes());
    out.extend_from_slice(format!("x-amz-trailer-signature:{FAKE_SIG}\r\n\r\n").as_bytes());
    out
}

async fn put_signed_with_trailer(h: &Harness, key: &str, body: &[u8], crc: &str) -> Reply {
    let length = body.len().to_string();
    let headers = [
        (
            "x-amz-content-sha256",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        ),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", length.as_str()),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
        ("x-amz-sdk-checksum-algorithm", "CRC32"),
        ("authorization", FAKE_AUTH),
    ];
    let framed = signed_with_trailer(body, 8192, crc);
    h.forward(Method::PUT, BUCKET, &format!("/{key}"), &headers, framed)
        .await
}

/// GETs `key` with `x-amz-checksum-mode: ENABLED`: the reply carries the stored checksum.
async fn get_checksum(h: &Harness, key: &str) -> Reply {
    let headers = [("x-amz-checksum-mode", "ENABLED")];
    h.forward(
        Method::GET,
        BUCKET,
        &format!("/{key}"),
        &headers,
        Bytes::new(),
    )
    .await
}

/// The stored checksum headers of `key`, as (name, value) pairs, sorted.
async fn stored_checksums(h: &Harness, key: &str) -> Vec<(String, String)> {
    let reply = get_checksum(h, key).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let mut sums: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(n, _)| n.as_str().starts_with("x-amz-checksum-"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    sums.sort();
    sums
}

fn sums(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn with_checksum(flag: &str) -> Options {
    Options {
        extra_args: vec!["--checksum".into(), flag.into()],
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_signed_trailer_keeps_its_checksum_and_s3_verifies_it() {
    let h = Harness::start(Options::default()).await;
    let body = data(200_000, 41);
    let crc = crc32(&body);
    let put = put_signed_with_trailer(&h, "kept", &body, &crc).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        h.emulator.object(BUCKET, "kept").as_deref(),
        Some(&body[..])
    );
    assert_eq!(
        stored_checksums(&h, "kept").await,
        sums(&[
            ("x-amz-checksum-crc32", &crc),
            ("x-amz-checksum-type", "FULL_OBJECT")
        ]),
        "S3 got the client's checksum"
    );

    let wrong = put_signed_with_trailer(&h, "wrong", &body, "AAAAAA==").await;
    assert_eq!(
        (wrong.status, wrong.code().as_str()),
        (StatusCode::BAD_REQUEST, "BadDigest"),
        "S3's answer to the client's wrong checksum: {}",
        wrong.text()
    );
    assert_eq!(h.emulator.object(BUCKET, "wrong"), None);

    // Bytes corrupted on the way to S3 are caught by the client's checksum.
    h.emulator.inject(Fault::CorruptUpload { count: 1 });
    let corrupt = put_signed_with_trailer(&h, "corrupt", &body, &crc).await;
    assert_eq!(
        (corrupt.status, corrupt.code().as_str()),
        (StatusCode::BAD_REQUEST, "BadDigest"),
        "{}",
        corrupt.text()
    );
    assert_eq!(h.emulator.object(BUCKET, "corrupt"), None);

    // An empty body with its trailer.
    let put = put_signed_with_trailer(&h, "empty", b"", &crc32(b"")).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        h.emulator.object(BUCKET, "empty").as_deref(),
        Some(&b""[..])
    );
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checksum_a_plain_put_stores_a_checksum_s3_verified() {
    for (flag, computed) in [
        ("crc32c", Computed::Crc32c),
        ("crc64nvme", Computed::Crc64Nvme),
    ] {
        let h = Harness::start(with_checksum(flag)).await;
        let name = computed.algorithm().header();
        // Kept for a retry (a header), streamed (a trailer), over several chunks, one byte.
        for (key, len) in [("small", 10_000), ("large", 300_000), ("one", 1)] {
            let body = data(len, 42);
            let put = h
                .forward(Method::PUT, BUCKET, &format!("/{key}"), &[], body.clone())
                .await;
            assert_eq!(put.status, StatusCode::OK, "{flag} {key}: {}", put.text());
            assert_eq!(h.emulator.object(BUCKET, key).as_deref(), Some(&body[..]));
            assert_eq!(
                stored_checksums(&h, key).await,
                sums(&[
                    (name, &computed.of(&body)),
                    ("x-amz-checksum-type", "FULL_OBJECT")
                ]),
                "{flag} {key}"
            );
        }
        // An empty body gets none (there is nothing to protect).
        let put = h
            .forward(
                Method::PUT,
                BUCKET,
                "/empty",
                &[("content-length", "0")],
                Bytes::new(),
            )
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text());
        assert!(stored_checksums(&h, "empty").await.is_empty());
        assert_eq!(h.emulator.counters().signature_failures, 0);
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checksum_a_corrupted_upload_is_refused_and_without_it_stored() {
    let h = Harness::start(with_checksum("crc32c")).await;
    for (key, len) in [("small", 20_000), ("large", 500_000)] {
        let body = data(len, 43);
        h.emulator.inject(Fault::CorruptUpload { count: 1 });
        let put = h
            .forward(Method::PUT, BUCKET, &format!("/{key}"), &[], body.clone())
            .await;
        assert_eq!(
            (put.status, put.code().as_str()),
            (StatusCode::BAD_REQUEST, "BadDigest"),
            "{key}: {}",
            put.text()
        );
        assert_eq!(
            h.emulator.object(BUCKET, key),
            None,
            "{key}: nothing stored"
        );
        let again = h
            .forward(Method::PUT, BUCKET, &format!("/{key}"), &[], body.clone())
            .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text());
        assert_eq!(h.emulator.object(BUCKET, key).as_deref(), Some(&body[..]));
    }
    h.stop().await;

    // The same corruption without --checksum: S3 stores the corrupted bytes (so the test above
    // can fail).
    let h = Harness::start(Options::default()).await;
    for (key, len) in [("small", 20_000), ("large", 500_000)] {
        let body = data(len, 43);
        h.emulator.inject(Fault::CorruptUpload { count: 1 });
        let put = h
            .forward(Method::PUT, BUCKET, &format!("/{key}"), &[], body.clone())
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text());
        let stored = h.emulator.object(BUCKET, key).unwrap();
        assert_eq!(stored.len(), body.len());
        assert_ne!(stored, body, "{key}: the corrupted bytes were stored");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checksum_a_kept_body_is_retried_with_its_checksum() {
    let h = Harness::start(with_checksum("crc64nvme")).await;
    let warm = h
        .forward(Method::PUT, BUCKET, "/warm", &[], Bytes::from_static(b"w"))
        .await;
    assert_eq!(warm.status, StatusCode::OK);
    h.emulator.inject(Fault::ExpiredToken { count: 1 });
    let body = data(30_000, 44);
    let put = h
        .forward(Method::PUT, BUCKET, "/retried", &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        h.emulator.counters().expired_token,
        1,
        "the first attempt was refused"
    );
    assert_eq!(
        stored_checksums(&h, "retried").await,
        sums(&[
            ("x-amz-checksum-crc64nvme", &Computed::Crc64Nvme.of(&body)),
            ("x-amz-checksum-type", "FULL_OBJECT")
        ])
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checksum_bodies_of_unknown_length_carry_it_part_by_part() {
    for (flag, computed) in [
        ("crc32c", Computed::Crc32c),
        ("crc64nvme", Computed::Crc64Nvme),
    ] {
        let h = Harness::start(with_checksum(flag)).await;
        let name = computed.algorithm().header();
        // Ends within the first part: one PutObject with its checksum.
        let small = data(100_000, 45);
        let put = h.put_unknown_length("small", &small, 64 * 1024).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text());
        assert_eq!(
            stored_checksums(&h, "small").await,
            sums(&[
                (name, &computed.of(&small)),
                ("x-amz-checksum-type", "FULL_OBJECT")
            ])
        );
        // Longer: a multipart upload whose parts carry their checksums, and whose whole-object
        // checksum S3 checks at completion.
        let big = data(10 << 20, 46);
        let put = h.put_unknown_length("big", &big, 64 * 1024).await;
        assert_eq!(put.status, StatusCode::OK, "{flag}: {}", put.text());
        assert_eq!(put.header(name), Some(computed.of(&big).as_str()), "{flag}");
        assert_eq!(h.emulator.object(BUCKET, "big").as_deref(), Some(&big[..]));
        assert_eq!(
            stored_checksums(&h, "big").await,
            sums(&[
                (name, &computed.of(&big)),
                ("x-amz-checksum-type", "FULL_OBJECT")
            ]),
            "{flag}"
        );
        assert_eq!(
            h.emulator.counters().by_operation.get("UploadPart"),
            Some(&2)
        );
        // A part corrupted on the way is refused, and the upload aborted.
        h.emulator.inject(Fault::CorruptUpload { count: 1 });
        let put = h.put_unknown_length("corrupt", &big, 64 * 1024).await;
        assert_eq!(
            (put.status, put.code().as_str()),
            (StatusCode::BAD_REQUEST, "BadDigest"),
            "{}",
            put.text()
        );
        assert_eq!(h.emulator.object(BUCKET, "corrupt"), None);
        assert!(h.emulator.multipart_uploads(BUCKET).is_empty());
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checksum_a_client_signed_body_without_a_trailer_gets_one() {
    let h = Harness::start(with_checksum("crc32c")).await;
    let body = data(150_000, 47);
    let mut framed = Vec::new();
    for piece in body.chunks(65_536) {
        framed.extend_from_slice(
            format!("{:x};chunk-signature={FAKE_SIG}\r\n", piece.len()).as_bytes(),
        );
        framed.extend_from_slice(piece);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(format!("0;chunk-signature={FAKE_SIG}\r\n\r\n").as_bytes());
    let headers = [
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "150000"),
        ("authorization", FAKE_AUTH),
    ];
    let put = h
        .forward(Method::PUT, BUCKET, "/signed", &headers, framed)
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        h.emulator.object(BUCKET, "signed").as_deref(),
        Some(&body[..])
    );
    assert_eq!(
        stored_checksums(&h, "signed").await,
        sums(&[
            ("x-amz-checksum-crc32c", &Computed::Crc32c.of(&body)),
            ("x-amz-checksum-type", "FULL_OBJECT")
        ])
    );
    // A client trailer wins over --checksum.
    let crc = crc32(&body);
    let put = put_signed_with_trailer(&h, "theirs", &body, &crc).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        stored_checksums(&h, "theirs").await,
        sums(&[
            ("x-amz-checksum-crc32", &crc),
            ("x-amz-checksum-type", "FULL_OBJECT")
        ])
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checksum_a_clients_own_checksums_and_multipart_uploads_are_left_alone() {
    let h = Harness::start(with_checksum("crc64nvme")).await;
    // An unsigned trailer body (the aws CLI over HTTPS) passes through unchanged.
    let body = data(150_000, 48);
    let crc = crc32(&body);
    let mut framed = Vec::new();
    for piece in body.chunks(65_536) {
        framed.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        framed.extend_from_slice(piece);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").as_bytes());
    let headers = [
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "150000"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
        ("x-amz-sdk-checksum-algorithm", "CRC32"),
    ];
    let put = h
        .forward(Method::PUT, BUCKET, "/trailer", &headers, framed)
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        stored_checksums(&h, "trailer").await,
        sums(&[
            ("x-amz-checksum-crc32", &crc),
            ("x-amz-checksum-type", "FULL_OBJECT")
        ])
    );
    // A checksum header (the aws CLI over plain HTTP) too.
    let header = [("x-amz-checksum-crc32", crc.as_str())];
    let put = h
        .forward(Method::PUT, BUCKET, "/header", &header, body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        stored_checksums(&h, "header").await,
        sums(&[
            ("x-amz-checksum-crc32", &crc),
            ("x-amz-checksum-type", "FULL_OBJECT")
        ])
    );
    // A client's own multipart upload: S3 would refuse parts with a checksum the upload was not
    // created for, so its parts go as they came.
    let created = h
        .forward(Method::POST, BUCKET, "/mpu?uploads", &[], Bytes::new())
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let text = created.text();
    let start = text.find("<UploadId>").unwrap() + "<UploadId>".len();
    let upload_id = &text[start..start + text[start..].find("</UploadId>").unwrap()];
    let part = data(100_000, 49);
    let query = format!("/mpu?partNumber=1&uploadId={upload_id}");
    let uploaded = h
        .forward(Method::PUT, BUCKET, &query, &[], part.clone())
        .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    let listed = h
        .forward(
            Method::GET,
            BUCKET,
            &format!("/mpu?uploadId={upload_id}"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert!(
        listed.text().contains("<PartNumber>1</PartNumber>"),
        "{}",
        listed.text()
    );
    assert!(!listed.text().contains("Checksum"), "{}", listed.text());
    let etag = uploaded.header("etag").unwrap();
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let done = h
        .forward(
            Method::POST,
            BUCKET,
            &format!("/mpu?uploadId={upload_id}"),
            &[],
            xml,
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(h.emulator.object(BUCKET, "mpu").as_deref(), Some(&part[..]));
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}
