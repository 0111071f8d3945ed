//! HTTP/1.1 answers name their headers in S3's case (`ETag`, `Content-Length`), on the wire.

use s3x_emulator::Emulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::express::{start, zonal};
use crate::support::{host, sha256_hex, sign, tls_connect, Creds, BUCKET};

/// The response head, as bytes on the wire, of a signed HTTP/1.1 GET sent over raw TLS.
async fn raw_head(emu: &Emulator, key: &str, creds: &Creds) -> String {
    let h = host(BUCKET);
    let mut headers = Vec::new();
    let empty = sha256_hex(b"");
    sign(
        "GET",
        &h,
        &format!("/{key}"),
        "",
        &mut headers,
        &empty,
        creds,
    );
    let mut req = format!("GET /{key} HTTP/1.1\r\nhost: {h}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut tls = tls_connect(emu.addr(), &emu.ca_pem(), &h, b"http/1.1")
        .await
        .unwrap();
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection ended before the head: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text[..text.find("\r\n\r\n").unwrap() + 2].to_string()
}

#[tokio::test]
async fn http1_header_names_are_written_in_s3s_case() {
    let emu = start().await;
    let (mut c, s) = zonal(&emu, false).await;
    c.send("PUT", "k", &[], vec![], "hello", &s, None).await;
    let head = raw_head(&emu, "k", &s).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for name in [
        "ETag",
        "Last-Modified",
        "Accept-Ranges",
        "Content-Type",
        "Content-Length",
        "Date",
        "Server",
        "x-amz-request-id",
        "x-amz-id-2",
        "x-amz-storage-class",
    ] {
        assert!(head.contains(&format!("\r\n{name}: ")), "{name} in\n{head}");
    }
    let head = raw_head(&emu, "missing", &s).await;
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    for name in ["Content-Type", "Content-Length", "x-amz-request-id"] {
        assert!(head.contains(&format!("\r\n{name}: ")), "{name} in\n{head}");
    }
    // h2 names stay lowercase (and the answers still work).
    let (mut c2, s2) = zonal(&emu, true).await;
    let r = c2.send("GET", "k", &[], vec![], "", &s2, None).await;
    assert_eq!(&r.body[..], b"hello");
}
