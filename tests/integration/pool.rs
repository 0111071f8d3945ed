//! Upstream connections: the pool's bounds after a burst and its idle lifetime, client
//! connections sharing its connections, a connection S3 closed while idle, and one whose answer
//! was cut.
//!
//! Connections are counted at the emulator (what it accepted, what is open) and by the proxy's
//! `s3x_proxy_upstream_connections`; waits poll them under a deadline, never a fixed sleep.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use s3x_emulator::{Fault, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{data, eventually, metric, zonal_host, Harness, Options, BUCKET};

const GAUGE: &str = "s3x_proxy_upstream_connections";

/// One keep-alive HTTP/1.1 connection to the proxy, sending forward-proxy requests.
struct Client(SendRequest<Full<Bytes>>);

impl Client {
    async fn connect(h: &Harness) -> Client {
        let stream = TcpStream::connect(h.proxy).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client(sender)
    }

    /// A GET of `key` in `bucket`: its status and body.
    async fn get(&mut self, bucket: &str, key: &str) -> (StatusCode, Bytes) {
        let host = zonal_host(bucket);
        let request = Request::get(format!("http://{host}/{key}"))
            .header("host", &host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.0.ready().await.unwrap();
        let response = self.0.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    }
}

/// Starts the proxy with one worker (one pool) and `args`, and stores `k` in BUCKET (so the
/// session exists before a test counts anything; the PUT leaves one connection in the pool).
async fn start(args: &[&str]) -> Harness {
    let mut extra_args = vec!["--workers".to_string(), "1".to_string()];
    extra_args.extend(args.iter().map(|a| a.to_string()));
    let h = Harness::start(Options {
        extra_args,
        ..Options::default()
    })
    .await;
    put(&h, BUCKET).await;
    h
}

/// PUTs `k` on a connection of its own, and waits until the proxy has seen it close (its
/// upstream connection is then back in the pool).
async fn put(h: &Harness, bucket: &str) {
    let put = h
        .forward(Method::PUT, bucket, "/k", &[], data(1024, 7))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let closed = eventually(Duration::from_secs(20), || async {
        metric(&h.metrics().await, "s3x_proxy_connections_active", &[]) == 0.0
    })
    .await;
    assert!(closed, "the PUT's connection closes");
}

/// Polls until `check` holds (with the gauge and the emulator's open connections), failing
/// after 20 s with what it last saw.
async fn until(h: &Harness, what: &str, check: impl Fn(f64, u64) -> bool) {
    let seen = || async {
        (
            metric(&h.metrics().await, GAUGE, &[]),
            h.emulator.open_connections(),
        )
    };
    let held = eventually(Duration::from_secs(20), || async {
        let (gauge, open) = seen().await;
        check(gauge, open)
    })
    .await;
    let (gauge, open) = seen().await;
    assert!(
        held,
        "{what}: still {gauge} upstream connections by the gauge, {open} open at the emulator"
    );
}

/// Sends one GET on each of `clients` at once, all held in flight together (the emulator
/// delays each answer until all have arrived, give or take), and checks the answers.
async fn burst(h: &Harness, clients: &mut [Client]) {
    h.emulator.inject(Fault::Delay {
        count: clients.len() as u32,
        delay: Duration::from_millis(300),
        target: Target::Operation("GetObject"),
    });
    let gets = clients.iter_mut().map(|c| c.get(BUCKET, "k"));
    for (status, body) in futures_util::future::join_all(gets).await {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, data(1024, 7));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_burst_the_upstream_connections_fall_to_the_idle_bound() {
    let h = start(&[
        "--upstream-max-idle-per-host",
        "2",
        "--client-rest-after",
        "50ms",
    ])
    .await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Client::connect(&h).await);
    }
    burst(&h, &mut clients).await;
    // Eight requests were in flight at once, each on a connection of its own.
    assert!(
        h.emulator.connections_accepted() >= 8,
        "{} connections accepted",
        h.emulator.connections_accepted()
    );
    // The client connections rest and give their connections back: the pool keeps two.
    until(&h, "falls to the bound", |gauge, open| {
        gauge == 2.0 && open == 2
    })
    .await;
    // The two kept are used again: no new connection for the next requests.
    let accepted = h.emulator.connections_accepted();
    let (status, _) = clients[0].get(BUCKET, "k").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.emulator.connections_accepted(), accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_connections_close_after_the_idle_timeout() {
    let h = start(&[
        "--upstream-idle-timeout",
        "200ms",
        "--client-rest-after",
        "50ms",
    ])
    .await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::connect(&h).await);
    }
    burst(&h, &mut clients).await;
    until(&h, "all close", |gauge, open| gauge == 0.0 && open == 0).await;
    // The client connections are still open, and their next requests get new connections.
    let (status, _) = clients[1].get(BUCKET, "k").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_connections_taking_turns_share_one_upstream_connection() {
    let h = start(&["--client-rest-after", "10s"]).await;
    let (mut a, mut b) = (Client::connect(&h).await, Client::connect(&h).await);
    let accepted = h.emulator.connections_accepted();
    // One request at a time: each takes the connection the one before gave back to the pool
    // (the PUT left it there), so no client connection holds one of its own.
    for _ in 0..5 {
        assert_eq!(a.get(BUCKET, "k").await.0, StatusCode::OK);
        assert_eq!(b.get(BUCKET, "k").await.0, StatusCode::OK);
    }
    assert_eq!(
        h.emulator.connections_accepted(),
        accepted,
        "no new connection"
    );
    until(&h, "one open", |gauge, open| gauge == 1.0 && open == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_s3_closed_is_replaced_without_a_retry() {
    let h = start(&["--client-rest-after", "10s"]).await;
    let mut a = Client::connect(&h).await;
    assert_eq!(a.get(BUCKET, "k").await.0, StatusCode::OK);
    // S3 closes the idle connection in the pool (as it closes idle ones).
    h.emulator.cut_connections();
    until(&h, "the emulator closed them", |_, open| open == 0).await;
    let accepted = h.emulator.connections_accepted();
    let (status, body) = a.get(BUCKET, "k").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, data(1024, 7));
    assert_eq!(h.emulator.connections_accepted(), accepted + 1);
    // The dead connection was left before the request was sent: send's one retry is intact.
    let text = h.metrics().await;
    let retries = metric(&text, "s3x_proxy_upstream_retries_total", &[]);
    assert_eq!(retries, 0.0, "{text}");
    until(&h, "the dead one is gone", |gauge, _| gauge == 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_cut_mid_body_closes_its_upstream_connection() {
    let h = start(&["--client-rest-after", "10s"]).await;
    let big = data(8 << 20, 3);
    let put = h
        .forward(Method::PUT, BUCKET, "/big", &[], big.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    until(&h, "one in the pool", |gauge, open| {
        gauge == 1.0 && open == 1
    })
    .await;
    // A client reads the head and a little of the body, then goes away.
    let mut socket = TcpStream::connect(h.proxy).await.unwrap();
    let host = zonal_host(BUCKET);
    let get = format!("GET http://{host}/big HTTP/1.1\r\nhost: {host}\r\n\r\n");
    socket.write_all(get.as_bytes()).await.unwrap();
    let mut some = vec![0u8; 64 * 1024];
    socket.read_exact(&mut some).await.unwrap();
    assert!(some.starts_with(b"HTTP/1.1 200"));
    drop(socket);
    // What is left of that answer must never be read as another request's: the connection
    // closes rather than going back to the pool.
    until(&h, "the cut connection closes", |gauge, open| {
        gauge == 0.0 && open == 0
    })
    .await;
    let mut b = Client::connect(&h).await;
    let (status, body) = b.get(BUCKET, "big").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == big, "the next request reads its own answer");
}
