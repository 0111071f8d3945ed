//! Tenants cannot stretch what they were allowed (DESIGN §3.2), on the client-signature side:
//! each attack is played through the real proxy with an access file, with requests a tenant
//! signed with aws-sigv4 and then changed in transit. Nothing escalates: the client gets S3's
//! error, the emulator sees nothing (or only what the tenant may do), nothing is stored.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::content_md5::seen;
use crate::harness::{data, eventually, Harness, Options, Reply, BUCKET, WAIT};
use crate::identities::{access_file, WRITER};
use crate::identities_sign::{sha256_hex, Payload, Signed, Tenant};

async fn with_access_file() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let file = access_file(dir.path());
    let h = Harness::start(Options {
        extra_args: vec!["--access-file".into(), file.display().to_string()],
        ..Options::default()
    })
    .await;
    std::mem::forget(dir); // The file must outlive the proxy; it is in the system temp dir.
    h
}

fn writer() -> Tenant<'static> {
    Tenant::new(WRITER)
}

fn object_path(key: &str) -> String {
    format!("/{BUCKET}/{key}")
}

/// Stores `body` at `key` with a genuine signed PUT, then forgets what the emulator saw.
async fn store(h: &Harness, key: &str, body: &[u8]) {
    let put = writer().sign(
        h,
        Method::PUT,
        &object_path(key),
        &[],
        Payload::Hashed(body),
    );
    let reply = put.send(h).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    h.emulator.clear_requests_log();
}

#[track_caller]
fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (status, code),
        "{}",
        reply.text()
    );
}

#[track_caller]
fn assert_headers_not_signed(reply: &Reply, name: &str) {
    assert_error(reply, StatusCode::FORBIDDEN, "AccessDenied");
    let text = reply.text();
    assert!(
        text.contains(
            "<Message>There were headers present in the request which were not signed</Message>"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("<HeadersNotSigned>{name}</HeadersNotSigned>")),
        "{text}"
    );
}

