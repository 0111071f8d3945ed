//! Logs never carry a secret, at any level, in either format, whatever `RUST_LOG` says: the real
//! binary at full trace (aws-sigv4's canonical requests included) against the emulator, with
//! session- and IAM-signed requests, a client's own credentials, a presigned URL and h2 in a
//! tunnel; the output is searched for every secret the run used.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3x_emulator::{Config as EmulatorConfig, Emulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{data, send_http1, zonal_host, BUCKET};
use crate::process::ProxyProcess;

const IAM_SECRET: &str = "emulator/secret/EXAMPLEKEY";
const IAM_TOKEN: &str = "iam-temporary-token-SECRET/abc+def=";
/// What clients send the proxy: their own (fake) credentials, which it strips.
const CLIENT_SIGNATURE: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const CLIENT_TOKEN: &str = "client-session-token-SECRET";
const CLIENT_BASIC: &str = "dXNlcjpzM2NyZXQtcGFzcw==";
const PRESIGN_SIGNATURE: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const PRESIGN_TOKEN: &str = "presigned-token-SECRET";
const PRESIGN_KEY_ID: &str = "AKIDPRESIGNCREDENTIAL";

/// Every directive a user might reach for to see aws-sigv4's canonical requests, or the proxy's
/// own: the plain one (which the filter's own `aws_sigv4=warn` replaces) and a more specific one
/// (which wins over it, so the redactor is all that stands between the token and the log).
const FULL_TRACE: &str = "trace,aws_sigv4=trace,aws_sigv4::http_request=trace,s3x_proxy::sign::fast=trace,hyper=trace,h2=trace";

async fn emulator(dir: &Path) -> (Emulator, std::path::PathBuf) {
    crate::harness::init();
    let emulator = Emulator::start(EmulatorConfig {
        buckets: vec![BUCKET.into()],
        iam_session_token: Some(IAM_TOKEN.into()),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let ca = dir.join("emulator-ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).unwrap();
    (emulator, ca)
}

fn start(emulator: &Emulator, ca: &Path, dir: &Path, json: bool, rust_log: &str) -> ProxyProcess {
    let format: &[&str] = if json { &["--log-format", "json"] } else { &[] };
    ProxyProcess::start_with_env(
        emulator.addr(),
        ca,
        &dir.join("ca"),
        format,
        rust_log,
        &[("AWS_SESSION_TOKEN", Some(IAM_TOKEN))],
    )
}

/// The client-side requests: session-signed PUT and GET (carrying the client's own
/// Authorization, token and Basic credentials), an IAM-signed CopyObject, a client
/// CreateSession, a presigned GET, and a PUT and GET over h2 in an intercepted tunnel.
async fn workload(proxy: &ProxyProcess, ca_dir: &Path) {
    let host = zonal_host(BUCKET);
    let client_auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDCLIENTFAKE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host;x-amz-date, Signature={CLIENT_SIGNATURE}"
    );
    let basic = format!("Basic {CLIENT_BASIC}");
    let client_headers = [
        ("authorization", client_auth.as_str()),
        ("x-amz-s3session-token", CLIENT_TOKEN),
        ("x-amz-security-token", CLIENT_TOKEN),
        ("proxy-authorization", basic.as_str()),
    ];
    let url = |path: &str| format!("http://{host}{path}");
    let put = send_http1(
        proxy.proxy,
        Method::PUT,
        &url("/redact/a"),
        &host,
        &client_headers,
        data(3000, 7),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let get = send_http1(
        proxy.proxy,
        Method::GET,
        &url("/redact/a"),
        &host,
        &client_headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text());
    let copy = send_http1(
        proxy.proxy,
        Method::PUT,
        &url("/redact/b"),
        &host,
        &[
            ("x-amz-copy-source", &format!("/{BUCKET}/redact/a")),
            ("authorization", client_auth.as_str()),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(copy.status, StatusCode::OK, "{}", copy.text());
    // More headers than the proxy's fast signing path takes: aws-sigv4 signs this one, and
    // traces its canonical request.
    let names: Vec<String> = (0..50).map(|n| format!("x-amz-meta-m{n}")).collect();
    let metadata: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), "v")).collect();
    let many = send_http1(
        proxy.proxy,
        Method::PUT,
        &url("/redact/many"),
        &host,
        &metadata,
        data(10, 9),
    )
    .await;
    assert_eq!(many.status, StatusCode::OK, "{}", many.text());
    let session = send_http1(
        proxy.proxy,
        Method::GET,
        &url("/?session"),
        &host,
        &client_headers,
        Bytes::new(),
    )
    .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.text());
    let presigned = format!(
        "/redact/a?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={PRESIGN_KEY_ID}%2F20240101%2Fus-west-2%2Fs3express%2Faws4_request&X-Amz-Date={}&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Security-Token={PRESIGN_TOKEN}&x-amz-signature={PRESIGN_SIGNATURE}",
        crate::harness::presign_date()
    );
    let get = send_http1(
        proxy.proxy,
        Method::GET,
        &url(&presigned),
        &host,
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text());

    let mut h2 = h2_tunnel(proxy, &ca_dir.join("ca.pem"), &host).await;
    for (method, body) in [(Method::PUT, data(1000, 8)), (Method::GET, Bytes::new())] {
        let request = Request::builder()
            .method(method)
            .uri(format!("https://{host}/redact/h2"))
            .header("authorization", &client_auth)
            .header("x-amz-security-token", CLIENT_TOKEN)
            .body(Full::new(body))
            .unwrap();
        h2.ready().await.unwrap();
        let response = h2.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, StatusCode::OK, "{body:?}");
    }
}

