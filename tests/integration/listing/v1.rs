//! ListObjects (v1): paging by `NextMarker` or the last key, across restarts, with a delimiter,
//! with odd keys, and after markers that are not in the listing.

use std::collections::BTreeSet;

use super::*;
use crate::harness::{Harness, Options};

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
