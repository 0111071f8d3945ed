//! curl, a real client, through the proxy: `http_proxy` (absolute form) and `https_proxy`
//! (CONNECT, h2 and HTTP/1.1).

use std::process::Command;

use crate::harness::{data, zonal_host, Harness, Options, BUCKET};

/// A curl command with the machine's global TLS variables removed and only `vars` set.
fn curl(vars: &[(&str, String)]) -> Command {
    let mut command = Command::new("curl");
    for name in [
        "AWS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "CURL_CA_BUNDLE",
    ] {
        command.env_remove(name);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command.args(["-sS", "--fail-with-body", "--max-time", "60"]);
    command
}

fn run(mut command: Command) -> Vec<u8> {
    let output = command.output().expect("curl runs");
    assert!(
        output.status.success(),
        "curl failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    output.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_puts_and_gets_through_http_proxy() {
    let h = Harness::start(Options::default()).await;
    let file = h.dir.path().join("upload.bin");
    let body = data(300_000, 21);
    std::fs::write(&file, &body).unwrap();
    let url = format!("http://{}/curl/object.bin", zonal_host(BUCKET));
    let proxy = vec![("http_proxy", format!("http://{}", h.proxy))];
    let put = tokio::task::spawn_blocking({
        let mut c = curl(&proxy);
        c.args(["-X", "PUT", "--data-binary"])
            .arg(format!("@{}", file.display()))
            .arg(&url);
        move || run(c)
    });
    put.await.unwrap();
    let get = tokio::task::spawn_blocking({
        let mut c = curl(&proxy);
        c.arg(&url);
        move || run(c)
    });
    assert!(
        get.await.unwrap() == body[..],
        "curl gets back the same bytes"
    );
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

async fn curl_over_https_proxy(http_version: &'static str) {
    let h = Harness::start(Options::default()).await;
    let ca = h.proxy_ca().await;
    let body = data(70_000, 22);
    let file = h.dir.path().join("upload.bin");
    std::fs::write(&file, &body).unwrap();
    let url = format!("https://{}/curl/tls-{http_version}", zonal_host(BUCKET));
    let proxy = vec![("https_proxy", format!("http://{}", h.proxy))];
    let mut put = curl(&proxy);
    put.args([http_version, "--cacert"])
        .arg(&ca)
        .args(["-X", "PUT", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(&url);
    tokio::task::spawn_blocking(move || run(put)).await.unwrap();
    let mut get = curl(&proxy);
    get.args([http_version, "--cacert"])
        .arg(&ca)
        .args(["-w", "\n%{http_version}"])
        .arg(&url);
    let out = tokio::task::spawn_blocking(move || run(get)).await.unwrap();
    let (got, version) =
        out.split_at(out.len() - out.iter().rev().position(|b| *b == b'\n').unwrap() - 1);
    assert!(*got == body[..]);
    let expected = if http_version == "--http2" {
        "2"
    } else {
        "1.1"
    };
    assert_eq!(
        String::from_utf8_lossy(&version[1..]),
        expected,
        "negotiated HTTP version"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_uses_h2_through_https_proxy() {
    curl_over_https_proxy("--http2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_uses_http1_through_https_proxy() {
    curl_over_https_proxy("--http1.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_over_h2_reaches_curl_as_the_proxys_answer_every_time() {
    let h = Harness::start(Options {
        extra_args: vec!["--session-mode".into(), "read-only".into()],
        ..Options::default()
    })
    .await;
    let file = h.dir.path().join("refused.bin");
    std::fs::write(&file, data(256 * 1024, 5)).unwrap();
    let url = format!("https://{}/refused.bin", zonal_host(BUCKET));
    let vars = vec![("https_proxy", format!("http://{}", h.proxy))];
    let ca = h.proxy_ca().await;
    for attempt in 0..20 {
        let mut c = curl(&vars);
        // Not --fail-with-body: the 403 is the expected answer.
        c.args([
            "--http2",
            "-o",
            "-",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "--cacert",
        ])
        .arg(&ca)
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(&url);
        let output = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            stdout.contains("<Code>AccessDenied</Code>") && stdout.ends_with("403"),
            "attempt {attempt}: curl said {}: {stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(h.emulator.counters().requests, 0);
    h.stop().await;
}
