//! Memory of the release proxy binary holding many open keep-alive client connections: idle
//! after start, with N silent TCP connections, after one endpoint-mode GET on each of them
//! (kept open, at most `--in-flight` requests at once), 2 s later (the client connections have
//! rested and given their upstream connections to the pools), and once the upstream idle
//! timeout (`--upstream-idle-timeout`, 3 s here) has closed the pools' idle connections. Prints
//! VmRSS, VmHWM, open FDs and the proxy's `s3x_proxy_upstream_connections` for each phase.
//! Exits 1 if a request fails, never for the figures.
//!
//! Run with `cargo bench --bench idle_conns -- --connections 1000` (benches/README.md).

use std::time::{Duration, Instant};

use s3x_emulator::{Config as EmulatorConfig, Emulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

// Shared with the soak run; only part of it is used here.
#[allow(dead_code)]
#[path = "soak/proxy.rs"]
mod proxy;

const BUCKET: &str = "idle--usw2-az1--x-s3";
const KEY: &str = "small-object";
const OBJECT_SIZE: usize = 1024;
/// The proxy's gauge of its connections to S3.
const UPSTREAM: &str = "s3x_proxy_upstream_connections";
/// The figure the proxy should stay under (issue: RSS with 1,000 such connections).
const TARGET_MIB: f64 = 32.0;
const USAGE: &str = "usage: cargo bench --bench idle_conns -- [--connections N] [--in-flight N] \
                     [--log RUST_LOG] [--upstream-idle-timeout DURATION]";

struct Args {
    connections: usize,
    in_flight: usize,
    rust_log: String,
    /// The proxy's `--upstream-idle-timeout`, short so the last phase comes soon.
    upstream_idle_timeout: Duration,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            connections: 1000,
            in_flight: 32,
            rust_log: "info".into(),
            upstream_idle_timeout: Duration::from_secs(3),
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || {
                it.next()
                    .unwrap_or_else(|| fail(&format!("{arg} needs a value")))
            };
            let number = |v: String| -> usize {
                v.parse()
                    .unwrap_or_else(|_| fail(&format!("not a number: {v}")))
            };
            match arg.as_str() {
                "--connections" => args.connections = number(value()).max(1),
                "--in-flight" => args.in_flight = number(value()).max(1),
                "--log" => args.rust_log = value(),
                "--upstream-idle-timeout" => {
                    let v = value();
                    args.upstream_idle_timeout = s3x_proxy::config::parse_duration(&v)
                        .unwrap_or_else(|e| fail(&format!("{v}: {e}")));
                }
                // cargo bench passes --bench to harness = false targets.
                "--bench" => {}
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => fail(&format!("unknown argument {other}")),
            }
        }
        args
    }
}

fn fail(message: &str) -> ! {
    eprintln!("idle_conns: {message}\n{USAGE}");
    std::process::exit(2);
}

fn main() {
    let args = Args::parse();
    check_fd_limit(args.connections);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ok = runtime.block_on(run(args));
    runtime.shutdown_timeout(Duration::from_secs(2));
    std::process::exit(if ok { 0 } else { 1 });
}

/// This process holds the client sockets (and the emulator's); the proxy inherits the limit and
/// holds the other ends and its upstream connections. Each needs about 2 × N descriptors.
fn check_fd_limit(connections: usize) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<usize>().ok());
    let needed = 2 * connections + 256;
    if let Some(soft) = soft.filter(|&soft| soft < needed) {
        fail(&format!(
            "the open-files limit ({soft}) is below {needed}: run `ulimit -n {needed}` first"
        ));
    }
}

