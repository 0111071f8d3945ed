//! Small-request scenarios: 1 KiB GETs over many keep-alive connections (proxy vs direct), and
//! over one connection (plain forward-proxy vs one HTTP/1.1 or h2 tunnel).

use std::sync::Arc;

use http::{Method, Request};
use tokio::sync::Barrier;
use tokio::time::Instant;

use crate::client::{direct, full, tcp, timed, tunnel_sender, Body, Run, Sender};
use crate::direct::Signer;
use crate::{Bench, Table};

/// Concurrent keep-alive connections in `get_1kib_h1_warm_session`.
const CONNECTIONS: usize = 8;
/// Requests per connection in `get_1kib_h1_warm_session`.
const PER_CONNECTION: usize = 1500;
/// Requests per variant in `requests_per_second_one_tunnel_vs_plain`.
const ONE_CONNECTION: usize = 5000;
/// Untimed requests per connection before each timed run.
const WARM_UP: usize = 50;
/// The object the GET scenarios read.
pub const SMALL_KEY: &str = "/bench/1kib";

type Make = Arc<dyn Fn(bool) -> Request<Body> + Send + Sync>;

/// A forward-proxy (absolute-form) request.
pub fn forward(method: Method, host: &str, path: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(format!("http://{host}{path}"))
        .header("host", host)
        .body(body)
        .unwrap()
}

/// A request inside an intercepted tunnel: origin-form with Host for HTTP/1.1, an `https` URI
/// for h2.
fn in_tunnel(host: &str, path: &str, h2: bool) -> Request<Body> {
    let builder = if h2 {
        Request::get(format!("https://{host}{path}"))
    } else {
        Request::get(path).header("host", host)
    };
    builder.body(full("")).unwrap()
}

fn forward_get(host: &str) -> Make {
    let host = host.to_owned();
    Arc::new(move |_| forward(Method::GET, &host, SMALL_KEY, full("")))
}

fn tunnel_get(host: &str) -> Make {
    let host = host.to_owned();
    Arc::new(move |h2| in_tunnel(&host, SMALL_KEY, h2))
}

/// Connections warmed up and waiting to start their timed requests together.
struct Ready {
    go: Arc<Barrier>,
    tasks: tokio::task::JoinSet<Run>,
}

/// Warms every sender with a few untimed requests; returns when all are warm.
async fn prepare(senders: Vec<Sender>, per_sender: usize, make: Make) -> Ready {
    let warmed = Arc::new(Barrier::new(senders.len() + 1));
    let go = Arc::new(Barrier::new(senders.len() + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (warmed, go, make) = (warmed.clone(), go.clone(), make.clone());
        tasks.spawn(async move {
            timed(&mut sender, WARM_UP, |h2| make(h2)).await;
            warmed.wait().await;
            go.wait().await;
            timed(&mut sender, per_sender, |h2| make(h2)).await
        });
    }
    warmed.wait().await;
    Ready { go, tasks }
}

impl Ready {
    /// Runs the timed requests on every connection at once; the figures cover this part only.
    async fn run(self) -> Run {
        self.go.wait().await;
        let started = Instant::now();
        let runs = self.tasks.join_all().await;
        Run::merge(runs, started.elapsed())
    }

    /// Like [`Ready::run`], also measuring the CPU time the proxy and this process spent.
    async fn run_with_cpu(self, b: &Bench) -> (Run, Cpu) {
        let before = Cpu::now(b);
        let run = self.run().await;
        let after = Cpu::now(b);
        let n = run.latencies.len() as f64;
        let per = |a: f64, z: f64| (z - a) / n * 1e6;
        let cpu = Cpu {
            proxy: per(before.proxy, after.proxy),
            here: per(before.here, after.here),
        };
        (run, cpu)
    }
}

/// CPU seconds (user + system) of the proxy and of this process (client and emulator); or,
/// after a run, microseconds per request.
struct Cpu {
    proxy: f64,
    here: f64,
}

impl Cpu {
    fn now(b: &Bench) -> Cpu {
        Cpu {
            proxy: crate::cpu_seconds(b.proxy.child.id()),
            here: crate::cpu_seconds(std::process::id()),
        }
    }

    fn summary(&self) -> String {
        format!(
            "CPU per request: proxy {:>4.0} µs, client+emulator {:>4.0} µs",
            self.proxy, self.here
        )
    }
}

/// `get_1kib_h1_warm_session` through the proxy, with the proxy's own share of each request
/// from its histograms.
pub async fn get_1kib_h1_warm_session(b: &Bench, table: &mut Table, variant: &str) {
    let scenario = "get_1kib_h1_warm_session";
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        senders.push(Sender::h1(tcp(b.proxy.proxy).await).await);
    }
    let ready = prepare(senders, PER_CONNECTION, forward_get(&b.host)).await;
    let before = b.histograms().await;
    let (mut run, cpu) = ready.run_with_cpu(b).await;
    let after = b.histograms().await;
    table.row(
        scenario,
        &format!("{variant}, {CONNECTIONS} conns"),
        run.summary(),
    );
    table.row(scenario, &format!("{variant}, CPU"), cpu.summary());
    let (count, request, upstream) = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    let overhead = (request - upstream) / count * 1e6;
    let figures = format!("{overhead:>7.0} µs/request mean (request_duration - upstream_duration)");
    table.row(scenario, &format!("{variant}, proxy's own time"), figures);
}

