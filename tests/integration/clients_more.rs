//! More real clients through the proxy, each configured the way its users configure it, each
//! running the full workload (put, get, ranged get, head, list, delete, multipart upload,
//! server-side copy) with byte-identical checks against what the emulator stored:
//!
//! - rclone (Debian's package): through HTTPS_PROXY with `--ca-cert`, and in endpoint mode;
//! - s3cmd: through its own `proxy_host`/`proxy_port` settings, and in endpoint mode;
//! - the AWS SDK for JavaScript v3 (`tests/clients/js`): through a proxy agent, and in endpoint
//!   mode with `forcePathStyle`;
//! - s3fs with pandas, and pyarrow's `S3FileSystem` (`tests/clients/python`): in endpoint mode,
//!   and through the proxy variables / `proxy_options`.
//!
//! `.ci/test.sh` installs every one of them (rclone with apt, the Python ones in the venv
//! `target/py-clients` from `.ci/requirements-clients.txt`, the JS SDK under `target/js` from
//! `tests/clients/js/package-lock.json`); a test whose client is missing fails and says so.
//!
//! Every client runs with a cleared environment: the machine exports AWS_CA_BUNDLE,
//! SSL_CERT_FILE, SSL_CERT_DIR, NODE_EXTRA_CA_CERTS and friends globally, and each test sets
//! only what its client needs, with HOME and the AWS config files in the test's temp dir.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{data, metric, Harness, Options, BUCKET};

/// The repository's root.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv with s3cmd, s3fs, pandas and pyarrow that `.ci/test.sh` installs, or
/// $S3X_TEST_CLIENTS_VENV.
fn clients_venv() -> PathBuf {
    let dir = std::env::var_os("S3X_TEST_CLIENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/py-clients"));
    assert!(
        dir.join("bin/s3cmd").exists() && dir.join("bin/python").exists(),
        "{} has no s3cmd: run `bash .ci/test.sh` (it installs s3cmd, s3fs, pandas and pyarrow \
         there from .ci/requirements-clients.txt) or set S3X_TEST_CLIENTS_VENV",
        dir.display()
    );
    dir
}

/// The node_modules with the JS SDK that `.ci/test.sh` installs, or $S3X_TEST_NODE_MODULES.
fn node_modules() -> PathBuf {
    let dir = std::env::var_os("S3X_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/js/node_modules"));
    assert!(
        dir.join("@aws-sdk/client-s3/package.json").exists(),
        "{} has no @aws-sdk/client-s3: run `bash .ci/test.sh` (it runs `npm ci` for \
         tests/clients/js into target/js) or set S3X_TEST_NODE_MODULES",
        dir.display()
    );
    dir
}

/// A program on PATH (or the path in `variable`), or a failure that says how to get it.
fn program(name: &str, variable: &str, install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable) {
        return PathBuf::from(path);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not on PATH: run `bash .ci/test.sh` (it runs `{install}`) or set {variable}")
        })
}

/// A command with nothing from this process's environment but PATH: no AWS profile or
/// credentials, none of the machine's global TLS variables, HOME in the test's temp dir.
fn clean(program: impl AsRef<OsStr>, home: &Path) -> Command {
    std::fs::create_dir_all(home).unwrap();
    let mut command = Command::new(program);
    command.env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command.env("HOME", home);
    command.env("AWS_CONFIG_FILE", home.join("no-config"));
    command.env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"));
    command.env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("the client starts"))
        .await
        .unwrap()
}

