//! One client: a loop of mixed S3 requests through the proxy in one mode, on objects under its
//! own prefix (`wN/`) in every bucket, checking every answer against what it stored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use tokio::time::Instant;

use crate::classify::{classify, Attempt, Observed, Op, Verdict};
use crate::client::{read_body, Body, Conns, Endpoints, H2Pool, Mode, Read};
use crate::{Rng, Shared};

#[path = "ops.rs"]
mod ops;

/// Longest a whole request (head and body) may take before it counts as a hang.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Most objects a worker keeps; beyond this it deletes.
const MAX_LIVE: usize = 10;
/// Every GET asks for at least this many bytes (more than any ResetMidBody lets through).
const MIN_GET: usize = 4096;

/// An object a worker stored and may read back.
#[derive(Clone, Debug)]
pub struct Obj {
    pub bucket: String,
    pub key: String,
    seed: u64,
    len: usize,
    etag: String,
    big: bool,
}

impl Obj {
    fn data(&self) -> Bytes {
        data(self.seed, self.len)
    }
}

/// `len` pseudo-random bytes from `seed` (xorshift64), so nothing needs keeping to check them.
fn data(seed: u64, len: usize) -> Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A response whose body was read.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    read: Read,
}

pub struct Worker {
    pub id: usize,
    conns: Conns,
    pub live: Vec<Obj>,
    /// (bucket, key) of PUTs whose outcome is unknown: they may or may not be listed.
    uncertain: Vec<(String, String)>,
    /// A multipart object to read back and then delete.
    big: Option<(Obj, bool)>,
    seq: u64,
    rng: Rng,
    shared: Arc<Shared>,
    closed_idle: u64,
}

impl Worker {
    pub fn new(
        id: usize,
        mode: Mode,
        seed: u64,
        endpoints: Arc<Endpoints>,
        h2: H2Pool,
        shared: Arc<Shared>,
    ) -> Worker {
        let rotate_after = 100 + 50 * (id as u32 % 4);
        Worker {
            id,
            conns: Conns::new(mode, endpoints, h2, rotate_after),
            live: Vec::new(),
            uncertain: Vec::new(),
            big: None,
            seq: 0,
            rng: Rng::new(seed),
            shared,
            closed_idle: 0,
        }
    }

    /// Runs until the shared stop flag is set; returns itself so its objects can be reused.
    pub async fn run(mut self) -> Worker {
        while !self.shared.stopping() {
            let op = self.pick();
            self.step(op).await;
        }
        self.finish();
        self
    }

    /// Closes the connections and hands over the counts.
    pub fn finish(&mut self) {
        self.conns.close_all();
        let mut stats = self.shared.stats();
        stats.connections_opened += std::mem::take(&mut self.conns.opened);
        stats.closed_idle += std::mem::take(&mut self.closed_idle);
    }

    fn pick(&mut self) -> Op {
        if let Some((_, read)) = &self.big {
            return if *read { Op::Delete } else { Op::Get };
        }
        if self.live.is_empty() {
            return Op::PutSmall;
        }
        if self.live.len() >= MAX_LIVE {
            return Op::Delete;
        }
        const WEIGHTS: &[(Op, u64)] = &[
            (Op::PutSmall, 12),
            (Op::Put1MiB, 6),
            (Op::PutUnknownSmall, 4),
            (Op::PutMultipart, 1),
            (Op::Get, 18),
            (Op::GetRange, 12),
            (Op::Head, 10),
            (Op::List, 5),
            (Op::Copy, 4),
            (Op::Delete, 5),
        ];
        let total: u64 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.below(total);
        for (op, w) in WEIGHTS {
            if pick < *w {
                return *op;
            }
            pick -= w;
        }
        Op::Get
    }

    /// Runs one operation and records its outcome.
    pub async fn step(&mut self, op: Op) {
        let size = match op {
            Op::PutSmall => 4096 + self.rng.below(60 * 1024 + 1) as usize,
            Op::Put1MiB => (1 << 20) + self.rng.below(64 * 1024) as usize,
            Op::PutUnknownSmall => 4096 + self.rng.below(508 * 1024) as usize,
            Op::PutMultipart => (8 << 20) + 65536 + self.rng.below(2 << 20) as usize,
            _ => 0,
        };
        match op {
            Op::PutSmall | Op::Put1MiB | Op::PutUnknownSmall | Op::PutMultipart => {
                self.put(op, size).await
            }
            Op::Get | Op::GetRange | Op::Head => {
                let obj = match &self.big {
                    Some((obj, false)) => obj.clone(),
                    _ => self.random_obj(),
                };
                self.read(op, obj).await
            }
            Op::List => self.list().await,
            Op::Copy => self.copy().await,
            Op::Delete => self.delete().await,
        }
    }

    pub fn has_small_object(&self) -> bool {
        self.live.iter().any(|o| !o.big)
    }

    fn random_obj(&mut self) -> Obj {
        let small: Vec<&Obj> = self.live.iter().filter(|o| !o.big).collect();
        small[self.rng.below(small.len() as u64) as usize].clone()
    }

