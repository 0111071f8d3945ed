//! Debian's aws CLI 2.9 (/usr/bin/aws, botocore 2.0.0dev155): it predates directory buckets.
//!
//! With no endpoint configured it addresses a bucket on the general-purpose host
//! (`BUCKET.s3.us-west-2.amazonaws.com`) and sends GetBucketLocation path-style to
//! `s3.us-west-2.amazonaws.com`; with `--endpoint-url` it goes path-style. It puts a
//! `Content-MD5` on PutObject and UploadPart, lists with ListObjectsV2 (`aws s3 ls`) or v1
//! (`s3api list-objects`), and passes a listing prefix as the user typed it.

use std::path::PathBuf;

use http::Method;

use super::{assert_bridged, assert_upstream_is_s3_express_clean, clean, debian_tool, succeed};
use crate::harness::{data, Harness, Options, BUCKET};

/// How the CLI reaches the proxy.
#[derive(Clone, Copy, Debug)]
enum Reach {
    /// HTTPS_PROXY and AWS_CA_BUNDLE, no endpoint: the CLI picks S3's hosts itself.
    HttpsProxy,
    /// HTTPS_PROXY, with `--endpoint-url` the Zonal endpoint AWS documents.
    ZonalEndpoint,
    /// `--endpoint-url http://PROXY` (endpoint mode).
    ProxyEndpoint,
}

struct Aws<'a> {
    h: &'a Harness,
    home: PathBuf,
    reach: Reach,
}

impl Aws<'_> {
    async fn run(&self, args: &[&str]) -> String {
        let mut command = clean(debian_tool("aws", "awscli"), &self.home);
        command
            .env("AWS_ACCESS_KEY_ID", "AKIDLEGACYAWSCLI")
            .env("AWS_SECRET_ACCESS_KEY", "legacy-aws-cli-secret");
        match self.reach {
            Reach::HttpsProxy | Reach::ZonalEndpoint => {
                command
                    .env("HTTPS_PROXY", format!("http://{}", self.h.proxy))
                    .env("AWS_CA_BUNDLE", self.h.proxy_ca().await);
            }
            Reach::ProxyEndpoint => {}
        }
        match self.reach {
            Reach::HttpsProxy => {}
            Reach::ZonalEndpoint => {
                command.args([
                    "--endpoint-url",
                    "https://s3express-usw2-az1.us-west-2.amazonaws.com",
                ]);
            }
            Reach::ProxyEndpoint => {
                command.args(["--endpoint-url", &format!("http://{}", self.h.proxy)]);
            }
        }
        command.args(args);
        succeed(self.h, &format!("aws {args:?} ({:?})", self.reach), command).await
    }
}

/// Uploads `size` bytes with `aws s3 cp` (multipart above 8 MiB), downloads them, and checks them.
async fn cp_up_and_down(aws: &Aws<'_>, key: &str, size: usize) {
    let body = data(size, 2024);
    let dir = aws.h.dir.path();
    let (input, output) = (dir.join("up.bin"), dir.join("down.bin"));
    std::fs::write(&input, &body).unwrap();
    let url = format!("s3://{BUCKET}/{key}");
    aws.run(&["s3", "cp", input.to_str().unwrap(), &url]).await;
    assert!(
        aws.h.emulator.object(BUCKET, key).as_deref() == Some(&body[..]),
        "{key} stored as sent"
    );
    aws.run(&["s3", "cp", &url, output.to_str().unwrap()]).await;
    assert!(std::fs::read(&output).unwrap() == body, "{key} came back");
}

