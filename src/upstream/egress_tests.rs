//! The upstream connector: the S3-only guard, `--resolve`, and CONNECT through an egress proxy.

use super::*;
use tokio::io::duplex;
use tokio::net::TcpListener;
use tower_service::Service;

use crate::upstream::egress_proxy::NoProxy;

fn connector(resolve: ResolveOverrides, egress: Option<Egress>) -> Connector {
    connector_with_deadline(resolve, egress, Duration::from_secs(5))
}

fn connector_with_deadline(
    resolve: ResolveOverrides,
    egress: Option<Egress>,
    deadline: Duration,
) -> Connector {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Connector::new(Arc::new(resolve), egress, Arc::new(tls), deadline)
}

fn egress(url: &str, no_proxy: &str) -> Egress {
    Egress {
        proxy: EgressProxy::parse(url).unwrap(),
        no_proxy: NoProxy::parse(no_proxy),
        source: "--upstream-proxy",
    }
}

/// Runs the tunnel handshake against a scripted proxy answer; returns what was sent and the
/// outcome.
async fn handshake(proxy: &str, answer: &'static [u8]) -> (String, Result<(), EgressError>) {
    let proxy = EgressProxy::parse(proxy).unwrap();
    let (mut ours, mut theirs) = duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.ends_with(b"\r\n\r\n") {
            let n = theirs.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        theirs.write_all(answer).await.unwrap();
        String::from_utf8(seen).unwrap()
    });
    let host = "b.s3.us-west-2.amazonaws.com";
    let result = connect_tunnel(&mut ours, &proxy, host, 443).await;
    (server.await.unwrap(), result)
}

#[tokio::test]
async fn connect_names_the_s3_host_and_sends_basic_credentials() {
    let (sent, result) = handshake(
        "http://us%65r:pa%3Ass@proxy:3128",
        b"HTTP/1.1 200 Connection established\r\n\r\n",
    )
    .await;
    result.unwrap();
    assert_eq!(
        sent,
        "CONNECT b.s3.us-west-2.amazonaws.com:443 HTTP/1.1\r\n\
         Host: b.s3.us-west-2.amazonaws.com:443\r\n\
         Proxy-Authorization: Basic dXNlcjpwYTpzcw==\r\n\r\n"
    );
    let (sent, result) = handshake("http://proxy:3128", b"HTTP/1.0 204 OK\r\nVia: x\r\n\r\n").await;
    result.unwrap();
    assert!(!sent.contains("Proxy-Authorization"), "{sent}");
}

#[tokio::test]
async fn a_refusal_names_the_status_but_not_the_proxy() {
    let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
        Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 5\r\n\r\ndenied";
    let (_, result) = handshake("http://user:s3cret@proxy.corp:3128", answer).await;
    let message = result.unwrap_err().to_string();
    assert_eq!(
        message,
        "the egress proxy refused the tunnel: 407 Proxy Authentication Required"
    );
    let (_, result) = handshake("http://proxy:3128", b"HTTP/1.1 503 Nope\r\n\r\n").await;
    assert!(matches!(result, Err(EgressError::Refused(s)) if s == 503));
}

#[tokio::test]
async fn broken_answers_are_connect_errors() {
    for (answer, expected) in [
        (
            &b"HTTP/1.1 200 OK\r\n\r\nearly"[..],
            "had bytes after its head",
        ),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "was not HTTP/1.x"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "was not HTTP/1.x"),
        (b"HTTP/1.1 200 OK\r\n", "ended before its head did"),
    ] {
        let (_, result) = handshake("http://proxy:3128", answer).await;
        let message = result.unwrap_err().to_string();
        assert!(message.ends_with(expected), "{message}");
    }
    let long: &'static [u8] =
        Box::leak(format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(9000)).into_boxed_str())
            .as_bytes();
    let (_, result) = handshake("http://proxy:3128", long).await;
    assert!(result
        .unwrap_err()
        .to_string()
        .ends_with("had a head over 8 KiB"));
}

#[tokio::test]
async fn the_connector_dials_only_aws_s3_names_or_resolve_matches() {
    let resolve = ResolveOverrides::new(vec![(
        "*.example.test".into(),
        "127.0.0.1:9".parse().unwrap(),
    )]);
    for egress in [None, Some(egress("http://127.0.0.1:9", ""))] {
        let mut connector = connector(resolve.clone(), egress);
        for uri in [
            "https://localhost/",
            "https://169.254.169.254/",
            "https://evil.com/",
            "https://s3.us-west-2.amazonaws.com:8443/",
        ] {
            let error = connector.call(uri.parse().unwrap()).await.unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied, "{uri}");
        }
        // A --resolve match is dialed (and refused by the closed port, not by the guard).
        let error = connector
            .call("https://a.example.test/".parse().unwrap())
            .await
            .unwrap_err();
        assert_ne!(error.kind(), io::ErrorKind::PermissionDenied);
    }
}

