//! Content-MD5 beyond object uploads: DeleteObjects (always given a CRC-32 on directory buckets),
//! general-purpose buckets (Content-MD5 kept as is), and aws-chunked bodies (the MD5 is the
//! decoded payload's).

use http::{Method, StatusCode};

use crate::content_md5::{
    assert_bad_digest, assert_no_content_md5_upstream, b64, crc32, header, md5, seen, COMPAT, WRONG,
};
use crate::harness::{assert_metric, data, Harness, Options, Reply, BUCKET, GP_BUCKET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_gets_a_crc32_with_content_md5_or_with_nothing() {
    let h = Harness::start(Options::default()).await;
    for key in ["a", "b", "c"] {
        let put = h
            .forward(Method::PUT, BUCKET, &format!("/{key}"), &[], "x")
            .await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    }
    let batch = |key: &str| format!("<Delete><Object><Key>{key}</Key></Object></Delete>");
    let delete = |body: String, headers: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            h.forward(Method::POST, BUCKET, "/?delete", &headers, body)
                .await
        }
    };
    let with_md5 = batch("a");
    let reply = delete(
        with_md5.clone(),
        vec![("content-md5", md5(with_md5.as_bytes()))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let bare = batch("b");
    let reply = delete(bare.clone(), vec![]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(h.emulator.keys(BUCKET), ["c"]);
    let deletes = seen(&h, "DeleteObjects");
    assert_eq!(deletes.len(), 2);
    for (request, body) in deletes.iter().zip([&with_md5, &bare]) {
        assert_eq!(request.status, 200);
        let sent = header(request, "x-amz-checksum-crc32");
        assert_eq!(sent, Some(crc32(body.as_bytes()).as_str()), "{request:?}");
    }
    // A wrong MD5 deletes nothing.
    let reply = delete(batch("c"), vec![("content-md5", WRONG.to_owned())]).await;
    assert_bad_digest(&reply);
    assert_eq!(h.emulator.keys(BUCKET), ["c"]);
    // A client's own checksum is kept as it is.
    let own = batch("c");
    let reply = delete(
        own.clone(),
        vec![("x-amz-checksum-crc32c", crc32c(own.as_bytes()))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let last = seen(&h, "DeleteObjects").pop().unwrap();
    assert_eq!(header(&last, "x-amz-checksum-crc32"), None);
    assert!(header(&last, "x-amz-checksum-crc32c").is_some());
    assert_no_content_md5_upstream(&h);
    assert_metric(&h.metrics().await, COMPAT, &[("kind", "content_md5")], 3.0);
    h.stop().await;
}

fn crc32c(body: &[u8]) -> String {
    b64(&crc32c::crc32c(body).to_be_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_purpose_buckets_keep_content_md5_as_is() {
    let h = Harness::start(Options::default()).await;
    let host = format!("{GP_BUCKET}.s3.us-west-2.amazonaws.com");
    let body = data(100_000, 9);
    let digest = md5(&body);
    let headers = [("content-md5", digest.as_str())];
    let uri = format!("http://{host}/kept");
    let reply = h
        .send(Method::PUT, &uri, &host, &headers, body.clone())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let batch = "<Delete><Object><Key>kept</Key></Object></Delete>";
    let digest_batch = md5(batch.as_bytes());
    let headers = [("content-md5", digest_batch.as_str())];
    let uri = format!("http://{host}/?delete");
    let reply = h.send(Method::POST, &uri, &host, &headers, batch).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    for (operation, sent) in [("PutObject", &digest), ("DeleteObjects", &digest_batch)] {
        let request = seen(&h, operation).pop().unwrap();
        assert_eq!(
            header(&request, "content-md5"),
            Some(sent.as_str()),
            "{operation}"
        );
        let checksums = request
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-amz-checksum-"));
        assert_eq!(checksums.count(), 0, "nothing added: {request:?}");
    }
    assert_metric(&h.metrics().await, COMPAT, &[("kind", "content_md5")], 0.0);
    h.stop().await;
}

const FAKE_SIG: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const FAKE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=FAKE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature=00";

/// `body` framed in aws-chunked chunks of 8 KiB, with `;chunk-signature=` when `signed`, and a
/// crc32 trailer when `trailer`.
fn chunked(body: &[u8], signed: bool, trailer: bool) -> Vec<u8> {
    let ext = if signed {
        format!(";chunk-signature={FAKE_SIG}")
    } else {
        String::new()
    };
    let mut out = Vec::new();
    for piece in body.chunks(8192).chain([&[][..]]) {
        out.extend_from_slice(format!("{:x}{ext}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        if !piece.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    }
    if trailer {
        out.extend_from_slice(format!("x-amz-checksum-crc32:{}\r\n", crc32(body)).as_bytes());
        if signed {
            out.extend_from_slice(format!("x-amz-trailer-signature:{FAKE_SIG}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// PUTs `body` as a client framing it in aws-chunked sends it, with `Content-MD5`.
async fn put_chunked(h: &Harness, key: &str, body: &[u8], kind: &str, content_md5: &str) -> Reply {
    let (signed, trailer) = match kind {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => (true, false),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => (true, true),
        _ => (false, true),
    };
    let length = body.len().to_string();
    let mut headers = vec![
        ("x-amz-content-sha256", kind),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", length.as_str()),
        ("content-md5", content_md5),
    ];
    if signed {
        headers.push(("authorization", FAKE_AUTH));
    }
    if trailer {
        headers.push(("x-amz-trailer", "x-amz-checksum-crc32"));
    }
    let framed = chunked(body, signed, trailer);
    let path = format!("/{key}");
    h.forward(Method::PUT, BUCKET, &path, &headers, framed)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_chunked_body_is_checked_once_decoded() {
    let h = Harness::start(Options::default()).await;
    let body = data(200_000, 10);
    for kind in [
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    ] {
        let reply = put_chunked(&h, "chunks", &body, kind, &md5(&body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.text());
        assert!(
            h.emulator.object(BUCKET, "chunks").as_deref() == Some(&body[..]),
            "{kind}"
        );
        let put = seen(&h, "PutObject").pop().unwrap();
        assert_eq!(put.status, 200, "{kind}");
        assert_eq!(
            header(&put, "x-amz-trailer"),
            Some("x-amz-checksum-crc32"),
            "{kind}"
        );

        let reply = put_chunked(&h, "wrong", &body, kind, WRONG).await;
        assert_bad_digest(&reply);
        assert_eq!(h.emulator.object(BUCKET, "wrong"), None, "{kind}");
    }
    assert_no_content_md5_upstream(&h);
    assert_metric(&h.metrics().await, COMPAT, &[("kind", "content_md5")], 6.0);
    h.stop().await;
}
