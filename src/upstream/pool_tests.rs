//! Tests of one upstream connection driven by its user: a connection that ended while idle
//! gives a queued request back unsent, and one idle past its timeout is not open.

use std::time::Duration;

use http::Request;
use hyper_util::rt::TokioIo;
use prometheus::IntGauge;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::*;

const IDLE: Duration = Duration::from_secs(15);

/// A server that answers one request with an empty 200, then closes once told to.
async fn server() -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (close, closed) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            if socket.read(&mut byte).await.unwrap() == 0 {
                return;
            }
            head.push(byte[0]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let _ = closed.await;
    });
    (addr, close)
}

/// A connection to `addr` as `dial` makes one (without TLS), and a second handle on its socket
/// to watch for the peer's FIN without reading.
async fn connect(addr: std::net::SocketAddr, gauge: &IntGauge) -> (Conn, TcpStream) {
    let socket = std::net::TcpStream::connect(addr).unwrap();
    socket.set_nonblocking(true).unwrap();
    let probe = TcpStream::from_std(socket.try_clone().unwrap()).unwrap();
    let tcp = TokioIo::new(TcpStream::from_std(socket).unwrap());
    let stream = hyper_rustls::MaybeHttpsStream::Http(hyper_rustls::MaybeHttpsStream::Http(tcp));
    let conn = Conn::handshake(stream, IDLE, gauge).await.unwrap();
    (conn, probe)
}

fn get() -> Request<ProxyBody> {
    Request::get("/k")
        .header("host", "h.example")
        .body(crate::body::empty())
        .unwrap()
}

fn gauge() -> IntGauge {
    crate::metrics::upstream_connections_gauge().unwrap()
}

#[tokio::test]
async fn a_request_on_a_connection_the_server_closed_while_idle_comes_back_unsent() {
    let gauge = gauge();
    let (addr, close) = server().await;
    let (mut conn, probe) = connect(addr, &gauge).await;
    let response = send_on(&mut conn, get()).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    conn.settle();
    assert!(conn.is_open(), "idle and ready for the next request");
    // The server closes it; its FIN is in before anyone polls the connection again (as when
    // S3 closes a connection just as a request takes it).
    close.send(()).unwrap();
    let peeked = tokio::time::timeout(Duration::from_secs(10), probe.peek(&mut [0u8; 1]))
        .await
        .expect("the FIN arrives");
    assert_eq!(peeked.unwrap(), 0, "no bytes after the answer: the FIN");
    // hyper reads the FIN, sees an idle connection closed, and ends without taking the
    // queued request: it must come back (not hang, not fail as maybe sent).
    let sent = tokio::time::timeout(Duration::from_secs(10), send_on(&mut conn, get()))
        .await
        .expect("the request comes back instead of waiting on a connection that ended");
    let mut error = sent.expect_err("the connection is closed");
    assert!(
        error.take_message().is_some(),
        "given back unsent: {error:?}"
    );
    assert!(!conn.is_open());
    assert_eq!(gauge.get(), 0, "the ended connection is dropped");
}

#[tokio::test]
async fn a_connection_idle_past_the_timeout_is_not_open() {
    let gauge = gauge();
    let (addr, _close) = server().await;
    let (mut conn, _probe) = connect(addr, &gauge).await;
    let response = send_on(&mut conn, get()).await.unwrap();
    drop(response);
    conn.settle();
    assert!(conn.is_open());
    tokio::time::pause();
    tokio::time::advance(IDLE - Duration::from_millis(1)).await;
    assert!(conn.is_open(), "still within the idle timeout");
    tokio::time::advance(Duration::from_millis(2)).await;
    assert!(
        !conn.is_open(),
        "idle past the timeout: S3 may be closing it"
    );
    // Settling again (it served another request) starts its idle time again.
    conn.settle();
    assert!(conn.is_open());
}

#[tokio::test]
async fn a_closed_connection_is_not_open_and_not_counted() {
    let gauge = gauge();
    let (addr, _close) = server().await;
    let (mut conn, _probe) = connect(addr, &gauge).await;
    assert_eq!(gauge.get(), 1);
    let response = send_on(&mut conn, get()).await.unwrap();
    drop(response);
    conn.close();
    assert!(!conn.is_open());
    assert!(conn
        .drive(&mut Context::from_waker(Waker::noop()))
        .is_ready());
    drop(conn);
    assert_eq!(gauge.get(), 0);
}
