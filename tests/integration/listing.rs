//! Listing bridges on directory buckets (DESIGN §3.2): ListObjects (v1) translated to
//! ListObjectsV2, prefixes that do not end in `/`, and delimiters other than `/` refused.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use s3x_proxy::xml::{parse_tree, Element};

use crate::clients::{clean, venv};
use crate::harness::{assert_metric, send_http1, zonal_host, Harness, Options, Reply, BUCKET};
use crate::process::ProxyProcess;

/// One `ListBucketResult`, keys and prefixes decoded when they were URL-encoded.
#[derive(Debug)]
struct Listed {
    keys: Vec<String>,
    prefixes: Vec<String>,
    truncated: bool,
    next_marker: Option<String>,
    next_token: Option<String>,
    root: Element,
}

/// What boto3 does with `encoding-type=url` values (`unquote_plus`).
fn unquote_plus(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .unwrap()
        .into_owned()
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl Listed {
    fn parse(reply: &Reply) -> Listed {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let root = parse_tree(&reply.text()).unwrap();
        assert_eq!(root.name, "ListBucketResult");
        let url = root.child_text("EncodingType") == Some("url");
        let decode = |s: &str| if url { unquote_plus(s) } else { s.to_owned() };
        let all = |outer: &str, inner: &str| -> Vec<String> {
            root.children
                .iter()
                .filter(|c| c.name == outer)
                .map(|c| decode(c.child_text(inner).unwrap()))
                .collect()
        };
        Listed {
            keys: all("Contents", "Key"),
            prefixes: all("CommonPrefixes", "Prefix"),
            truncated: root.child_text("IsTruncated") == Some("true"),
            next_marker: root.child_text("NextMarker").map(decode),
            next_token: root.child_text("NextContinuationToken").map(str::to_owned),
            root,
        }
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.root.child_text(name)
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.keys.iter().chain(&self.prefixes)
    }
}

/// A listing request (v1 unless `list-type=2` is among `params`) through the proxy.
async fn list(proxy: std::net::SocketAddr, params: &[(&str, &str)]) -> Reply {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    let host = zonal_host(BUCKET);
    let target = format!("http://{host}/?{}", query.join("&"));
    send_http1(proxy, Method::GET, &target, &host, &[], Bytes::new()).await
}

/// How a v1 client goes on after a truncated page.
#[derive(Clone, Copy, PartialEq)]
enum Paging {
    NextMarker,
    LastKey,
}

/// Lists every page of a v1 listing; `between` runs before each page but the first.
async fn v1_pages(
    h: &mut Harness,
    params: &[(&str, &str)],
    paging: Paging,
    restart_between: bool,
) -> Vec<Listed> {
    let mut pages: Vec<Listed> = Vec::new();
    let mut marker = String::new();
    loop {
        let mut all = params.to_vec();
        if !marker.is_empty() {
            all.retain(|(k, _)| *k != "marker");
            all.push(("marker", &marker));
        }
        let page = Listed::parse(&list(h.proxy, &all).await);
        assert!(
            page.truncated || page.next_marker.is_none(),
            "no NextMarker on the last page"
        );
        if !page.truncated {
            pages.push(page);
            return pages;
        }
        assert!(
            page.names().next().is_some(),
            "never an empty truncated page"
        );
        let next = page
            .next_marker
            .clone()
            .expect("NextMarker on every truncated page");
        assert!(
            page.names().any(|n| *n == next),
            "NextMarker is one of the page's entries"
        );
        marker = match paging {
            Paging::NextMarker => next,
            Paging::LastKey => page.keys.last().cloned().unwrap_or(next),
        };
        pages.push(page);
        assert!(pages.len() < 100, "the listing ends");
        if restart_between {
            h.restart_proxy().await;
        }
    }
}

/// Every listing entry of `pages`, asserting each appears once.
fn once(pages: &[Listed]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for name in pages.iter().flat_map(Listed::names) {
        assert!(seen.insert(name.clone()), "{name} listed twice");
    }
    seen
}

/// PUTs `keys` (one byte each) through the proxy, 16 at a time.
async fn put_keys(h: &Harness, keys: &[String]) {
    let host = zonal_host(BUCKET);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in keys.chunks(keys.len().div_ceil(16).max(1)) {
        let (chunk, host, proxy) = (chunk.to_vec(), host.clone(), h.proxy);
        tasks.spawn(async move {
            for key in chunk {
                let path: Vec<String> = key.split('/').map(enc).collect();
                let target = format!("http://{host}/{}", path.join("/"));
                let put = send_http1(proxy, Method::PUT, &target, &host, &[], "x".into()).await;
                assert_eq!(put.status, StatusCode::OK, "PUT {key}: {}", put.text());
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The listing requests the emulator saw, each as its decoded query parameters.
fn upstream_listings(h: &Harness) -> Vec<Vec<(String, String)>> {
    h.emulator
        .requests_log()
        .into_iter()
        .filter(|r| r.operation.starts_with("ListObjects"))
        .map(|r| {
            r.query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (unquote_plus(k), unquote_plus(v))
                })
                .collect()
        })
        .collect()
}

/// Nothing S3 Express refuses went upstream: no v1, no `start-after`, no prefix that does not
/// end in `/`, no delimiter but `/`; and S3 refused nothing.
fn assert_only_what_s3_express_takes(h: &Harness) {
    for r in h.emulator.requests_log() {
        assert!(r.status < 400, "S3 refused {} ?{}", r.operation, r.query);
        assert_ne!(r.operation, "ListObjects", "a v1 listing went upstream");
    }
    for params in upstream_listings(h) {
        for (k, v) in &params {
            match k.as_str() {
                "start-after" => panic!("start-after went upstream: {params:?}"),
                "prefix" => assert!(v.is_empty() || v.ends_with('/'), "{params:?}"),
                "delimiter" => assert!(v.is_empty() || v == "/", "{params:?}"),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_listing_of_2500_keys_pages_by_next_marker_or_last_key_even_across_restarts() {
    let mut h = Harness::start(Options::default()).await;
    let many: Vec<String> = (0..2500).map(|i| format!("many/{i:05}")).collect();
    put_keys(&h, &many).await;
    put_keys(&h, &keys(&["other/a", "manyfold"])).await;
    let want: BTreeSet<String> = many.iter().cloned().collect();
    let params = [("prefix", "many/"), ("max-keys", "1000")];
    for paging in [Paging::NextMarker, Paging::LastKey] {
        h.emulator.clear_requests_log();
        let pages = v1_pages(&mut h, &params, paging, false).await;
        assert_eq!(pages.len(), 3, "1000, 1000, 500");
        assert_eq!(
            upstream_listings(&h).len(),
            3,
            "a marker the proxy gave costs one page of S3's"
        );
        assert!(pages.iter().all(|p| p.keys.len() <= 1000));
        assert_eq!(once(&pages), want);
        let first = &pages[0];
        assert_eq!(first.text("Prefix"), Some("many/"));
        assert_eq!(first.text("Marker"), Some(""));
        assert_eq!(first.text("MaxKeys"), Some("1000"));
        assert_eq!(first.text("Delimiter"), None);
        let object = first.root.child("Contents").unwrap();
        assert_eq!(object.child_text("Size"), Some("1"));
        assert!(object.child_text("ETag").unwrap().starts_with('"'));
        assert!(object.child_text("LastModified").is_some());
        assert!(object.child_text("StorageClass").is_some());
    }
    // A fresh proxy before each page knows none of the markers: it lists again to find them.
    for paging in [Paging::NextMarker, Paging::LastKey] {
        h.emulator.clear_requests_log();
        let pages = v1_pages(&mut h, &params, paging, true).await;
        assert_eq!(once(&pages), want);
        assert!(
            upstream_listings(&h).len() > pages.len(),
            "the pages after a restart were found by listing again"
        );
    }
    // The default max-keys is 1000.
    let pages = v1_pages(&mut h, &[("prefix", "many/")], Paging::NextMarker, false).await;
    assert_eq!(pages.len(), 3);
    assert_only_what_s3_express_takes(&h);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_listing_with_a_delimiter_returns_common_prefixes_once_each() {
    let mut h = Harness::start(Options::default()).await;
    put_keys(
        &h,
        &keys(&[
            "tree/a/1",
            "tree/a/2",
            "tree/b/1",
            "tree/c",
            "tree/d",
            "tree/e/x/y",
            "tree/f",
            "treetop",
        ]),
    )
    .await;
    let whole = Listed::parse(&list(h.proxy, &[("prefix", "tree/"), ("delimiter", "/")]).await);
    assert!(!whole.truncated && whole.next_marker.is_none());
    assert_eq!(whole.text("Delimiter"), Some("/"));
    let keys_want = set(&["tree/c", "tree/d", "tree/f"]);
    let prefixes_want = set(&["tree/a/", "tree/b/", "tree/e/"]);
    assert_eq!(
        whole.keys.iter().cloned().collect::<BTreeSet<_>>(),
        keys_want
    );
    assert_eq!(
        whole.prefixes.iter().cloned().collect::<BTreeSet<_>>(),
        prefixes_want
    );
    for restart in [false, true] {
        for max in ["1", "2", "4"] {
            let params = [("prefix", "tree/"), ("delimiter", "/"), ("max-keys", max)];
            let pages = v1_pages(&mut h, &params, Paging::NextMarker, restart).await;
            let keys: BTreeSet<String> = pages.iter().flat_map(|p| p.keys.clone()).collect();
            let prefixes: BTreeSet<String> =
                pages.iter().flat_map(|p| p.prefixes.clone()).collect();
            once(&pages);
            assert_eq!((keys, prefixes), (keys_want.clone(), prefixes_want.clone()));
            assert!(pages
                .iter()
                .all(|p| p.names().count() <= max.parse().unwrap()));
        }
    }
    // At the root, the delimiter rolls up every directory.
    let root = Listed::parse(&list(h.proxy, &[("delimiter", "/")]).await);
    assert!(root.prefixes.contains(&"tree/".to_owned()) && root.keys.contains(&"treetop".into()));
    assert_only_what_s3_express_takes(&h);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_odd_characters_survive_url_encoding_both_ways() {
    let mut h = Harness::start(Options::default()).await;
    let odd = [
        "odd/a+b c%d",
        "odd/été/ü",
        "odd//double",
        "odd/x&y<z>'\"",
        "odd/plus+",
        "odd/🦀 space",
        "odd/a%2Fb",
    ];
    put_keys(&h, &keys(&odd)).await;
    let want = set(&odd);
    for url in [true, false] {
        let mut params = vec![("prefix", "odd/"), ("max-keys", "2")];
        if url {
            params.push(("encoding-type", "url"));
        }
        let pages = v1_pages(&mut h, &params, Paging::NextMarker, false).await;
        assert_eq!(once(&pages), want, "encoding-type=url: {url}");
        assert_eq!(pages[0].text("EncodingType"), url.then_some("url"));
        if url {
            assert!(
                pages
                    .iter()
                    .flat_map(|p| &p.root.children)
                    .all(|c| c.name != "Contents" || !c.child_text("Key").unwrap().contains(' ')),
                "keys are sent encoded"
            );
        }
    }
    // A prefix that does not end in `/`, URL-encoded, on v1 and v2.
    for v2 in [false, true] {
        let mut params = vec![("prefix", "odd/a"), ("encoding-type", "url")];
        if v2 {
            params.push(("list-type", "2"));
        }
        let page = Listed::parse(&list(h.proxy, &params).await);
        assert_eq!(page.text("Prefix"), Some("odd/a"));
        assert_eq!(
            page.keys.iter().cloned().collect::<BTreeSet<_>>(),
            set(&["odd/a+b c%d", "odd/a%2Fb"])
        );
    }
    let spaced = Listed::parse(&list(h.proxy, &[("prefix", "odd/a+b c")]).await);
    assert_eq!(spaced.keys, ["odd/a+b c%d"]);
    assert_eq!(spaced.text("Prefix"), Some("odd/a+b c"));
    assert_only_what_s3_express_takes(&h);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_that_is_not_in_the_listing_returns_the_keys_greater_than_it() {
    let mut h = Harness::start(Options::default()).await;
    let names: Vec<String> = ('a'..='j').map(|c| format!("gt/{c}")).collect();
    put_keys(&h, &names).await;
    put_keys(&h, &keys(&["gt/e/inner"])).await;
    let greater = set(&["gt/f", "gt/g", "gt/h", "gt/i", "gt/j"]);
    for max in ["1000", "2"] {
        let params = [("prefix", "gt/"), ("max-keys", max), ("marker", "gt/e5")];
        let pages = v1_pages(&mut h, &params, Paging::NextMarker, false).await;
        assert_eq!(once(&pages), greater, "max-keys {max}");
        assert_eq!(pages[0].text("Marker"), Some("gt/e5"));
    }
    let delimited = [("prefix", "gt/"), ("delimiter", "/"), ("marker", "gt/d0")];
    let page = Listed::parse(&list(h.proxy, &delimited).await);
    let mut want = greater.clone();
    want.extend(set(&["gt/e", "gt/e/"]));
    assert_eq!(page.names().cloned().collect::<BTreeSet<_>>(), want);
    let past = Listed::parse(&list(h.proxy, &[("prefix", "gt/"), ("marker", "gt/zzz")]).await);
    assert!(past.keys.is_empty() && !past.truncated);
    let before = Listed::parse(&list(h.proxy, &[("prefix", "gt/"), ("marker", "a")]).await);
    assert_eq!(before.keys.len(), 11);
    assert_only_what_s3_express_takes(&h);
    h.stop().await;
}

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
async fn a_prefix_not_ending_in_a_slash_lists_its_directory_on_v1_and_v2() {
    let mut h = Harness::start(Options::default()).await;
    let matching = [
        "pfx/apple",
        "pfx/apricot",
        "pfx/ap/x",
        "pfx/ap/y",
        "pfx/apx/1",
    ];
    let mut all = keys(&matching);
    all.extend(keys(&["pfx/banana", "pfx/b/1", "pfx/ap", "pfy/apple"]));
    all.extend((0..30).map(|i| format!("pfx/zz{i:02}")));
    put_keys(&h, &all).await;
    let mut matching_all = set(&matching);
    matching_all.insert("pfx/ap".into());
    // Without a delimiter: every key under the prefix, paged.
    for max in ["2", "1000"] {
        let v1 = v1_pages(
            &mut h,
            &[("prefix", "pfx/ap"), ("max-keys", max)],
            Paging::NextMarker,
            false,
        )
        .await;
        assert_eq!(once(&v1), matching_all, "v1 max-keys {max}");
        assert_eq!(v1[0].text("Prefix"), Some("pfx/ap"));
        let v2 = v2_pages(&h, &[("prefix", "pfx/ap"), ("max-keys", max)]).await;
        assert_eq!(once(&v2), matching_all, "v2 max-keys {max}");
    }
    // With a delimiter: the keys and common prefixes the prefix starts.
    let delimited_want = set(&["pfx/apple", "pfx/apricot", "pfx/ap", "pfx/ap/", "pfx/apx/"]);
    for max in ["1", "3", "1000"] {
        let params = [("prefix", "pfx/ap"), ("delimiter", "/"), ("max-keys", max)];
        let v1 = v1_pages(&mut h, &params, Paging::NextMarker, max == "1").await;
        assert_eq!(once(&v1), delimited_want, "v1 max-keys {max}");
        let v2 = v2_pages(&h, &params).await;
        assert_eq!(once(&v2), delimited_want, "v2 max-keys {max}");
    }
    // At the root: the bucket's top level.
    let root = v2_pages(&h, &[("prefix", "pf"), ("delimiter", "/")]).await;
    assert_eq!(once(&root), set(&["pfx/", "pfy/"]));
    let none = v2_pages(&h, &[("prefix", "pfx/nothing")]).await;
    assert_eq!(none.len(), 1);
    assert!(none[0].keys.is_empty() && !none[0].truncated);
    assert_eq!(none[0].text("KeyCount"), Some("0"));
    assert_only_what_s3_express_takes(&h);
    h.stop().await;
}

/// Lists every page of a v2 listing by continuation token, checking each page's counts.
async fn v2_pages(h: &Harness, params: &[(&str, &str)]) -> Vec<Listed> {
    let mut pages: Vec<Listed> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut all = params.to_vec();
        all.push(("list-type", "2"));
        if let Some(token) = &token {
            all.push(("continuation-token", token));
        }
        let page = Listed::parse(&list(h.proxy, &all).await);
        let count: usize = page.text("KeyCount").unwrap().parse().unwrap();
        assert_eq!(
            count,
            page.names().count(),
            "KeyCount counts what is returned"
        );
        assert_eq!(page.text("ContinuationToken"), token.as_deref());
        token = page.next_token.clone();
        assert_eq!(page.truncated, token.is_some());
        let last = !page.truncated;
        assert!(last || count > 0, "never an empty truncated page");
        pages.push(page);
        if last {
            return pages;
        }
        assert!(pages.len() < 100, "the listing ends");
    }
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
    let compat: Vec<&str> = lines
        .iter()
        .map(|l| {
            let rest = l.split("\"compat\":\"").nth(1).expect("a compat field");
            rest.split('"').next().unwrap()
        })
        .collect();
    assert_eq!(compat, ["list_v1", "list_v1+prefix", "prefix", "-"]);
    assert!(
        lines[0].contains("\"operation\":\"ListObjects\""),
        "{}",
        lines[0]
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = proxy
            .log_text()
            .lines()
            .filter(|l| l.contains("\"target\":\"s3x_proxy::access\""))
            .map(str::to_owned)
            .collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {count} access lines:\n{}",
            proxy.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// boto3's paginators over the bridges: ListObjects (v1, which boto3 sends with
/// `encoding-type=url` and decodes) by `NextMarker`, and ListObjectsV2 with a prefix that does
/// not end in `/`, through HTTPS_PROXY as users configure it.
const BOTO3_LISTINGS: &str = r#"
import json, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", config=Config(retries={"max_attempts": 1}))
bucket = sys.argv[1]
v1 = []
for page in s3.get_paginator("list_objects").paginate(
        Bucket=bucket, Prefix="odd/", PaginationConfig={"PageSize": 2}):
    v1 += [o["Key"] for o in page.get("Contents", [])]
v2 = []
for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="odd/a", Delimiter="/", PaginationConfig={"PageSize": 1}):
    v2 += [o["Key"] for o in page.get("Contents", [])]
    v2 += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
print(json.dumps({"v1": v1, "v2": v2}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_paginates_v1_and_partial_prefixes_through_the_proxy() {
    let h = Harness::start(Options::default()).await;
    let odd = [
        "odd/a+b c%d",
        "odd/été/ü",
        "odd//double",
        "odd/a%2Fb",
        "odd/ab/c",
        "odd/z",
    ];
    put_keys(&h, &keys(&odd)).await;
    let home = h.dir.path().join("home-boto3");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = clean(&venv().join("bin/python"), &home);
    command
        .env("HTTPS_PROXY", format!("http://{}", h.proxy))
        .env("AWS_CA_BUNDLE", h.proxy_ca().await)
        .env("AWS_ACCESS_KEY_ID", "AKIDDUMMYCLIENTKEY")
        .env("AWS_SECRET_ACCESS_KEY", "dummy-client-secret")
        .args(["-c", BOTO3_LISTINGS, BUCKET]);
    let output = tokio::task::spawn_blocking(move || command.output().expect("python runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let names = |field: &str| -> Vec<String> {
        let mut all: Vec<String> = listed[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        all.sort();
        all
    };
    let mut want = keys(&odd);
    want.sort();
    assert_eq!(names("v1"), want, "every key once, decoded");
    assert_eq!(names("v2"), ["odd/a%2Fb", "odd/a+b c%d", "odd/ab/"]);
    assert_only_what_s3_express_takes(&h);
    h.stop().await;
}
