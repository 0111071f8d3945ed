//! s4cmd 2.1 (Debian's, on boto3 1.26 / botocore 1.29), with its keys in S3_ACCESS_KEY and
//! S3_SECRET_KEY and boto3's own HTTPS_PROXY and AWS_CA_BUNDLE, as its README says.
//!
//! It addresses the bucket on the general-purpose host (`BUCKET.s3.us-west-2.amazonaws.com`),
//! lists with ListObjects v1 and prefixes that do not end in `/` (`prefix=s4` for
//! `s3://BUCKET/s4/`, `prefix=s4/file` before a put or get), and puts with `Content-MD5`.

use super::{assert_bridged, assert_upstream_is_s3_express_clean, clean, debian_tool, succeed};
use crate::harness::{data, Harness, Options, BUCKET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4cmd_puts_lists_gets_and_deletes_through_https_proxy() {
    let h = Harness::start(Options::default()).await;
    let home = h.dir.path().join("home-s4cmd");
    let ca = h.proxy_ca().await;
    let s4cmd = |args: &[&str]| {
        let mut command = clean(debian_tool("s4cmd", "s4cmd"), &home);
        command
            .env("S3_ACCESS_KEY", "AKIDLEGACYS4CMD")
            .env("S3_SECRET_KEY", "legacy-s4cmd-secret")
            .env("HTTPS_PROXY", format!("http://{}", h.proxy))
            .env("AWS_CA_BUNDLE", &ca)
            .args(args);
        command
    };
    let body = data(200_000, 4);
    let (input, output) = (h.dir.path().join("in.bin"), h.dir.path().join("out.bin"));
    std::fs::write(&input, &body).unwrap();
    let url = format!("s3://{BUCKET}/s4/file.bin");
    succeed(
        &h,
        "s4cmd put",
        s4cmd(&["put", input.to_str().unwrap(), &url]),
    )
    .await;
    assert!(h.emulator.object(BUCKET, "s4/file.bin").as_deref() == Some(&body[..]));
    let listed = succeed(
        &h,
        "s4cmd ls",
        s4cmd(&["ls", &format!("s3://{BUCKET}/s4/")]),
    )
    .await;
    assert!(listed.contains(&url), "{listed}");
    succeed(
        &h,
        "s4cmd get",
        s4cmd(&["get", &url, output.to_str().unwrap()]),
    )
    .await;
    assert!(
        std::fs::read(&output).unwrap() == body,
        "the bytes came back"
    );
    succeed(&h, "s4cmd del", s4cmd(&["del", &url])).await;
    assert!(h.emulator.keys(BUCKET).is_empty(), "deleted");
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["gp_host", "content_md5", "list_v1", "prefix"]).await;
    h.stop().await;
}