/// Headers that would turn an upload into something its signer never asked for.
const SMUGGLED: [(&str, &str); 5] = [
    ("x-amz-copy-source", "/demo--usw2-az1--x-s3/private"),
    ("x-amz-acl", "public-read"),
    ("x-amz-write-offset-bytes", "7"),
    ("x-amz-meta-owner", "mallory"),
    ("x-amz-storage-class", "EXPRESS_ONEZONE"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_x_amz_headers_on_a_signed_or_presigned_put_are_refused_and_reach_nothing() {
    let h = with_access_file().await;
    store(&h, "private", b"the writer's own secret").await;
    store(&h, "appendable", b"append-").await;
    let body = Bytes::from_static(b"what the signer meant to upload");
    let signed = writer().sign(
        &h,
        Method::PUT,
        &object_path("upload"),
        &[],
        Payload::Hashed(&body),
    );
    let presigned = writer()
        .presigning(Duration::from_secs(300))
        .sign(
            &h,
            Method::PUT,
            &object_path("upload"),
            &[],
            Payload::Unsigned,
        )
        .with_body(body.clone());
    for request in [&signed, &presigned] {
        for (name, value) in SMUGGLED {
            let reply = request.with_header(name, value).send(&h).await;
            assert_headers_not_signed(&reply, name);
        }
        // Several at once are all named.
        let reply = request
            .with_header("x-amz-acl", "public-read")
            .with_header("x-amz-tagging", "a=b")
            .send(&h)
            .await;
        assert_error(&reply, StatusCode::FORBIDDEN, "AccessDenied");
        assert!(
            reply
                .text()
                .contains("<HeadersNotSigned>x-amz-acl, x-amz-tagging</HeadersNotSigned>"),
            "{}",
            reply.text()
        );
    }
    assert!(
        h.emulator.requests_log().is_empty(),
        "the emulator saw nothing: {:?}",
        h.emulator.requests_log()
    );
    assert_eq!(h.emulator.object(BUCKET, "upload"), None);
    assert_eq!(
        h.emulator.object(BUCKET, "appendable").as_deref(),
        Some(&b"append-"[..])
    );
    // The same requests as signed go through, and only as what they are.
    for request in [&signed, &presigned] {
        let reply = request.send(&h).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(
            h.emulator.object(BUCKET, "upload").as_deref(),
            Some(&body[..])
        );
    }
    let operations: Vec<String> = h
        .emulator
        .requests_log()
        .into_iter()
        .map(|r| r.operation)
        .filter(|o| o != "CreateSession")
        .collect();
    assert_eq!(operations, ["PutObject", "PutObject"]);
    // A header the signer did sign is the signer's wish.
    let meta = [("x-amz-meta-owner", "writer")];
    let signed_meta = writer().sign(
        &h,
        Method::PUT,
        &object_path("with-meta"),
        &meta,
        Payload::Hashed(&body),
    );
    let reply = signed_meta.send(&h).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_amz_content_sha256_needs_no_signed_header_because_the_signature_covers_it() {
    let h = with_access_file().await;
    store(&h, "shared", b"shared bytes").await;
    // Header signatures: its value is the canonical request's payload line whether it is in
    // SignedHeaders or not (S3 accepts it unsigned); a changed value breaks the signature.
    let get = writer().sign(
        &h,
        Method::GET,
        &object_path("shared"),
        &[],
        Payload::Unsigned,
    );
    assert!(get.header("x-amz-content-sha256").is_some());
    let reply = get.send(&h).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    // Presigned URLs sign UNSIGNED-PAYLOAD unless a signed x-amz-content-sha256 says
    // otherwise (botocore's rule): adding one that says the same changes nothing, adding a
    // hash or a streaming marker breaks the signature.
    let presigned = writer().presigning(Duration::from_secs(300)).sign(
        &h,
        Method::GET,
        &object_path("shared"),
        &[],
        Payload::Unsigned,
    );
    let same = presigned.with_header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    assert_eq!(same.send(&h).await.status, StatusCode::OK);
    for value in [
        sha256_hex(b""),
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_owned(),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned(),
    ] {
        let reply = presigned
            .with_header("x-amz-content-sha256", &value)
            .send(&h)
            .await;
        assert_error(&reply, StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
    }
    let gets = seen(&h, "GetObject");
    assert_eq!(gets.len(), 2, "only the genuine requests went upstream");
    h.stop().await;
}

#[track_caller]
fn assert_sha256_mismatch(reply: &Reply) {
    assert_error(reply, StatusCode::BAD_REQUEST, "XAmzContentSHA256Mismatch");
    // The XML writer escapes the apostrophes; an XML reader gives S3's words back.
    let text = reply.text().replace("&apos;", "'");
    assert!(
        text.contains(
            "<Message>The provided 'x-amz-content-sha256' header does not match what was computed.</Message>"
        ),
        "{text}"
    );
    assert!(text.contains("<ClientComputedContentSHA256>"), "{text}");
    assert!(text.contains("<S3ComputedContentSHA256>"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_put_replayed_with_another_body_is_refused_and_stores_nothing() {
    let h = with_access_file().await;
    // Small (kept and checked before it is sent).
    let original = data(10_000, 1);
    let put = writer().sign(
        &h,
        Method::PUT,
        &object_path("small"),
        &[],
        Payload::Hashed(&original),
    );
    assert_eq!(put.send(&h).await.status, StatusCode::OK);
    h.emulator.clear_requests_log();
    let reply = put.with_body(data(10_000, 2)).send(&h).await;
    assert_sha256_mismatch(&reply);
    let shorter = put.with_body(original.slice(..5000)).send(&h).await;
    assert_sha256_mismatch(&shorter);
    assert!(seen(&h, "PutObject").is_empty(), "nothing sent");
    assert!(h.emulator.object(BUCKET, "small").as_deref() == Some(&original[..]));
    // Streamed: cut before its end, so S3 stores nothing.
    let large = data(3 << 20, 3);
    let put = writer().sign(
        &h,
        Method::PUT,
        &object_path("large"),
        &[],
        Payload::Hashed(&large),
    );
    let reply = put.with_body(data(3 << 20, 4)).send(&h).await;
    assert_sha256_mismatch(&reply);
    assert_eq!(h.emulator.object(BUCKET, "large"), None, "nothing stored");
    // S3 saw the upload cut short of its end (the emulator notes it once it sees the cut,
    // which may be a moment after the client has its answer).
    eventually(WAIT, || async { !seen(&h, "PutObject").is_empty() }).await;
    let cut: Vec<_> = seen(&h, "PutObject")
        .iter()
        .map(|r| (r.status, r.error_code.clone()))
        .collect();
    assert_eq!(cut, [(400, Some("IncompleteBody".to_owned()))]);
    // Of unknown length: the multipart upload is aborted, never completed.
    let reply = put
        .with_body(data(9 << 20, 5))
        .send_unknown_length(&h, 64 * 1024)
        .await;
    assert_sha256_mismatch(&reply);
    assert_eq!(h.emulator.object(BUCKET, "large"), None, "nothing stored");
    assert!(seen(&h, "CompleteMultipartUpload").is_empty());
    assert!(h.emulator.multipart_uploads(BUCKET).is_empty());
    // The genuine body still goes through, streamed and of unknown length.
    let reply = put.send(&h).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(h.emulator.object(BUCKET, "large").as_deref() == Some(&large[..]));
    let reply = put.send_unknown_length(&h, 64 * 1024).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    h.stop().await;
}

/// Flips one byte of the request body at `at`.
fn flip(request: &Signed, at: usize) -> Signed {
    let mut body = request.body.to_vec();
    body[at] ^= 0x01;
    request.with_body(body)
}

/// Where the `n`th (0-based) `needle` of the body ends.
fn after(body: &[u8], needle: &[u8], n: usize) -> usize {
    let at = body
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .nth(n)
        .map(|(i, _)| i)
        .unwrap();
    at + needle.len()
}

/// Replaces the 64 hex digits after the `n`th `needle` with a signature made by another key.
fn forge(request: &Signed, needle: &[u8], n: usize) -> Signed {
    let start = after(&request.body, needle, n);
    let mut body = request.body.to_vec();
    body[start..start + 64].copy_from_slice(sha256_hex(b"forged").as_bytes());
    request.with_body(body)
}

/// Replaces the `n`th `chunk-signature=` value (0-based) with one made by another key.
fn forge_signature(request: &Signed, n: usize) -> Signed {
    forge(request, b"chunk-signature=", n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_signatures_are_checked_and_a_tampered_chunk_never_reaches_storage() {
    let h = with_access_file().await;
    let content = data(200_000, 6);
    let chunked = writer().sign(
        &h,
        Method::PUT,
        &object_path("chunked"),
        &[],
        Payload::Chunked(&content, 64 * 1024),
    );
    // A data byte in the second chunk, a forged middle signature, a forged final signature.
    let data_offset = chunked.body.len() / 2;
    let last = chunked
        .body
        .windows(16)
        .filter(|w| w == b"chunk-signature=")
        .count()
        - 1;
    for tampered in [
        flip(&chunked, data_offset),
        forge_signature(&chunked, 1),
        forge_signature(&chunked, last),
    ] {
        let reply = tampered.send(&h).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
        assert_eq!(h.emulator.object(BUCKET, "chunked"), None, "nothing stored");
    }
    assert!(
        seen(&h, "PutObject").iter().all(|r| r.status != 200),
        "no upload completed"
    );
    let reply = chunked.send(&h).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(h.emulator.object(BUCKET, "chunked").as_deref() == Some(&content[..]));

    // An empty body has no data to hold back: it is read (and its final signature checked)
    // before anything is sent.
    let empty = writer().sign(
        &h,
        Method::PUT,
        &object_path("empty"),
        &[],
        Payload::Chunked(b"", 64 * 1024),
    );
    let reply = forge_signature(&empty, 0).send(&h).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
    assert_eq!(h.emulator.object(BUCKET, "empty"), None, "nothing stored");
    let reply = empty.send(&h).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        h.emulator.object(BUCKET, "empty").as_deref(),
        Some(&b""[..])
    );

    // With a signed trailer: a forged trailer signature, or a trailer changed after signing.
    let crc = crate::content_md5::crc32(&content);
    let trailer = ("x-amz-checksum-crc32", crc.as_str());
    let with_trailer = writer().sign(
        &h,
        Method::PUT,
        &object_path("trailer"),
        &[],
        Payload::ChunkedTrailer(&content, 64 * 1024, trailer),
    );
    let changed_trailer = {
        let start = after(&with_trailer.body, b"x-amz-checksum-crc32:", 0);
        let mut body = with_trailer.body.to_vec();
        let other = crate::content_md5::crc32(b"other");
        body[start..start + other.len()].copy_from_slice(other.as_bytes());
        with_trailer.with_body(body)
    };
    let trailer_signature = forge(&with_trailer, b"x-amz-trailer-signature:", 0);
    for tampered in [trailer_signature, changed_trailer, flip(&with_trailer, 100)] {
        let reply = tampered.send(&h).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
        assert_eq!(h.emulator.object(BUCKET, "trailer"), None, "nothing stored");
    }
    let reply = with_trailer.send(&h).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(h.emulator.object(BUCKET, "trailer").as_deref() == Some(&content[..]));
    h.stop().await;
}

/// The request with its target replaced.
fn retarget(request: &Signed, target: String) -> Signed {
    let mut changed = request.clone();
    changed.target = target;
    changed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_url_does_exactly_what_its_signer_signed() {
    let h = with_access_file().await;
    store(&h, "shared", b"shared with a presigned URL").await;
    store(&h, "other", b"not shared").await;
    let presigned = writer().presigning(Duration::from_secs(300)).sign(
        &h,
        Method::GET,
        &format!("{}?x-id=GetObject", object_path("shared")),
        &[],
        Payload::Unsigned,
    );
    let reply = presigned.send(&h).await;
    assert_eq!(
        reply.body,
        Bytes::from_static(b"shared with a presigned URL")
    );
    h.emulator.clear_requests_log();
    let url = presigned.target.clone();
    let (path, query) = url.split_once('?').unwrap();
    let mut attempts: Vec<(&str, Signed)> = vec![];
    // Another method.
    for method in [Method::PUT, Method::DELETE, Method::POST] {
        let mut changed = presigned.clone();
        changed.method = method;
        attempts.push(("another method", changed));
    }
    // Another path.
    for other in [
        object_path("other"),
        format!("/{BUCKET}//shared"),
        format!("/{BUCKET}/shared/../other"),
        format!("/{BUCKET}/Shared"),
    ] {
        attempts.push((
            "another path",
            retarget(&presigned, format!("{other}?{query}")),
        ));
    }
    // More query: a subresource, in any spelling, a duplicate, a second value.
    for extra in [
        "uploads",
        "%73ession",
        "acl",
        "partNumber=1",
        "x-id=GetObject",
        "x-id=DeleteObject",
        "versionId=1",
    ] {
        attempts.push(("more query", retarget(&presigned, format!("{url}&{extra}"))));
    }
    attempts.push((
        "a changed parameter",
        retarget(&presigned, url.replace("x-id=GetObject", "x-id=PutObject")),
    ));
    for (what, attempt) in attempts {
        let reply = attempt.send(&h).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "SignatureDoesNotMatch");
        assert!(!reply.text().contains("not shared"), "{what}");
    }
    // Another header.
    let copy = presigned.with_header("x-amz-copy-source", "/demo--usw2-az1--x-s3/other");
    assert_headers_not_signed(&copy.send(&h).await, "x-amz-copy-source");
    let repeated = retarget(&presigned, format!("{url}&X-Amz-Expires=604800"));
    let reply = repeated.send(&h).await;
    assert_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "AuthorizationQueryParametersError",
    );
    assert!(
        h.emulator.requests_log().is_empty(),
        "nothing reached the emulator: {:?}",
        h.emulator.requests_log()
    );
    // The same query spelled otherwise is the same request (S3 decodes before it
    // canonicalises), and is forwarded as that request.
    let respelled = retarget(
        &presigned,
        format!(
            "{path}?{}",
            query.replace("x-id=GetObject", "%78-id=Get%4Fbject")
        ),
    );
    let reply = respelled.send(&h).await;
    assert_eq!(
        reply.body,
        Bytes::from_static(b"shared with a presigned URL")
    );
    let gets = seen(&h, "GetObject");
    assert_eq!(gets.len(), 1);
    assert_eq!(
        (gets[0].path.as_str(), gets[0].query.as_str()),
        ("/shared", "x-id=GetObject")
    );
    assert_eq!(
        h.emulator.object(BUCKET, "other").as_deref(),
        Some(&b"not shared"[..])
    );
    h.stop().await;
}

const BOTO_PRESIGNED: &str = r#"
import os, urllib.request, urllib.error, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-west-2",
                  aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"],
                  config=botocore.config.Config(retries={"max_attempts": 1}))
bucket = os.environ["BUCKET"]
def call(method, url, data=None, headers={}):
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
s3.put_object(Bucket=bucket, Key="boto/secret", Body=b"the writer's secret")
put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "boto/shared"},
                                ExpiresIn=300)
print(call("PUT", put, b"via a presigned URL")[0])
status, body = call("PUT", put, b"", {"x-amz-copy-source": "/" + bucket + "/boto/secret"})
print(status, b"<HeadersNotSigned>x-amz-copy-source</HeadersNotSigned>" in body)
get = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "boto/shared"},
                                ExpiresIn=300)
print(call("GET", get)[1].decode())
print(call("DELETE", get)[0])
print(call("GET", get + "&uploads")[0])
"#;

/// boto3's own presigned URLs (signed with the session the proxy minted for the tenant, as
/// boto3 signs for directory buckets) do what they say, and no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_presigned_urls_do_what_they_say_and_no_more() {
    use crate::clients::{clean, venv};
    let h = with_access_file().await;
    let script = h.dir.path().join("presigned.py");
    std::fs::write(&script, BOTO_PRESIGNED).unwrap();
    let mut python = clean(&venv().join("bin/python"), h.dir.path());
    python
        .env("ENDPOINT", format!("http://{}", h.proxy))
        .env("BUCKET", BUCKET)
        .env("KEY", WRITER.0)
        .env("SECRET", WRITER.1)
        .arg(&script);
    let output = tokio::task::spawn_blocking(move || python.output().unwrap())
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["200", "403 True", "via a presigned URL", "403", "403"],
        "{out}"
    );
    assert_eq!(
        h.emulator.object(BUCKET, "boto/shared").as_deref(),
        Some(&b"via a presigned URL"[..])
    );
    let copies = seen(&h, "CopyObject");
    assert!(copies.is_empty(), "{copies:?}");
    h.stop().await;
}

