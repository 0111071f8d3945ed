//! What the proxy refuses or bounds (delimiters other than `/`, the scan and page bounds), and
//! how the bridges are counted (metric, access line).

use bytes::Bytes;
use http::{Method, StatusCode};

use super::*;
use crate::harness::{assert_metric, eventually, send_http1, Harness, Options, WAIT};
use crate::process::ProxyProcess;

fn small_scan_bound(config: &mut s3x_proxy::Config) {
    config.listing.scan_limit = 50;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_a_marker_reads_at_most_the_bound_then_answers_400() {
    let h = Harness::start(Options {
        tweak: Some(small_scan_bound),
        ..Options::default()
    })
    .await;
    let names: Vec<String> = (0..120).map(|i| format!("bound/{i:03}")).collect();
    put_keys(&h, &names).await;
    let params = [("prefix", "bound/"), ("max-keys", "20")];
    let first = Listed::parse(&list(h.proxy, &params).await);
    assert_eq!(first.keys.len(), 20);
    // A marker the proxy gave is remembered: one page, whatever the bound.
    let next = first.next_marker.clone().unwrap();
    let second = Listed::parse(&list(h.proxy, &[params[0], params[1], ("marker", &next)]).await);
    assert_eq!(second.keys.len(), 20);
    h.emulator.clear_requests_log();
    let unknown = [params[0], params[1], ("marker", "bound/050x")];
    let refused = list(h.proxy, &unknown).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert_eq!(refused.code(), "InvalidRequest");
    assert!(
        refused.text().contains("read 60 entries (3 pages)"),
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("<RequestId>"));
    assert_eq!(upstream_listings(&h).len(), 3, "stopped at the bound");
    // A prefix few keys match is bounded the same way (never an empty truncated page).
    let sparse = list(h.proxy, &[("prefix", "bound/9"), ("max-keys", "20")]).await;
    assert_eq!(sparse.status, StatusCode::BAD_REQUEST, "{}", sparse.text());
    assert_only_what_s3_express_takes(&h);
    h.stop().await;
}

fn small_page_bound(config: &mut s3x_proxy::Config) {
    config.listing.page_limit = 4;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_pages_are_bounded_by_the_number_of_pages_read() {
    let h = Harness::start(Options {
        tweak: Some(small_page_bound),
        ..Options::default()
    })
    .await;
    let names: Vec<String> = (0..30).map(|i| format!("paged/{i:02}")).collect();
    put_keys(&h, &names).await;
    let params = [
        ("prefix", "paged/"),
        ("max-keys", "5"),
        ("marker", "paged/x"),
    ];
    let refused = list(h.proxy, &params).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert!(
        refused.text().contains("read 20 entries (4 pages)"),
        "{}",
        refused.text()
    );
    let fine = list(h.proxy, &[params[0], ("max-keys", "10"), params[2]]).await;
    let fine = Listed::parse(&fine);
    assert!(fine.keys.is_empty() && !fine.truncated, "3 pages of 10 fit");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delimiter_other_than_a_slash_is_refused_without_asking_s3() {
    let h = Harness::start(Options::default()).await;
    h.emulator.clear_requests_log();
    for params in [
        vec![("delimiter", "-")],
        vec![("list-type", "2"), ("delimiter", "-")],
        vec![("list-type", "2"), ("prefix", "a/"), ("delimiter", "//")],
    ] {
        let refused = list(h.proxy, &params).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{params:?}");
        assert_eq!(refused.code(), "InvalidRequest");
        assert!(refused.text().contains("delimiter"), "{}", refused.text());
    }
    assert!(
        h.emulator.requests_log().is_empty(),
        "nothing went upstream, not even CreateSession"
    );
    // An empty delimiter is none.
    let plain = list(h.proxy, &[("delimiter", "")]).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    let metrics = h.metrics().await;
    assert_metric(
        &metrics,
        "s3x_proxy_requests_total",
        &[("operation", "ListObjectsV2"), ("status", "400")],
        2.0,
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_listings_are_counted_and_named_in_the_access_line() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(Options::default()).await;
    let emulator_ca = dir.path().join("emulator-ca.pem");
    std::fs::write(&emulator_ca, h.emulator.ca_pem()).unwrap();
    let proxy = ProxyProcess::start(
        h.emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &["--log-format", "json"],
        "info",
    );
    let v1 = list(proxy.proxy, &[("prefix", "x/")]).await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.text());
    let both = list(proxy.proxy, &[("prefix", "x/ab")]).await;
    assert_eq!(both.status, StatusCode::OK);
    let v2 = list(proxy.proxy, &[("list-type", "2"), ("prefix", "x/ab")]).await;
    assert_eq!(v2.status, StatusCode::OK);
    let plain = list(proxy.proxy, &[("list-type", "2"), ("prefix", "x/")]).await;
    assert_eq!(plain.status, StatusCode::OK);
    let lines = access_lines(&proxy, 4).await;
    // An access line is written when its body is done, which may be after the client read
    // it: with two workers the lines can come in another order than the requests.
    let compat_of = |line: &str| {
        let rest = line.split("\"compat\":\"").nth(1).expect("a compat field");
        rest.split('"').next().unwrap().to_owned()
    };
    let mut compat: Vec<String> = lines.iter().map(|l| compat_of(l)).collect();
    compat.sort();
    assert_eq!(compat, ["-", "list_v1", "list_v1+prefix", "prefix"]);
    let v1_line = lines.iter().find(|l| compat_of(l) == "list_v1").unwrap();
    assert!(
        v1_line.contains("\"operation\":\"ListObjects\""),
        "{v1_line}"
    );
    let admin = proxy.admin;
    let metrics = send_http1(
        admin,
        Method::GET,
        "/metrics",
        &admin.to_string(),
        &[],
        Bytes::new(),
    )
    .await
    .text();
    assert_metric(
        &metrics,
        "s3x_proxy_compat_total",
        &[("kind", "list_v1")],
        2.0,
    );
    assert_metric(
        &metrics,
        "s3x_proxy_compat_total",
        &[("kind", "prefix")],
        2.0,
    );
    assert_metric(
        &metrics,
        "s3x_proxy_requests_total",
        &[("operation", "ListObjects"), ("status", "200")],
        2.0,
    );
    drop(proxy);
    h.stop().await;
}

/// The access lines of the proxy's log, once `count` are out (the writer thread may be behind).
async fn access_lines(proxy: &ProxyProcess, count: usize) -> Vec<String> {
    let lines = || -> Vec<String> {
        proxy
            .log_text()
            .lines()
            .filter(|l| l.contains("\"target\":\"s3x_proxy::access\""))
            .map(str::to_owned)
            .collect()
    };
    let out = eventually(WAIT, || async { lines().len() >= count }).await;
    assert!(
        out,
        "fewer than {count} access lines:\n{}",
        proxy.log_text()
    );
    lines()
}
