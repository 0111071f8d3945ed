//! Legacy tools, the ones that predate directory buckets, driven through the proxy exactly as
//! their own docs tell a user to configure them (DESIGN §3.2): Debian's aws CLI 2.9, restic,
//! s4cmd, duplicity, libs3's `s3`, and s3cmd.
//!
//! No test works around a difference the proxy is meant to bridge: no forced virtual-hosted
//! style, no disabled MD5, no region hacks. Each test checks that the bytes come back identical,
//! that every request that reached the emulator is one S3 Express accepts (see
//! [`assert_upstream_is_s3_express_clean`]), and which bridges the tool needed
//! (`s3x_proxy_compat_total{kind}`).
//!
//! `.ci/test.sh` installs the tools (`apt-get install awscli restic s4cmd duplicity libs3-2`;
//! s3cmd lives in the clients venv); a test whose tool is missing fails and says so.

mod aws_cli;
mod duplicity;
mod libs3;
mod restic;
mod s3cmd;
mod s4cmd;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use s3x_emulator::{AuthKind, EndpointKind, SeenRequest};

use crate::harness::{metric, Harness, BUCKET};

/// How long one tool invocation may take before the test kills it and fails.
const TOOL_DEADLINE: Duration = Duration::from_secs(60);

/// A program Debian's `package` installs in /usr/bin (looked up there, not on PATH: a venv's
/// or pyenv's `aws` may come first on PATH and is not the legacy one).
pub(super) fn debian_tool(name: &str, package: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(
        path.is_file(),
        "{} is not installed: run `bash .ci/test.sh` (it runs `apt-get install {package}`)",
        path.display()
    );
    path
}

/// A command for `program` with nothing from this process's environment but PATH (see
/// [`crate::clients::clean`]): HOME in `home`, no AWS profile, none of the machine's global TLS
/// variables. The aws CLI's region (us-west-2) is set; tools that take no region ignore it.
pub(super) fn clean(program: impl AsRef<OsStr>, home: &Path) -> Command {
    std::fs::create_dir_all(home).unwrap();
    crate::clients::clean(Path::new(program.as_ref()), home)
}

/// Runs a command to its end (killed past [`TOOL_DEADLINE`]).
pub(super) async fn run(what: &str, command: Command) -> Output {
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    match tokio::time::timeout(TOOL_DEADLINE, command.output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what} does not start: {e}")),
        Err(_) => panic!("{what} did not finish within {TOOL_DEADLINE:?}"),
    }
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
pub(super) async fn succeed(h: &Harness, what: &str, command: Command) -> String {
    let output = run(what, command).await;
    ensure(h, what, &output, output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fails unless `ok`, showing the tool's output and the last requests the emulator saw.
pub(super) fn ensure(h: &Harness, what: &str, output: &Output, ok: bool) {
    assert!(
        ok,
        "{}\n--- the emulator's last requests\n{}",
        describe(what, output),
        last_requests(h, 12)
    );
}

/// The last `n` requests the emulator saw, one a line.
fn last_requests(h: &Harness, n: usize) -> String {
    let log = h.emulator.requests_log();
    log[log.len().saturating_sub(n)..]
        .iter()
        .map(|r| {
            format!(
                "{} {}{}?{} op={} auth={} status={} {:?}",
                r.method,
                r.host,
                r.path,
                r.query,
                r.operation,
                r.auth.as_str(),
                r.status,
                r.error_code
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every file under `dir`, by path relative to it.
pub(super) fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Operations S3 Express signs with IAM credentials rather than a session.
const IAM_SIGNED: [&str; 4] = [
    "CreateSession",
    "CopyObject",
    "UploadPartCopy",
    "HeadBucket",
];

/// What S3 Express would refuse in one request the emulator saw, if anything.
fn refusal(r: &SeenRequest) -> Option<&'static str> {
    let on_its_zonal_host =
        r.endpoint == EndpointKind::Zonal && r.host.starts_with(&format!("{BUCKET}."));
    let session = matches!(
        r.auth,
        AuthKind::SessionReadOnly | AuthKind::SessionReadWrite
    );
    if r.operation == "ListObjects" {
        Some("ListObjects v1")
    } else if r.operation == "GetBucketLocation" {
        Some("GetBucketLocation")
    } else if !on_its_zonal_host {
        Some("not virtual-hosted on the bucket's Zonal host")
    } else if IAM_SIGNED.contains(&r.operation.as_str()) != (r.auth == AuthKind::Iam) {
        Some("signed with the wrong kind of credentials")
    } else if !IAM_SIGNED.contains(&r.operation.as_str()) && !session {
        Some("not session-signed")
    } else if !r.signature_verified {
        Some("a signature that does not hold")
    } else if r.status >= 500 || (r.status >= 400 && r.status != 404) {
        Some("refused")
    } else {
        None
    }
}

/// Every request that reached the emulator was one S3 Express accepts from a client that knows
/// directory buckets: virtual-hosted on the bucket's Zonal host, session-signed (IAM-signed for
/// CopyObject, UploadPartCopy, HeadBucket and CreateSession), never ListObjects v1 or
/// GetBucketLocation, and answered without an error but 404.
pub(super) fn assert_upstream_is_s3_express_clean(h: &Harness) {
    let log = h.emulator.requests_log();
    assert!(!log.is_empty(), "no request reached the emulator");
    let bad: Vec<String> = log
        .iter()
        .filter_map(|r| {
            refusal(r).map(|why| {
                format!(
                    "{why}: {} {}{}?{} op={} auth={} status={} {:?}",
                    r.method,
                    r.host,
                    r.path,
                    r.query,
                    r.operation,
                    r.auth.as_str(),
                    r.status,
                    r.error_code
                )
            })
        })
        .collect();
    assert!(
        bad.is_empty(),
        "requests S3 Express would refuse reached the emulator:\n{}",
        bad.join("\n")
    );
}

/// The proxy used each of these bridges (`s3x_proxy_compat_total{kind}`) at least once.
pub(super) async fn assert_bridged(h: &Harness, kinds: &[&str]) {
    let metrics = h.metrics().await;
    let missing: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|kind| metric(&metrics, "s3x_proxy_compat_total", &[("kind", kind)]) < 1.0)
        .collect();
    assert!(
        missing.is_empty(),
        "bridges not used: {missing:?}; compat counters:\n{}",
        metrics
            .lines()
            .filter(|l| l.starts_with("s3x_proxy_compat_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
