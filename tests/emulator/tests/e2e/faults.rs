//! Faults for security work: early answers before the body, resets mid-body, policies.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{Config, Emulator, Fault, Policy, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, host, iam, tls_connect, Client, Creds, BUCKET, OTHER};

/// A bound on every raw socket exchange, so a regression fails instead of hanging.
const BOUND: Duration = Duration::from_secs(20);

async fn start() -> Emulator {
    let config = Config {
        buckets: vec![BUCKET.into(), OTHER.into()],
        ..Config::default()
    };
    Emulator::start(config).await.unwrap()
}

/// A signed HTTP/1.1 request head (no body) for `PUT /key` declaring `length` bytes.
fn put_head(key: &str, length: u64, creds: &Creds) -> String {
    let mut headers = vec![("content-length".to_string(), length.to_string())];
    let path = format!("/{key}");
    let h = host(BUCKET);
    support::sign(
        "PUT",
        &h,
        &path,
        "",
        &mut headers,
        "UNSIGNED-PAYLOAD",
        creds,
    );
    let mut head = format!("PUT {path} HTTP/1.1\r\nhost: {h}\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Reads until the peer closes or fails; returns the bytes and whether it ended in an error.
async fn read_until_closed(tls: &mut (impl AsyncReadExt + Unpin)) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) => return (got, false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, true),
        }
    }
}

/// Splits a raw HTTP/1.1 response into its head (lowercase) and body.
fn split_response(raw: &[u8]) -> (String, &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    (head, &raw[end + 4..])
}

