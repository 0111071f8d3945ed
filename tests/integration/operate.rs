//! Operating the proxy: metrics as documented, health, logs without secrets, graceful shutdown.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use s3x_emulator::{Config as EmulatorConfig, Emulator, Fault};

use crate::harness::{
    assert_metric, channel_body, data, eventually, metric, send_http1, send_on_new_connection,
    zonal_host, Harness, Options, BUCKET, WAIT,
};
use crate::process::ProxyProcess;

/// The metric names in docs/metrics.md's Metric | Type | Labels | Meaning table.
fn documented_metrics() -> Vec<(String, String, String)> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md"))
            .unwrap();
    doc.lines()
        .filter(|l| l.starts_with("| `s3x_proxy_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].to_owned(),
                cells[3].to_owned(),
            )
        })
        .collect()
}

/// Metric families in Prometheus text, with their TYPE.
fn exported(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let mut it = l.split(' ');
            (it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_doc_table_matches_what_metrics_exports() {
    let h = Harness::start(Options::default()).await;
    // A short workload so every labelled family has a series.
    h.forward(Method::PUT, BUCKET, "/m", &[], data(2000, 1))
        .await;
    h.forward(Method::GET, BUCKET, "/m", &[], Bytes::new())
        .await;
    h.emulator.inject(Fault::ExpiredToken { count: 1 });
    h.forward(Method::GET, BUCKET, "/m", &[], Bytes::new())
        .await;
    let text = h.metrics().await;
    let exported = exported(&text);
    let documented = documented_metrics();
    assert!(
        documented.len() >= 10,
        "docs/metrics.md has the metrics table: {documented:?}"
    );
    let exported_names: BTreeSet<&str> = exported.iter().map(|(n, _)| n.as_str()).collect();
    let documented_names: BTreeSet<&str> = documented.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        exported_names, documented_names,
        "docs/metrics.md's table and /metrics list the same metrics"
    );
    for (name, kind, labels) in &documented {
        let (_, exported_kind) = exported.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(
            kind, exported_kind,
            "{name}: docs/metrics.md says {kind}, /metrics says {exported_kind}"
        );
        let series = text
            .lines()
            .find(|l| l.starts_with(name.as_str()) && !l.starts_with('#'));
        for label in labels
            .split(',')
            .map(|l| l.trim().trim_matches('`'))
            .filter(|l| !l.is_empty() && *l != "—")
        {
            let series =
                series.unwrap_or_else(|| panic!("{name} has no series after the workload"));
            assert!(
                series.contains(&format!("{label}=\"")),
                "{name} carries label {label}: {series}"
            );
        }
    }
    for contract in [
        "s3x_proxy_requests_total",
        "s3x_proxy_request_duration_seconds",
        "s3x_proxy_upstream_duration_seconds",
        "s3x_proxy_sessions_created_total",
        "s3x_proxy_create_session_duration_seconds",
        "s3x_proxy_session_cache_lookups_total",
        "s3x_proxy_session_cache_entries",
        "s3x_proxy_bytes_total",
        "s3x_proxy_connections_active",
        "s3x_proxy_upstream_retries_total",
    ] {
        assert!(
            exported_names.contains(contract),
            "DESIGN.md's contract metric {contract} is exported"
        );
    }
    assert!(
        text.contains("le=\"0.0001\"") && text.contains("le=\"30\""),
        "latency buckets span 100 µs to 30 s"
    );
    assert_metric(&text, "s3x_proxy_session_cache_entries", &[], 1.0);
    assert!(metric(&text, "s3x_proxy_bytes_total", &[("direction", "upload")]) >= 2000.0);
    assert!(metric(&text, "s3x_proxy_bytes_total", &[("direction", "download")]) >= 4000.0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_and_alerts_query_only_exported_metrics() {
    let h = Harness::start(Options::default()).await;
    h.forward(Method::GET, BUCKET, "/x", &[], Bytes::new())
        .await;
    let text = h.metrics().await;
    let families: BTreeSet<String> = exported(&text).into_iter().map(|(n, _)| n).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    for file in [
        "grafana/s3x-proxy.json",
        "kubernetes/monitoring/prometheusrule.yaml",
    ] {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let mut used = BTreeSet::new();
        let mut rest = source.as_str();
        while let Some(at) = rest.find("s3x_proxy_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            used.insert(name);
        }
        assert!(!used.is_empty(), "{file} queries proxy metrics");
        for name in &used {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(*f)))
                .unwrap_or(name);
            assert!(
                families.contains(family),
                "{file} uses {name}, which the proxy does not export"
            );
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_endpoints_answer() {
    let h = Harness::start(Options::default()).await;
    let admin = h.admin.to_string();
    let healthz = send_http1(h.admin, Method::GET, "/healthz", &admin, &[], Bytes::new()).await;
    assert_eq!(healthz.status, StatusCode::OK);
    let ready = eventually(WAIT, || async {
        let ready = send_http1(h.admin, Method::GET, "/readyz", &admin, &[], Bytes::new()).await;
        ready.status == StatusCode::OK
    })
    .await;
    assert!(ready, "ready once credentials resolve");
    h.stop().await;
}

async fn emulator_with_ca(dir: &Path) -> (Emulator, std::path::PathBuf) {
    crate::harness::init();
    let emulator = Emulator::start(EmulatorConfig {
        buckets: vec![BUCKET.into()],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let ca = dir.join("emulator-ca.pem");
    std::fs::write(&ca, emulator.ca_pem()).unwrap();
    (emulator, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_slow_download_finish_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, emulator_ca) = emulator_with_ca(dir.path()).await;
    let proxy = ProxyProcess::start(
        emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &["--shutdown-grace", "20s"],
        "info",
    );
    let body = data(256 * 1024, 40);
    let put = send_http1(
        proxy.proxy,
        Method::PUT,
        &format!("http://{}/slow", zonal_host(BUCKET)),
        &zonal_host(BUCKET),
        &[],
        body.clone(),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    // 256 KiB at 128 KiB/s: about two seconds of streaming.
    emulator.inject(Fault::SlowBody {
        bytes_per_sec: 128 * 1024,
    });
    let stream = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get(format!("http://{}/slow", zonal_host(BUCKET)))
        .header("host", zonal_host(BUCKET))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The download is under way: its first bytes are in.
    let mut download = response.into_body();
    let first = loop {
        let frame = download.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            break data;
        }
    };
    let download = tokio::spawn(async move {
        let rest = download.collect().await?.to_bytes();
        Ok::<_, hyper::Error>([first, rest].concat())
    });
    // An upload the client holds open keeps the proxy draining for as long as the checks below
    // take (the download alone may end first on a loaded machine). Larger than the proxy keeps
    // for a retry (`proxy::RETAIN_BODY_LIMIT`), so it goes to S3 as it comes.
    let held = data(256 * 1024, 41);
    let (upload, uploaded) = held_upload(&proxy, &emulator, held.clone()).await;
    proxy.terminate();
    // Draining: the admin listener stays up and says not ready; the proxy port refuses.
    let admin = proxy.admin.to_string();
    let not_ready = eventually(WAIT, || async {
        let ready = send_http1(
            proxy.admin,
            Method::GET,
            "/readyz",
            &admin,
            &[],
            Bytes::new(),
        )
        .await;
        ready.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(not_ready, "/readyz turns 503 once shutdown starts");
    let refused = eventually(WAIT, || async {
        tokio::net::TcpStream::connect(proxy.proxy).await.is_err()
    })
    .await;
    assert!(refused, "new connections are refused while draining");
    let got = download
        .await
        .unwrap()
        .expect("the in-flight download completes");
    assert!(got == body, "the download is complete and intact");
    upload.send(held.slice(128 * 1024..)).await.unwrap();
    drop(upload);
    let uploaded = uploaded.await.unwrap();
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    assert_eq!(
        emulator.object(BUCKET, "held").as_deref(),
        Some(&held[..]),
        "the upload in flight completes too"
    );
    let (status, log) = proxy.wait_for_exit().await;
    assert!(status.success(), "exits cleanly: {log}");
    assert!(log.contains("drained"), "logs the drain: {log}");
}

/// Starts a PUT of `body` to BUCKET/held through `proxy` and sends its first 128 KiB: the
/// client holds the rest (send it, then drop the sender). Returns once S3 has the request.
async fn held_upload(
    proxy: &ProxyProcess,
    emulator: &Emulator,
    body: Bytes,
) -> (
    tokio::sync::mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<crate::harness::Reply>,
) {
    let puts = || {
        let counters = emulator.counters();
        counters.by_operation.get("PutObject").copied().unwrap_or(0)
    };
    let before = puts();
    let (sender, held) = channel_body();
    let host = zonal_host(BUCKET);
    let request = http::Request::put(format!("http://{host}/held"))
        .header("host", &host)
        .header("content-length", body.len())
        .body(held)
        .unwrap();
    let reply = tokio::spawn(send_on_new_connection(proxy.proxy, request));
    sender.send(body.slice(..128 * 1024)).await.unwrap();
    let arrived = eventually(WAIT, || async { puts() > before }).await;
    assert!(arrived, "the upload reaches S3");
    (sender, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_one_json_access_line_per_request_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, emulator_ca) = emulator_with_ca(dir.path()).await;
    let proxy = ProxyProcess::start(
        emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &["--log-format", "json"],
        "trace",
    );
    let host = zonal_host(BUCKET);
    let fake_auth = "AWS4-HMAC-SHA256 Credential=AKIDCLIENTFAKE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature=deadbeefclientsignature";
    let put = send_http1(
        proxy.proxy,
        Method::PUT,
        &format!("http://{host}/logged"),
        &host,
        &[
            ("authorization", fake_auth),
            ("x-amz-s3session-token", "client-token-secret"),
        ],
        data(5000, 41),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    let get = send_http1(
        proxy.proxy,
        Method::GET,
        &format!("http://{host}/logged"),
        &host,
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(get.status, StatusCode::OK);
    // Access lines are written once each body is done: they may follow the answers.
    let access_lines = |log: &str| log.matches("\"target\":\"s3x_proxy::access\"").count();
    eventually(WAIT, || async { access_lines(&proxy.log_text()) >= 2 }).await;
    let log = proxy.log_text();
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"target\":\"s3x_proxy::access\""))
        .collect();
    assert_eq!(access.len(), 2, "one access line per request:\n{log}");
    assert!(
        access[0].contains("\"operation\":\"PutObject\"")
            && access[0].contains("\"bytes_up\":5000"),
        "{}",
        access[0]
    );
    assert!(
        access[1].contains("\"operation\":\"GetObject\"")
            && access[1].contains("\"bytes_down\":5000")
            && access[1].contains("\"status\":200"),
        "{}",
        access[1]
    );
    assert!(
        access[1].contains("\"session\":\"hit\"") || access[1].contains("\"session\":\"miss\""),
        "{}",
        access[1]
    );
    for line in log.lines() {
        assert!(line.starts_with('{'), "every line is JSON: {line}");
    }
    for secret in [
        "emulator/secret/EXAMPLEKEY",
        "client-token-secret",
        "deadbeefclientsignature",
        "Signature=",
        "x-amz-s3session-token:",
        "BEGIN PRIVATE KEY",
        "SecretAccessKey>",
        "SessionToken>",
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}");
    }
    let keyless = ProxyProcess::start(
        emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &["--log-object-names", "false"],
        "info",
    );
    send_http1(
        keyless.proxy,
        Method::GET,
        &format!("http://{host}/private-key-name"),
        &host,
        &[],
        Bytes::new(),
    )
    .await;
    eventually(WAIT, || async {
        keyless.log_text().contains("s3x_proxy::access")
    })
    .await;
    let text = keyless.log_text();
    assert!(text.contains("s3x_proxy::access"), "{text}");
    assert!(
        !text.contains("private-key-name") && !text.contains(BUCKET),
        "names are left out: {text}"
    );
}

#[test]
fn the_options_doc_table_matches_the_flags() {
    use clap::CommandFactory;
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/options.md"))
            .unwrap();
    let rows: Vec<(String, String)> = doc
        .lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let flag = cells[1]
                .trim_matches('`')
                .split(' ')
                .next()
                .unwrap()
                .to_owned();
            (flag, cells[2].trim_matches('`').to_owned())
        })
        .collect();
    let command = s3x_proxy::config::Cli::command();
    let mut flags = Vec::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let flag = format!("--{long}");
        let row = rows
            .iter()
            .find(|(f, _)| *f == flag)
            .unwrap_or_else(|| panic!("docs/options.md's table lacks {flag}"));
        assert_eq!(
            row.1, env,
            "{flag}: docs/options.md names variable {}, the flag reads {env}",
            row.1
        );
        let expected = format!("S3X_PROXY_{}", long.to_uppercase().replace('-', "_"));
        assert!(
            env == expected || long == "aws-ca-bundle",
            "{flag} reads {env}, not {expected}"
        );
        flags.push(flag);
    }
    for (flag, _) in &rows {
        assert!(
            flags.contains(flag),
            "docs/options.md documents {flag}, which does not exist"
        );
    }
}

#[test]
fn ca_and_env_subcommands_create_the_ca_and_print_what_a_shell_needs() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let run = |sub: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_s3x-proxy"))
            .env_remove("AWS_CA_BUNDLE")
            .env("S3X_PROXY_CA_DIR", &ca_dir)
            .env("S3X_PROXY_LISTEN", "127.0.0.1:18080")
            .arg(sub)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let path = run("ca");
    assert_eq!(path.trim(), ca_dir.join("ca.pem").display().to_string());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(ca_dir.join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the CA key is private");
    let first = std::fs::read(ca_dir.join("ca.pem")).unwrap();
    let env = run("env");
    assert_eq!(
        std::fs::read(ca_dir.join("ca.pem")).unwrap(),
        first,
        "an existing CA is loaded, not replaced"
    );
    for line in [
        "export HTTPS_PROXY=http://127.0.0.1:18080",
        "export https_proxy=http://127.0.0.1:18080",
        "export HTTP_PROXY=http://127.0.0.1:18080",
        "export http_proxy=http://127.0.0.1:18080",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in:\n{env}");
    }
    assert!(
        env.contains(&format!(
            "export AWS_CA_BUNDLE='{}'",
            ca_dir.join("ca.pem").display()
        )),
        "{env}"
    );
    let no_proxy = env
        .lines()
        .find(|l| l.starts_with("export NO_PROXY="))
        .unwrap();
    for direct in [
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "fd00:ec2::23",
    ] {
        assert!(no_proxy.contains(direct), "{no_proxy}");
    }
    // The lines are valid shell.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{env}\ntest \"$HTTPS_PROXY\" = http://127.0.0.1:18080"
        ))
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_label_is_opt_in() {
    let plain = Harness::start(Options::default()).await;
    plain
        .forward(Method::GET, BUCKET, "/x", &[], Bytes::new())
        .await;
    assert!(
        !plain.metrics().await.contains("bucket=\""),
        "no bucket label by default"
    );
    plain.stop().await;
    let labelled = Harness::start(Options {
        extra_args: vec!["--metrics-bucket-label".into()],
        ..Options::default()
    })
    .await;
    labelled
        .forward(Method::GET, BUCKET, "/x", &[], Bytes::new())
        .await;
    let text = labelled.metrics().await;
    assert_metric(
        &text,
        "s3x_proxy_requests_total",
        &[("bucket", BUCKET), ("operation", "GetObject")],
        1.0,
    );
    labelled.stop().await;
    let unnamed_logs = Harness::start(Options {
        extra_args: vec![
            "--metrics-bucket-label".into(),
            "--log-object-names".into(),
            "false".into(),
        ],
        ..Options::default()
    })
    .await;
    unnamed_logs
        .forward(Method::GET, BUCKET, "/x", &[], Bytes::new())
        .await;
    let text = unnamed_logs.metrics().await;
    assert_metric(
        &text,
        "s3x_proxy_requests_total",
        &[("bucket", BUCKET), ("operation", "GetObject")],
        1.0,
    );
    unnamed_logs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_readyz_says_why_and_the_cause_is_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, emulator_ca) = emulator_with_ca(dir.path()).await;
    // The chain's only source is an endpoint that has no credentials to give: each time it is
    // asked is one try of the chain, seen from outside.
    let (endpoint, asked) = empty_credentials_endpoint().await;
    let full_uri = format!("http://{endpoint}/v2/credentials");
    let proxy = ProxyProcess::start_with_env(
        emulator.addr(),
        &emulator_ca,
        &dir.path().join("ca"),
        &[],
        "info",
        &[
            ("AWS_ACCESS_KEY_ID", None),
            ("AWS_SECRET_ACCESS_KEY", None),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", Some(&full_uri)),
            ("RUST_LOG", None),
        ],
    );
    let admin = proxy.admin.to_string();
    let readyz = || {
        send_http1(
            proxy.admin,
            Method::GET,
            "/readyz",
            &admin,
            &[],
            Bytes::new(),
        )
    };
    let says_why = eventually(WAIT, || async {
        let ready = readyz().await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
        ready.text().contains("no AWS credentials yet")
    })
    .await;
    let body = readyz().await.text();
    assert!(
        says_why && body.starts_with("not ready: no AWS credentials yet: "),
        "{body}"
    );
    let (host, url) = (
        zonal_host(BUCKET),
        format!("http://{}/k", zonal_host(BUCKET)),
    );
    let get = || send_http1(proxy.proxy, Method::GET, &url, &host, &[], Bytes::new());
    let request = get().await;
    assert_eq!(
        (request.status, request.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
    );
    // RUST_LOG is unset, so the default filter applies. The chain is tried again after its
    // 1 s back-off; the same cause is not logged again.
    let tried_again = eventually(WAIT, || async { asked.load(Ordering::SeqCst) >= 2 }).await;
    assert!(tried_again, "the chain is tried again after its back-off");
    // A request now waits for that try to end, or finds it ended: either way the try has
    // logged what it logs before this request's access line.
    let request = get().await;
    assert_eq!(request.status, StatusCode::SERVICE_UNAVAILABLE);
    let access_lines = |log: &str| log.matches("s3x_proxy::access").count();
    eventually(WAIT, || async { access_lines(&proxy.log_text()) >= 2 }).await;
    let log = proxy.log_text();
    assert_eq!(access_lines(&log), 2, "{log}");
    assert_eq!(
        log.matches("could not load AWS credentials").count(),
        1,
        "the cause is logged once:\n{log}"
    );
    assert!(
        !log.contains("aws_config"),
        "aws-config's own warnings are quiet:\n{log}"
    );
    assert_eq!(emulator.counters().create_session_read_only, 0);
}

/// A container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`) on loopback that has
/// none to give: it answers every request 404, and counts them.
async fn empty_credentials_endpoint() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            let service = hyper::service::service_fn(move |_request| {
                count.fetch_add(1, Ordering::SeqCst);
                let none = http::Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(http_body_util::Empty::<Bytes>::new());
                async { none }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(io, service));
        }
    });
    (addr, asked)
}
