//! s3cmd 2.4 (the clients venv), with the Zonal endpoint as `host_base`/`host_bucket` and the
//! proxy as `proxy_host`/`proxy_port` in `.s3cfg` (s3cmd ignores the proxy variables).
//!
//! Before each command it asks GetBucketLocation path-style on the bare Zonal host
//! (`GET /BUCKET/?location`); `s3cmd ls` is ListObjects v1 with the prefix as typed.

use std::path::PathBuf;

use http::Method;

use super::{assert_bridged, assert_upstream_is_s3_express_clean, clean, succeed};
use crate::harness::{data, Harness, Options, BUCKET};

/// The venv with s3cmd that `.ci/test.sh` installs, or $S3X_TEST_CLIENTS_VENV.
fn s3cmd_program() -> PathBuf {
    let venv = std::env::var_os("S3X_TEST_CLIENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-clients"));
    let program = venv.join("bin/s3cmd");
    assert!(
        program.exists(),
        "{} is missing: run `bash .ci/test.sh` or set S3X_TEST_CLIENTS_VENV",
        program.display()
    );
    program
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3cmd_lists_gets_and_deletes_through_its_proxy_settings() {
    let h = Harness::start(Options::default()).await;
    let home = h.dir.path().join("home-s3cmd");
    std::fs::create_dir_all(&home).unwrap();
    // `max_retries`/`retry_delay` only make a refusal fail fast (s3cmd waits 3, 6, 9, ... s).
    std::fs::write(
        home.join(".s3cfg"),
        format!(
            "[default]\naccess_key = AKIDLEGACYS3CMD\nsecret_key = legacy-s3cmd-secret\n\
             host_base = s3express-usw2-az1.us-west-2.amazonaws.com\n\
             host_bucket = %(bucket)s.s3express-usw2-az1.us-west-2.amazonaws.com\n\
             ca_certs_file = {}\nproxy_host = {}\nproxy_port = {}\n\
             max_retries = 1\nretry_delay = 0\n",
            h.proxy_ca().await.display(),
            h.proxy.ip(),
            h.proxy.port()
        ),
    )
    .unwrap();
    let s3cmd = |args: &[&str]| {
        let mut command = clean(s3cmd_program(), &home);
        command.args(args);
        command
    };
    // s3cmd's own put checks the ETag as an MD5, which a directory bucket's is not
    // (docs/limits.md): the objects are put through the proxy directly.
    let body = data(120_000, 7);
    for key in [
        "s3cmd/report-2024.csv",
        "s3cmd/report-2025.csv",
        "s3cmd/other.txt",
    ] {
        let put = h
            .forward(Method::PUT, BUCKET, &format!("/{key}"), &[], body.clone())
            .await;
        assert_eq!(put.status, 200, "{}", put.text());
    }
    let all = succeed(
        &h,
        "s3cmd ls",
        s3cmd(&["ls", &format!("s3://{BUCKET}/s3cmd/")]),
    )
    .await;
    assert_eq!(all.lines().count(), 3, "{all}");
    let reports = succeed(
        &h,
        "s3cmd ls (prefix)",
        s3cmd(&["ls", &format!("s3://{BUCKET}/s3cmd/report-")]),
    )
    .await;
    assert!(
        reports.lines().count() == 2 && !reports.contains("other.txt"),
        "{reports}"
    );
    let output = h.dir.path().join("out.csv");
    let url = format!("s3://{BUCKET}/s3cmd/report-2024.csv");
    succeed(
        &h,
        "s3cmd get",
        s3cmd(&["get", &url, output.to_str().unwrap()]),
    )
    .await;
    assert!(
        std::fs::read(&output).unwrap() == body,
        "the bytes came back"
    );
    succeed(&h, "s3cmd del", s3cmd(&["del", &url])).await;
    assert_eq!(h.emulator.keys(BUCKET).len(), 2);
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["location", "path_style", "list_v1", "prefix"]).await;
    h.stop().await;
}
