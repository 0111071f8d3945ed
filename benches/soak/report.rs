//! Counting outcomes while the run goes, and the report at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::classify::{Attempt, Op};
use crate::client::Mode;
use crate::faults::Ledger;
use crate::proxy::{Metrics, Proxy, Sample};

/// How many unexpected errors are kept in full.
const DETAILS: usize = 8;

#[derive(Default)]
pub struct OpStats {
    pub total: u64,
    pub ok: u64,
    pub explained: u64,
    pub unexpected: u64,
    /// Milliseconds of the successful ones.
    latencies: Vec<f32>,
}

/// Outcomes so far.
#[derive(Default)]
pub struct Stats {
    pub ops: BTreeMap<Op, OpStats>,
    pub modes: BTreeMap<Mode, (u64, u64)>,
    pub explained: BTreeMap<&'static str, u64>,
    pub unexpected_count: u64,
    /// Unexpected errors by their one-line reason (with numbers and names cut off).
    pub unexpected_kinds: BTreeMap<String, u64>,
    /// The first few in full: (detail, strings to look for in the proxy log).
    pub details: Vec<(String, Vec<String>)>,
    /// The first few explained-but-degraded outcomes in full, the same way.
    pub degraded: Vec<(String, Vec<String>)>,
    /// Response statuses the clients received (heads, whatever the body did after).
    pub statuses: BTreeMap<u16, u64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub connections_opened: u64,
    /// Connections the proxy closed between two requests although the last answer was a
    /// clean success without `Connection: close`.
    pub closed_idle: u64,
}

impl Stats {
    fn count(&mut self, a: &Attempt, ok: bool) -> &mut OpStats {
        let m = self.modes.entry(a.mode).or_default();
        m.0 += 1;
        m.1 += u64::from(ok);
        let s = self.ops.entry(a.op).or_default();
        s.total += 1;
        s
    }

    pub fn ok(&mut self, a: &Attempt) {
        let ms = a.started.elapsed().as_secs_f32() * 1000.0;
        let s = self.count(a, true);
        s.ok += 1;
        s.latencies.push(ms);
    }

    pub fn explained(&mut self, a: &Attempt, why: &'static str) {
        self.count(a, false).explained += 1;
        *self.explained.entry(why).or_default() += 1;
    }

    pub fn unexpected(&mut self, a: &Attempt, why: String, detail: String) {
        self.count(a, false).unexpected += 1;
        self.unexpected_count += 1;
        let short: String = why.chars().take(90).collect();
        *self.unexpected_kinds.entry(short).or_default() += 1;
        if self.details.len() < DETAILS {
            let mut needles = Vec::new();
            if let Some(key) = &a.key {
                needles.push(key.clone());
            }
            self.details.push((format!("{why}\n    {detail}"), needles));
        }
    }

    pub fn total(&self) -> u64 {
        self.ops.values().map(|s| s.total).sum()
    }
}

fn quantile(v: &mut [f32], q: f64) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_unstable_by(f32::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Everything the report needs besides the counts.
pub struct Inputs<'a> {
    pub duration: Duration,
    pub workers: usize,
    pub buckets: usize,
    pub session_lifetime: Duration,
    pub samples: &'a [Sample],
    pub marks: &'a [Sample],
    pub metrics: &'a Metrics,
    pub ledger: &'a Ledger,
    pub emulator: &'a s3x_emulator::Counters,
    pub proxy: &'a Proxy,
    pub proxy_alive: bool,
}

