//! SSE-KMS end to end, as the S3 docs describe directory buckets: the bucket's default
//! encryption applies to sessions created without SSE headers; a client may name the bucket's
//! own settings; a Zonal request cannot choose others; copies (IAM-signed) may; and every SSE
//! answer header reaches the client, from a multipart conversion too.

use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::Sse;

use crate::harness::{data, Harness, Options, BUCKET};

const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

async fn kms_bucket() -> Harness {
    let h = Harness::start(Options::default()).await;
    h.emulator.set_bucket_encryption(
        BUCKET,
        Sse::Kms {
            key_id: KEY.into(),
            bucket_key_enabled: true,
        },
    );
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_sse_headers_and_with_the_buckets_own_both_work() {
    let h = kms_bucket().await;
    let plain = h
        .forward(Method::PUT, BUCKET, "/plain", &[], Bytes::from_static(b"p"))
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert_eq!(
        plain.header("x-amz-server-side-encryption"),
        Some("aws:kms")
    );
    assert_eq!(
        plain.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some(KEY)
    );
    let own = [
        ("x-amz-server-side-encryption", "aws:kms"),
        ("x-amz-server-side-encryption-aws-kms-key-id", KEY),
    ];
    let named = h
        .forward(
            Method::PUT,
            BUCKET,
            "/named",
            &own,
            Bytes::from_static(b"n"),
        )
        .await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.text());
    let get = h
        .forward(Method::GET, BUCKET, "/named", &[], Bytes::new())
        .await;
    assert_eq!(
        get.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some(KEY)
    );
    // Another key than the bucket's is S3's to refuse, and its answer reaches the client.
    let other = [
        ("x-amz-server-side-encryption", "aws:kms"),
        (
            "x-amz-server-side-encryption-aws-kms-key-id",
            "arn:aws:kms:us-west-2:111122223333:key/other",
        ),
    ];
    let refused = h
        .forward(
            Method::PUT,
            BUCKET,
            "/other",
            &other,
            Bytes::from_static(b"o"),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (StatusCode::BAD_REQUEST, "InvalidArgument")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_own_create_session_is_answered_with_its_sse_settings() {
    let h = kms_bucket().await;
    let headers = [
        ("x-amz-create-session-mode", "ReadWrite"),
        ("x-amz-server-side-encryption", "aws:kms"),
        ("x-amz-server-side-encryption-aws-kms-key-id", KEY),
        ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
    ];
    let session = h
        .forward(Method::GET, BUCKET, "/?session", &headers, Bytes::new())
        .await;
    assert_eq!(session.status, StatusCode::OK);
    assert_eq!(
        session.header("x-amz-server-side-encryption"),
        Some("aws:kms")
    );
    assert_eq!(
        session.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some(KEY)
    );
    assert_eq!(
        session.header("x-amz-server-side-encryption-bucket-key-enabled"),
        Some("true")
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_signed_with_iam_may_choose_its_encryption() {
    let h = kms_bucket().await;
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/src", &[], Bytes::from_static(b"s"))
            .await
            .status,
        StatusCode::OK
    );
    let copy = [
        ("x-amz-copy-source", "/demo--usw2-az1--x-s3/src"),
        ("x-amz-server-side-encryption", "AES256"),
    ];
    let copied = h
        .forward(Method::PUT, BUCKET, "/dst", &copy, Bytes::new())
        .await;
    assert_eq!(copied.status, StatusCode::OK, "{}", copied.text());
    let head = h
        .forward(Method::HEAD, BUCKET, "/dst", &[], Bytes::new())
        .await;
    assert_eq!(head.header("x-amz-server-side-encryption"), Some("AES256"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_conversion_relays_every_sse_answer_header() {
    let h = kms_bucket().await;
    let body = data(9 << 20, 4);
    // No Content-Length: the proxy turns this PutObject into a multipart upload.
    let parts = h.put_unknown_length("chunked", &body, 1 << 20).await;
    let text = parts.text();
    assert_eq!(parts.status, StatusCode::OK, "{text}");
    assert_eq!(parts.headers["x-amz-server-side-encryption"], "aws:kms");
    assert_eq!(
        parts.headers["x-amz-server-side-encryption-aws-kms-key-id"],
        KEY
    );
    assert_eq!(
        parts.headers["x-amz-server-side-encryption-bucket-key-enabled"],
        "true"
    );
    assert_eq!(h.emulator.counters().by_operation["UploadPart"], 2);
    assert_eq!(
        h.emulator.object(BUCKET, "chunked").as_deref(),
        Some(&body[..])
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_conversion_that_outlives_its_session_moves_every_part_to_the_new_one() {
    let h = Harness::start(Options::default()).await;
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/warm", &[], Bytes::from_static(b"w"))
            .await
            .status,
        StatusCode::OK
    );
    // The session in use expires at the upload's first request; the proxy replaces it once.
    h.emulator
        .inject(s3x_emulator::Fault::ExpiredToken { count: 1 });
    let body = data(25 << 20, 5);
    let response = h.put_unknown_length("long", &body, 1 << 20).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        h.emulator.object(BUCKET, "long").as_deref(),
        Some(&body[..])
    );
    let counters = h.emulator.counters();
    assert_eq!(
        counters.expired_token, 1,
        "later parts use the new session: {counters:?}"
    );
    h.stop().await;
}
