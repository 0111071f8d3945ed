//! Prefixes that do not end in `/`, on v1 and v2, and through boto3's paginators.

use super::*;
use crate::clients::{clean, venv};
use crate::harness::{Harness, Options, BUCKET};

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
