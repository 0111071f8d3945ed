//! libs3 2.0's `s3` tool (Debian's libs3-2), configured with S3_ACCESS_KEY_ID,
//! S3_SECRET_ACCESS_KEY and S3_HOSTNAME, as `s3 help` says. It signs with SigV2
//! (`Authorization: AWS KEY:SIGNATURE`, an RFC 1123 `x-amz-date`), goes path-style by default,
//! lists with ListObjects v1 (sending `marker=(null)` when it has none), and reads
//! `Content-Length` and `ETag` in the response case-sensitively.
//!
//! `-u` (HTTP) to the local proxy, which speaks TLS upstream: libcurl does not take a CA file
//! from the environment, so trusting the proxy's CA for HTTPS would mean the system store.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use super::{assert_bridged, assert_upstream_is_s3_express_clean, clean, debian_tool, ensure, run};
use crate::harness::{data, Harness, Options, BUCKET};

/// A `s3` command with `S3_HOSTNAME` = `hostname`, through `http_proxy` when given.
fn s3(home: &Path, hostname: &str, proxy: Option<SocketAddr>, args: &[&str]) -> Command {
    let mut command = clean(debian_tool("s3", "libs3-2"), home);
    command
        .env("S3_ACCESS_KEY_ID", "AKIDLEGACYLIBS3")
        .env("S3_SECRET_ACCESS_KEY", "legacy-libs3-secret")
        .env("S3_HOSTNAME", hostname);
    if let Some(proxy) = proxy {
        // libcurl reads only the lowercase http_proxy.
        command.env("http_proxy", format!("http://{proxy}"));
    }
    // No retries: a refusal shows at once rather than after libs3's back-off.
    command.args(["-u", "-r", "0"]).args(args);
    command
}

/// Runs `s3`, which exits 0 even when S3 answered an error: an `ERROR` on stderr fails too.
async fn s3_succeeds(h: &Harness, what: &str, command: Command) -> String {
    let output = run(what, command).await;
    let refused = String::from_utf8_lossy(&output.stderr).contains("ERROR");
    ensure(h, what, &output, output.status.success() && !refused);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// put, get, list, head and delete of one object.
async fn workload(h: &Harness, hostname: &str, proxy: Option<SocketAddr>) {
    let home = h.dir.path().join("home-libs3");
    let body = data(150_000, 6);
    let (input, output) = (h.dir.path().join("in.bin"), h.dir.path().join("out.bin"));
    std::fs::write(&input, &body).unwrap();
    let object = format!("{BUCKET}/libs3/file.bin");
    let run =
        |what: &'static str, args: &[&str]| s3_succeeds(h, what, s3(&home, hostname, proxy, args));
    let filename = format!("filename={}", input.display());
    run("s3 put", &["put", &object, &filename]).await;
    assert!(h.emulator.object(BUCKET, "libs3/file.bin").as_deref() == Some(&body[..]));
    let filename = format!("filename={}", output.display());
    run("s3 get", &["get", &object, &filename]).await;
    assert!(
        std::fs::read(&output).unwrap() == body,
        "the bytes came back"
    );
    let listed = run("s3 list", &["list", BUCKET, "prefix=libs3/"]).await;
    assert!(listed.contains("libs3/file.bin"), "{listed}");
    let head = run("s3 head", &["head", &object]).await;
    assert!(
        head.contains("Content-Length: 150000") && head.contains("ETag: \""),
        "libs3 finds Content-Length and ETag:\n{head}"
    );
    run("s3 delete", &["delete", &object]).await;
    assert!(h.emulator.keys(BUCKET).is_empty(), "deleted");
}

/// `S3_HOSTNAME` = the Zonal endpoint, through `http_proxy`: path-style on the bare Zonal host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libs3_with_the_zonal_hostname_through_http_proxy_goes_path_style_and_is_rewritten() {
    let h = Harness::start(Options::default()).await;
    workload(
        &h,
        "s3express-usw2-az1.us-west-2.amazonaws.com",
        Some(h.proxy),
    )
    .await;
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["path_style", "list_v1"]).await;
    h.stop().await;
}

/// `S3_HOSTNAME` = the proxy (endpoint mode).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libs3_with_the_proxy_as_hostname_puts_gets_lists_heads_and_deletes() {
    let h = Harness::start(Options::default()).await;
    workload(&h, &h.proxy.to_string(), None).await;
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["list_v1"]).await;
    h.stop().await;
}