/// CONNECT to `host:443`, TLS with the proxy's CA, h2 inside.
async fn h2_tunnel(
    proxy: &ProxyProcess,
    ca: &Path,
    host: &str,
) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let mut stream = TcpStream::connect(proxy.proxy).await.unwrap();
    stream
        .write_all(format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "CONNECT answered");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap(),
            stream,
        )
        .await
        .unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// Stops the proxy and returns its whole log, which holds at least `access_lines` access lines
/// (the whole workload's) and everything traced after them.
async fn final_log(proxy: ProxyProcess, access_lines: usize) -> String {
    let (_, log) = proxy.terminate_and_wait().await;
    assert!(
        log.matches("s3x_proxy::access").count() >= access_lines,
        "fewer than {access_lines} access lines:\n{log}"
    );
    log
}

/// Fails naming the first secret found in `log`.
fn assert_no_secret(log: &str, emulator: &Emulator) {
    let sessions = emulator.session_secrets();
    assert!(!sessions.is_empty(), "the proxy created sessions");
    let mut secrets: Vec<String> = [
        IAM_SECRET,
        IAM_TOKEN,
        CLIENT_SIGNATURE,
        CLIENT_TOKEN,
        CLIENT_BASIC,
        PRESIGN_SIGNATURE,
        PRESIGN_TOKEN,
        PRESIGN_KEY_ID,
        "BEGIN PRIVATE KEY",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (token, secret) in sessions {
        secrets.push(token);
        secrets.push(secret);
    }
    for secret in &secrets {
        if let Some(at) = log.find(secret.as_str()) {
            let from = log[..at].rfind('\n').map_or(0, |n| n + 1);
            let to = log[at..].find('\n').map_or(log.len(), |n| at + n);
            panic!("the log contains {secret:?}:\n{}", &log[from..to]);
        }
    }
    // No signature at all, not only the ones this test knows: hex after any "signature" name.
    let lower = log.to_ascii_lowercase();
    for (at, _) in lower.match_indices("signature") {
        let value = lower[at + "signature".len()..].trim_start_matches(['=', ':', '"', ' ', '\\']);
        let hex = value.bytes().take_while(u8::is_ascii_hexdigit).count();
        assert!(
            hex < 16,
            "a signature in the log: {}",
            &log[at..(at + 100).min(log.len())]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_trace_in_text_and_json_carries_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, ca) = emulator(dir.path()).await;
    for json in [false, true] {
        let proxy = start(&emulator, &ca, dir.path(), json, FULL_TRACE);
        workload(&proxy, &dir.path().join("ca")).await;
        let log = final_log(proxy, 8).await;
        assert_no_secret(&log, &emulator);
        // The log is the full one, so the search above meant something: access lines, hyper's,
        // h2's and rustls' traces, and the canonical requests (the proxy's fast signing path's
        // and aws-sigv4's) with the token redacted.
        for operation in ["PutObject", "GetObject", "CopyObject", "CreateSession"] {
            assert!(
                log.lines()
                    .any(|l| l.contains("s3x_proxy::access") && l.contains(operation)),
                "an access line for {operation}:\n{log}"
            );
        }
        for target in [
            "hyper",
            "h2::",
            "rustls::",
            "aws_sigv4::http_request::sign",
            "s3x_proxy::sign::fast",
        ] {
            assert!(log.contains(target), "{target} traced");
        }
        assert!(log.contains("x-amz-s3session-token:[redacted]"), "{log}");
        if json {
            for line in log.lines() {
                assert!(line.starts_with('{'), "every line is JSON: {line}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_aws_sigv4_directive_turns_redaction_off() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, ca) = emulator(dir.path()).await;
    for rust_log in [
        "info,aws_sigv4=trace",
        "info,aws_sigv4::http_request::sign=trace",
        "info,[{operation=PutObject}]=trace",
    ] {
        let proxy = start(&emulator, &ca, dir.path(), false, rust_log);
        workload(&proxy, &dir.path().join("ca")).await;
        let log = final_log(proxy, 8).await;
        assert_no_secret(&log, &emulator);
        let sigv4 = log.contains("aws_sigv4::http_request::sign");
        let fast = log.contains("s3x_proxy::sign::fast");
        match rust_log {
            // The filter's own directive replaces the user's: aws-sigv4 stays at warn.
            "info,aws_sigv4=trace" => assert!(!sigv4, "{rust_log}: {log}"),
            // A more specific directive still reaches aws-sigv4's trace (of the PUT with many
            // headers): the redactor is what holds.
            "info,aws_sigv4::http_request::sign=trace" => assert!(
                sigv4 && log.contains("x-amz-s3session-token:[redacted]"),
                "{rust_log}: {log}"
            ),
            // A span filter reaches the proxy's own signing trace (of the first PUT: a span
            // filter sees `operation` from the request's next poll, which only a request that
            // waits for CreateSession reaches before it is signed): the token stays out.
            _ => assert!(
                fast && log.contains("x-amz-s3session-token:[redacted]"),
                "{rust_log}: {log}"
            ),
        }
    }
}