/// Over h2 the target's `:authority` decides where a request goes; a presigned URL for one
/// bucket, sent with another bucket's host as `:authority` and the signed host left in a Host
/// header, must not reach the other bucket (both readable by the signer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_h2_the_host_verified_is_the_host_routed() {
    use crate::harness::{zonal_host, RO_BUCKET};
    use crate::identities::READER;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let h = with_access_file().await;
    store(&h, "shared", b"shared with a presigned URL").await;
    let signed_host = zonal_host(BUCKET);
    let presigned = Tenant::new(READER)
        .presigning(Duration::from_secs(300))
        .sign_for(&signed_host, Method::GET, "/shared", &[], Payload::Unsigned);
    let tcp = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut send = |authority: &str| {
        let request = http::Request::builder()
            .method(Method::GET)
            .uri(format!("http://{authority}{}", presigned.target))
            .header("host", &signed_host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        sender.send_request(request)
    };
    let genuine = send(&signed_host).await.unwrap();
    assert_eq!(genuine.status(), StatusCode::OK);
    let body = genuine.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, Bytes::from_static(b"shared with a presigned URL"));
    h.emulator.clear_requests_log();
    let moved = send(&zonal_host(RO_BUCKET)).await.unwrap();
    let status = moved.status();
    let body = moved.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, StatusCode::FORBIDDEN, "{body:?}");
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
    assert!(
        h.emulator.requests_log().is_empty(),
        "nothing reached the other bucket: {:?}",
        h.emulator.requests_log()
    );
    h.stop().await;
}
