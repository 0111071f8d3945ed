//! Content-MD5 on directory buckets (DESIGN §3.2): S3 Express refuses the header, so the proxy
//! removes it, checks the MD5 itself (400 BadDigest and nothing stored on a mismatch, 400
//! InvalidDigest for a malformed one), and sends a CRC-32 S3 verifies instead. DeleteObjects
//! always gets its CRC-32; general-purpose buckets keep Content-MD5 as is.

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use md5::{Digest, Md5};
use s3x_emulator::{Fault, SeenRequest};

use crate::harness::{
    assert_metric, data, eventually, send_on_new_connection, zonal_host, Harness, Options, Reply,
    BUCKET,
};

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn md5(body: &[u8]) -> String {
    b64(&Md5::digest(body))
}

pub fn crc32(body: &[u8]) -> String {
    b64(&crc32fast::hash(body).to_be_bytes())
}

/// A digest of 16 bytes that is not the body's.
pub const WRONG: &str = "AAAAAAAAAAAAAAAAAAAAAA==";

pub const COMPAT: &str = "s3x_proxy_compat_total";

/// The requests the emulator saw of `operation`, oldest first.
pub fn seen(h: &Harness, operation: &str) -> Vec<SeenRequest> {
    let log = h.emulator.requests_log();
    log.into_iter()
        .filter(|r| r.operation == operation)
        .collect()
}

/// The value of header `name` on a request the emulator saw.
pub fn header<'a>(request: &'a SeenRequest, name: &str) -> Option<&'a str> {
    let mut values = request.headers.iter().filter(|(n, _)| n == name);
    values.next().map(|(_, v)| v.as_str())
}

/// The checksum headers of `key` as S3 stored them (GET with `x-amz-checksum-mode`).
async fn stored_checksum(h: &Harness, key: &str) -> Option<String> {
    let path = format!("/{key}");
    let mode = [("x-amz-checksum-mode", "ENABLED")];
    let got = h
        .forward(Method::GET, BUCKET, &path, &mode, Bytes::new())
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text());
    got.header("x-amz-checksum-crc32").map(str::to_owned)
}

async fn put(h: &Harness, key: &str, body: &Bytes, content_md5: &str) -> Reply {
    let headers = [("content-md5", content_md5)];
    let path = format!("/{key}");
    h.forward(Method::PUT, BUCKET, &path, &headers, body.clone())
        .await
}

/// PUTs `body` with `Content-MD5` and no Content-LENGTH (chunked, 64 KiB frames).
async fn put_unknown_length(h: &Harness, key: &str, body: &Bytes, content_md5: &str) -> Reply {
    let host = zonal_host(BUCKET);
    let frames: Vec<Result<hyper::body::Frame<Bytes>, Infallible>> = body
        .chunks(64 * 1024)
        .map(|c| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let request = Request::builder()
        .method(Method::PUT)
        .uri(format!("http://{host}/{key}"))
        .header("host", &host)
        .header("content-md5", content_md5)
        .body(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
        .unwrap();
    send_on_new_connection(h.proxy, request).await
}

#[track_caller]
pub fn assert_bad_digest(reply: &Reply) {
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_REQUEST, "BadDigest"),
        "{}",
        reply.text()
    );
    assert!(
        reply
            .text()
            .contains("The Content-MD5 you specified did not match what we received."),
        "{}",
        reply.text()
    );
}

