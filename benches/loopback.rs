//! Loopback benchmarks: the release proxy binary against the in-process S3 Express emulator,
//! everything on 127.0.0.1. Prints figures named by scenario; asserts nothing about speed.
//! See benches/README.md for what each scenario measures and how to quiet the machine.
//!
//! Run with `cargo bench --bench loopback`.

use std::sync::Arc;

use http::Method;
use s3x_emulator::{Config as EmulatorConfig, Emulator};

#[path = "loopback/client.rs"]
mod client;
#[path = "loopback/direct.rs"]
mod direct;
#[path = "loopback/handshake.rs"]
mod handshake;
#[allow(dead_code)]
#[path = "../tests/integration/process.rs"]
mod process;
#[path = "loopback/requests.rs"]
mod requests;
#[path = "loopback/streaming.rs"]
mod streaming;

use client::{full, tcp, Sender};
use process::ProxyProcess;

const BUCKET: &str = "bench--usw2-az1--x-s3";

/// The Zonal host of a bucket in zone usw2-az1.
pub fn zonal_host(bucket: &str) -> String {
    format!("{bucket}.s3express-usw2-az1.us-west-2.amazonaws.com")
}

/// The running emulator and proxy, and client TLS settings for both.
pub struct Bench {
    pub emulator: Emulator,
    pub proxy: ProxyProcess,
    pub host: String,
    /// Trusts the emulator's CA; offers HTTP/1.1.
    pub emulator_tls: Arc<rustls::ClientConfig>,
    /// Trust the proxy's CA; offer HTTP/1.1 only, or h2 first (as curl does).
    pub proxy_tls_h1: Arc<rustls::ClientConfig>,
    pub proxy_tls_h2: Arc<rustls::ClientConfig>,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// Starts the proxy binary with `RUST_LOG=rust_log` against `emulator`.
    fn start(emulator: Emulator, rust_log: &str) -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let emulator_ca = dir.path().join("emulator-ca.pem");
        std::fs::write(&emulator_ca, emulator.ca_pem()).expect("write CA");
        let ca_dir = dir.path().join("ca");
        let proxy = ProxyProcess::start(emulator.addr(), &emulator_ca, &ca_dir, &[], rust_log);
        let proxy_ca = std::fs::read(ca_dir.join("ca.pem")).expect("the proxy wrote its CA");
        Bench {
            host: zonal_host(BUCKET),
            emulator_tls: client::tls_config(emulator.ca_pem().as_bytes(), &[b"http/1.1"]),
            proxy_tls_h1: client::tls_config(&proxy_ca, &[b"http/1.1"]),
            proxy_tls_h2: client::tls_config(&proxy_ca, &[b"h2", b"http/1.1"]),
            emulator,
            proxy,
            _dir: dir,
        }
    }

    /// Stops the proxy and hands the emulator back.
    fn stop(self) -> Emulator {
        self.emulator
    }

    /// (count, sum of request_duration, sum of upstream_duration) of GetObject, in seconds.
    pub async fn histograms(&self) -> (f64, f64, f64) {
        let mut admin = Sender::h1(tcp(self.proxy.admin).await).await;
        let request = http::Request::get("/metrics")
            .header("host", self.proxy.admin.to_string())
            .body(full(""))
            .unwrap();
        let text = String::from_utf8(admin.call(request).await.to_vec()).expect("UTF-8 metrics");
        let value = |name: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains("operation=\"GetObject\""))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        (
            value("s3x_proxy_request_duration_seconds_count"),
            value("s3x_proxy_request_duration_seconds_sum"),
            value("s3x_proxy_upstream_duration_seconds_sum"),
        )
    }

    /// Stores the 1 KiB object the GET scenarios read, through the proxy.
    async fn put_small_object(&self) {
        let mut sender = Sender::h1(tcp(self.proxy.proxy).await).await;
        let body = full(vec![b'x'; 1024]);
        sender
            .call(requests::forward(
                Method::PUT,
                &self.host,
                requests::SMALL_KEY,
                body,
            ))
            .await;
    }
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name: state is field 3, utime 14 and stime 15, in USER_HZ ticks
    // (100 a second on Linux).
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    ticks as f64 / 100.0
}

/// The printed figures.
#[derive(Default)]
pub struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    /// Adds a row and prints it at once, so progress shows.
    pub fn row(&mut self, scenario: &str, variant: &str, figures: String) {
        eprintln!("  {scenario} / {variant}: {figures}");
        self.rows.push((scenario.into(), variant.into(), figures));
    }

    fn print(&self) {
        let w0 = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = self
            .rows
            .iter()
            .map(|r| r.1.chars().count())
            .max()
            .unwrap_or(0);
        println!("\n{:w0$}  {:w1$}  figures", "scenario", "variant");
        for (scenario, variant, figures) in &self.rows {
            println!("{scenario:w0$}  {variant:w1$}  {figures}");
        }
    }
}

const NOTES: &str = "
Notes:
- Everything shares this machine's cores: the client and the emulator run in this process, the
  proxy in its own. On a small machine the figures say how the three share the CPU as much as
  how fast the proxy is; compare rows with each other, not with real S3.
- \"direct to emulator\" is a client that signs its own requests (aws-sigv4, session credentials
  from its own CreateSession) over TLS straight to the emulator: what an SDK does without the
  proxy. Through the proxy, the client speaks plain HTTP and the proxy signs and adds TLS.
- \"proxy's own time\" comes from the proxy's /metrics: mean request_duration (request head in to
  response head out) minus mean upstream_duration (request sent to S3's response head) for the
  GetObject requests of that run. It is the proxy's per-request work, queueing on a busy CPU
  included, without the client's or the emulator's.
- The proxy logs at RUST_LOG=info (its default: one access line per request) unless the variant
  says otherwise.";

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let config = EmulatorConfig {
        buckets: vec![BUCKET.into()],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let mut table = Table::default();
    let bench = Bench::start(emulator, "info");
    bench.put_small_object().await;
    streaming::put_get_1gib_streaming(&bench, &mut table).await;
    requests::get_1kib_h1_warm_session(&bench, &mut table, "via proxy").await;
    requests::get_1kib_direct(&bench, &mut table).await;
    requests::one_tunnel_vs_plain(&bench, &mut table).await;
    handshake::connect_tls_handshake(&bench, &mut table).await;
    let emulator = bench.stop();

    // The same small GETs with the access log off, to show what logging costs.
    let bench = Bench::start(emulator, "warn,s3x_proxy=info,s3x_proxy::access=off");
    requests::get_1kib_h1_warm_session(&bench, &mut table, "via proxy, access log off").await;
    drop(bench);

    table.print();
    println!("{NOTES}");
}