pub fn print(stats: &mut Stats, i: &Inputs<'_>) -> String {
    let mut o = String::new();
    let secs = i.duration.as_secs_f64();
    let total = stats.total();
    let _ = writeln!(o, "\n== s3x-proxy soak: {:.0} s, {} clients ({} per mode), {} buckets, session lifetime {} s ==",
        secs, i.workers, i.workers / Mode::ALL.len(), i.buckets, i.session_lifetime.as_secs());
    let _ = writeln!(o, "requests: {total} ({:.0}/s), {:.0} MiB up, {:.0} MiB down, {} client connections/tunnels opened",
        total as f64 / secs, stats.bytes_up as f64 / 1048576.0, stats.bytes_down as f64 / 1048576.0, stats.connections_opened);
    let _ = writeln!(
        o,
        "\n{:<40} {:>8} {:>8} {:>9} {:>10} {:>9} {:>9}",
        "operation", "total", "ok", "explained", "UNEXPECTED", "p50 ms", "p99 ms"
    );
    for (op, s) in stats.ops.iter_mut() {
        let (p50, p99) = (
            quantile(&mut s.latencies, 0.5),
            quantile(&mut s.latencies, 0.99),
        );
        let _ = writeln!(
            o,
            "{:<40} {:>8} {:>8} {:>9} {:>10} {:>9.1} {:>9.1}",
            op.name(),
            s.total,
            s.ok,
            s.explained,
            s.unexpected,
            p50,
            p99
        );
    }
    let modes: Vec<String> = stats
        .modes
        .iter()
        .map(|(m, (n, ok))| format!("{} {n} ({ok} ok)", m.name()))
        .collect();
    let _ = writeln!(o, "by mode: {}", modes.join(", "));

    let _ = writeln!(
        o,
        "\ninjected faults (ledger): {}",
        join(i.ledger.injected.iter().map(|(k, v)| format!("{k} {v}")))
    );
    let resets = &i.ledger.resets;
    let claimed = resets.iter().filter(|r| r.claimed.is_some()).count();
    let e = i.emulator;
    let code = |c: &str| e.errors_by_code.get(c).copied().unwrap_or(0);
    let _ = writeln!(o, "emulator answered: SlowDown {}, InternalError {}, ExpiredToken {}, InvalidToken {}, {} {} (RejectEarly); resets claimed by a client {claimed}/{}",
        code("SlowDown"), code("InternalError"), e.expired_token, e.invalid_token, crate::faults::REJECT_CODE, code(crate::faults::REJECT_CODE), resets.len());
    let _ = writeln!(
        o,
        "explained errors: {}",
        stats.explained.values().sum::<u64>()
    );
    for (why, n) in &stats.explained {
        let mark = if crate::classify::degraded(why) {
            "(!)"
        } else {
            ""
        };
        let _ = writeln!(o, "  {n:>6}  {why} {mark}");
    }
    if stats.explained.keys().any(|w| crate::classify::degraded(w)) {
        let _ = writeln!(o, "  (!) explained by the fault, but S3 had answered and the client did not get that answer");
    }
    for (n, (detail, needles)) in stats.degraded.iter().enumerate() {
        let _ = writeln!(o, "\n  degraded #{}: {detail}", n + 1);
        for line in log_excerpt(i.proxy, needles) {
            let _ = writeln!(o, "    proxy log: {line}");
        }
    }
    let swallowed = i.ledger.swallowed_resets.len() as u64;
    let unexpected = stats.unexpected_count + swallowed + u64::from(!i.proxy_alive);
    let _ = writeln!(o, "UNEXPECTED errors: {unexpected}");
    for (why, n) in &stats.unexpected_kinds {
        let _ = writeln!(o, "  {n:>6}  {why}");
    }
    for s in &i.ledger.swallowed_resets {
        let _ = writeln!(o, "       1  {s}");
    }
    if !i.proxy_alive {
        let _ = writeln!(o, "       1  the proxy process exited during the run");
    }
    if stats.closed_idle > 0 {
        let _ = writeln!(o, "  (note) {} keep-alive connections were found closed by the proxy after a clean answer; the next request used a new one", stats.closed_idle);
    }
    for (n, (detail, needles)) in stats.details.iter().enumerate() {
        let _ = writeln!(o, "\n  unexpected #{}: {detail}", n + 1);
        for line in log_excerpt(i.proxy, needles) {
            let _ = writeln!(o, "    proxy log: {line}");
        }
    }

    let _ = writeln!(o, "\nproxy process (pid {}):", i.proxy.pid());
    let _ = writeln!(
        o,
        "  {:<24} {:>8} {:>10} {:>6} {:>8}",
        "sample", "t (s)", "RSS MiB", "FDs", "threads"
    );
    for s in i.marks {
        let _ = writeln!(
            o,
            "  {:<24} {:>8.0} {:>10.1} {:>6} {:>8}",
            s.label,
            s.at.as_secs_f64(),
            mib(s.rss_kib),
            s.fds,
            s.threads
        );
    }
    let peak = i
        .marks
        .iter()
        .chain(i.samples)
        .map(|s| s.hwm_kib)
        .max()
        .unwrap_or(0);
    let (lo, hi) = i.samples.iter().fold((u64::MAX, 0), |(lo, hi), s| {
        (lo.min(s.rss_kib), hi.max(s.rss_kib))
    });
    let (flo, fhi) = i.samples.iter().fold((usize::MAX, 0), |(lo, hi), s| {
        (lo.min(s.fds), hi.max(s.fds))
    });
    let _ = writeln!(
        o,
        "  peak RSS (VmHWM) {:.1} MiB; every {}-s sample: RSS {:.1}–{:.1} MiB, FDs {flo}–{fhi}",
        mib(peak),
        5,
        mib(lo),
        mib(hi)
    );
    let find = |label: &str| i.marks.iter().find(|s| s.label.starts_with(label));
    if let (Some(m), Some(e)) = (find("middle"), find("end")) {
        let _ = writeln!(
            o,
            "  flatness: end − middle = {:+.1} MiB RSS, {:+} FDs; end − start = {:+.1} MiB",
            mib(e.rss_kib) - mib(m.rss_kib),
            e.fds as i64 - m.fds as i64,
            find("start").map_or(f64::NAN, |s| mib(e.rss_kib) - mib(s.rss_kib))
        );
    }
    // Single samples swing with the 8 MiB part buffers of multipart uploads in flight; the
    // median of each third of the run is the steadier trend.
    let thirds: Vec<String> = (0..3)
        .map(|n| {
            let (from, to) = (i.duration * n / 3, i.duration * (n + 1) / 3);
            let mut rss: Vec<u64> = i
                .samples
                .iter()
                .filter(|s| s.at >= from && s.at < to)
                .map(|s| s.rss_kib)
                .collect();
            let mut fds: Vec<usize> = i
                .samples
                .iter()
                .filter(|s| s.at >= from && s.at < to)
                .map(|s| s.fds)
                .collect();
            rss.sort_unstable();
            fds.sort_unstable();
            match (
                rss.get(rss.len() / 2),
                rss.last(),
                fds.get(fds.len() / 2),
                fds.last(),
            ) {
                (Some(r), Some(rm), Some(f), Some(fm)) => {
                    format!("{:.0}/{:.0} MiB, {f}/{fm} FDs", mib(*r), mib(*rm))
                }
                _ => "no samples".into(),
            }
        })
        .collect();
    let _ = writeln!(
        o,
        "  by third of the run (median/max of the 5-s samples): {}",
        thirds.join("; ")
    );

    let m = i.metrics;
    let connect = "operation=\"CONNECT\"";
    let by_status = m.by_label_except("s3x_proxy_requests_total", "status", Some(connect));
    let connects = m.sum("s3x_proxy_requests_total", &[connect]);
    let requests = m.sum("s3x_proxy_requests_total", &[]) - connects;
    let _ = writeln!(
        o,
        "\nproxy /metrics: requests {requests:.0} (+{connects:.0} CONNECT) by status: {}",
        join(by_status.iter().map(|(k, v)| format!("{k} {v:.0}")))
    );
    let _ = writeln!(o, "  clients sent {total} requests and opened {} connections (tunnels count once per CONNECT)", stats.connections_opened);
    let theirs: BTreeMap<u16, u64> = by_status
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, *v as u64)))
        .collect();
    let agree = theirs == stats.statuses && requests as u64 == total;
    let ours = join(stats.statuses.iter().map(|(k, v)| format!("{k} {v}")));
    let keys: std::collections::BTreeSet<&u16> =
        theirs.keys().chain(stats.statuses.keys()).collect();
    let diff: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let p = theirs.get(k).copied().unwrap_or(0);
            let c = stats.statuses.get(k).copied().unwrap_or(0);
            (p != c).then(|| format!("{k}: proxy {p}, clients {c}"))
        })
        .collect();
    let verdict = if agree {
        "the same as the proxy's metrics".to_owned()
    } else {
        format!(
            "DIFFERENT from the proxy's metrics ({}; a client that got no answer has no status)",
            diff.join(", ")
        )
    };
    let _ = writeln!(o, "  statuses the clients received: {ours} — {verdict}");
    let session = |mode: &str, result: &str| {
        let labels = [format!("mode=\"{mode}\""), format!("result=\"{result}\"")];
        m.sum(
            "s3x_proxy_sessions_created_total",
            &[labels[0].as_str(), labels[1].as_str()],
        )
    };
    let (rw, ro) = (session("ReadWrite", "ok"), session("ReadOnly", "ok"));
    let (rw_err, ro_err) = (session("ReadWrite", "error"), session("ReadOnly", "error"));
    let refresh = i.session_lifetime.as_secs_f64() / 2.0;
    let expected = i.buckets as f64 * (secs / refresh).floor() + i.buckets as f64;
    let token = i.ledger.token_faults.len();
    let cs = i.ledger.create_session_faults.len();
    let _ = writeln!(
        o,
        "  sessions created: ReadWrite {rw:.0} ok + {rw_err:.0} failed, ReadOnly {ro:.0} ok + \
         {ro_err:.0} failed"
    );
    let _ = writeln!(o, "  expected ≈ {expected:.0} ReadWrite ({} buckets × ({secs:.0} s / {refresh:.0} s refresh + 1)), plus up to {token} replacements after token faults and {cs} retries after CreateSession faults; emulator counted {} RW + {} RO",
        i.buckets, e.create_session_read_write, e.create_session_read_only);
    let _ = writeln!(o, "  upstream retries: {}; session lookups: {}; cache entries now {:.0}; client connections active now {:.0}",
        join(m.by_label("s3x_proxy_upstream_retries_total", "reason").iter().map(|(k, v)| format!("{k} {v:.0}"))),
        join(m.by_label("s3x_proxy_session_cache_lookups_total", "result").iter().map(|(k, v)| format!("{k} {v:.0}"))),
        m.sum("s3x_proxy_session_cache_entries", &[]), m.sum("s3x_proxy_connections_active", &[]));
    let warnings = i.proxy.warnings();
    if !warnings.is_empty() {
        let _ = writeln!(o, "\nproxy WARN/ERROR lines by message:");
        for (msg, (n, example)) in &warnings {
            let _ = writeln!(
                o,
                "  {n:>6}  {msg}\n          e.g. {}",
                example.chars().take(300).collect::<String>()
            );
        }
    }
    let _ = writeln!(o, "\nproxy log: {}", i.proxy.log_path.display());
    let degraded: u64 = stats
        .explained
        .iter()
        .filter(|(w, _)| crate::classify::degraded(w))
        .map(|(_, n)| n)
        .sum();
    let _ = writeln!(
        o,
        "RESULT: {unexpected} unexpected error(s) in {total} requests; {degraded} explained but \
         degraded (!)"
    );
    o
}

/// The proxy log lines about a request: its access lines (found by key), then every line of
/// the requests they name (`request_id=…` / `id=…`), in log order, at most 12.
fn log_excerpt(proxy: &Proxy, needles: &[String]) -> Vec<String> {
    let text = std::fs::read_to_string(&proxy.log_path).unwrap_or_default();
    let matching = |needle: &str| -> Vec<&str> {
        let all: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
        all[all.len().saturating_sub(6)..].to_vec()
    };
    let mut ids = Vec::new();
    for needle in needles {
        for line in matching(&format!("key=\"{needle}\"")) {
            if let Some(id) = line
                .split("request_id=")
                .nth(1)
                .and_then(|r| r.split(' ').next())
            {
                ids.push(id.to_owned());
            }
        }
    }
    let mut lines: Vec<String> = Vec::new();
    for id in &ids {
        for line in matching(&format!("id={id}")) {
            if !lines.iter().any(|l| l == line) {
                lines.push(line.to_owned());
            }
        }
    }
    lines.truncate(12);
    lines
}

fn join(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}
