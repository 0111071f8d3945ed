//! Uploads at the edges: a slow upload is not cut by the response-header deadline (it starts
//! once the body is sent), and an upload S3 refuses before reading it gets S3's own answer.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use s3x_emulator::{Fault, Target};
use tokio::net::TcpStream;

use crate::harness::{
    channel_body, data, eventually, send_on_new_connection, zonal_host, Harness, Options, BUCKET,
    WAIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_outlasts_the_response_header_timeout() {
    let h = Harness::start(Options {
        extra_args: vec!["--response-header-timeout".into(), "1s".into()],
        ..Options::default()
    })
    .await;
    let body = data(300 * 1024, 9);
    let puts = || {
        let counters = h.emulator.counters();
        counters.by_operation.get("PutObject").copied().unwrap_or(0)
    };
    let before = puts();
    // A client that sends a third of its body, then holds the rest.
    let (sender, held) = channel_body();
    let host = zonal_host(BUCKET);
    let request = Request::put(format!("http://{host}/slow"))
        .header("host", &host)
        .header("content-length", body.len())
        .body(held)
        .unwrap();
    let upload = tokio::spawn(send_on_new_connection(h.proxy, request));
    sender.send(body.slice(..100 * 1024)).await.unwrap();
    let arrived = eventually(WAIT, || async { puts() > before }).await;
    assert!(arrived, "the upload reaches S3");
    // A GET that S3 does not answer runs out the deadline: once it has, the upload has been
    // with S3 for longer than the deadline too.
    h.emulator.inject(Fault::Delay {
        count: 1,
        delay: Duration::from_secs(60),
        target: Target::Operation("GetObject"),
    });
    let unanswered = h.forward(Method::GET, BUCKET, "/slow", &[], "").await;
    assert_eq!(
        (unanswered.status, unanswered.code().as_str()),
        (StatusCode::GATEWAY_TIMEOUT, "GatewayTimeout"),
        "{}",
        unanswered.text()
    );
    assert!(!upload.is_finished(), "the upload is still going");
    sender.send(body.slice(100 * 1024..)).await.unwrap();
    drop(sender);
    let reply = upload.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        h.emulator.object(BUCKET, "slow").as_deref(),
        Some(&body[..])
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_s3_refuses_before_reading_gets_s3s_answer() {
    let h = Harness::start(Options::default()).await;
    // Warm the session, so the refusal hits the upload itself.
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/warm", &[], Bytes::from_static(b"w"))
            .await
            .status,
        StatusCode::OK
    );
    h.emulator.inject(Fault::RejectEarly {
        count: 1,
        status: 403,
        code: "AccessDenied",
        target: Target::Data,
        // S3 takes a moment to decide; a proxy that did not wait would be sending meanwhile.
        after: Duration::from_millis(200),
    });
    let body = data(4 << 20, 3);
    let reply = h.forward(Method::PUT, BUCKET, "/refused", &[], body).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "S3's answer, not a 502: {}",
        reply.text()
    );
    assert_eq!(h.emulator.object(BUCKET, "refused"), None);
    // The proxy asked S3 first (Expect: 100-continue), so the refused body was never read from
    // the client nor sent: the client's upload cost nothing.
    let text = h.metrics().await;
    let uploaded =
        crate::harness::metric(&text, "s3x_proxy_bytes_total", &[("direction", "upload")]);
    assert_eq!(uploaded, 1.0, "only the warm-up byte went up: {text}");
    let after = h
        .forward(Method::PUT, BUCKET, "/after", &[], data(4 << 20, 4))
        .await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_s3_cuts_short_is_cut_for_the_client_and_counted() {
    let h = Harness::start(Options::default()).await;
    let body = data(2 << 20, 8);
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/cut", &[], body)
            .await
            .status,
        StatusCode::OK
    );
    h.emulator.inject(Fault::ResetMidBody {
        count: 1,
        after_bytes: 100_000,
        target: Target::Data,
    });
    let host = zonal_host(BUCKET);
    let request = Request::builder()
        .uri(format!("http://{host}/cut"))
        .header("host", &host)
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let tcp = TcpStream::connect(h.proxy).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.into_body().collect().await.is_err(),
        "the client sees the cut"
    );
    let text = h.metrics().await;
    crate::harness::assert_metric(
        &text,
        "s3x_proxy_bodies_incomplete_total",
        &[("direction", "download")],
        1.0,
    );
    crate::harness::assert_metric(
        &text,
        "s3x_proxy_bodies_incomplete_total",
        &[("direction", "upload")],
        0.0,
    );
    h.stop().await;
}