fn describe(what: &str, output: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a command that must succeed, and returns its stdout.
async fn succeed(what: &str, command: Command) -> String {
    let output = output(command).await;
    assert!(output.status.success(), "{}", describe(what, &output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail, and returns stdout and stderr together.
async fn fail(what: &str, command: Command) -> String {
    let output = output(command).await;
    assert!(
        !output.status.success(),
        "{}",
        describe(&format!("{what} should fail"), &output)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The test inputs: a small object and one big enough for a multipart upload in 5 MiB parts.
struct Inputs {
    small: PathBuf,
    big: PathBuf,
    small_data: Vec<u8>,
    big_data: Vec<u8>,
}

const SMALL_LEN: usize = 100_000;
const BIG_LEN: usize = 12 * 1024 * 1024;

fn inputs(h: &Harness, seed: u64) -> Inputs {
    let small_data = data(SMALL_LEN, seed).to_vec();
    let big_data = data(BIG_LEN, seed + 1).to_vec();
    let small = h.dir.path().join("small.bin");
    let big = h.dir.path().join("big.bin");
    std::fs::write(&small, &small_data).unwrap();
    std::fs::write(&big, &big_data).unwrap();
    Inputs {
        small,
        big,
        small_data,
        big_data,
    }
}

/// The emulator holds exactly these bytes under `key`.
fn assert_stored(h: &Harness, key: &str, expected: &[u8]) {
    let stored = h.emulator.object(BUCKET, key);
    assert!(
        stored.as_deref() == Some(expected),
        "{key}: the emulator holds {:?} bytes, expected {}; keys: {:?}",
        stored.map(|s| s.len()),
        expected.len(),
        h.emulator.keys(BUCKET)
    );
}

/// What every workload must have made the emulator do.
fn assert_workload_counters(h: &Harness, copies: &[&str]) {
    let c = h.emulator.counters();
    let count = |op: &str| c.by_operation.get(op).copied().unwrap_or(0);
    assert_eq!(c.signature_failures, 0, "{c:?}");
    assert!(count("CompleteMultipartUpload") >= 1, "{c:?}");
    assert!(count("UploadPart") >= 3, "12 MiB in 5 MiB parts: {c:?}");
    for op in ["PutObject", "GetObject", "HeadObject", "ListObjectsV2"] {
        assert!(count(op) >= 1, "no {op}: {c:?}");
    }
    assert!(count("DeleteObject") + count("DeleteObjects") >= 1, "{c:?}");
    for op in copies {
        assert!(count(op) >= 1, "no {op}: {c:?}");
    }
}

/// At least one ranged GetObject (206) went through the proxy.
async fn assert_ranged_get(h: &Harness) {
    let metrics = h.metrics().await;
    let ranged = metric(
        &metrics,
        "s3x_proxy_requests_total",
        &[("operation", "GetObject"), ("status", "206")],
    );
    assert!(ranged >= 1.0, "no 206 GetObject in the proxy's metrics");
}

// ---------------------------------------------------------------------------------------------
// rclone

struct Rclone<'a> {
    h: &'a Harness,
    home: PathBuf,
    config: PathBuf,
    /// Through HTTPS_PROXY (with --ca-cert) rather than endpoint mode.
    https_proxy: bool,
}

impl<'a> Rclone<'a> {
    fn new(h: &'a Harness, https_proxy: bool) -> Rclone<'a> {
        let home = h.dir.path().join("home-rclone");
        std::fs::create_dir_all(&home).unwrap();
        // Directory buckets' ETags are not MD5s: `use_multipart_etag = false` here and
        // `--ignore-checksum` below keep rclone from calling every upload corrupt.
        let remote = if https_proxy {
            // The AWS provider with the Zonal endpoint, virtual-hosted, as for S3 itself.
            "provider = AWS\n\
             endpoint = https://s3express-usw2-az1.us-west-2.amazonaws.com\n\
             force_path_style = false\n"
                .to_string()
        } else {
            format!(
                "provider = Other\nendpoint = http://{}\nforce_path_style = true\n",
                h.proxy
            )
        };
        let config = home.join("rclone.conf");
        std::fs::write(
            &config,
            format!(
                "[s3x]\ntype = s3\n{remote}env_auth = false\n\
                 access_key_id = AKIDDUMMYRCLONE\nsecret_access_key = dummy-rclone-secret\n\
                 region = us-west-2\nno_check_bucket = true\nlist_version = 2\n\
                 use_multipart_etag = false\n"
            ),
        )
        .unwrap();
        Rclone {
            h,
            home,
            config,
            https_proxy,
        }
    }

    async fn command(&self, args: &[&str]) -> Command {
        let mut command = clean(
            program("rclone", "S3X_TEST_RCLONE", "apt-get install rclone"),
            &self.home,
        );
        // rclone fails whenever AWS_CA_BUNDLE is set ("LoadCustomCABundleError: ... unsupported
        // transport, *fshttp.Transport"), even with --ca-cert: `clean` leaves it out.
        if self.https_proxy {
            command.env("HTTPS_PROXY", format!("http://{}", self.h.proxy));
            command.arg("--ca-cert").arg(self.h.proxy_ca().await);
        }
        command
            .arg("--config")
            .arg(&self.config)
            .args([
                "--retries",
                "1",
                "--low-level-retries",
                "1",
                "--ignore-checksum",
            ])
            .args(args);
        command
    }

    async fn run(&self, args: &[&str]) -> String {
        succeed(&format!("rclone {args:?}"), self.command(args).await).await
    }
}

async fn rclone_workload(https_proxy: bool) {
    let h = Harness::start(Options::default()).await;
    let input = inputs(&h, 70);
    let rclone = Rclone::new(&h, https_proxy);
    let remote = |key: &str| format!("s3x:{BUCKET}/rclone/{key}");
    let (small, big) = (input.small.to_str().unwrap(), input.big.to_str().unwrap());

    rclone.run(&["copyto", small, &remote("small.bin")]).await;
    assert_stored(&h, "rclone/small.bin", &input.small_data);
    rclone
        .run(&[
            "copyto",
            big,
            &remote("multipart.bin"),
            "--s3-upload-cutoff",
            "5M",
            "--s3-chunk-size",
            "5M",
        ])
        .await;
    assert_stored(&h, "rclone/multipart.bin", &input.big_data);

    let out = h.dir.path().join("small.out");
    rclone
        .run(&["copyto", &remote("small.bin"), out.to_str().unwrap()])
        .await;
    assert!(std::fs::read(&out).unwrap() == input.small_data);
    let out = h.dir.path().join("big.out");
    rclone
        .run(&["copyto", &remote("multipart.bin"), out.to_str().unwrap()])
        .await;
    assert!(std::fs::read(&out).unwrap() == input.big_data);

    let ranged = rclone
        .command(&[
            "cat",
            "--offset",
            "10",
            "--count",
            "1000",
            &remote("small.bin"),
        ])
        .await;
    let ranged = output(ranged).await;
    assert!(
        ranged.status.success(),
        "{}",
        describe("rclone cat", &ranged)
    );
    assert!(
        ranged.stdout == input.small_data[10..1010],
        "rclone cat --offset --count"
    );
    assert_ranged_get(&h).await;

    let stat = rclone
        .run(&["lsjson", "--stat", &remote("multipart.bin")])
        .await;
    assert!(stat.contains(&format!("\"Size\": {BIG_LEN}")), "{stat}");

    // Server-side copies: CopyObject, and UploadPartCopy above --s3-copy-cutoff.
    rclone
        .run(&["copyto", &remote("small.bin"), &remote("copy.bin")])
        .await;
    assert_stored(&h, "rclone/copy.bin", &input.small_data);
    rclone
        .run(&[
            "copyto",
            &remote("multipart.bin"),
            &remote("copy-big.bin"),
            "--s3-copy-cutoff",
            "5M",
        ])
        .await;
    assert_stored(&h, "rclone/copy-big.bin", &input.big_data);

    let listed = rclone.run(&["lsf", &format!("s3x:{BUCKET}/rclone/")]).await;
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["copy-big.bin", "copy.bin", "multipart.bin", "small.bin"]
    );

    rclone.run(&["deletefile", &remote("copy.bin")]).await;
    rclone.run(&["deletefile", &remote("copy-big.bin")]).await;
    let mut keys = h.emulator.keys(BUCKET);
    keys.sort();
    assert_eq!(keys, ["rclone/multipart.bin", "rclone/small.bin"]);
    assert_workload_counters(&h, &["CopyObject", "UploadPartCopy"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_through_https_proxy_with_ca_cert_runs_the_full_workload() {
    rclone_workload(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_in_endpoint_mode_runs_the_full_workload() {
    rclone_workload(false).await;
}

// ---------------------------------------------------------------------------------------------
// s3cmd

/// s3cmd checks every upload's ETag against the MD5 it computed, unless the response says
/// SSE-KMS. Directory buckets' ETags are not MD5s, so s3cmd can upload only with SSE-KMS (or to
/// a bucket whose default encryption is SSE-KMS).
const KMS_KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

struct S3cmd {
    home: PathBuf,
    config: PathBuf,
}

impl S3cmd {
    async fn new(h: &Harness, through_proxy: bool) -> S3cmd {
        let home = h.dir.path().join("home-s3cmd");
        std::fs::create_dir_all(&home).unwrap();
        let (proxy_ip, proxy_port) = (h.proxy.ip(), h.proxy.port());
        // s3cmd ignores the proxy variables: the proxy and its CA go in .s3cfg.
        let mode = if through_proxy {
            format!(
                "host_base = s3express-usw2-az1.us-west-2.amazonaws.com\n\
                 host_bucket = %(bucket)s.s3express-usw2-az1.us-west-2.amazonaws.com\n\
                 use_https = True\ncheck_ssl_certificate = True\ncheck_ssl_hostname = True\n\
                 ca_certs_file = {}\nproxy_host = {proxy_ip}\nproxy_port = {proxy_port}\n",
                h.proxy_ca().await.display()
            )
        } else {
            format!(
                "host_base = {proxy_ip}:{proxy_port}\nhost_bucket = {proxy_ip}:{proxy_port}\n\
                 use_https = False\n"
            )
        };
        let config = home.join(".s3cfg");
        std::fs::write(
            &config,
            format!(
                "[default]\naccess_key = AKIDDUMMYS3CMD\nsecret_key = dummy-s3cmd-secret\n\
                 bucket_location = us-west-2\n{mode}multipart_chunk_size_mb = 5\n\
                 max_retries = 1\nretry_delay = 0\nstorage_class = EXPRESS_ONEZONE\n"
            ),
        )
        .unwrap();
        S3cmd { home, config }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = clean(clients_venv().join("bin/s3cmd"), &self.home);
        command.arg("-c").arg(&self.config).args(args);
        command
    }

    async fn run(&self, args: &[&str]) -> String {
        succeed(&format!("s3cmd {args:?}"), self.command(args)).await
    }
}

async fn s3cmd_workload(through_proxy: bool) {
    let h = Harness::start(Options::default()).await;
    let input = inputs(&h, 80);
    let s3cmd = S3cmd::new(&h, through_proxy).await;
    let uri = |key: &str| format!("s3://{BUCKET}/s3cmd/{key}");
    let (small, big) = (input.small.to_str().unwrap(), input.big.to_str().unwrap());
    let kms = format!("--server-side-encryption-kms-id={KMS_KEY}");

    // Without SSE-KMS the bytes arrive, but s3cmd rejects the ETag (not an MD5) and gives up.
    let said = fail(
        "s3cmd put (SSE-S3)",
        s3cmd.command(&["put", small, &uri("plain.bin")]),
    )
    .await;
    assert!(
        said.contains("MD5 sums of sent and received files don't match"),
        "{said}"
    );
    assert_stored(&h, "s3cmd/plain.bin", &input.small_data);

    // A bucket whose default encryption is SSE-KMS: s3cmd names the same key, as S3 requires
    // (a Zonal request cannot choose other settings than its session's). The proxy carries
    // the request's SSE headers into its CreateSession.
    h.emulator.set_bucket_encryption(
        BUCKET,
        s3x_emulator::Sse::Kms {
            key_id: KMS_KEY.into(),
            bucket_key_enabled: true,
        },
    );
    s3cmd.run(&["put", &kms, small, &uri("small.bin")]).await;
    assert_stored(&h, "s3cmd/small.bin", &input.small_data);
    // Over multipart_chunk_size_mb: a multipart upload.
    s3cmd.run(&["put", &kms, big, &uri("multipart.bin")]).await;
    assert_stored(&h, "s3cmd/multipart.bin", &input.big_data);

    let info = s3cmd.run(&["info", &uri("multipart.bin")]).await;
    assert!(info.contains(&format!("File size: {BIG_LEN}")), "{info}");

    let out = h.dir.path().join("small.out");
    s3cmd
        .run(&["get", &uri("small.bin"), out.to_str().unwrap()])
        .await;
    assert!(std::fs::read(&out).unwrap() == input.small_data);
    // `get --continue` on a partial file asks for the rest with a Range header.
    let partial = h.dir.path().join("big.out");
    std::fs::write(&partial, &input.big_data[..1_234_567]).unwrap();
    s3cmd
        .run(&[
            "get",
            "--continue",
            &uri("multipart.bin"),
            partial.to_str().unwrap(),
        ])
        .await;
    assert!(std::fs::read(&partial).unwrap() == input.big_data);
    assert_ranged_get(&h).await;

    s3cmd
        .run(&["cp", &uri("small.bin"), &uri("copy.bin")])
        .await;
    assert_stored(&h, "s3cmd/copy.bin", &input.small_data);

    s3cmd
        .run(&["del", &uri("copy.bin"), &uri("plain.bin")])
        .await;
    let said = fail(
        "s3cmd info (deleted)",
        s3cmd.command(&["info", &uri("copy.bin")]),
    )
    .await;
    assert!(said.contains("404"), "{said}");
    let mut keys = h.emulator.keys(BUCKET);
    keys.sort();
    assert_eq!(keys, ["s3cmd/multipart.bin", "s3cmd/small.bin"]);

    // s3cmd 2.4 lists only with ListObjects v1, which directory buckets lack: the proxy
    // translates it to ListObjectsV2 (and serves prefixes that do not end in `/`).
    let listed = s3cmd.run(&["ls", &uri("")]).await;
    for key in ["multipart.bin", "small.bin"] {
        assert!(listed.contains(&uri(key)), "s3cmd ls: {listed}");
    }
    let listed = s3cmd.run(&["ls", &uri("sm")]).await;
    assert!(
        listed.contains(&uri("small.bin")) && !listed.contains("multipart"),
        "s3cmd ls with a partial name: {listed}"
    );
    let listed = s3cmd
        .run(&["ls", "--recursive", &format!("s3://{BUCKET}")])
        .await;
    assert_eq!(
        listed.matches("s3://").count(),
        2,
        "s3cmd ls --recursive: {listed}"
    );
    let c = h.emulator.counters();
    assert_eq!(c.signature_failures, 0, "{c:?}");
    let count = |op: &str| c.by_operation.get(op).copied().unwrap_or(0);
    assert!(count("UploadPart") >= 3, "{c:?}");
    assert!(count("CompleteMultipartUpload") >= 1, "{c:?}");
    assert!(count("CopyObject") >= 1, "{c:?}");
    assert!(count("DeleteObject") + count("DeleteObjects") >= 1, "{c:?}");
    assert!(count("HeadObject") >= 1, "{c:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3cmd_through_its_proxy_settings_runs_the_workload() {
    s3cmd_workload(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3cmd_in_endpoint_mode_runs_the_workload() {
    s3cmd_workload(false).await;
}

// ---------------------------------------------------------------------------------------------
// The AWS SDK for JavaScript v3

async fn js_workload(mode: &str, session_auth: bool, prefix: &str) {
    let h = Harness::start(Options::default()).await;
    let input = inputs(&h, 90);
    let node = program("node", "S3X_TEST_NODE", "apt-get install nodejs npm");
    let mut command = clean(node, &h.dir.path().join("home-js"));
    command
        .env("NODE_PATH", node_modules())
        .env("MODE", mode)
        .env("PROXY", format!("http://{}", h.proxy))
        .env("BUCKET", BUCKET)
        .env("PREFIX", prefix)
        .env("SMALL", &input.small)
        .env("BIG", &input.big)
        .env("SESSION_AUTH", if session_auth { "on" } else { "off" })
        .arg(repo().join("tests/clients/js/workload.cjs"));
    if mode == "proxy" {
        // The proxy agent's own `ca` option does not reach the TLS inside the tunnel.
        command.env("NODE_EXTRA_CA_CERTS", h.proxy_ca().await);
    }
    let out = succeed(&format!("node workload.cjs ({mode})"), command).await;
    assert_eq!(out.trim(), "ok");
    assert_stored(&h, &format!("{prefix}small.bin"), &input.small_data);
    assert_stored(&h, &format!("{prefix}multipart.bin"), &input.big_data);
    assert_eq!(
        h.emulator.keys(BUCKET).len(),
        2,
        "{:?}",
        h.emulator.keys(BUCKET)
    );
    assert_workload_counters(&h, &["CopyObject"]);
    assert_ranged_get(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_through_a_proxy_agent_runs_the_full_workload() {
    js_workload("proxy", true, "js/").await;
}

/// The SDK builds `/BUCKET//KEY` for a directory bucket at an IP endpoint with
/// `forcePathStyle`, and sends its CreateSession as `GET /BUCKET//?session=`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_in_endpoint_mode_with_force_path_style_runs_the_full_workload() {
    js_workload("endpoint", true, "js/").await;
}

/// The same without the SDK's own sessions: every request is `/BUCKET//KEY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_sdk_in_endpoint_mode_without_session_auth_keeps_its_keys() {
    js_workload("endpoint", false, "js/").await;
}

// ---------------------------------------------------------------------------------------------
// s3fs with pandas, and pyarrow's S3FileSystem

/// Runs a script from tests/clients/python; `configure` adds the mode's settings, given the
/// proxy's address and the path of its CA.
async fn python_workload(
    script: &str,
    prefix: &str,
    configure: impl FnOnce(&mut Command, std::net::SocketAddr, &Path),
) {
    let h = Harness::start(Options::default()).await;
    let input = inputs(&h, 100);
    let mut command = clean(
        clients_venv().join("bin/python"),
        &h.dir.path().join("home-py"),
    );
    command
        .env("BUCKET", BUCKET)
        .env("PREFIX", prefix)
        .env("SMALL", &input.small)
        .env("BIG", &input.big)
        .arg(repo().join("tests/clients/python").join(script));
    configure(&mut command, h.proxy, &h.proxy_ca().await);
    let out = succeed(script, command).await;
    assert_eq!(out.trim(), "ok");
    assert_stored(&h, &format!("{prefix}small.bin"), &input.small_data);
    assert_stored(&h, &format!("{prefix}multipart.bin"), &input.big_data);
    assert_workload_counters(&h, &["CopyObject"]);
    assert_ranged_get(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3fs_and_pandas_in_endpoint_mode_anonymous_run_the_full_workload() {
    python_workload("s3fs_pandas.py", "s3fs/", |c, proxy, _| {
        c.env("MODE", "endpoint")
            .env("ENDPOINT", format!("http://{proxy}"))
            .env("ANON", "1");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3fs_and_pandas_through_https_proxy_with_dummy_credentials_run_the_full_workload() {
    // botocore (under aiobotocore) reads HTTPS_PROXY and AWS_CA_BUNDLE; with credentials it
    // sends its own CreateSession, which the proxy answers.
    python_workload("s3fs_pandas.py", "s3fs/", |c, proxy, ca| {
        c.env("MODE", "proxy")
            .env("HTTPS_PROXY", format!("http://{proxy}"))
            .env("AWS_CA_BUNDLE", ca)
            .env("AWS_ACCESS_KEY_ID", "AKIDDUMMYS3FS")
            .env("AWS_SECRET_ACCESS_KEY", "dummy-s3fs-secret");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_in_endpoint_mode_with_dummy_credentials_runs_the_full_workload() {
    python_workload("pyarrow_fs.py", "arrow/", |c, proxy, _| {
        c.env("MODE", "endpoint")
            .env("ENDPOINT_HOST", proxy.to_string());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_through_proxy_options_anonymous_runs_the_full_workload() {
    // Arrow takes its proxy as `proxy_options`, and the CA as `tls_ca_file_path`.
    python_workload("pyarrow_fs.py", "arrow/", |c, proxy, ca| {
        c.env("MODE", "proxy")
            .env("PROXY", format!("http://{proxy}"))
            .env("CA", ca)
            .env("ANON", "1");
    })
    .await;
}
