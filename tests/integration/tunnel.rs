//! CONNECT interception: TLS inside the tunnel with a leaf from the proxy's CA, HTTP/1.1 and h2,
//! many requests per tunnel and many tunnels at once; other hosts are refused.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{data, zonal_host, Harness, Options, BUCKET};

/// Sends `CONNECT host:443` the way the aws CLI does (HTTP/1.0, no Host header) and returns
/// the raw stream after the proxy's answer, plus the status code.
async fn connect(h: &Harness, target: &str) -> (TcpStream, u16, String) {
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    stream
        .write_all(format!("CONNECT {target} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (stream, status, text)
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn send(&mut self, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
        let response = match self {
            Sender::H1(s) => {
                s.ready().await.unwrap();
                s.send_request(request).await.unwrap()
            }
            Sender::H2(s) => {
                s.ready().await.unwrap();
                s.send_request(request).await.unwrap()
            }
        };
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }
}

/// Opens an intercepted tunnel to `host` and speaks HTTP over TLS inside it.
async fn tunnel(h: &Harness, host: &str, alpn: &[&[u8]]) -> (Sender, Option<Vec<u8>>) {
    let (stream, status, _) = connect(h, &format!("{host}:443")).await;
    assert_eq!(status, 200);
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(h.proxy_ca().await).unwrap();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tls = connector
        .connect(ServerName::try_from(host.to_owned()).unwrap(), stream)
        .await
        .expect("the leaf verifies against the proxy CA");
    let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(tls);
    let sender = if negotiated.as_deref() == Some(b"h2") {
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        Sender::H2(sender)
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Sender::H1(sender)
    };
    (sender, negotiated)
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap())
        .collect()
}

fn request(method: Method, host: &str, path: &str, h2: bool, body: Bytes) -> Request<Full<Bytes>> {
    let builder = Request::builder().method(method);
    let builder = if h2 {
        builder.uri(format!("https://{host}{path}"))
    } else {
        builder.uri(path).header("host", host)
    };
    builder.body(Full::new(body)).unwrap()
}

async fn many_requests_over_one_tunnel(alpn: &[&[u8]], expect_h2: bool) {
    let h = Harness::start(Options::default()).await;
    let host = zonal_host(BUCKET);
    let (mut sender, negotiated) = tunnel(&h, &host, alpn).await;
    assert_eq!(negotiated.as_deref() == Some(b"h2"), expect_h2);
    for i in 0..40 {
        let body = data(1000 + i, i as u64);
        let path = format!("/tunnel/{i}");
        let (status, _) = sender
            .send(request(Method::PUT, &host, &path, expect_h2, body.clone()))
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, got) = sender
            .send(request(Method::GET, &host, &path, expect_h2, Bytes::new()))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(got == body, "object {i} round-trips inside one tunnel");
    }
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_ride_one_http1_tunnel() {
    many_requests_over_one_tunnel(&[b"http/1.1"], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_ride_one_h2_tunnel() {
    many_requests_over_one_tunnel(&[b"h2", b"http/1.1"], true).await;
}

/// Two intercepted tunnels to one host taking turns, one request at a time: how many
/// upstream connections they opened after the first request (which leaves one).
async fn upstream_connections_of_two_tunnels_taking_turns(alpn: &[&[u8]], h2: bool) -> u64 {
    let h = Harness::start(Options {
        extra_args: ["--workers", "1", "--client-rest-after", "10s"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    })
    .await;
    let host = zonal_host(BUCKET);
    let (mut a, _) = tunnel(&h, &host, alpn).await;
    let (mut b, _) = tunnel(&h, &host, alpn).await;
    let body = data(1024, 5);
    let (status, _) = a
        .send(request(Method::PUT, &host, "/turns", h2, body.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let accepted = h.emulator.connections_accepted();
    for _ in 0..5 {
        for sender in [&mut a, &mut b] {
            let (status, got) = sender
                .send(request(Method::GET, &host, "/turns", h2, Bytes::new()))
                .await;
            assert_eq!(status, StatusCode::OK);
            assert!(got == body);
        }
    }
    let opened = h.emulator.connections_accepted() - accepted;
    h.stop().await;
    opened
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_tunnels_share_the_pool() {
    // Each request takes the connection the one before gave back: none keeps its own.
    let opened = upstream_connections_of_two_tunnels_taking_turns(&[b"http/1.1"], false).await;
    assert_eq!(opened, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_tunnels_share_the_pool() {
    let opened = upstream_connections_of_two_tunnels_taking_turns(&[b"h2"], true).await;
    assert_eq!(opened, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_parallel_tunnels_all_get_correct_answers() {
    let h = Arc::new(Harness::start(Options::default()).await);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..32u64 {
        let h = h.clone();
        tasks.spawn(async move {
            let host = zonal_host(BUCKET);
            let h2 = client % 2 == 0;
            let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { &[b"http/1.1"] };
            let (mut sender, _) = tunnel(&h, &host, alpn).await;
            for i in 0..5u64 {
                let body = data(4096, client * 100 + i);
                let path = format!("/parallel/{client}/{i}");
                let (status, _) = sender
                    .send(request(Method::PUT, &host, &path, h2, body.clone()))
                    .await;
                assert_eq!(status, StatusCode::OK);
                let (_, got) = sender
                    .send(request(Method::GET, &host, &path, h2, Bytes::new()))
                    .await;
                assert!(got == body, "client {client} object {i}");
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
    let counters = h.emulator.counters();
    assert_eq!(counters.signature_failures, 0);
    assert_eq!(counters.create_session_read_write, 1, "{counters:?}");
    Arc::into_inner(h).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_other_hosts_is_refused_and_bad_targets_rejected() {
    let h = Harness::start(Options::default()).await;
    for target in ["example.com:443", "sts.amazonaws.com:443", "127.0.0.1:22"] {
        let (_, status, text) = connect(&h, target).await;
        assert_eq!(status, 403, "{target}: {text}");
    }
    let (mut stream, status, _) = connect(&h, "example.com:443").await;
    assert_eq!(status, 403);
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("<RequestId>"),
        "{body}"
    );
    let (_, status, _) = connect(&h, "no-port-here").await;
    assert!(
        status == 400,
        "a target without a port is rejected: {status}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_connect_opens_a_plain_tunnel_to_a_chosen_host() {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = echo.accept().await.unwrap();
        let mut buf = [0u8; 5];
        socket.read_exact(&mut buf).await.unwrap();
        socket.write_all(&buf).await.unwrap();
    });
    let h = Harness::start(Options {
        extra_args: vec!["--allow-connect".into(), "127.0.0.1:*".into()],
        ..Options::default()
    })
    .await;
    let (mut stream, status, _) = connect(&h, &format!("127.0.0.1:{echo_port}")).await;
    assert_eq!(status, 200);
    stream.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 5];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_serves_an_operators_certificate() {
    // Mint a certificate for "proxy.test" with a throwaway CA, as an operator would bring one.
    let issuer_dir = tempfile::tempdir().unwrap();
    let issuer = s3x_proxy::serve::ca::CertificateAuthority::load_or_create(issuer_dir.path())
        .await
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["proxy.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "proxy.test");
    let issuer_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(issuer_dir.path().join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let ca_issuer = rcgen::Issuer::from_ca_cert_pem(issuer.cert_pem(), issuer_key).unwrap();
    let cert = params.signed_by(&key, &ca_issuer).unwrap();
    let cert_file = issuer_dir.path().join("tls.pem");
    let key_file = issuer_dir.path().join("tls-key.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let h = Harness::start(Options {
        tls_listener: true,
        extra_args: vec![
            "--tls-cert".into(),
            cert_file.display().to_string(),
            "--tls-key".into(),
            key_file.display().to_string(),
        ],
        ..Options::default()
    })
    .await;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(issuer.cert_pem().as_bytes()) {
        roots.add(c).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(h.tls.unwrap()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("proxy.test").unwrap(), tcp)
        .await
        .expect("the operator's certificate verifies");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let put = Request::put(format!("https://proxy.test/{BUCKET}/over-tls"))
        .body(Full::new(Bytes::from_static(b"tls")))
        .unwrap();
    assert_eq!(
        sender.send_request(put).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        h.emulator.object(BUCKET, "over-tls").as_deref(),
        Some(&b"tls"[..])
    );
    h.stop().await;
}
