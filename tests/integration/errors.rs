//! Bad input and refused requests get S3-style XML errors with the right status.

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::harness::{zonal_host, Harness, Options, BUCKET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_bucket_name_gets_400_invalid_bucket_name() {
    let h = Harness::start(Options::default()).await;
    let host = "xn--bad--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";
    let reply = h
        .send(
            Method::GET,
            &format!("http://{host}/key"),
            host,
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_REQUEST, "InvalidBucketName")
    );
    assert_eq!(reply.header("content-type"), Some("application/xml"));
    let request_id = reply.header("x-amz-request-id").unwrap().to_owned();
    assert!(
        reply
            .text()
            .contains(&format!("<RequestId>{request_id}</RequestId>")),
        "{}",
        reply.text()
    );
    let path_style = h
        .send(
            Method::GET,
            "/Not_A_Bucket/key",
            &h.proxy.to_string(),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        (path_style.status, path_style.code().as_str()),
        (StatusCode::BAD_REQUEST, "InvalidBucketName")
    );
    assert_eq!(
        h.emulator.counters().requests,
        0,
        "nothing was sent upstream"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_operations_get_501_not_implemented() {
    let h = Harness::start(Options::default()).await;
    for path in ["/?versions", "/key?tagging", "/key?acl", "/?cors"] {
        let reply = h
            .forward(Method::GET, BUCKET, path, &[], Bytes::new())
            .await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::NOT_IMPLEMENTED, "NotImplemented"),
            "{path}"
        );
    }
    assert_eq!(h.emulator.counters().requests, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_that_are_not_s3_are_refused() {
    let h = Harness::start(Options {
        extra_args: vec!["--general-purpose".into(), "false".into()],
        ..Options::default()
    })
    .await;
    for host in [
        "example.com",
        "sts.amazonaws.com",
        "s3.us-west-2.amazonaws.com",
        "169.254.169.254",
    ] {
        let reply = h
            .send(
                Method::GET,
                &format!("http://{host}/latest/meta-data/"),
                host,
                &[],
                Bytes::new(),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::FORBIDDEN, "AccessDenied"),
            "{host}"
        );
    }
    assert_eq!(h.emulator.counters().requests, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_refuses_writes_itself() {
    let h = Harness::start(Options {
        extra_args: vec!["--session-mode".into(), "read-only".into()],
        ..Options::default()
    })
    .await;
    let put = h
        .forward(Method::PUT, BUCKET, "/k", &[], Bytes::from_static(b"x"))
        .await;
    assert_eq!(
        (put.status, put.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    let get = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    let counters = h.emulator.counters();
    assert_eq!(
        (
            counters.create_session_read_only,
            counters.create_session_read_write
        ),
        (1, 0)
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_cannot_be_signed_get_400_and_secrets_never_appear() {
    let h = Harness::start(Options::default()).await;
    let stream = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let host = crate::harness::zonal_host(BUCKET);
    let mut request = http::Request::put(format!("http://{host}/k"))
        .header("host", &host)
        .body(http_body_util::Full::new(Bytes::from_static(b"x")))
        .unwrap();
    request.headers_mut().insert(
        "x-amz-meta-name",
        http::HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
    );
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("<Code>InvalidArgument</Code>"), "{text}");
    assert!(
        !text.contains("emulator/secret") && !text.contains("AKIDEMULATOR"),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_certificate_that_is_not_trusted_is_refused_with_502() {
    let h = Harness::start(Options {
        trust_emulator: false,
        ..Options::default()
    })
    .await;
    let reply = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::BAD_GATEWAY, "BadGateway"),
        "{}",
        reply.text()
    );
    assert_eq!(
        h.emulator.counters().requests,
        0,
        "no request crossed an unverified connection"
    );
    let text = reply.text();
    assert!(
        text.contains("s3express-usw2-az1.us-west-2.amazonaws.com:443")
            && text.contains("UnknownIssuer"),
        "the message names the host and says the certificate was not trusted: {text}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upstream_connection_says_so_with_the_address_dialed() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let h = Harness::start(Options {
        extra_args: vec!["--resolve".into(), format!("{}={addr}", zonal_host(BUCKET))],
        ..Options::default()
    })
    .await;
    let reply = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", reply.text());
    let text = reply.text();
    assert!(
        text.contains(&format!("--resolve {addr}")) && text.contains("refused"),
        "a refused connection is told apart from a TLS failure: {text}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_parameters_are_dropped_and_the_request_re_signed() {
    let h = Harness::start(Options::default()).await;
    assert_eq!(
        h.forward(
            Method::PUT,
            BUCKET,
            "/shared.txt",
            &[],
            Bytes::from_static(b"shared")
        )
        .await
        .status,
        StatusCode::OK
    );
    let date = crate::harness::presign_date();
    let presigned = format!("/shared.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDFAKE%2F20240101%2Fus-west-2%2Fs3express%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=abcdef&x-amz-s3session-token=fake");
    let get = h
        .forward(Method::GET, BUCKET, &presigned, &[], Bytes::new())
        .await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text());
    assert_eq!(&get.body[..], b"shared");
    assert_eq!(h.emulator.counters().signature_failures, 0);
    // A URL past its own expiry is refused, not re-signed.
    let expired = "/shared.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDFAKE%2F20240101%2Fus-west-2%2Fs3express%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=abcdef";
    let requests = h.emulator.counters().requests;
    let old = h
        .forward(Method::GET, BUCKET, expired, &[], Bytes::new())
        .await;
    assert_eq!(
        (old.status, old.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    assert!(old.text().contains("Request has expired"), "{}", old.text());
    assert_eq!(h.emulator.counters().requests, requests, "nothing was sent");
    h.stop().await;
}