#[tokio::test]
async fn reject_early_answers_before_the_body_and_closes() {
    let emu = start().await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    emu.inject(Fault::RejectEarly {
        count: 2,
        status: 400,
        code: "EntityTooLarge",
        target: Target::Operation("PutObject"),
        after: Duration::ZERO,
    });
    // Requests without a body do not use the fault up.
    let r = c
        .send("GET", "nothing", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // 1. Only the head is sent: the answer comes anyway, then the connection closes.
    let mut tls = tls_connect(emu.addr(), &emu.ca_pem(), &host(BUCKET), b"http/1.1")
        .await
        .unwrap();
    tls.write_all(put_head("big", 64 << 20, &s).as_bytes())
        .await
        .unwrap();
    let (raw, _) = tokio::time::timeout(BOUND, read_until_closed(&mut tls))
        .await
        .expect("the emulator answers without the body and closes");
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let body = String::from_utf8_lossy(body);
    assert!(body.contains("<Code>EntityTooLarge</Code>"), "{body}");
    assert!(body.contains("<RequestId>"), "{body}");

    // 2. A client that keeps sending sees its connection fail while still sending.
    let mut tls = tls_connect(emu.addr(), &emu.ca_pem(), &host(BUCKET), b"http/1.1")
        .await
        .unwrap();
    tls.write_all(put_head("big", 64 << 20, &s).as_bytes())
        .await
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let sent = tokio::time::timeout(BOUND, async {
        let mut sent = 0usize;
        while sent < 64 << 20 {
            if tls.write_all(&chunk).await.is_err() || tls.flush().await.is_err() {
                return Some(sent);
            }
            sent += chunk.len();
        }
        None
    })
    .await
    .expect("writing ends");
    let sent = sent.expect("the connection failed before the whole body was sent");
    assert!(sent < 32 << 20, "failed only after {sent} bytes");

    assert!(emu.object(BUCKET, "big").is_none());
    assert_eq!(emu.counters().errors_by_code["EntityTooLarge"], 2);
    // The fault is used up: the same upload now works.
    let r = c.send("PUT", "big", &[], vec![], "small", &s, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn reject_early_on_h2_answers_and_resets_the_stream() {
    let emu = start().await;
    let mut c = Client::connect(&emu, &host(BUCKET), true).await;
    let s = c.create_session(None).await.unwrap();
    emu.inject(Fault::RejectEarly {
        count: 1,
        status: 403,
        code: "AccessDenied",
        target: Target::Data,
        after: Duration::ZERO,
    });
    let body = Bytes::from(vec![1u8; 4 << 20]);
    let r = c
        .send("PUT", "k", &[], vec![], body, &s, Some("UNSIGNED-PAYLOAD"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.xml("Code").unwrap(), "AccessDenied");
    assert!(emu.object(BUCKET, "k").is_none());
    // The connection itself lives on.
    let r = c.send("PUT", "k", &[], vec![], "v", &s, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn reset_mid_body_sends_part_of_the_body_then_resets() {
    let emu = start().await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let r = c
        .send("PUT", "obj", &[], vec![], data.clone(), &s, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    emu.inject(Fault::ResetMidBody {
        count: 1,
        after_bytes: 100_000,
        target: Target::Operation("GetObject"),
    });
    // HEAD does not use the fault up.
    let r = c
        .send("HEAD", "obj", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let mut headers = vec![];
    let h = host(BUCKET);
    support::sign("GET", &h, "/obj", "", &mut headers, "UNSIGNED-PAYLOAD", &s);
    let mut head = format!("GET /obj HTTP/1.1\r\nhost: {h}\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut tls = tls_connect(emu.addr(), &emu.ca_pem(), &h, b"http/1.1")
        .await
        .unwrap();
    tls.write_all(head.as_bytes()).await.unwrap();
    let (raw, failed) = tokio::time::timeout(BOUND, read_until_closed(&mut tls))
        .await
        .unwrap();
    let (head, body) = split_response(&raw);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-length: 262144"), "{head}");
    assert_eq!(body.len(), 100_000);
    assert_eq!(body, &data[..100_000]);
    assert!(failed, "the connection ends in an error, not a clean close");

    // Used up: the next GET is whole.
    let r = c
        .send("GET", "obj", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn reset_mid_body_on_h2_cuts_the_connection() {
    let emu = start().await;
    let mut c = Client::connect(&emu, &host(BUCKET), true).await;
    let s = c.create_session(None).await.unwrap();
    let data = vec![7u8; 300_000];
    c.send("PUT", "obj", &[], vec![], data.clone(), &s, None)
        .await;
    emu.inject(Fault::ResetMidBody {
        count: 1,
        after_bytes: 50_000,
        target: Target::Data,
    });
    let mut headers = vec![];
    support::sign(
        "GET",
        &host(BUCKET),
        "/obj",
        "",
        &mut headers,
        "UNSIGNED-PAYLOAD",
        &s,
    );
    let (partial, error) =
        tokio::time::timeout(BOUND, c.try_raw("GET", "/obj", &headers, Bytes::new()))
            .await
            .unwrap()
            .expect_err("the body fails");
    let partial = partial.expect("the response head arrived");
    assert_eq!(partial.status, StatusCode::OK);
    assert_eq!(partial.header("content-length").unwrap(), "300000");
    assert!(
        partial.body.len() <= 50_000,
        "{} bytes, {error}",
        partial.body.len()
    );
    // The connection is gone; a new one works.
    let mut c = Client::connect(&emu, &host(BUCKET), true).await;
    let r = c
        .send("GET", "obj", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(r.body.len(), data.len());
}

#[tokio::test]
async fn missing_buckets_and_deny_policies_answer_as_s3() {
    let emu = start().await;
    let mut missing = Client::connect(&emu, &host("nope--usw2-az1--x-s3"), false).await;
    let r = missing.create_session(None).await.unwrap_err();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.xml("Code").unwrap(), "NoSuchBucket");
    assert_eq!(r.xml("BucketName").unwrap(), "nope--usw2-az1--x-s3");
    assert!(r.xml("RequestId").is_some());

    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let before = c.create_session(None).await.unwrap();
    c.send("PUT", "k", &[], vec![], "v", &before, None).await;
    emu.set_bucket_policy(BUCKET, Policy::Deny);
    for mode in [None, Some("ReadOnly"), Some("ReadWrite")] {
        let r = c.create_session(mode).await.unwrap_err();
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.xml("Code").unwrap(), "AccessDenied");
        assert!(r.xml("RequestId").is_some());
    }
    // Copies out of a denied bucket are refused too.
    let mut other = Client::connect(&emu, &host(OTHER), false).await;
    let copy = vec![("x-amz-copy-source".to_string(), format!("/{BUCKET}/k"))];
    let r = other
        .send("PUT", "copy", &[], copy, Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "AccessDenied");
    // A session made before the policy changed lives until it expires.
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &before, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    emu.set_bucket_policy(BUCKET, Policy::ReadWrite);
    c.create_session(None).await.unwrap();
    assert_eq!(emu.counters().access_denied, 4);
}