async fn run(args: Args) -> bool {
    let n = args.connections;
    let config = EmulatorConfig {
        buckets: vec![BUCKET.to_string()],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("emulator-ca.pem"), emulator.ca_pem()).expect("write CA");
    let log_path = dir.path().join("proxy.log");
    let idle_timeout = args.upstream_idle_timeout;
    let extra = [
        "--upstream-idle-timeout".to_string(),
        format!("{}ms", idle_timeout.as_millis()),
    ];
    let proxy = proxy::Proxy::start_with(
        emulator.addr(),
        dir.path(),
        &log_path,
        &args.rust_log,
        &extra,
    );
    let addr = proxy.proxy;
    eprintln!(
        "idle_conns: {n} connections, {} requests in flight at most, proxy pid {} on {addr}",
        args.in_flight,
        proxy.pid()
    );
    let started = Instant::now();
    let report = async |label: &str| {
        let s = proxy.sample(label, started.elapsed());
        let upstream = proxy.metrics().await.sum(UPSTREAM, &[]);
        println!(
            "{label:<44} RSS {:>6.1} MiB  HWM {:>6.1} MiB  {:>5} FDs  {:>2} threads  {upstream:>5} upstream",
            s.rss_kib as f64 / 1024.0,
            s.hwm_kib as f64 / 1024.0,
            s.fds,
            s.threads
        );
        s
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = report("1. idle after start").await;

    let object: Vec<u8> = (0..OBJECT_SIZE).map(|i| (i % 251) as u8).collect();
    let put = match TcpStream::connect(addr).await {
        Ok(mut stream) => request(&mut stream, Some(&object), &[]).await,
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = put {
        return failed(&proxy, &format!("PUT of the object failed: {e}"));
    }

    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        match TcpStream::connect(addr).await {
            Ok(stream) => conns.push(stream),
            Err(e) => return failed(&proxy, &format!("connect #{}: {e}", conns.len() + 1)),
        }
    }
    // Until the proxy has accepted them all (its FDs count them), at most 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.sample("", Duration::ZERO).fds < idle.fds + n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    report(&format!("2. {n} silent connections")).await;

    // One GET on each connection, `in_flight` at a time; each connection stays open.
    let mut done = Vec::with_capacity(n);
    let mut errors = Vec::new();
    let mut pending = conns.into_iter();
    loop {
        let mut wave = JoinSet::new();
        for mut stream in pending.by_ref().take(args.in_flight) {
            let object = object.clone();
            wave.spawn(async move {
                let result = request(&mut stream, None, &object).await;
                (stream, result)
            });
        }
        if wave.is_empty() {
            break;
        }
        while let Some(joined) = wave.join_next().await {
            let (stream, result) = joined.expect("client task");
            match result {
                Ok(()) => done.push(stream),
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        let message = format!("{} of {n} GETs failed; first: {}", errors.len(), errors[0]);
        return failed(&proxy, &message);
    }
    let after = report(&format!("3. {n} connections, one GET each")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = report("4. the same, 2 s later (rested)").await;
    // The pools close what has been idle for the timeout, checking once per timeout.
    tokio::time::sleep(idle_timeout * 2 + Duration::from_secs(1)).await;
    let label = format!(
        "5. the same, {:?} later (upstream idle)",
        idle_timeout * 2 + Duration::from_secs(1)
    );
    report(&label).await;

    drop(done);
    tokio::time::sleep(Duration::from_secs(1)).await;
    report("6. 1 s after the clients closed").await;
    let rss = after.rss_kib.max(settled.rss_kib) as f64 / 1024.0;
    println!(
        "idle_conns: {n} connections, one request each: RSS {rss:.1} MiB (target < {TARGET_MIB:.0} MiB)"
    );
    drop(proxy);
    emulator.shutdown().await;
    true
}

/// Prints the failure and the end of the proxy's log; the run then exits 1.
fn failed(proxy: &proxy::Proxy, message: &str) -> bool {
    let log = std::fs::read_to_string(&proxy.log_path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    eprintln!("idle_conns: FAILED: {message}\nthe proxy's last log lines:");
    for line in tail.iter().rev() {
        eprintln!("  {line}");
    }
    false
}

/// One request in endpoint mode, path-style (`/BUCKET/KEY` with `Host` the proxy): a PUT of
/// `put`, or else a GET whose body must be `expect`. The response must be a 200 with a
/// Content-Length; it is read in full within 30 s, and nothing past it, so the connection can
/// be used again.
async fn request(stream: &mut TcpStream, put: Option<&[u8]>, expect: &[u8]) -> Result<(), String> {
    let addr = stream.peer_addr().map_err(|e| e.to_string())?;
    let head = match put {
        Some(body) => format!(
            "PUT /{BUCKET}/{KEY} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ),
        None => format!("GET /{BUCKET}/{KEY} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
    };
    let exchange = async {
        let mut buf = [head.as_bytes(), put.unwrap_or_default()].concat();
        stream.write_all(&buf).await.map_err(|e| e.to_string())?;
        buf.clear();
        let mut chunk = [0u8; 4096];
        // (end of head, Content-Length) once the head is in.
        let mut framing: Option<(usize, usize)> = None;
        while framing.is_none_or(|(end, length)| buf.len() < end + length) {
            let got = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if got == 0 {
                return Err("connection closed mid-response".to_string());
            }
            buf.extend_from_slice(&chunk[..got]);
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            if !head.starts_with("http/1.1 200 ") {
                return Err(format!("status {:?}", head.lines().next().unwrap_or("")));
            }
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("a 200 without a Content-Length")?;
            framing = Some((end + 4, length));
        }
        let body = &buf[framing.map_or(0, |(end, _)| end)..];
        match put {
            None if body != expect => Err(format!("wrong body ({} bytes)", body.len())),
            _ => Ok(()),
        }
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| "no full response within 30 s".to_string())?
}
