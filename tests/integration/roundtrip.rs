//! Object round trips through the proxy, in forward-proxy and endpoint modes.

use http::{Method, StatusCode};

use crate::harness::{data, Harness, Options, Reply, BUCKET};

#[derive(Clone, Copy, Debug)]
enum Mode {
    Forward,
    Endpoint,
}

async fn call(
    h: &Harness,
    mode: Mode,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: bytes::Bytes,
) -> Reply {
    match mode {
        Mode::Forward => h.forward(method, BUCKET, path, headers, body).await,
        Mode::Endpoint => h.endpoint(method, BUCKET, path, headers, body).await,
    }
}

async fn object_round_trip(mode: Mode) {
    let h = Harness::start(Options::default()).await;
    let small = data(1000, 1);
    let large = data(3 * 1024 * 1024 + 17, 2);
    for (key, body) in [("/a/small.bin", &small), ("/large%20file+plus.bin", &large)] {
        let put = call(
            &h,
            mode,
            Method::PUT,
            key,
            &[
                ("content-type", "application/x-test"),
                ("x-amz-meta-color", "blue"),
            ],
            body.clone(),
        )
        .await;
        assert_eq!(
            put.status,
            StatusCode::OK,
            "{mode:?} PUT {key}: {}",
            put.text()
        );
        let get = call(&h, mode, Method::GET, key, &[], bytes::Bytes::new()).await;
        assert_eq!(get.status, StatusCode::OK, "{}", get.text());
        assert!(
            get.body == *body,
            "{mode:?} GET {key} returns the same bytes"
        );
        assert_eq!(get.header("x-amz-meta-color"), Some("blue"));
        let head = call(&h, mode, Method::HEAD, key, &[], bytes::Bytes::new()).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(
            head.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
    assert_eq!(
        h.emulator.object(BUCKET, "large file+plus.bin").as_deref(),
        Some(&large[..])
    );

    let range = call(
        &h,
        mode,
        Method::GET,
        "/large%20file+plus.bin",
        &[("range", "bytes=100-1099")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(range.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(range.body, large.slice(100..1100));

    let list = call(
        &h,
        mode,
        Method::GET,
        "?list-type=2&prefix=a%2F",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.text().contains("<Key>a/small.bin</Key>"),
        "{}",
        list.text()
    );
    assert!(
        !list.text().contains("large"),
        "prefix filters: {}",
        list.text()
    );

    let delete = call(
        &h,
        mode,
        Method::DELETE,
        "/a/small.bin",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT);
    let gone = call(
        &h,
        mode,
        Method::GET,
        "/a/small.bin",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (StatusCode::NOT_FOUND, "NoSuchKey")
    );

    let batch = "<Delete><Object><Key>large file+plus.bin</Key></Object></Delete>";
    let deleted = call(
        &h,
        mode,
        Method::POST,
        "?delete",
        &[("content-type", "application/xml")],
        batch.into(),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    assert!(h.emulator.object(BUCKET, "large file+plus.bin").is_none());

    let counters = h.emulator.counters();
    assert_eq!(
        counters.signature_failures, 0,
        "every request was signed correctly: {counters:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_in_forward_mode() {
    object_round_trip(Mode::Forward).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_in_endpoint_mode() {
    object_round_trip(Mode::Endpoint).await;
}

async fn multipart(mode: Mode) {
    let h = Harness::start(Options {
        min_part_size: 1024 * 1024,
        ..Options::default()
    })
    .await;
    let created = call(
        &h,
        mode,
        Method::POST,
        "/mp/object?uploads",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let text = created.text();
    let upload_id = text
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_owned();
    let parts = [data(1024 * 1024, 10), data(1024 * 1024, 11), data(1234, 12)];
    let mut etags = Vec::new();
    // Upload out of order: ListParts must still come back sorted.
    for n in [2usize, 1, 3] {
        let path = format!("/mp/object?partNumber={n}&uploadId={upload_id}");
        let reply = call(&h, mode, Method::PUT, &path, &[], parts[n - 1].clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "part {n}: {}", reply.text());
        etags.push((n, reply.header("etag").unwrap().to_owned()));
    }
    let listed = call(
        &h,
        mode,
        Method::GET,
        &format!("/mp/object?uploadId={upload_id}"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let numbers: Vec<&str> = listed
        .text()
        .leak()
        .split("<PartNumber>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect();
    assert_eq!(numbers, ["1", "2", "3"]);
    etags.sort();
    let xml: String = etags
        .iter()
        .map(|(n, e)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"))
        .collect();
    let body = format!("<CompleteMultipartUpload>{xml}</CompleteMultipartUpload>");
    let done = call(
        &h,
        mode,
        Method::POST,
        &format!("/mp/object?uploadId={upload_id}"),
        &[],
        body.into(),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let whole: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let get = call(
        &h,
        mode,
        Method::GET,
        "/mp/object",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert!(
        get.body == whole,
        "the completed object is the parts in order"
    );

    // An abandoned upload can be aborted.
    let created = call(
        &h,
        mode,
        Method::POST,
        "/mp/abandoned?uploads",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    let text = created.text();
    let upload_id = text
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_owned();
    let aborted = call(
        &h,
        mode,
        Method::DELETE,
        &format!("/mp/abandoned?uploadId={upload_id}"),
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(aborted.status, StatusCode::NO_CONTENT);
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_round_trips_in_forward_mode() {
    multipart(Mode::Forward).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_upload_round_trips_in_endpoint_mode() {
    multipart(Mode::Endpoint).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_object_is_signed_with_iam_credentials() {
    let h = Harness::start(Options::default()).await;
    let body = data(5000, 3);
    h.forward(Method::PUT, BUCKET, "/source", &[], body.clone())
        .await;
    let copied = h
        .forward(
            Method::PUT,
            BUCKET,
            "/copy",
            &[("x-amz-copy-source", &format!("/{BUCKET}/source"))],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(copied.status, StatusCode::OK, "{}", copied.text());
    assert_eq!(
        h.emulator.object(BUCKET, "copy").as_deref(),
        Some(&body[..])
    );
    let counters = h.emulator.counters();
    assert_eq!(
        counters
            .auth_by_operation
            .get("CopyObject")
            .map(String::as_str),
        Some("iam")
    );
    assert_eq!(counters.signature_failures, 0);
    h.stop().await;
}

/// Sends a PUT whose body has no Content-Length (HTTP/1.1 chunked), in 100 kB frames.
async fn put_chunked(
    h: &Harness,
    path: &str,
    body: &bytes::Bytes,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let chunks: Vec<Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>> = body
        .chunks(100_000)
        .map(|c| Ok(http_body::Frame::data(bytes::Bytes::copy_from_slice(c))))
        .collect();
    let stream = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
    let host = crate::harness::zonal_host(BUCKET);
    let tcp = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::put(format!("http://{host}{path}"))
        .header("host", &host)
        .header("expect", "100-continue");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = sender
        .send_request(request.body(stream).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let etag = response
        .headers()
        .get("etag")
        .map(|e| e.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, etag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_chunked_upload_is_sent_with_its_length() {
    // S3 refuses object data of unknown length (the emulator does too, with 411).
    let h = Harness::start(Options::default()).await;
    let body = data(2 * 1024 * 1024 + 3, 9);
    let (status, _) = put_chunked(&h, "/chunked", &body, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h.emulator.object(BUCKET, "chunked").as_deref(),
        Some(&body[..])
    );
    assert_eq!(
        h.emulator
            .counters()
            .by_operation
            .get("CreateMultipartUpload"),
        None
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_chunked_upload_becomes_a_multipart_upload() {
    let h = Harness::start(Options::default()).await;
    let body = data(20 * 1024 * 1024 + 5, 10);
    let (status, etag) = put_chunked(
        &h,
        "/chunked-big",
        &body,
        &[
            ("content-type", "application/x-big"),
            ("x-amz-meta-origin", "stdin"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!etag.is_empty(), "the client gets the object's ETag");
    assert_eq!(
        h.emulator.object(BUCKET, "chunked-big").as_deref(),
        Some(&body[..])
    );
    let headers = h.emulator.object_headers(BUCKET, "chunked-big").unwrap();
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/x-big"),
        "{headers:?}"
    );
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "x-amz-meta-origin" && v == "stdin"),
        "{headers:?}"
    );
    let counters = h.emulator.counters();
    assert_eq!(
        counters.by_operation.get("UploadPart"),
        Some(&3),
        "8 + 8 + 4 MiB: {counters:?}"
    );
    assert_eq!(
        counters.by_operation.get("CompleteMultipartUpload"),
        Some(&1)
    );
    assert!(h.emulator.multipart_uploads(BUCKET).is_empty());
    assert_eq!(counters.signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_mode_accepts_virtual_hosted_requests() {
    // `--endpoint-url http://proxy.example:8080` with a hostname makes SDKs send
    // `Host: BUCKET.proxy.example:8080` and origin-form paths.
    let h = Harness::start(Options::default()).await;
    let host = format!("{BUCKET}.proxy.example:{}", h.proxy.port());
    let body = data(4321, 15);
    let put = h
        .send(Method::PUT, "/vhost/key", &host, &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let get = h
        .send(Method::GET, "/vhost/key", &host, &[], bytes::Bytes::new())
        .await;
    assert!(get.body == body);
    let list = h
        .send(
            Method::GET,
            "/?list-type=2",
            &host,
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert!(list.text().contains("<Key>vhost/key</Key>"));
    h.stop().await;
}