/// Every request the emulator saw came without Content-MD5 (S3 Express would answer 501).
#[track_caller]
pub fn assert_no_content_md5_upstream(h: &Harness) {
    let log = h.emulator.requests_log();
    let with: Vec<_> = log.iter().filter(|r| r.content_md5).collect();
    assert!(with.is_empty(), "Content-MD5 reached S3: {with:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_put_is_checked_and_carries_a_crc32_instead() {
    let h = Harness::start(Options::default()).await;
    let body = data(10_000, 1);
    let reply = put(&h, "small", &body, &md5(&body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        h.emulator.object(BUCKET, "small").as_deref(),
        Some(&body[..])
    );
    let puts = seen(&h, "PutObject");
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].status, 200);
    assert_eq!(
        header(&puts[0], "x-amz-checksum-crc32"),
        Some(crc32(&body).as_str()),
        "a CRC-32 header S3 verified"
    );
    assert_no_content_md5_upstream(&h);
    assert_eq!(stored_checksum(&h, "small").await, Some(crc32(&body)));
    assert_metric(&h.metrics().await, COMPAT, &[("kind", "content_md5")], 1.0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_put_is_checked_and_carries_a_crc32_trailer() {
    let h = Harness::start(Options::default()).await;
    let body = data(5 << 20, 2);
    let reply = put(&h, "large", &body, &md5(&body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(h.emulator.object(BUCKET, "large").as_deref() == Some(&body[..]));
    let puts = seen(&h, "PutObject");
    assert_eq!((puts.len(), puts[0].status), (1, 200));
    assert_eq!(
        header(&puts[0], "x-amz-trailer"),
        Some("x-amz-checksum-crc32"),
        "a CRC-32 trailer S3 verified"
    );
    assert_no_content_md5_upstream(&h);
    assert_eq!(stored_checksum(&h, "large").await, Some(crc32(&body)));

    // The CRC-32 is what protects the bytes from the proxy to S3: a byte flipped on the way
    // is refused by S3, not stored.
    h.emulator.inject(Fault::CorruptUpload { count: 1 });
    let reply = put(&h, "corrupted", &body, &md5(&body)).await;
    assert_eq!(reply.code(), "BadDigest", "{}", reply.text());
    assert_eq!(h.emulator.object(BUCKET, "corrupted"), None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_md5_on_a_streamed_put_stores_nothing() {
    let h = Harness::start(Options::default()).await;
    let body = data(5 << 20, 3);
    let reply = put(&h, "wrong", &body, WRONG).await;
    assert_bad_digest(&reply);
    assert_eq!(h.emulator.object(BUCKET, "wrong"), None, "nothing stored");
    // The emulator records the cut upload when it notices the cut, which may be after the
    // client has its answer.
    let logged = eventually(Duration::from_secs(10), || async {
        !seen(&h, "PutObject").is_empty()
    })
    .await;
    assert!(logged, "the emulator saw the cut upload");
    let puts = seen(&h, "PutObject");
    // S3 saw the upload cut short of its end.
    let cut: Vec<_> = puts
        .iter()
        .map(|r| (r.status, r.error_code.as_deref()))
        .collect();
    assert_eq!(cut, [(400, Some("IncompleteBody"))]);
    // A kept body is checked before anything is sent.
    let small = data(1000, 3);
    let reply = put(&h, "wrong-small", &small, &md5(b"other")).await;
    assert_bad_digest(&reply);
    assert_eq!(h.emulator.object(BUCKET, "wrong-small"), None);
    assert_eq!(seen(&h, "PutObject").len(), puts.len(), "not sent");
    assert_no_content_md5_upstream(&h);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_of_unknown_length_is_checked_before_it_completes() {
    let h = Harness::start(Options::default()).await;
    // Within one part: sent with its length and a CRC-32 header.
    let small = data(100_000, 4);
    let reply = put_unknown_length(&h, "chunked-small", &small, &md5(&small)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        h.emulator.object(BUCKET, "chunked-small").as_deref(),
        Some(&small[..])
    );
    assert_eq!(
        stored_checksum(&h, "chunked-small").await,
        Some(crc32(&small))
    );
    // Over one part: a multipart upload with CRC-32 parts and a full-object CRC-32.
    let body = data(9 << 20, 5);
    let reply = put_unknown_length(&h, "chunked", &body, &md5(&body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(h.emulator.object(BUCKET, "chunked").as_deref() == Some(&body[..]));
    assert_eq!(stored_checksum(&h, "chunked").await, Some(crc32(&body)));
    let parts = seen(&h, "UploadPart");
    assert_eq!(parts.len(), 2);
    for part in &parts {
        assert_eq!(part.status, 200);
        assert!(header(part, "x-amz-checksum-crc32").is_some(), "{part:?}");
    }
    // A mismatch: the upload is aborted, never completed.
    let reply = put_unknown_length(&h, "chunked-wrong", &body, WRONG).await;
    assert_bad_digest(&reply);
    assert_eq!(h.emulator.object(BUCKET, "chunked-wrong"), None);
    assert_eq!(
        seen(&h, "CompleteMultipartUpload").len(),
        1,
        "only the good one"
    );
    assert_eq!(seen(&h, "AbortMultipartUpload").len(), 1);
    assert!(h.emulator.multipart_uploads(BUCKET).is_empty());
    let reply = put_unknown_length(&h, "chunked-small-wrong", &small, WRONG).await;
    assert_bad_digest(&reply);
    assert_eq!(h.emulator.object(BUCKET, "chunked-small-wrong"), None);
    assert_no_content_md5_upstream(&h);
    h.stop().await;
}

/// Creates a multipart upload of `key` and returns its id.
async fn create_upload(h: &Harness, key: &str) -> String {
    let path = format!("/{key}?uploads");
    let created = h
        .forward(Method::POST, BUCKET, &path, &[], Bytes::new())
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let text = created.text();
    let id = text.split("<UploadId>").nth(1).unwrap();
    id.split("</UploadId>").next().unwrap().to_owned()
}

async fn upload_part(h: &Harness, key: &str, id: &str, n: u32, body: &Bytes, md5: &str) -> Reply {
    let path = format!("/{key}?partNumber={n}&uploadId={id}");
    let headers = [("content-md5", md5)];
    h.forward(Method::PUT, BUCKET, &path, &headers, body.clone())
        .await
}

/// The part numbers ListParts shows.
async fn listed_parts(h: &Harness, key: &str, id: &str) -> Vec<String> {
    let path = format!("/{key}?uploadId={id}");
    let listed = h
        .forward(Method::GET, BUCKET, &path, &[], Bytes::new())
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let text = listed.text();
    let numbers = text.split("<PartNumber>").skip(1);
    numbers
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_part_of_a_multipart_upload_is_checked() {
    let h = Harness::start(Options::default()).await;
    let id = create_upload(&h, "mp").await;
    let (one, two) = (data(5 << 20, 6), data(3000, 7));
    // A wrong part, streamed or kept, stores nothing.
    assert_bad_digest(&upload_part(&h, "mp", &id, 1, &one, WRONG).await);
    assert_bad_digest(&upload_part(&h, "mp", &id, 2, &two, WRONG).await);
    assert!(
        listed_parts(&h, "mp", &id).await.is_empty(),
        "no part stored"
    );
    // Right ones are stored, sent without Content-MD5 and without a checksum the upload did
    // not name.
    let first = upload_part(&h, "mp", &id, 1, &one, &md5(&one)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let second = upload_part(&h, "mp", &id, 2, &two, &md5(&two)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());
    assert_eq!(listed_parts(&h, "mp", &id).await, ["1", "2"]);
    let parts = seen(&h, "UploadPart");
    let sent: Vec<_> = parts.iter().filter(|r| r.status == 200).collect();
    assert_eq!(sent.len(), 2);
    for part in sent {
        let checksums = part
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-amz-checksum-"));
        assert_eq!(checksums.count(), 0, "{part:?}");
    }
    let etag = |r: &Reply| r.header("etag").unwrap().to_owned();
    let xml = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        etag(&first),
        etag(&second)
    );
    let path = format!("/mp?uploadId={id}");
    let done = h.forward(Method::POST, BUCKET, &path, &[], xml).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let whole: Vec<u8> = [one, two].concat();
    assert!(h.emulator.object(BUCKET, "mp").as_deref() == Some(&whole[..]));
    assert_no_content_md5_upstream(&h);
    assert_metric(&h.metrics().await, COMPAT, &[("kind", "content_md5")], 4.0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_content_md5_is_invalid_digest_and_nothing_goes_upstream() {
    let h = Harness::start(Options::default()).await;
    let body = data(1000, 8);
    let hex = hex_digest(&body);
    for bad in ["not base64!", "AAAA", hex.as_str()] {
        let reply = put(&h, "bad", &body, bad).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::BAD_REQUEST, "InvalidDigest"),
            "{bad}: {}",
            reply.text()
        );
    }
    // Streamed too: refused before the body.
    let large = data(1 << 20, 8);
    let reply = put(&h, "bad", &large, "AAAA").await;
    assert_eq!(reply.code(), "InvalidDigest", "{}", reply.text());
    assert!(
        h.emulator.requests_log().is_empty(),
        "not even CreateSession"
    );
    h.stop().await;
}

/// The hex MD5 some tools send by mistake (S3 wants base64).
fn hex_digest(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
