//! Memory is bounded: bodies of unknown length that stall hold at most `--max-buffered-bytes`
//! between them, the excess get 503 SlowDown with nothing sent upstream, and the proxy's RSS
//! stays within that bound.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper_util::rt::TokioIo;
use s3x_emulator::{Config as EmulatorConfig, Emulator};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::harness::{data, init, zonal_host, BUCKET};
use crate::process::ProxyProcess;

const MIB: u64 = 1 << 20;

/// Starts a chunked PUT that sends `len` bytes and then stalls until `release` fires.
/// Resolves to the status once the proxy answers (or never, while it holds the body).
async fn stalled_put(
    proxy: std::net::SocketAddr,
    key: String,
    len: usize,
    release: oneshot::Receiver<()>,
) -> StatusCode {
    let host = zonal_host(BUCKET);
    let first = futures_util::stream::iter(
        data(len, 7)
            .chunks(64 * 1024)
            .map(Bytes::copy_from_slice)
            .collect::<Vec<_>>(),
    )
    .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let stall = futures_util::stream::once(async move {
        let _ = release.await;
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"end")))
    });
    use futures_util::StreamExt;
    let body = StreamBody::new(first.chain(stall));
    let request = Request::builder()
        .method(Method::PUT)
        .uri(format!("http://{host}/{key}"))
        .header("host", &host)
        .body(body)
        .unwrap();
    let tcp = TcpStream::connect(proxy).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let _ = response.into_body().collect().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_hold_at_most_the_budget_and_the_excess_get_503() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(EmulatorConfig {
        buckets: vec![BUCKET.into()],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let emulator_ca = dir.path().join("emulator-ca.pem");
    std::fs::write(&emulator_ca, emulator.ca_pem()).unwrap();
    let proxy = ProxyProcess::start(
        emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &["--max-buffered-bytes", "16MiB"],
        "info",
    );
    // Warm up (session, pools), then take the baseline.
    let warm = crate::harness::send_http1(
        proxy.proxy,
        Method::PUT,
        &format!("http://{}/warm", zonal_host(BUCKET)),
        &zonal_host(BUCKET),
        &[],
        Bytes::from_static(b"w"),
    )
    .await;
    assert_eq!(warm.status, StatusCode::OK);
    let before = proxy.rss();
    // Twelve uploads of unknown length send 3 MiB each and stall: 36 MiB offered, 16 MiB allowed.
    let mut releases = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let (release, stalled) = oneshot::channel();
        releases.push(release);
        tasks.spawn(stalled_put(
            proxy.proxy,
            format!("stalled-{i}"),
            3 * MIB as usize,
            stalled,
        ));
    }
    // Bodies are held as their bytes arrive, so which uploads fit depends on how the twelve
    // interleave: at most five (5 x 3 MiB <= 16 MiB) finish their 3 MiB, so at least seven are
    // refused; one refused late may have held part of the budget meanwhile and crowded out
    // another, so there may be more. A late refusal comes as soon as the proxy reads the bytes
    // the client already sent; two seconds without one leaves room for a loaded machine.
    let mut refused = 0;
    while refused < 7 {
        let status = tokio::time::timeout(Duration::from_secs(30), tasks.join_next())
            .await
            .expect("the excess is refused, not held")
            .unwrap()
            .unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        refused += 1;
    }
    while let Ok(Some(late)) = tokio::time::timeout(Duration::from_secs(2), tasks.join_next()).await
    {
        assert_eq!(
            late.unwrap(),
            StatusCode::SERVICE_UNAVAILABLE,
            "an upload that fits is held until its client sends the rest, never answered early"
        );
        refused += 1;
    }
    let held_uploads = 12 - refused;
    assert!(
        (1..=5).contains(&held_uploads),
        "{held_uploads} uploads held: at least one fits, and at most what 16 MiB holds"
    );
    let held = proxy.rss();
    assert!(
        held < before + 16 * MIB + 12 * MIB,
        "RSS grew {} MiB with 16 MiB of bodies held",
        (held - before) / MIB
    );
    assert_eq!(
        emulator.counters().by_operation.get("UploadPart"),
        None,
        "nothing of them went up yet"
    );
    for release in releases {
        let _ = release.send(());
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), StatusCode::OK);
    }
    let text = proxy.log_text();
    assert!(
        text.contains("SlowDown") || text.contains("status=503"),
        "{text}"
    );
}
