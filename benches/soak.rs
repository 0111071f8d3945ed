//! Soak run: the release proxy binary under mixed traffic from concurrent clients in every
//! mode, against the in-process S3 Express emulator (20 s sessions) that injects faults
//! throughout. Every client-visible outcome is classified as a success, an error explained by
//! an injected fault, or an unexpected error; the proxy's memory, descriptors and metrics are
//! sampled. See benches/README.md ("Soak run") for the rules.
//!
//! Run with `cargo bench --bench soak -- --minutes 15` (default 15 minutes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use s3x_emulator::{Config as EmulatorConfig, Emulator};
use tokio::time::Instant;

#[path = "soak/classify.rs"]
mod classify;
#[path = "soak/client.rs"]
mod client;
#[path = "soak/faults.rs"]
mod faults;
#[path = "soak/proxy.rs"]
mod proxy;
#[path = "soak/report.rs"]
mod report;
#[path = "soak/worker.rs"]
mod worker;

use client::{Endpoints, Mode};
use faults::Ledger;
use report::Stats;
use worker::Worker;

const SESSION_LIFETIME: Duration = Duration::from_secs(20);
const BUCKETS: [&str; 3] = [
    "soak-a--usw2-az1--x-s3",
    "soak-b--usw2-az1--x-s3",
    "soak-c--usw2-az3--x-s3",
];
/// Seconds between periodic `/proc` samples.
const SAMPLE_EVERY: u64 = 5;

/// What the workers, the injector and the classifier share.
pub struct Shared {
    pub emulator: Emulator,
    pub buckets: Vec<String>,
    pub session_lifetime: Duration,
    pub started: Instant,
    stop: AtomicBool,
    ledger: Mutex<Ledger>,
    stats: Mutex<Stats>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// xorshift64*: reproducible choices without a dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeds through splitmix64, so small or similar seeds give unrelated sequences.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)).max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

struct Args {
    duration: Duration,
    clients: usize,
    fault_every: Duration,
    rust_log: String,
    seed: u64,
}

const USAGE: &str = "usage: cargo bench --bench soak -- [--minutes N | --seconds N] [--clients N] \
[--fault-every-ms N] [--seed N] [--log RUST_LOG]";

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            duration: Duration::from_secs(15 * 60),
            clients: 8,
            fault_every: Duration::from_millis(1500),
            rust_log: "info,s3x_proxy=debug".into(),
            seed: 1,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |what: &str| {
                it.next()
                    .unwrap_or_else(|| panic!("{arg} needs {what}\n{USAGE}"))
            };
            let number = |v: String| -> u64 {
                v.parse()
                    .unwrap_or_else(|_| panic!("not a number: {v}\n{USAGE}"))
            };
            match arg.as_str() {
                "--minutes" => args.duration = Duration::from_secs(60 * number(value("minutes"))),
                "--seconds" => args.duration = Duration::from_secs(number(value("seconds"))),
                "--clients" => args.clients = number(value("a count")).max(1) as usize,
                "--fault-every-ms" => {
                    args.fault_every = Duration::from_millis(number(value("milliseconds")).max(50))
                }
                "--log" => args.rust_log = value("a filter"),
                "--seed" => args.seed = number(value("a number")),
                // cargo bench passes --bench to harness = false targets.
                "--bench" => {}
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => panic!("unknown argument {other}\n{USAGE}"),
            }
        }
        // Every mode gets the same number of clients.
        args.clients = args.clients.div_ceil(Mode::ALL.len()) * Mode::ALL.len();
        args
    }
}

fn main() {
    let args = Args::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let unexpected = runtime.block_on(run(args));
    runtime.shutdown_timeout(Duration::from_secs(2));
    std::process::exit(if unexpected == 0 { 0 } else { 1 });
}