/// `aws s3 ls` of a directory and of a prefix that does not end in `/`, `s3api list-objects`
/// (ListObjects v1) and `s3api get-bucket-location`.
async fn list_and_locate(aws: &Aws<'_>) {
    // Put through the proxy directly: the CLI's own puts are tested above, and each of its
    // runs costs a second or two of start-up.
    for month in ["2023-12", "2024-01", "2024-02"] {
        let path = format!("/logs/{month}.log");
        let put = aws
            .h
            .forward(Method::PUT, BUCKET, &path, &[], "a log line\n")
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
    }
    let all = aws
        .run(&["s3", "ls", &format!("s3://{BUCKET}/logs/")])
        .await;
    for month in ["2023-12", "2024-01", "2024-02"] {
        assert!(all.contains(&format!("{month}.log")), "{all}");
    }
    let year = aws
        .run(&["s3", "ls", &format!("s3://{BUCKET}/logs/2024-")])
        .await;
    assert!(
        year.contains("2024-01.log") && year.contains("2024-02.log") && !year.contains("2023"),
        "`aws s3 ls s3://{BUCKET}/logs/2024-` lists 2024 only:\n{year}"
    );
    let v1 = aws
        .run(&[
            "s3api",
            "list-objects",
            "--bucket",
            BUCKET,
            "--prefix",
            "logs/",
        ])
        .await;
    let keys: serde_json::Value = serde_json::from_str(&v1).unwrap();
    let mut keys: Vec<&str> = keys["Contents"]
        .as_array()
        .unwrap_or_else(|| panic!("list-objects: {v1}"))
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["logs/2023-12.log", "logs/2024-01.log", "logs/2024-02.log"]
    );
    let location = aws
        .run(&["s3api", "get-bucket-location", "--bucket", BUCKET])
        .await;
    let location: serde_json::Value = serde_json::from_str(&location).unwrap();
    assert_eq!(location["LocationConstraint"], "us-west-2");
}

/// With no endpoint configured the CLI sends `BUCKET--usw2-az1--x-s3.s3.us-west-2.amazonaws.com`
/// (and GetBucketLocation to `s3.us-west-2.amazonaws.com/BUCKET?location`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_2_9_through_https_proxy_copies_lists_and_locates_a_directory_bucket() {
    let h = Harness::start(Options::default()).await;
    let aws = Aws {
        home: h.dir.path().join("home-aws"),
        h: &h,
        reach: Reach::HttpsProxy,
    };
    // 9 MiB: an 8 MiB part and a 1 MiB part, each with its Content-MD5.
    cp_up_and_down(&aws, "cp/nine.bin", 9 << 20).await;
    list_and_locate(&aws).await;
    let c = h.emulator.counters();
    assert!(
        c.by_operation.get("UploadPart").copied().unwrap_or(0) >= 2,
        "{c:?}"
    );
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(
        &h,
        &["gp_host", "content_md5", "prefix", "list_v1", "location"],
    )
    .await;
    h.stop().await;
}

/// `--endpoint-url https://s3express-usw2-az1.us-west-2.amazonaws.com`: botocore of this age
/// goes path-style on the bare Zonal host (`/BUCKET/KEY`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_2_9_with_the_zonal_endpoint_url_goes_path_style_and_is_rewritten() {
    let h = Harness::start(Options::default()).await;
    let aws = Aws {
        home: h.dir.path().join("home-aws"),
        h: &h,
        reach: Reach::ZonalEndpoint,
    };
    cp_up_and_down(&aws, "zonal/file.bin", 100_000).await;
    list_and_locate(&aws).await;
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(
        &h,
        &["path_style", "content_md5", "prefix", "list_v1", "location"],
    )
    .await;
    h.stop().await;
}

/// `--endpoint-url http://PROXY`: endpoint mode, path-style to the proxy itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_2_9_with_the_proxy_as_endpoint_url_copies_lists_and_locates() {
    let h = Harness::start(Options::default()).await;
    let aws = Aws {
        home: h.dir.path().join("home-aws"),
        h: &h,
        reach: Reach::ProxyEndpoint,
    };
    cp_up_and_down(&aws, "endpoint/file.bin", 100_000).await;
    list_and_locate(&aws).await;
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["content_md5", "prefix", "list_v1", "location"]).await;
    h.stop().await;
}
