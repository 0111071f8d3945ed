//! Real AWS clients (the aws CLI and boto3 from a venv) through the proxy, configured exactly as
//! users configure them: HTTPS_PROXY + AWS_CA_BUNDLE, or endpoint_url + verify.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2_free::sha256_hex;

use crate::harness::{data, Harness, Options, BUCKET};

/// The venv the README's test command installs (`.ci/test.sh`), or $S3X_TEST_VENV.
pub(crate) fn venv() -> PathBuf {
    let dir = std::env::var_os("S3X_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py"));
    assert!(
        dir.join("bin/aws").exists(),
        "{} has no aws CLI: run `bash .ci/test.sh` (it installs awscli and boto3 there) or set S3X_TEST_VENV",
        dir.display()
    );
    dir
}

/// A command with a clean AWS environment: no profile, no real credentials, and none of the
/// machine's global TLS variables.
pub(crate) fn clean(program: &Path, home: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command.env("HOME", home);
    command.env("AWS_CONFIG_FILE", home.join("no-config"));
    command.env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"));
    command.env("AWS_DEFAULT_REGION", "us-west-2");
    command.env("AWS_EC2_METADATA_DISABLED", "true");
    command.env("AWS_RETRY_MODE", "standard");
    command.env("AWS_MAX_ATTEMPTS", "1");
    command
}

struct Aws<'a> {
    h: &'a Harness,
    home: PathBuf,
    dummy_credentials: bool,
    /// Endpoint mode (`--endpoint-url http://PROXY`) instead of HTTPS_PROXY.
    endpoint: bool,
}

