//! Listing bridges on directory buckets (DESIGN §3.2): ListObjects (v1) translated to
//! ListObjectsV2 (`v1`), prefixes that do not end in `/` (`prefix`), and what the proxy refuses
//! or bounds (`refusals`). This file has what they share.

mod prefix;
mod refusals;
mod v1;

use std::collections::BTreeSet;

use bytes::Bytes;
use http::{Method, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use s3x_proxy::xml::{parse_tree, Element};

use crate::harness::{send_http1, zonal_host, Harness, Reply, BUCKET};

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

/// Lists every page of a v1 listing; with `restart_between`, a fresh proxy serves each page
/// after the first (it remembers none of the markers).
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
