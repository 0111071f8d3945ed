//! Less common operations and body framings through the proxy: control plane, HeadBucket,
//! GetObjectAttributes, RenameObject, appends, client-signed chunks and unsigned trailers.

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::harness::{data, Harness, Options, BUCKET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_and_head_bucket_are_signed_with_iam() {
    let h = Harness::start(Options::default()).await;
    let host = "s3express-control.us-west-2.amazonaws.com";
    let list = h
        .send(
            Method::GET,
            &format!("http://{host}/"),
            host,
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    assert!(list.text().contains(BUCKET), "{}", list.text());
    let head = h
        .forward(Method::HEAD, BUCKET, "/", &[], Bytes::new())
        .await;
    assert_eq!(head.status, StatusCode::OK);
    // Endpoint mode sends control-plane operations to the control host too.
    let created = h
        .endpoint(Method::PUT, "fresh--usw2-az1--x-s3", "", &[], Bytes::new())
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let counters = h.emulator.counters();
    assert_eq!(
        counters
            .auth_by_operation
            .get("ListDirectoryBuckets")
            .map(String::as_str),
        Some("iam")
    );
    assert_eq!(
        counters
            .auth_by_operation
            .get("HeadBucket")
            .map(String::as_str),
        Some("iam")
    );
    assert_eq!(
        counters
            .auth_by_operation
            .get("CreateBucket")
            .map(String::as_str),
        Some("iam")
    );
    assert_eq!(counters.signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_rename_and_append_use_the_right_sessions() {
    let h = Harness::start(Options::default()).await;
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/old", &[], data(100, 1))
            .await
            .status,
        StatusCode::OK
    );
    let attrs = h
        .forward(
            Method::GET,
            BUCKET,
            "/old?attributes",
            &[("x-amz-object-attributes", "ObjectSize")],
            Bytes::new(),
        )
        .await;
    assert_eq!(attrs.status, StatusCode::OK, "{}", attrs.text());
    assert!(
        attrs.text().contains("<ObjectSize>100</ObjectSize>"),
        "{}",
        attrs.text()
    );
    let renamed = h
        .forward(
            Method::PUT,
            BUCKET,
            "/new?renameObject",
            &[("x-amz-rename-source", &format!("/{BUCKET}/old"))],
            Bytes::new(),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    assert!(h.emulator.object(BUCKET, "old").is_none());
    let appended = h
        .forward(
            Method::PUT,
            BUCKET,
            "/new",
            &[("x-amz-write-offset-bytes", "100")],
            data(50, 2),
        )
        .await;
    assert_eq!(appended.status, StatusCode::OK, "{}", appended.text());
    assert_eq!(h.emulator.object(BUCKET, "new").map(|o| o.len()), Some(150));
    let counters = h.emulator.counters();
    assert_eq!(
        counters
            .auth_by_operation
            .get("GetObjectAttributes")
            .map(String::as_str),
        Some("session-rw"),
        "a cached ReadWrite session serves reads"
    );
    assert_eq!(
        counters
            .auth_by_operation
            .get("RenameObject")
            .map(String::as_str),
        Some("session-rw")
    );
    assert_eq!(counters.signature_failures, 0);
    h.stop().await;
}

/// aws-chunked framing: `hex;chunk-signature=…\r\n data \r\n … 0;…\r\n` + trailers + `\r\n`.
fn aws_chunked(body: &[u8], chunk: usize, signed: bool, trailer: Option<&str>) -> Vec<u8> {
    let ext = |_: usize| {
        if signed {
            ";chunk-signature=0000000000000000000000000000000000000000000000000000000000000000"
                .to_string()
        } else {
            String::new()
        }
    };
    let mut out = Vec::new();
    for (i, piece) in body.chunks(chunk).enumerate() {
        out.extend_from_slice(format!("{:x}{}\r\n", piece.len(), ext(i)).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("0{}\r\n", ext(0)).as_bytes());
    if let Some(t) = trailer {
        out.extend_from_slice(format!("{t}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_signed_by_the_client_are_decoded_and_resent_unsigned() {
    let h = Harness::start(Options::default()).await;
    let body = data(200_000, 3);
    let framed = aws_chunked(&body, 65_536, true, None);
    let headers = [
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "200000"),
        ("authorization", "AWS4-HMAC-SHA256 Credential=FAKE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature=00"),
    ];
    let put = h
        .forward(Method::PUT, BUCKET, "/signed-chunks", &headers, framed)
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        h.emulator.object(BUCKET, "signed-chunks").as_deref(),
        Some(&body[..])
    );
    let broken = aws_chunked(&body, 65_536, true, None);
    let broken = Bytes::copy_from_slice(&broken[..broken.len() / 2]);
    let put = h
        .forward(Method::PUT, BUCKET, "/broken-chunks", &headers, broken)
        .await;
    assert!(
        put.status.is_client_error() || put.status.is_server_error(),
        "a truncated body is never stored: {}",
        put.status
    );
    assert!(h.emulator.object(BUCKET, "broken-chunks").is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_trailer_bodies_pass_through_with_their_checksum() {
    let h = Harness::start(Options::default()).await;
    let body = data(150_000, 4);
    let crc =
        base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&body).to_be_bytes());
    let framed = aws_chunked(
        &body,
        64 * 1024,
        false,
        Some(&format!("x-amz-checksum-crc32:{crc}")),
    );
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
        h.emulator.object(BUCKET, "trailer").as_deref(),
        Some(&body[..])
    );
    let bad = aws_chunked(
        &body,
        64 * 1024,
        false,
        Some("x-amz-checksum-crc32:AAAAAA=="),
    );
    let put = h
        .forward(Method::PUT, BUCKET, "/bad-trailer", &headers, bad)
        .await;
    assert_eq!(
        (put.status, put.code().as_str()),
        (StatusCode::BAD_REQUEST, "BadDigest"),
        "S3 checks the trailer the proxy passed through"
    );
    h.stop().await;
}
