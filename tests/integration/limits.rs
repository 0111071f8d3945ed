//! `--max-connections`: past the cap the proxy stops accepting until a connection closes, and
//! `s3x_proxy_connections_active` counts every open client connection, tunnels included.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::bounds::{intercepted_tunnel, wait_for_connections, BOUND};
use crate::harness::{metric, zonal_host, Harness, Options, BUCKET};

/// A keep-alive HTTP/1.1 connection to the proxy; aborting the task closes it.
async fn open(h: &Harness) -> (SendRequest<Full<Bytes>>, JoinHandle<()>) {
    let stream = TcpStream::connect(h.proxy).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    (
        sender,
        tokio::spawn(async move { conn.await.unwrap_or_default() }),
    )
}

/// A forward-proxy PUT of a small object; resolves to its status.
async fn put(sender: &mut SendRequest<Full<Bytes>>, key: &str) -> StatusCode {
    let host = zonal_host(BUCKET);
    let request = Request::builder()
        .method(Method::PUT)
        .uri(format!("http://{host}/{key}"))
        .header("host", &host)
        .body(Full::new(Bytes::from_static(b"limit")))
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

async fn connections_active(h: &Harness) -> f64 {
    metric(&h.metrics().await, "s3x_proxy_connections_active", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_the_proxy_waits_for_one_to_close_and_tunnels_count() {
    let h = Harness::start(Options {
        extra_args: vec!["--max-connections".into(), "3".into()],
        ..Options::default()
    })
    .await;
    let (mut first, first_conn) = open(&h).await;
    assert_eq!(put(&mut first, "one").await, StatusCode::OK);
    let (mut second, _second_conn) = open(&h).await;
    assert_eq!(put(&mut second, "two").await, StatusCode::OK);
    let tunnel = intercepted_tunnel(&h, &[b"http/1.1"]).await;
    assert_eq!(connections_active(&h).await, 3.0);

    // A fourth connection is left in the listen queue: its request gets no answer.
    let (mut fourth, _fourth_conn) = open(&h).await;
    let mut waiting = tokio::spawn(async move { (put(&mut fourth, "four").await, fourth) });
    let early = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
    assert!(early.is_err(), "a fourth connection was served: {early:?}");
    assert_eq!(connections_active(&h).await, 3.0);

    // Closing one lets it in; the count stays at the cap.
    drop(first);
    first_conn.abort();
    let (status, _fourth) = tokio::time::timeout(BOUND, waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(connections_active(&h).await, 3.0);

    // The tunnel held a slot until it closed.
    drop(tunnel);
    wait_for_connections(&h, 2.0).await;
    assert_eq!(put(&mut second, "two-again").await, StatusCode::OK);
    h.stop().await;
}