/// The direct baseline of `get_1kib_h1_warm_session`: a client signing its own requests.
pub async fn get_1kib_direct(b: &Bench, table: &mut Table) {
    let scenario = "get_1kib_h1_warm_session";
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        senders.push(direct(b.emulator.addr(), &b.host, &b.emulator_tls).await);
    }
    let signer = Arc::new(Signer::session(&mut senders[0], &b.host).await);
    let make: Make = Arc::new(move |_| signer.request(Method::GET, SMALL_KEY, full(""), false));
    let ready = prepare(senders, PER_CONNECTION, make).await;
    let (mut run, cpu) = ready.run_with_cpu(b).await;
    let variant = "direct to emulator (client signs)";
    table.row(
        scenario,
        &format!("{variant}, {CONNECTIONS} conns"),
        run.summary(),
    );
    table.row(scenario, &format!("{variant}, CPU"), cpu.summary());
}

/// Runs `per_sender` GETs on each of `senders` and adds the rows for `label`.
async fn one_connection(
    b: &Bench,
    table: &mut Table,
    label: &str,
    senders: Vec<Sender>,
    make: Make,
) {
    let scenario = "requests_per_second_one_tunnel_vs_plain";
    let per_sender = ONE_CONNECTION / senders.len();
    let (mut run, cpu) = prepare(senders, per_sender, make)
        .await
        .run_with_cpu(b)
        .await;
    table.row(scenario, label, run.summary());
    table.row(scenario, &format!("{label}, CPU"), cpu.summary());
}

/// `requests_per_second_one_tunnel_vs_plain`: one connection, requests one after another (and
/// one h2 tunnel with concurrent streams).
pub async fn one_tunnel_vs_plain(b: &Bench, table: &mut Table) {
    let plain = Sender::h1(tcp(b.proxy.proxy).await).await;
    one_connection(
        b,
        table,
        "plain forward-proxy h1, sequential",
        vec![plain],
        forward_get(&b.host),
    )
    .await;
    for (label, config) in [
        ("h1 tunnel, sequential", &b.proxy_tls_h1),
        ("h2 tunnel, sequential", &b.proxy_tls_h2),
    ] {
        let sender = tunnel_sender(b.proxy.proxy, &b.host, config).await;
        assert_eq!(
            sender.is_h2(),
            label.starts_with("h2"),
            "ALPN picked {label}"
        );
        one_connection(b, table, label, vec![sender], tunnel_get(&b.host)).await;
    }
    let sender = tunnel_sender(b.proxy.proxy, &b.host, &b.proxy_tls_h2).await;
    let streams: Vec<Sender> = (0..CONNECTIONS).map(|_| sender.clone_h2()).collect();
    let label = format!("h2 tunnel, {CONNECTIONS} concurrent streams");
    one_connection(b, table, &label, streams, tunnel_get(&b.host)).await;
}