async fn run(args: Args) -> u64 {
    let config = EmulatorConfig {
        session_lifetime: SESSION_LIFETIME,
        buckets: BUCKETS.iter().map(|b| b.to_string()).collect(),
        requests_log_limit: 50_000,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("emulator-ca.pem"), emulator.ca_pem()).expect("write CA");
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak");
    // Named by start time, so runs (even concurrent ones) never share a log.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run_name = format!("{stamp}-{}", std::process::id());
    let log_path = out_dir.join(format!("proxy-{run_name}.log"));
    let mut proxy = proxy::Proxy::start(emulator.addr(), dir.path(), &log_path, &args.rust_log);
    eprintln!(
        "soak: seed {}, {} s, {} clients, proxy pid {} on {} (admin {}), emulator {}, log {}",
        args.seed,
        args.duration.as_secs(),
        args.clients,
        proxy.pid(),
        proxy.proxy,
        proxy.admin,
        emulator.addr(),
        log_path.display()
    );
    let mut marks = vec![proxy.sample("idle (before traffic)", Duration::ZERO)];
    let shared = Arc::new(Shared {
        emulator,
        buckets: BUCKETS.iter().map(|b| b.to_string()).collect(),
        session_lifetime: SESSION_LIFETIME,
        started: Instant::now(),
        stop: AtomicBool::new(false),
        ledger: Mutex::new(Ledger::default()),
        stats: Mutex::new(Stats::default()),
    });
    let endpoints = Arc::new(Endpoints::new(proxy.proxy, &proxy.ca_pem));
    let mut workers = tokio::task::JoinSet::new();
    let h2 = client::H2Pool::default();
    for id in 0..args.clients {
        let mode = Mode::ALL[id % Mode::ALL.len()];
        let seed = args.seed.wrapping_mul(0x9E37_79B9) ^ (id as u64 + 1);
        let worker = Worker::new(
            id,
            mode,
            seed,
            endpoints.clone(),
            h2.clone(),
            shared.clone(),
        );
        workers.spawn(worker.run());
    }
    let injector = tokio::spawn(faults::inject(
        shared.clone(),
        args.fault_every,
        args.seed ^ 0xFA17,
    ));

    // Marks: start once sessions, pools and connections exist; middle; end.
    let total = args.duration;
    let start_at = (total / 10).min(Duration::from_secs(30));
    let mut pending = vec![("start", start_at), ("middle", total / 2), ("end", total)];
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut proxy_alive = true;
    loop {
        tick.tick().await;
        let now = shared.started.elapsed();
        if !proxy.alive() {
            proxy_alive = false;
            eprintln!("soak: the proxy exited at {:.0} s", now.as_secs_f64());
            break;
        }
        if now.as_secs() % SAMPLE_EVERY == 0 {
            samples.push(proxy.sample("periodic", now));
        }
        while pending.first().is_some_and(|(_, at)| now >= *at) {
            let (label, _) = pending.remove(0);
            marks.push(proxy.sample(label, now));
        }
        if now.as_secs() % 30 == 0 && now.as_secs() > 0 {
            let s = proxy.sample("progress", now);
            let stats = shared.stats();
            eprintln!(
                "soak: {:>5.0} s  {} requests, {} explained, {} unexpected; proxy RSS {:.1} MiB, {} FDs",
                now.as_secs_f64(),
                stats.total(),
                stats.explained.values().sum::<u64>(),
                stats.unexpected_count,
                s.rss_kib as f64 / 1024.0,
                s.fds
            );
        }
        if pending.is_empty() {
            break;
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let mut done = Vec::new();
    let join = async {
        while let Some(w) = workers.join_next().await {
            done.push(w.expect("worker"));
        }
    };
    if tokio::time::timeout(worker::DEADLINE + Duration::from_secs(10), join)
        .await
        .is_err()
    {
        eprintln!("soak: workers did not stop in time");
    }
    let _ = injector.await;
    if proxy_alive {
        drain_reset(&shared, &mut done).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    marks.push(proxy.sample("after (clients closed)", shared.started.elapsed()));

    let metrics = proxy.metrics().await;
    let counters = shared.emulator.counters();
    let ledger = std::mem::take(&mut *shared.ledger());
    let mut stats = std::mem::take(&mut *shared.stats());
    let inputs = report::Inputs {
        duration: total,
        workers: args.clients,
        buckets: BUCKETS.len(),
        session_lifetime: SESSION_LIFETIME,
        samples: &samples,
        marks: &marks,
        metrics: &metrics,
        ledger: &ledger,
        emulator: &counters,
        proxy: &proxy,
        proxy_alive,
    };
    let text = report::print(&mut stats, &inputs);
    println!("{text}");
    let report_path = out_dir.join(format!("report-{run_name}.txt"));
    let _ = std::fs::write(&report_path, &text);
    eprintln!("soak: report saved to {}", report_path.display());
    stats.unexpected_count + ledger.swallowed_resets.len() as u64 + u64::from(!proxy_alive)
}

/// A ResetMidBody still outstanding when traffic stopped: GETs, one at a time, should meet
/// it; if one returns every byte first, a client earlier met it without noticing.
async fn drain_reset(shared: &Arc<Shared>, done: &mut [Worker]) {
    let Some(worker) = done.iter_mut().find(|w| w.has_small_object()) else {
        return;
    };
    for _ in 0..3 {
        if shared.ledger().resets.iter().all(|r| r.claimed.is_some()) {
            break;
        }
        worker.step(classify::Op::Get).await;
    }
    worker.finish();
    shared.ledger().check_swallowed(Duration::ZERO);
}
