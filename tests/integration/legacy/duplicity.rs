//! duplicity 0.8.22 with its boto3 backend (`boto3+s3://BUCKET/PREFIX`, as its man page says),
//! the keys in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, boto3's HTTPS_PROXY and
//! AWS_CA_BUNDLE.
//!
//! It checks the bucket with HeadBucket, lists with ListObjects v1, and puts every volume with
//! `x-amz-storage-class: STANDARD` and `Content-MD5`, all on the general-purpose host
//! (`BUCKET.s3.us-west-2.amazonaws.com`).

use super::{
    assert_bridged, assert_upstream_is_s3_express_clean, clean, debian_tool, files, succeed,
};
use crate::harness::{data, Harness, Options, BUCKET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicity_backs_up_and_restores_with_its_boto3_backend() {
    let h = Harness::start(Options::default()).await;
    let home = h.dir.path().join("home-duplicity");
    let ca = h.proxy_ca().await;
    let duplicity = |args: &[&str]| {
        let mut command = clean(debian_tool("duplicity", "duplicity"), &home);
        command
            .env("AWS_ACCESS_KEY_ID", "AKIDLEGACYDUPLICITY")
            .env("AWS_SECRET_ACCESS_KEY", "legacy-duplicity-secret")
            .env("HTTPS_PROXY", format!("http://{}", h.proxy))
            .env("AWS_CA_BUNDLE", &ca)
            // GnuPG is beside the point here; one try, so a refusal fails fast.
            .args(["--no-encryption", "--num-retries", "1"])
            .args(args);
        command
    };
    let src = h.dir.path().join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/a.txt"), b"first document\n").unwrap();
    std::fs::write(src.join("data.bin"), data(300_000, 5)).unwrap();
    let url = format!("boto3+s3://{BUCKET}/duplicity");
    succeed(
        &h,
        "duplicity backup",
        duplicity(&["full", src.to_str().unwrap(), &url]),
    )
    .await;
    let restored = h.dir.path().join("restored");
    succeed(
        &h,
        "duplicity restore",
        duplicity(&["restore", &url, restored.to_str().unwrap()]),
    )
    .await;
    assert!(
        files(&restored) == files(&src),
        "the restored tree is the backed-up one"
    );
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["gp_host", "content_md5", "storage_class", "list_v1"]).await;
    h.stop().await;
}
