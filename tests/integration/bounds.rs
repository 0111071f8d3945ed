//! Bounds: with `--client-idle-timeout 300ms`, idle connections of every kind are closed, while
//! slow-but-moving transfers and requests waiting on a slow S3 are not; stalled bodies are cut.
//! `--max-connections` is in `limits.rs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use s3x_emulator::{Fault, Target};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::harness::{data, eventually, metric, zonal_host, Harness, Options, BUCKET, WAIT};

/// The idle timeout every test here runs with.
pub const IDLE: Duration = Duration::from_millis(300);
/// How long a close may take to be seen (the proxy's watchdog notices within 1.25 × IDLE).
pub const BOUND: Duration = Duration::from_secs(5);

pub async fn start(tls_listener: bool, extra: &[&str]) -> Harness {
    let mut extra_args = vec!["--client-idle-timeout".to_string(), "300ms".to_string()];
    extra_args.extend(extra.iter().map(|a| a.to_string()));
    Harness::start(Options {
        tls_listener,
        extra_args,
        ..Options::default()
    })
    .await
}

/// Reads (and drops) whatever arrives until the proxy closes the stream (EOF or reset), within
/// [`BOUND`]; asserts that the close came no earlier than [`IDLE`] after `since`. Returns how
/// many bytes arrived.
pub async fn assert_closed<S: AsyncRead + Unpin>(
    stream: &mut S,
    since: Instant,
    what: &str,
) -> u64 {
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
    };
    if tokio::time::timeout(BOUND, read_all).await.is_err() {
        panic!("{what}: still open {BOUND:?} later");
    }
    let after = since.elapsed();
    assert!(
        after >= IDLE,
        "{what}: closed after {after:?}, before the idle timeout"
    );
    total
}

/// Waits (within [`WAIT`]) until `s3x_proxy_connections_active` is `n`.
pub async fn wait_for_connections(h: &Harness, n: f64) {
    wait_for_gauge(h, "s3x_proxy_connections_active", n).await;
}

/// Waits (within [`WAIT`]) until the proxy's gauge `name` reads `n`.
pub async fn wait_for_gauge(h: &Harness, name: &str, n: f64) {
    let reached = eventually(WAIT, || async {
        metric(&h.metrics().await, name, &[]) == n
    })
    .await;
    assert!(reached, "{name} never became {n}:\n{}", h.metrics().await);
}

