//! Where credentials may go, tested with an attacker's input: crafted Host headers and
//! authorities, `session` spelled every way, control-plane requests in every mode. The emulator's
//! request log is the recording upstream: it shows the Host and SNI of everything that arrived.

use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::AuthKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{zonal_host, Harness, Options, BUCKET};

/// Writes `head` (and nothing else) to the proxy and returns the status and body it answers.
async fn raw(h: &Harness, head: String) -> (u16, String) {
    let mut stream = TcpStream::connect(h.proxy).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The hosts and SNI names the emulator has seen, and what signed each request.
fn seen(h: &Harness) -> Vec<(String, Option<String>, AuthKind, String)> {
    h.emulator
        .requests_log()
        .into_iter()
        .map(|r| (r.host, r.sni, r.auth, r.operation))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_hosts_never_steer_a_signed_request_anywhere_but_the_genuine_endpoint() {
    let h = Harness::start(Options::default()).await;
    let zonal = zonal_host(BUCKET);
    let crafted = [
        format!(
            "{BUCKET}.s3express-x@localhost:{}/.us-west-2.amazonaws.com",
            h.proxy.port()
        ),
        format!("{BUCKET}.s3express-usw2-az1.us-west-2.amazonaws.com:notaport"),
        format!("{BUCKET}.s3express-usw2-az1.us-west-2.amazonaws.com@127.0.0.1"),
        format!("{BUCKET}.s3express-usw2-az2.us-west-2.amazonaws.com"),
        "localhost:8080/evil".to_owned(),
    ];
    for host in &crafted {
        // Endpoint mode (Host header) and forward mode (absolute form).
        for target in ["/k".to_owned(), format!("http://{host}/k")] {
            let (status, text) = raw(
                &h,
                format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
            )
            .await;
            assert!(
                status == 400 || status == 403,
                "{host} {target}: {status} {text}"
            );
        }
    }
    assert!(
        seen(&h).is_empty(),
        "nothing reached any upstream: {:?}",
        seen(&h)
    );
    // The aws CLI without a region: the zone decides the region, so the genuine host is dialed.
    let wrong_region = format!("{BUCKET}.s3express-usw2-az1.us-east-1.amazonaws.com");
    let reply = h
        .send(
            Method::GET,
            &format!("http://{wrong_region}/missing"),
            &wrong_region,
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
    for (host, sni, _, _) in seen(&h) {
        assert_eq!(host, zonal);
        assert_eq!(sni.as_deref(), Some(zonal.as_str()));
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_subresource_in_any_spelling_is_never_signed_and_sent() {
    let h = Harness::start(Options {
        extra_args: vec!["--session-mode".into(), "read-only".into()],
        ..Options::default()
    })
    .await;
    let zonal = zonal_host(BUCKET);
    let mode = [("x-amz-create-session-mode", "ReadWrite")];
    for query in ["%73ession", "%73%65%73%73%69%6F%6E=", "Session"] {
        let endpoint = h.proxy.to_string();
        for (target, host) in [
            (format!("http://{zonal}/?{query}"), &zonal),
            (format!("/{BUCKET}?{query}"), &endpoint),
            (format!("/{BUCKET}//?{query}"), &endpoint),
            (format!("/?{query}"), &zonal),
        ] {
            let reply = h
                .send(Method::GET, &target, host, &mode, Bytes::new())
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{target}: {}", reply.text());
            assert!(
                reply.text().contains("s3x-proxy-placeholder-token-"),
                "{target} is answered locally: {}",
                reply.text()
            );
        }
    }
    for (method, path) in [
        (Method::PUT, "/k?%73ession"),
        (Method::GET, "/k?session"),
        (Method::DELETE, "/?session"),
        // Beside another operation's subresource it is refused, as any such mix is.
        (Method::GET, "/?policy&%73ession"),
    ] {
        let reply = h
            .send(
                method.clone(),
                &format!("http://{zonal}{path}"),
                &zonal,
                &mode,
                Bytes::new(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{method} {path}: {}",
            reply.text()
        );
    }
    assert!(seen(&h).is_empty(), "nothing reached S3: {:?}", seen(&h));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_requests_go_iam_signed_to_the_control_host_in_every_mode() {
    let h = Harness::start(Options::default()).await;
    let zonal = zonal_host(BUCKET);
    // s3cmd's `info` in forward mode, then endpoint mode.
    h.send(
        Method::GET,
        &format!("http://{zonal}/?policy"),
        &zonal,
        &[],
        Bytes::new(),
    )
    .await;
    h.endpoint(Method::GET, BUCKET, "?policy", &[], Bytes::new())
        .await;
    // And ordinary data requests beside them.
    h.forward(Method::PUT, BUCKET, "/k", &[], Bytes::from_static(b"v"))
        .await;
    h.forward(Method::HEAD, BUCKET, "/", &[], Bytes::new())
        .await;
    let log = h.emulator.requests_log();
    let policy: Vec<_> = log.iter().filter(|r| r.query == "policy").collect();
    assert_eq!(policy.len(), 2, "{log:?}");
    for r in policy {
        assert_eq!(r.host, "s3express-control.us-west-2.amazonaws.com");
        assert_eq!(r.auth, AuthKind::Iam);
    }
    for r in log
        .iter()
        .filter(|r| r.auth == AuthKind::Iam && r.host.contains(".s3express-"))
    {
        assert!(
            [
                "CreateSession",
                "CopyObject",
                "UploadPartCopy",
                "HeadBucket"
            ]
            .contains(&r.operation.as_str()),
            "IAM-signed {} went to the Zonal host {}",
            r.operation,
            r.host
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdks_endpoint_mode_paths_are_read_as_one_slash() {
    let h = Harness::start(Options::default()).await;
    let session = h
        .endpoint(Method::GET, BUCKET, "//?session=", &[], Bytes::new())
        .await;
    assert_eq!(session.status, StatusCode::OK);
    assert!(session
        .text()
        .contains("<SessionToken>s3x-proxy-placeholder-token-"));
    let put = h
        .endpoint(
            Method::PUT,
            BUCKET,
            "//js/small.bin",
            &[],
            Bytes::from_static(b"js"),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        h.emulator.object(BUCKET, "js/small.bin").as_deref(),
        Some(&b"js"[..])
    );
    assert_eq!(h.emulator.object(BUCKET, "/js/small.bin"), None);
    h.stop().await;
}