    fn bucket(&mut self) -> String {
        let n = self.shared.buckets.len() as u64;
        self.shared.buckets[self.rng.below(n) as usize].clone()
    }

    fn new_key(&mut self, tag: &str) -> String {
        self.seq += 1;
        // One key in eight has a space, a non-ASCII letter, `+` and `%` in it.
        let odd = if self.seq % 8 == 0 { " é+%" } else { "" };
        format!("w{}/{:07}{tag}{odd}", self.id, self.seq)
    }

    fn attempt(&self, op: Op, req: &Request<()>, bucket: &str, key: Option<&str>) -> Attempt {
        Attempt {
            op,
            mode: self.conns.mode,
            worker: self.id,
            method: req.method().clone(),
            target: req.uri().to_string(),
            bucket: bucket.to_owned(),
            key: key.map(str::to_owned),
            body_len: 0,
            declared_length: false,
            started: Instant::now(),
            at: self.shared.started.elapsed().as_secs_f64(),
        }
    }

    /// Sends the request and reads the answer, comparing a successful body with `expected`.
    async fn exchange(
        &mut self,
        bucket: &str,
        req: Request<Body>,
        expected: Option<&Bytes>,
    ) -> Result<Reply, Observed> {
        let conns = &mut self.conns;
        let closed_idle = &mut self.closed_idle;
        let run = async {
            let head = conns
                .send(bucket, req, closed_idle)
                .await
                .map_err(Observed::NoAnswer)?;
            let expected = if head.status.is_success() {
                expected
            } else {
                None
            };
            let read = read_body(head.body, expected, Duration::from_secs(30)).await;
            Ok(Reply {
                status: head.status,
                headers: head.headers,
                read,
            })
        };
        match tokio::time::timeout(DEADLINE, run).await {
            Err(_) => {
                self.conns.discard(bucket);
                Err(Observed::Hang(format!(
                    "no complete answer within {} s",
                    DEADLINE.as_secs()
                )))
            }
            Ok(Err(observed)) => Err(observed),
            Ok(Ok(reply)) => {
                let clean = reply.status.is_success() && reply.read.error.is_none();
                if clean {
                    let close = reply
                        .headers
                        .get("connection")
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                    self.conns.finished_cleanly(bucket, close);
                } else {
                    self.conns.after_error(bucket);
                }
                Ok(reply)
            }
        }
    }

    /// Turns a reply into success (Ok) or an observation to classify.
    fn judge(
        reply: Reply,
        want: StatusCode,
        check: impl FnOnce(&Reply) -> Result<(), String>,
    ) -> Result<Reply, Observed> {
        if let Some(error) = reply.read.error.clone() {
            return Err(Observed::Cut {
                status: reply.status,
                headers: Box::new(reply.headers),
                received: reply.read.received,
                mismatch_at: reply.read.mismatch_at,
                error,
            });
        }
        let problem = if reply.status.is_success() && reply.status != want {
            Some(format!("expected {want}, got {}", reply.status))
        } else if reply.status == want {
            check(&reply).err()
        } else {
            None
        };
        if reply.status == want && problem.is_none() {
            return Ok(reply);
        }
        Err(Observed::Answer {
            status: reply.status,
            headers: Box::new(reply.headers),
            body: reply.read.body,
            problem,
        })
    }

    /// Records the outcome of `a`; returns whether it succeeded.
    fn record(&mut self, a: &Attempt, outcome: &Result<Reply, Observed>, up: u64) -> bool {
        let verdict = match outcome {
            Ok(_) => None,
            Err(observed) => Some((classify(&self.shared, a, observed), observed)),
        };
        let down = match outcome {
            Ok(r) => r.read.received as u64,
            Err(Observed::Cut { received, .. }) => *received as u64,
            Err(_) => 0,
        };
        let status = match outcome {
            Ok(r) => Some(r.status),
            Err(Observed::Answer { status, .. } | Observed::Cut { status, .. }) => Some(*status),
            Err(_) => None,
        };
        let mut stats = self.shared.stats();
        if let Some(status) = status {
            *stats.statuses.entry(status.as_u16()).or_default() += 1;
        }
        stats.bytes_up += up;
        stats.bytes_down += down;
        match verdict {
            None => {
                stats.ok(a);
                true
            }
            Some((Verdict::Explained(why), observed)) => {
                stats.explained(a, why);
                if crate::classify::degraded(why) && stats.degraded.len() < 3 {
                    drop(stats);
                    let detail = crate::classify::describe(&self.shared, a, observed);
                    let needles = a.key.iter().cloned().collect();
                    self.shared
                        .stats()
                        .degraded
                        .push((format!("{why}\n    {detail}"), needles));
                }
                false
            }
            Some((Verdict::Unexpected(why), observed)) => {
                drop(stats);
                let detail = crate::classify::describe(&self.shared, a, observed);
                self.shared.stats().unexpected(a, why, detail);
                false
            }
        }
    }
}