/// A one-connection CONNECT proxy on port 0 that answers 200 and reports the request head.
async fn connect_proxy() -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8(seen).unwrap()
    });
    (addr, task)
}

#[tokio::test]
async fn s3_hosts_go_through_the_egress_proxy() {
    let (addr, seen) = connect_proxy().await;
    let mut connector = connector(
        ResolveOverrides::default(),
        Some(egress(&format!("http://u:p@{addr}"), "localhost")),
    );
    let uri = "https://b.s3.us-west-2.amazonaws.com/key".parse().unwrap();
    let stream = connector.call(uri).await.unwrap();
    assert!(matches!(stream, MaybeHttpsStream::Http(_)));
    let seen = seen.await.unwrap();
    assert!(
        seen.starts_with("CONNECT b.s3.us-west-2.amazonaws.com:443 HTTP/1.1\r\n"),
        "{seen}"
    );
}

#[tokio::test]
async fn resolve_matches_and_no_proxy_hosts_bypass_the_egress_proxy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resolve = ResolveOverrides::new(vec![(
        "b.s3.us-west-2.amazonaws.com".into(),
        target.local_addr().unwrap(),
    )]);
    // The region does not exist, so the direct path fails at DNS, before any connection.
    let nowhere = "b.s3.zz-nowhere-9.amazonaws.com";
    let mut connector = connector(
        resolve,
        Some(egress(
            &format!("http://{proxy}"),
            "zz-nowhere-9.amazonaws.com",
        )),
    );
    let uri = "https://b.s3.us-west-2.amazonaws.com/".parse().unwrap();
    connector.call(uri).await.unwrap();
    target.accept().await.unwrap();
    let uri = format!("https://{nowhere}/").parse().unwrap();
    let error = connector.call(uri).await.unwrap_err();
    assert!(!error.to_string().contains("egress proxy"), "{error}");
    // A connection made to the proxy would be waiting in its backlog by now.
    let accepted = tokio::time::timeout(Duration::ZERO, listener.accept()).await;
    assert!(accepted.is_err(), "nothing reached the egress proxy");
}

#[tokio::test]
async fn an_unreachable_egress_proxy_is_a_connect_error_without_its_address() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut connector = connector(
        ResolveOverrides::default(),
        Some(egress(&format!("http://user:s3cret@{addr}"), "")),
    );
    let uri = "https://b.s3.us-west-2.amazonaws.com/".parse().unwrap();
    let error = connector.call(uri).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("could not reach the egress proxy"),
        "{message}"
    );
    assert!(!message.contains(&addr.port().to_string()) && !message.contains("s3cret"));
}

#[tokio::test]
async fn the_connect_timeout_covers_the_proxy_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and never answers.
    let silent = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
    let mut connector = connector_with_deadline(
        ResolveOverrides::default(),
        Some(egress(&format!("http://{addr}"), "")),
        Duration::from_millis(300),
    );
    let uri = "https://b.s3.us-west-2.amazonaws.com/".parse().unwrap();
    let error = connector.call(uri).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        error.to_string(),
        "connecting through the egress proxy timed out"
    );
    assert!(silent.await.unwrap().is_ok(), "the proxy was reached");
}

#[test]
fn resolve_overrides_match_exact_hosts_and_wildcards() {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
    let table = ResolveOverrides::new(vec![
        ("exact.example.com".into(), a),
        ("*.amazonaws.com".into(), b),
    ]);
    assert_eq!(table.lookup("exact.example.com"), Some(a));
    assert_eq!(
        table.lookup("b.s3express-usw2-az1.us-west-2.amazonaws.com"),
        Some(b)
    );
    assert_eq!(table.lookup("amazonaws.com"), None);
    assert_eq!(table.lookup("evilamazonaws.com"), None);
    assert_eq!(table.lookup("other.example.com"), None);
    let c: SocketAddr = "127.0.0.1:3".parse().unwrap();
    let specific = ResolveOverrides::new(vec![
        ("*.amazonaws.com".into(), a),
        ("*.us-west-2.amazonaws.com".into(), b),
        ("h.us-west-2.amazonaws.com".into(), c),
    ]);
    assert_eq!(specific.lookup("h.us-west-2.amazonaws.com"), Some(c));
    assert_eq!(specific.lookup("x.us-west-2.amazonaws.com"), Some(b));
    assert_eq!(specific.lookup("x.us-east-1.amazonaws.com"), Some(a));
}