/// A rustls client trusting the proxy's CA, offering `alpn`.
pub async fn tls_client(h: &Harness, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let pem = std::fs::read(h.proxy_ca().await).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Sends `CONNECT target` (HTTP/1.0, as the aws CLI does) and reads the proxy's answer head.
pub async fn connect(h: &Harness, target: &str) -> TcpStream {
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    let line = format!("CONNECT {target} HTTP/1.0\r\n\r\n");
    stream.write_all(line.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.expect("an answer to CONNECT");
        head.push(byte);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    stream
}

/// An intercepted tunnel to the test bucket's host, TLS done.
pub async fn intercepted_tunnel(
    h: &Harness,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let host = zonal_host(BUCKET);
    let stream = connect(h, &format!("{host}:443")).await;
    let name = ServerName::try_from(host).unwrap();
    tls_client(h, alpn)
        .await
        .connect(name, stream)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    let h = start(false, &[]).await;
    let since = Instant::now();
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    assert_closed(&mut stream, since, "a silent connection").await;
    wait_for_connections(&h, 0.0).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_stops_after_pri_is_closed() {
    let h = start(false, &[]).await;
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    let since = Instant::now();
    stream.write_all(b"PRI ").await.unwrap();
    assert_closed(&mut stream, since, "a connection stuck in the h2 preface").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_connection_is_closed_after_its_handshake() {
    let h = start(true, &[]).await;
    let tcp = TcpStream::connect(h.tls.unwrap()).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let connector = tls_client(&h, &[b"h2", b"http/1.1"]).await;
    let since = Instant::now();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    assert_closed(&mut tls, since, "a silent TLS connection").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_intercepted_tunnel_is_closed_after_its_handshake() {
    let h = start(false, &[]).await;
    let since = Instant::now();
    let mut tls = intercepted_tunnel(&h, &[b"http/1.1"]).await;
    assert_closed(&mut tls, since, "a silent intercepted tunnel").await;
    wait_for_connections(&h, 0.0).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_plain_tunnel_is_closed_at_both_ends() {
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();
    let h = start(false, &["--allow-connect", "127.0.0.1:*"]).await;
    let since = Instant::now();
    let mut client = connect(&h, &format!("127.0.0.1:{port}")).await;
    let (mut upstream, _) = target.accept().await.unwrap();
    assert_closed(&mut client, since, "a silent plain tunnel").await;
    assert_closed(&mut upstream, since, "the plain tunnel's far end").await;
    wait_for_connections(&h, 0.0).await;
    h.stop().await;
}

/// An h2 connection over the TLS listener; the task resolves when the connection closes.
async fn h2_over_tls(
    h: &Harness,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(h.tls.unwrap()).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tls_client(h, &[b"h2"])
        .await
        .connect(name, tcp)
        .await
        .unwrap();
    let io = TokioIo::new(tls);
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    (
        sender,
        tokio::spawn(async move { conn.await.unwrap_or_default() }),
    )
}

fn h2_request(method: Method, key: &str, body: Bytes) -> Request<Full<Bytes>> {
    let uri = format!("https://localhost/{BUCKET}/{key}");
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(body))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_connection_idle_after_a_request_is_closed() {
    let h = start(true, &[]).await;
    let (mut sender, conn) = h2_over_tls(&h).await;
    let put = h2_request(Method::PUT, "h2-idle", Bytes::from_static(b"x"));
    let response = sender.send_request(put).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let since = Instant::now();
    response.into_body().collect().await.unwrap();
    tokio::time::timeout(BOUND, conn)
        .await
        .expect("the proxy closes the idle h2 connection")
        .unwrap();
    assert!(
        since.elapsed() >= IDLE,
        "closed after {:?}",
        since.elapsed()
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_on_a_slow_s3_are_not_cut() {
    let h = start(true, &[]).await;
    let delay = IDLE * 4;
    let body = data(1000, 1);
    let put = h
        .forward(Method::PUT, BUCKET, "/slow", &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK);
    let get_is_slow = Fault::Delay {
        count: 2,
        delay,
        target: Target::Operation("GetObject"),
    };
    h.emulator.inject(get_is_slow);
    let started = Instant::now();
    let get = h.forward(Method::GET, BUCKET, "/slow", &[], "").await;
    assert_eq!((get.status, &get.body), (StatusCode::OK, &body), "HTTP/1.1");
    let (mut sender, _conn) = h2_over_tls(&h).await;
    let response = sender
        .send_request(h2_request(Method::GET, "slow", Bytes::new()))
        .await
        .expect("h2: the request survives the wait");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        body
    );
    assert!(started.elapsed() >= delay * 2, "the fault applied");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_moving_download_is_not_cut() {
    let h = start(false, &[]).await;
    let body = data(30_000, 2);
    let put = h
        .forward(Method::PUT, BUCKET, "/trickle", &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK);
    // 20 slices a second: a new slice every 50 ms, the whole body in 1.5 s (5 × IDLE).
    h.emulator.inject(Fault::SlowBody {
        bytes_per_sec: 20_000,
    });
    let started = Instant::now();
    let get = h.forward(Method::GET, BUCKET, "/trickle", &[], "").await;
    assert_eq!((get.status, &get.body), (StatusCode::OK, &body));
    assert!(started.elapsed() >= IDLE * 4, "{:?}", started.elapsed());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_is_cut_and_nothing_is_stored() {
    let h = start(false, &[]).await;
    let host = zonal_host(BUCKET);
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    let head = format!(
        "PUT http://{host}/stalled HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1048576\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&data(200 * 1024, 3)).await.unwrap();
    let since = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the stalled upload is cut within {BOUND:?}");
    assert!(since.elapsed() >= IDLE, "cut after {:?}", since.elapsed());
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("<Code>RequestTimeout</Code>"),
        "{answer}"
    );
    assert_eq!(h.emulator.object(BUCKET, "stalled"), None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_download_is_cut() {
    const SIZE: usize = 48 << 20;
    let h = start(false, &[]).await;
    let put = h
        .forward(Method::PUT, BUCKET, "/big", &[], data(SIZE, 4))
        .await;
    assert_eq!(put.status, StatusCode::OK);
    wait_for_connections(&h, 0.0).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    let mut stream = socket.connect(h.proxy).await.unwrap();
    let host = zonal_host(BUCKET);
    let head = format!("GET http://{host}/big HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Stop reading; the proxy's writes stall, and it cuts the connection.
    let since = Instant::now();
    wait_for_connections(&h, 0.0).await;
    assert!(since.elapsed() >= IDLE, "cut after {:?}", since.elapsed());
    let rest = assert_closed(&mut stream, since, "a download nobody reads").await;
    assert!(
        rest < SIZE as u64,
        "the whole object went out: {rest} bytes"
    );
    h.stop().await;
}