impl Aws<'_> {
    async fn new(h: &Harness, dummy_credentials: bool) -> Aws<'_> {
        let home = h.dir.path().join(if dummy_credentials {
            "home-dummy"
        } else {
            "home"
        });
        std::fs::create_dir_all(&home).unwrap();
        Aws {
            h,
            home,
            dummy_credentials,
            endpoint: false,
        }
    }

    async fn run(&self, args: &[&str]) -> String {
        let mut command = clean(&venv().join("bin/aws"), &self.home);
        if self.endpoint {
            command.args(["--endpoint-url", &format!("http://{}", self.h.proxy)]);
        } else {
            command.env("HTTPS_PROXY", format!("http://{}", self.h.proxy));
            command.env("AWS_CA_BUNDLE", self.h.proxy_ca().await);
        }
        if self.dummy_credentials {
            command.env("AWS_ACCESS_KEY_ID", "AKIDDUMMYCLIENTKEY");
            command.env("AWS_SECRET_ACCESS_KEY", "dummy-client-secret");
        }
        command.args(args);
        if !self.dummy_credentials {
            command.arg("--no-sign-request");
        }
        let output = tokio::task::spawn_blocking(move || command.output().expect("aws runs"))
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "aws {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

async fn s3api_round_trip(dummy_credentials: bool) {
    let h = Harness::start(Options::default()).await;
    let aws = Aws::new(&h, dummy_credentials).await;
    let dir = h.dir.path();
    let body = data(100_000, 31);
    let input = dir.join("in.bin");
    std::fs::write(&input, &body).unwrap();
    let key = "cli/with space+plus.bin";
    aws.run(&[
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--body",
        input.to_str().unwrap(),
    ])
    .await;
    assert_eq!(h.emulator.object(BUCKET, key).as_deref(), Some(&body[..]));
    let out = dir.join("out.bin");
    aws.run(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        key,
        out.to_str().unwrap(),
    ])
    .await;
    assert!(
        std::fs::read(&out).unwrap() == body,
        "get-object returns the same bytes"
    );
    let range = dir.join("range.bin");
    aws.run(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--range",
        "bytes=10-1009",
        range.to_str().unwrap(),
    ])
    .await;
    assert!(std::fs::read(&range).unwrap() == body[10..1010]);
    let head = aws
        .run(&["s3api", "head-object", "--bucket", BUCKET, "--key", key])
        .await;
    assert!(head.contains("\"ContentLength\": 100000"), "{head}");
    aws.run(&[
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        "cli/second",
        "--body",
        input.to_str().unwrap(),
    ])
    .await;
    let list = aws
        .run(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            BUCKET,
            "--prefix",
            "cli/",
        ])
        .await;
    assert!(
        list.contains("cli/with space+plus.bin") && list.contains("cli/second"),
        "{list}"
    );
    aws.run(&[
        "s3api",
        "delete-object",
        "--bucket",
        BUCKET,
        "--key",
        "cli/second",
    ])
    .await;
    assert!(h.emulator.object(BUCKET, "cli/second").is_none());
    aws.run(&[
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        "cli/third",
        "--body",
        input.to_str().unwrap(),
    ])
    .await;
    let batch =
        r#"{"Objects":[{"Key":"cli/with space+plus.bin"},{"Key":"cli/third"}],"Quiet":true}"#;
    aws.run(&[
        "s3api",
        "delete-objects",
        "--bucket",
        BUCKET,
        "--delete",
        batch,
    ])
    .await;
    assert!(
        h.emulator.keys(BUCKET).is_empty(),
        "{:?}",
        h.emulator.keys(BUCKET)
    );
    let counters = h.emulator.counters();
    assert_eq!(counters.signature_failures, 0, "{counters:?}");
    if dummy_credentials {
        assert!(
            counters.create_session_read_write >= 1,
            "the proxy made its own sessions"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_with_no_sign_request_round_trips_through_https_proxy() {
    s3api_round_trip(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_with_dummy_credentials_has_its_create_session_absorbed() {
    s3api_round_trip(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_s3_cp_moves_20_mib_up_and_back_byte_identical() {
    let h = Harness::start(Options::default()).await;
    let aws = Aws::new(&h, false).await;
    let body = data(20 * 1024 * 1024, 32);
    let input = h.dir.path().join("big.bin");
    let output = h.dir.path().join("big.out");
    std::fs::write(&input, &body).unwrap();
    let url = format!("s3://{BUCKET}/cp/big.bin");
    aws.run(&["s3", "cp", input.to_str().unwrap(), &url]).await;
    aws.run(&["s3", "cp", &url, output.to_str().unwrap()]).await;
    assert_eq!(
        sha256_hex(&std::fs::read(&output).unwrap()),
        sha256_hex(&body)
    );
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_checksum_the_aws_clis_own_checksums_pass_through() {
    let h = Harness::start(Options {
        extra_args: vec!["--checksum".into(), "crc64nvme".into()],
        ..Options::default()
    })
    .await;
    let small = data(200_000, 34);
    let big = data(12 << 20, 35);
    let (small_file, big_file) = (h.dir.path().join("small.bin"), h.dir.path().join("big.bin"));
    std::fs::write(&small_file, &small).unwrap();
    std::fs::write(&big_file, &big).unwrap();
    // Over HTTPS_PROXY the CLI sends aws-chunked with a trailer (a multipart upload for the big
    // file); with --endpoint-url over plain HTTP, a checksum header.
    let aws = Aws::new(&h, false).await;
    for (file, key) in [(&small_file, "sums/small"), (&big_file, "sums/big")] {
        let url = format!("s3://{BUCKET}/{key}");
        aws.run(&["s3", "cp", file.to_str().unwrap(), &url]).await;
    }
    let mut endpoint = Aws::new(&h, true).await;
    endpoint.endpoint = true;
    let url = format!("s3://{BUCKET}/sums/plain");
    endpoint
        .run(&["s3", "cp", small_file.to_str().unwrap(), &url])
        .await;
    for (key, body) in [
        ("sums/small", &small),
        ("sums/big", &big),
        ("sums/plain", &small),
    ] {
        assert!(
            h.emulator.object(BUCKET, key).as_deref() == Some(&body[..]),
            "{key}"
        );
        let checksum_mode = [("x-amz-checksum-mode", "ENABLED")];
        let got = h
            .forward(
                http::Method::GET,
                BUCKET,
                &format!("/{key}"),
                &checksum_mode,
                "",
            )
            .await;
        let sums: Vec<&str> = got
            .headers
            .keys()
            .map(|k| k.as_str())
            .filter(|k| k.starts_with("x-amz-checksum-") && *k != "x-amz-checksum-type")
            .collect();
        assert!(
            sums.len() == 1 && sums[0] != "x-amz-checksum-crc64nvme",
            "{key}: the CLI's own checksum, not the proxy's: {sums:?}"
        );
    }
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_with_endpoint_url_uses_path_style_over_plain_http() {
    let h = Harness::start(Options::default()).await;
    let mut aws = Aws::new(&h, true).await;
    aws.endpoint = true;
    let body = data(3 * 1024 * 1024, 33);
    let input = h.dir.path().join("endpoint.bin");
    let output = h.dir.path().join("endpoint.out");
    std::fs::write(&input, &body).unwrap();
    let url = format!("s3://{BUCKET}/endpoint/file.bin");
    aws.run(&["s3", "cp", input.to_str().unwrap(), &url]).await;
    aws.run(&["s3", "cp", &url, output.to_str().unwrap()]).await;
    assert!(std::fs::read(&output).unwrap() == body);
    let listed = aws
        .run(&["s3", "ls", &format!("s3://{BUCKET}/endpoint/")])
        .await;
    assert!(listed.contains("file.bin"), "{listed}");
    let counters = h.emulator.counters();
    assert_eq!(counters.signature_failures, 0, "{counters:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_uses_the_tls_listener_as_its_endpoint_url() {
    let h = Harness::start(Options {
        tls_listener: true,
        ..Options::default()
    })
    .await;
    let script = h.dir.path().join("boto.py");
    std::fs::write(&script, BOTO_SCRIPT).unwrap();
    let mut command = clean(&venv().join("bin/python"), h.dir.path());
    command.env("ENDPOINT", format!("https://{}", h.tls.unwrap()));
    command.env("CA", h.proxy_ca().await);
    command.env("BUCKET", BUCKET);
    command.env("AWS_ACCESS_KEY_ID", "AKIDDUMMYBOTO");
    command.env("AWS_SECRET_ACCESS_KEY", "dummy-boto-secret");
    command.arg(&script);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "boto3 failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

const BOTO_SCRIPT: &str = r#"
import os, urllib.parse, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-west-2",
                  verify=os.environ["CA"], config=botocore.config.Config(retries={"max_attempts": 1}))
bucket = os.environ["BUCKET"]
keys = ["boto/plain", "boto/with space", "boto/plus+sign", "boto/percent%25", "boto/unicode-\u00e9", "boto//double"]
for i, key in enumerate(keys):
    s3.put_object(Bucket=bucket, Key=key, Body=bytes([i]) * 1000)
for i, key in enumerate(keys):
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == bytes([i]) * 1000, key
# boto3 asks for encoding-type=url itself and decodes the keys it gets back.
listed = s3.list_objects_v2(Bucket=bucket, Prefix="boto/")
assert sorted(o["Key"] for o in listed["Contents"]) == sorted(keys), listed
# Asked for explicitly, the encoding is left to the caller.
listed = s3.list_objects_v2(Bucket=bucket, Prefix="boto/", EncodingType="url")
assert sorted(urllib.parse.unquote(o["Key"]) for o in listed["Contents"]) == sorted(keys), listed
listed = s3.list_objects_v2(Bucket=bucket, Prefix="boto/", Delimiter="")
assert len(listed["Contents"]) == len(keys)
mpu = s3.create_multipart_upload(Bucket=bucket, Key="boto/mpu")
part = s3.upload_part(Bucket=bucket, Key="boto/mpu", UploadId=mpu["UploadId"], PartNumber=1, Body=b"x" * 6_000_000)
s3.complete_multipart_upload(Bucket=bucket, Key="boto/mpu", UploadId=mpu["UploadId"],
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert s3.head_object(Bucket=bucket, Key="boto/mpu")["ContentLength"] == 6_000_000
s3.copy_object(Bucket=bucket, Key="boto/copy", CopySource={"Bucket": bucket, "Key": "boto/plain"})
assert s3.get_object(Bucket=bucket, Key="boto/copy")["Body"].read() == bytes([0]) * 1000
s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
print("ok")
"#;

mod sha2_free {
    /// SHA-256 via the system's `sha256sum`, to avoid another dependency in the test crate.
    pub fn sha256_hex(data: &[u8]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sha256sum");
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_job_copies_between_a_general_purpose_and_a_directory_bucket_and_back() {
    use crate::harness::GP_BUCKET;
    let h = Harness::start(Options::default()).await;
    let aws = Aws::new(&h, false).await;
    let dir = h.dir.path();
    // Big enough for the CLI to copy it in parts (UploadPartCopy) as well as whole.
    for (name, size) in [("small.bin", 200_000), ("large.bin", 12 << 20)] {
        let body = data(size, 77);
        let input = dir.join(name);
        std::fs::write(&input, &body).unwrap();
        let staged = format!("s3://{GP_BUCKET}/stage/{name}");
        let hot = format!("s3://{BUCKET}/hot/{name}");
        let back = format!("s3://{GP_BUCKET}/back/{name}");
        aws.run(&["s3", "cp", input.to_str().unwrap(), &staged])
            .await;
        aws.run(&["s3", "cp", &staged, &hot]).await;
        aws.run(&["s3", "cp", &hot, &back]).await;
        let output = dir.join(format!("{name}.out"));
        aws.run(&["s3", "cp", &back, output.to_str().unwrap()])
            .await;
        assert!(
            std::fs::read(&output).unwrap() == body,
            "{name} is byte-identical"
        );
        assert_eq!(
            h.emulator.object(BUCKET, &format!("hot/{name}")).as_deref(),
            Some(&body[..])
        );
    }
    let counters = h.emulator.counters();
    assert_eq!(counters.signature_failures, 0, "{counters:?}");
    h.stop().await;
}
