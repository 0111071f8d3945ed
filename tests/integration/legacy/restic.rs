//! restic 0.14 (minio-go 7.0.46), with an `s3:https://HOST/BUCKET/PREFIX` repository, the
//! proxy as HTTPS_PROXY and its CA given with `--cacert`, as restic's docs say.
//!
//! minio-go never addresses the Zonal host it is given: it takes the host for an AWS one and
//! sends `BUCKET.s3.dualstack.REGION.amazonaws.com` (with a region parsed out of the Zonal host,
//! `xpress-usw2-az1.us-west-2`, it picks us-east-1). Given `s3.amazonaws.com` it first asks
//! GetBucketLocation, path-style (`GET /BUCKET/?location=`). Every PutObject carries a
//! `Content-MD5`.

use std::path::{Path, PathBuf};

use super::{
    assert_bridged, assert_upstream_is_s3_express_clean, clean, debian_tool, files, succeed,
};
use crate::harness::{data, Harness, Options, BUCKET};

struct Restic<'a> {
    h: &'a Harness,
    home: PathBuf,
    repository: String,
}

impl Restic<'_> {
    async fn run(&self, args: &[&str]) -> String {
        let mut command = clean(debian_tool("restic", "restic"), &self.home);
        // No region anywhere: restic finds the bucket's itself.
        command
            .env_remove("AWS_DEFAULT_REGION")
            .env("AWS_ACCESS_KEY_ID", "AKIDLEGACYRESTIC")
            .env("AWS_SECRET_ACCESS_KEY", "legacy-restic-secret")
            .env("RESTIC_PASSWORD", "legacy-restic-password")
            .env("RESTIC_REPOSITORY", &self.repository)
            .env("HTTPS_PROXY", format!("http://{}", self.h.proxy))
            .arg("--cacert")
            .arg(self.h.proxy_ca().await)
            .args(args);
        succeed(self.h, &format!("restic {args:?}"), command).await
    }
}

/// A small tree to back up: a few files in two directories.
fn source(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/app.conf"), b"listen = 127.0.0.1\n").unwrap();
    std::fs::write(dir.join("blob.bin"), data(300_000, seed)).unwrap();
    std::fs::write(dir.join("notes.txt"), format!("backup {seed}\n")).unwrap();
}

/// Restores the latest snapshot and checks it matches `source`.
async fn restore_matches(restic: &Restic<'_>, source: &Path, target: &Path) {
    restic
        .run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .await;
    // restic restores under the source's absolute path.
    let restored = target.join(source.strip_prefix("/").unwrap());
    assert!(
        files(&restored) == files(source),
        "the restored tree is the backed-up one"
    );
}

/// The Zonal host as the repository's host: init, two backups, `check --read-data`,
/// `forget --prune`, restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_backs_up_checks_prunes_and_restores_on_the_zonal_host() {
    let h = Harness::start(Options::default()).await;
    let restic = Restic {
        h: &h,
        home: h.dir.path().join("home-restic"),
        repository: format!(
            "s3:https://s3express-usw2-az1.us-west-2.amazonaws.com/{BUCKET}/restic"
        ),
    };
    let src = h.dir.path().join("src");
    source(&src, 1);
    restic.run(&["init"]).await;
    restic.run(&["backup", src.to_str().unwrap()]).await;
    source(&src, 2);
    restic.run(&["backup", src.to_str().unwrap()]).await;
    restic.run(&["check", "--read-data"]).await;
    let packs_before = h.emulator.keys(BUCKET).len();
    restic.run(&["forget", "--keep-last", "1", "--prune"]).await;
    let c = h.emulator.counters();
    assert!(
        c.by_operation.get("DeleteObject").copied().unwrap_or(0) >= 1,
        "prune deleted something ({packs_before} keys before): {c:?}"
    );
    restic.run(&["check", "--read-data"]).await;
    restore_matches(&restic, &src, &h.dir.path().join("restored")).await;
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["gp_host", "content_md5"]).await;
    h.stop().await;
}

/// `s3:https://s3.amazonaws.com/BUCKET/PREFIX`, the form restic's docs show for AWS: with no
/// region configured minio-go asks GetBucketLocation first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_with_the_global_s3_host_asks_the_bucket_location_and_round_trips() {
    let h = Harness::start(Options::default()).await;
    let restic = Restic {
        h: &h,
        home: h.dir.path().join("home-restic"),
        repository: format!("s3:https://s3.amazonaws.com/{BUCKET}/restic"),
    };
    let src = h.dir.path().join("src");
    source(&src, 3);
    restic.run(&["init"]).await;
    restic.run(&["backup", src.to_str().unwrap()]).await;
    restore_matches(&restic, &src, &h.dir.path().join("restored")).await;
    assert_upstream_is_s3_express_clean(&h);
    assert_bridged(&h, &["location", "gp_host", "content_md5"]).await;
    h.stop().await;
}
