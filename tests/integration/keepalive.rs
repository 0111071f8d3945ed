//! Between requests: an idle HTTP/1.1 connection gives hyper's state back (it is counted in
//! `s3x_proxy_connections_idle`) and is served again, from a new hyper connection, as soon as its
//! next bytes arrive. What hyper had read ahead (half a head, a pipelined request, a TLS hello
//! after CONNECT) must survive the hand-back.

use std::time::Duration;

use http::Method;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::bounds::{tls_client, wait_for_gauge, BOUND};
use crate::harness::{metric, zonal_host, Harness, Options, BUCKET};

/// Reads one HTTP/1.1 response with a `Content-Length`: (status line, body).
async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(BOUND, stream.read_u8())
            .await
            .expect("an answer in time")
            .expect("an answer before the connection closed");
        head.push(byte);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    (head.lines().next().unwrap().to_owned(), body)
}

fn get(key: &str) -> String {
    let host = zonal_host(BUCKET);
    format!("GET http://{host}/{key} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// Waits until the proxy counts `n` resting connections.
async fn wait_for_idle(h: &Harness, n: f64) {
    wait_for_gauge(h, "s3x_proxy_connections_idle", n).await;
}

/// A harness with an object to read, and a keep-alive connection that has read it once. The
/// proxy rests connections after 10 ms (`--client-rest-after`), so tests need not wait long.
async fn rested_connection() -> (Harness, TcpStream) {
    rested_connection_with(&["--client-rest-after", "10ms"]).await
}

async fn rested_connection_with(args: &[&str]) -> (Harness, TcpStream) {
    let h = harness_with_object(args).await;
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    get_object(&mut stream).await;
    (h, stream)
}

/// A harness started with `args`, with the object the tests read.
async fn harness_with_object(args: &[&str]) -> Harness {
    let h = Harness::start(Options {
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..Options::default()
    })
    .await;
    let put = h
        .forward(
            Method::PUT,
            BUCKET,
            "/rest/object",
            &[],
            &b"between requests"[..],
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    h
}

/// GETs the object on `stream` and checks the answer.
async fn get_object<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    stream
        .write_all(get("rest/object").as_bytes())
        .await
        .unwrap();
    let (status, body) = read_response(stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, b"between requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_rests_and_serves_its_next_request() {
    let (h, mut stream) = rested_connection().await;
    wait_for_idle(&h, 1.0).await;
    assert_eq!(
        metric(&h.metrics().await, "s3x_proxy_connections_active", &[]),
        1.0,
        "a resting connection is still open"
    );
    // Each request wakes it (hyper's state comes back for it), and it rests again after.
    for _ in 0..3 {
        get_object(&mut stream).await;
        wait_for_idle(&h, 1.0).await;
    }
    drop(stream);
    wait_for_idle(&h, 0.0).await;
    crate::bounds::wait_for_connections(&h, 0.0).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_split_across_a_rest_and_pipelined_requests_are_served() {
    let (h, mut stream) = rested_connection().await;
    // Half a head wakes a resting connection; the other half is then read by the hyper
    // connection that woke for the first. (A head that a turn of hyper read half of before it
    // rested is handed to the next one: `server_rest_tests.rs`, on tokio's paused clock.)
    wait_for_idle(&h, 1.0).await;
    let request = get("rest/object");
    let (first, second) = request.split_at(request.len() / 2);
    stream.write_all(first.as_bytes()).await.unwrap();
    wait_for_idle(&h, 0.0).await;
    stream.write_all(second.as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, b"between requests");
    // Two requests in one write after a rest: both answered, in order.
    wait_for_idle(&h, 1.0).await;
    let two = format!("{}{}", get("rest/object"), get("rest/missing"));
    stream.write_all(two.as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, b"between requests");
    let (status, body) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("NoSuchKey"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_after_a_rest_opens_its_tunnel() {
    let (h, mut stream) = rested_connection().await;
    wait_for_idle(&h, 1.0).await;
    let host = zonal_host(BUCKET);
    let connect = format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n");
    stream.write_all(connect.as_bytes()).await.unwrap();
    let (status, _) = read_response(&mut stream).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let name = ServerName::try_from(host.clone()).unwrap();
    let mut tls = tls_client(&h, &[b"http/1.1"])
        .await
        .connect(name, stream)
        .await
        .expect("TLS through the tunnel");
    // Inside the tunnel: an origin-form request, which also rests and is served again.
    let inner = format!("GET /rest/object HTTP/1.1\r\nHost: {host}\r\n\r\n");
    for _ in 0..2 {
        tls.write_all(inner.as_bytes()).await.unwrap();
        let (status, body) = read_response(&mut tls).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body, b"between requests");
        wait_for_idle(&h, 1.0).await;
    }
    drop(tls);
    crate::bounds::wait_for_connections(&h, 0.0).await;
    h.stop().await;
}

/// A resting connection is still bound by `--client-idle-timeout`, and the drain closes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resting_connection_is_closed_when_idle() {
    // --client-idle-timeout 300ms
    let h = crate::bounds::start(false, &["--client-rest-after", "10ms"]).await;
    let put = h
        .forward(Method::PUT, BUCKET, "/rest/idle", &[], &b"x"[..])
        .await;
    assert_eq!(put.status, 200);
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    stream.write_all(get("rest/idle").as_bytes()).await.unwrap();
    read_response(&mut stream).await;
    let since = Instant::now();
    crate::bounds::assert_closed(&mut stream, since, "a resting connection").await;
    crate::bounds::wait_for_connections(&h, 0.0).await;
    assert_eq!(
        metric(&h.metrics().await, "s3x_proxy_connections_idle", &[]),
        0.0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_closes_a_resting_connection_at_once() {
    let (h, mut stream) = rested_connection().await;
    wait_for_idle(&h, 1.0).await;
    let since = Instant::now();
    h.stop().await; // --shutdown-grace 5s: a connection the drain missed would hold it that long
    assert!(
        since.elapsed() < Duration::from_secs(2),
        "{:?}",
        since.elapsed()
    );
    let mut rest = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed: {read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_connection_rests_after_a_second_and_0s_keeps_it_busy() {
    let h = harness_with_object(&[]).await;
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    let sent = Instant::now();
    get_object(&mut stream).await;
    wait_for_idle(&h, 1.0).await;
    // It rests once it has been quiet for a whole `--client-rest-after` (1 s) period.
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "rested {:?} after its request, before --client-rest-after (1s)",
        sent.elapsed()
    );
    get_object(&mut stream).await;
    h.stop().await;

    // With `0s` it never rests: it stays with hyper until the idle timeout closes it.
    let h =
        harness_with_object(&["--client-rest-after", "0s", "--client-idle-timeout", "3s"]).await;
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    get_object(&mut stream).await;
    let closed = crate::harness::eventually(crate::harness::WAIT, || async {
        let text = h.metrics().await;
        assert_eq!(
            metric(&text, "s3x_proxy_connections_idle", &[]),
            0.0,
            "rested with --client-rest-after 0s: {text}"
        );
        closed_by_the_proxy(&stream)
    })
    .await;
    assert!(closed, "the idle timeout closes it");
    h.stop().await;
}

/// Whether the proxy has closed `stream` (nothing left to read but its end).
fn closed_by_the_proxy(stream: &TcpStream) -> bool {
    match stream.try_read(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => panic!("bytes from the proxy without a request"),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// With more than `http_settings::CROWDED` (256) client connections open, a connection that starts
/// being served rests after 10 ms idle whatever `--client-rest-after` says: here an hour, which
/// no connection would reach during the test without the rule. (A connection already being
/// served when the crowd came keeps its period: the rule is read when hyper takes it up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_many_connections_open_idle_ones_rest_at_once() {
    let (h, mut first) = rested_connection_with(&["--client-rest-after", "1h"]).await;
    let crowded = s3x_proxy::serve::http_settings::CROWDED as usize;
    let mut streams = Vec::new();
    for _ in 0..crowded + 20 {
        streams.push(TcpStream::connect(h.proxy).await.unwrap());
    }
    // Wait until the proxy holds them all, then make one request on each.
    wait_for_gauge(&h, "s3x_proxy_connections_active", (crowded + 21) as f64).await;
    for stream in &mut streams {
        get_object(stream).await;
    }
    wait_for_idle(&h, (crowded + 20) as f64).await;
    // Each is served again from its rest, and the first one still works.
    get_object(&mut streams[0]).await;
    get_object(&mut streams[crowded]).await;
    get_object(&mut first).await;
}
