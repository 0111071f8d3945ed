//! Client connections for the scenarios: plain HTTP/1.1 to the proxy, TLS straight to the
//! emulator, and TLS inside a CONNECT tunnel (HTTP/1.1 or h2), plus the request timing loop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The request body type of every scenario.
pub type Body = BoxBody<Bytes, Infallible>;

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// One client connection, HTTP/1.1 or h2.
pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

impl Sender {
    /// Starts HTTP/1.1 on `io`.
    pub async fn h1<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: I) -> Sender {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .expect("h1 handshake");
        tokio::spawn(conn);
        Sender::H1(sender)
    }

    /// Starts h2 on `io`.
    pub async fn h2<I: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: I) -> Sender {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        Sender::H2(sender)
    }

    /// Another handle on the same h2 connection (a new stream per request).
    pub fn clone_h2(&self) -> Sender {
        match self {
            Sender::H2(s) => Sender::H2(s.clone()),
            Sender::H1(_) => panic!("an HTTP/1.1 connection has one request at a time"),
        }
    }

    pub fn is_h2(&self) -> bool {
        matches!(self, Sender::H2(_))
    }

    /// Sends one request and waits for the response head.
    pub async fn send(&mut self, request: Request<Body>) -> Response<Incoming> {
        match self {
            Sender::H1(s) => {
                s.ready().await.expect("connection open");
                s.send_request(request).await.expect("response")
            }
            Sender::H2(s) => {
                s.ready().await.expect("connection open");
                s.send_request(request).await.expect("response")
            }
        }
    }

    /// Sends one request, reads the whole body, and checks the status.
    pub async fn call(&mut self, request: Request<Body>) -> Bytes {
        let response = self.send(request).await;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(
            status.is_success(),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }
}

/// A plain TCP connection with Nagle off.
pub async fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// A TLS client config trusting the PEM certificates given, offering `alpn`, with resumption
/// off so every handshake is a full one.
pub fn tls_config(ca_pem: &[u8], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("PEM certificate")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// TLS straight to the emulator for `host`, speaking HTTP/1.1.
pub async fn direct(
    emulator: SocketAddr,
    host: &str,
    config: &Arc<rustls::ClientConfig>,
) -> Sender {
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let name = ServerName::try_from(host.to_owned()).expect("DNS name");
    let tls = connector
        .connect(name, tcp(emulator).await)
        .await
        .expect("TLS to the emulator");
    Sender::h1(tls).await
}

/// `CONNECT host:443` through the proxy, then a TLS handshake inside the tunnel. Returns the
/// stream and the time from TCP connect to handshake done.
pub async fn tunnel(
    proxy: SocketAddr,
    host: &str,
    config: &Arc<rustls::ClientConfig>,
) -> (tokio_rustls::client::TlsStream<TcpStream>, Duration) {
    let started = Instant::now();
    let mut stream = tcp(proxy).await;
    let connect = format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n");
    stream
        .write_all(connect.as_bytes())
        .await
        .expect("write CONNECT");
    // The proxy says nothing after its answer until the client speaks TLS, so reading in blocks
    // cannot swallow handshake bytes.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.expect("read CONNECT answer");
        assert!(n > 0, "proxy closed the CONNECT");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    let name = ServerName::try_from(host.to_owned()).expect("DNS name");
    let tls = connector
        .connect(name, stream)
        .await
        .expect("the leaf verifies against the proxy CA");
    (tls, started.elapsed())
}

/// A tunnel speaking whatever protocol ALPN chose.
pub async fn tunnel_sender(
    proxy: SocketAddr,
    host: &str,
    config: &Arc<rustls::ClientConfig>,
) -> Sender {
    let (tls, _) = tunnel(proxy, host, config).await;
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        Sender::h2(tls).await
    } else {
        Sender::h1(tls).await
    }
}

/// Request latencies of one run, and how long the run took.
pub struct Run {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl Run {
    /// Merges the latencies of concurrent runs that together took `elapsed`.
    pub fn merge(runs: Vec<Run>, elapsed: Duration) -> Run {
        let latencies = runs.into_iter().flat_map(|r| r.latencies).collect();
        Run { latencies, elapsed }
    }

    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of the latencies, in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        self.latencies.sort_unstable();
        let last = self.latencies.len().saturating_sub(1);
        let index = ((last as f64) * q).round() as usize;
        self.latencies
            .get(index)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }

    /// "N req/s, p50 X ms, p99 Y ms".
    pub fn summary(&mut self) -> String {
        let (p50, p99) = (self.quantile_ms(0.5), self.quantile_ms(0.99));
        format!(
            "{:>7.0} req/s   p50 {p50:.3} ms   p99 {p99:.3} ms   ({} requests)",
            self.per_second(),
            self.latencies.len()
        )
    }
}

/// Sends `count` requests made by `make` one after another on `sender`, timing each.
pub async fn timed<F>(sender: &mut Sender, count: usize, mut make: F) -> Run
where
    F: FnMut(bool) -> Request<Body>,
{
    let mut latencies = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let request = make(sender.is_h2());
        sender.call(request).await;
        latencies.push(t.elapsed());
    }
    Run {
        latencies,
        elapsed: started.elapsed(),
    }
}
