//! One client: a loop of mixed S3 requests through the proxy in one mode, on objects under its
//! own prefix (`wN/`) in every bucket, checking every answer against what it stored.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use tokio::time::Instant;

use crate::classify::{classify, Attempt, Observed, Op, Verdict};
use crate::client::{
    encode_key, full, read_body, streamed, Body, Conns, Endpoints, H2Pool, Mode, Read,
};
use crate::{Rng, Shared};

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
            Some((Verdict::Explained(why), _)) => {
                stats.explained(a, why);
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

    async fn put(&mut self, op: Op, len: usize) {
        let bucket = self.bucket();
        let key = self.new_key(match op {
            Op::PutMultipart => "-big",
            Op::Put1MiB => "-1m",
            Op::PutUnknownSmall => "-u",
            _ => "-s",
        });
        let seed = self.rng.next_u64() | 1;
        let bytes = data(seed, len);
        let req = self
            .conns
            .request(Method::PUT, &bucket, &format!("/{}", encode_key(&key)), "");
        let mut a = self.attempt(op, &req, &bucket, Some(&key));
        a.body_len = len as u64;
        let mut req = req;
        let body = match op {
            Op::PutSmall => full(bytes),
            _ => streamed(bytes),
        };
        if matches!(op, Op::PutSmall | Op::Put1MiB) {
            a.declared_length = true;
            req.headers_mut().insert("content-length", len.into());
        }
        req.headers_mut()
            .insert("content-type", "application/octet-stream".parse().unwrap());
        let outcome = self.exchange(&bucket, req.map(|()| body), None).await;
        let outcome = outcome.and_then(|r| {
            Self::judge(r, StatusCode::OK, |r| match r.headers.get("etag") {
                None => Err("PutObject answered 200 without an ETag".into()),
                Some(e) if op == Op::PutMultipart && !e.to_str().unwrap_or("").contains('-') => {
                    Err(format!(
                        "a multipart upload's ETag has no part count: {e:?}"
                    ))
                }
                Some(_) => Ok(()),
            })
        });
        let stored = match &outcome {
            Ok(r) => Some(etag(&r.headers)),
            Err(Observed::NoAnswer(_) | Observed::Hang(_)) => {
                self.uncertain.push((bucket.clone(), key.clone()));
                None
            }
            Err(_) => None,
        };
        self.record(&a, &outcome, len as u64);
        if let Some(etag) = stored {
            let big = op == Op::PutMultipart;
            let obj = Obj {
                bucket,
                key,
                seed,
                len,
                etag,
                big,
            };
            if big {
                self.big = Some((obj.clone(), false));
            }
            self.live.push(obj);
        }
    }

    async fn read(&mut self, op: Op, obj: Obj) {
        let method = if op == Op::Head {
            Method::HEAD
        } else {
            Method::GET
        };
        let path = format!("/{}", encode_key(&obj.key));
        let mut req = self.conns.request(method, &obj.bucket, &path, "");
        let whole = obj.data();
        let (want, expected, range) = match op {
            Op::GetRange => {
                let start = self.rng.below((obj.len - MIN_GET) as u64 + 1) as usize;
                let most = (obj.len - start).min(256 * 1024);
                let n = MIN_GET + self.rng.below((most - MIN_GET) as u64 + 1) as usize;
                let range = (start, start + n - 1);
                let value = format!("bytes={}-{}", range.0, range.1);
                req.headers_mut().insert("range", value.parse().unwrap());
                let slice = whole.slice(range.0..=range.1);
                (StatusCode::PARTIAL_CONTENT, Some(slice), Some(range))
            }
            Op::Get => (StatusCode::OK, Some(whole.clone()), None),
            _ => (StatusCode::OK, None, None),
        };
        let a = self.attempt(op, &req, &obj.bucket, Some(&obj.key));
        let want_len = expected.as_ref().map_or(obj.len, Bytes::len);
        let outcome = self
            .exchange(
                &obj.bucket,
                req.map(|()| full(Bytes::new())),
                expected.as_ref(),
            )
            .await;
        let outcome = outcome.and_then(|r| {
            Self::judge(r, want, |r| {
                let length = r
                    .headers
                    .get("content-length")
                    .and_then(|v| v.to_str().ok());
                if length != Some(want_len.to_string().as_str()) {
                    return Err(format!("Content-Length {length:?}, expected {want_len}"));
                }
                if etag(&r.headers) != obj.etag {
                    return Err(format!(
                        "ETag {:?}, stored {:?}",
                        etag(&r.headers),
                        obj.etag
                    ));
                }
                if op != Op::Head {
                    if let Some(at) = r.read.mismatch_at {
                        return Err(format!("data differs from offset {at}"));
                    }
                    if r.read.received != want_len {
                        return Err(format!("{} bytes, expected {want_len}", r.read.received));
                    }
                }
                if let Some((s, e)) = range {
                    let want = format!("bytes {s}-{e}/{}", obj.len);
                    let got = r.headers.get("content-range").and_then(|v| v.to_str().ok());
                    if got != Some(want.as_str()) {
                        return Err(format!("Content-Range {got:?}, expected {want:?}"));
                    }
                }
                Ok(())
            })
        });
        if outcome.is_ok() && op != Op::Head {
            let mut ledger = self.shared.ledger();
            let later = ledger.last_full_get_issued.is_none_or(|t| t < a.started);
            if later {
                ledger.last_full_get_issued = Some(a.started);
            }
        }
        let ok = self.record(&a, &outcome, 0);
        if let Some((big, read)) = &mut self.big {
            if big.key == obj.key && ok && op == Op::Get {
                *read = true;
            }
        }
    }

    async fn list(&mut self) {
        let bucket = self.bucket();
        let prefix = format!("w{}/", self.id);
        let query = format!(
            "list-type=2&prefix={}",
            encode_key(&prefix).replace('/', "%2F")
        );
        let req = self.conns.request(Method::GET, &bucket, "/", &query);
        let a = self.attempt(Op::List, &req, &bucket, None);
        let outcome = self
            .exchange(&bucket, req.map(|()| full(Bytes::new())), None)
            .await;
        let live: Vec<&str> = self
            .live
            .iter()
            .filter(|o| o.bucket == bucket)
            .map(|o| o.key.as_str())
            .collect();
        let uncertain: Vec<&str> = self
            .uncertain
            .iter()
            .filter(|(b, _)| *b == bucket)
            .map(|(_, k)| k.as_str())
            .collect();
        let outcome = outcome.and_then(|r| {
            Self::judge(r, StatusCode::OK, |r| {
                let text = String::from_utf8_lossy(&r.read.body);
                let listed = xml_values(&text, "Key");
                let missing: Vec<&&str> = live
                    .iter()
                    .filter(|k| !listed.iter().any(|l| l == **k))
                    .collect();
                let extra: Vec<&String> = listed
                    .iter()
                    .filter(|l| !live.contains(&l.as_str()) && !uncertain.contains(&l.as_str()))
                    .collect();
                if missing.is_empty() && extra.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "listing differs: missing {missing:?}, unexpected {extra:?}"
                    ))
                }
            })
        });
        self.record(&a, &outcome, 0);
    }

    async fn copy(&mut self) {
        let src = self.random_obj();
        let bucket = self.bucket();
        let key = self.new_key("-c");
        let path = format!("/{}", encode_key(&key));
        let mut req = self.conns.request(Method::PUT, &bucket, &path, "");
        let source = format!("/{}/{}", src.bucket, encode_key(&src.key));
        req.headers_mut()
            .insert("x-amz-copy-source", source.parse().unwrap());
        let a = self.attempt(Op::Copy, &req, &bucket, Some(&key));
        let outcome = self
            .exchange(&bucket, req.map(|()| full(Bytes::new())), None)
            .await;
        let outcome = outcome.and_then(|r| {
            Self::judge(r, StatusCode::OK, |r| {
                let text = String::from_utf8_lossy(&r.read.body);
                if text.contains("<Error>") || xml_values(&text, "ETag").is_empty() {
                    return Err(format!("CopyObject answered 200 with {text}"));
                }
                Ok(())
            })
        });
        let etag = outcome.as_ref().ok().map(|r| {
            let text = String::from_utf8_lossy(&r.read.body);
            xml_values(&text, "ETag").remove(0)
        });
        if let Err(Observed::NoAnswer(_) | Observed::Hang(_)) = &outcome {
            self.uncertain.push((bucket.clone(), key.clone()));
        }
        self.record(&a, &outcome, 0);
        if let Some(etag) = etag {
            self.live.push(Obj {
                bucket,
                key,
                etag,
                ..src
            });
        }
    }

    async fn delete(&mut self) {
        let index = match &self.big {
            Some((big, true)) => self.live.iter().position(|o| o.key == big.key),
            _ => self.live.iter().position(|o| !o.big),
        };
        let Some(index) = index else { return };
        let obj = self.live[index].clone();
        let path = format!("/{}", encode_key(&obj.key));
        let req = self.conns.request(Method::DELETE, &obj.bucket, &path, "");
        let a = self.attempt(Op::Delete, &req, &obj.bucket, Some(&obj.key));
        let outcome = self
            .exchange(&obj.bucket, req.map(|()| full(Bytes::new())), None)
            .await;
        let outcome = outcome.and_then(|r| Self::judge(r, StatusCode::NO_CONTENT, |_| Ok(())));
        if let Err(Observed::NoAnswer(_) | Observed::Hang(_)) = &outcome {
            self.uncertain.push((obj.bucket.clone(), obj.key.clone()));
        }
        let gone = self.record(&a, &outcome, 0)
            || matches!(outcome, Err(Observed::NoAnswer(_) | Observed::Hang(_)));
        if gone {
            self.live.remove(index);
            if self.big.as_ref().is_some_and(|(b, _)| b.key == obj.key) {
                self.big = None;
            }
        }
    }
}

fn etag(headers: &HeaderMap) -> String {
    headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The unescaped text of every `<name>` element.
fn xml_values(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        let raw = &after[..end];
        out.push(
            quick_xml::escape::unescape(raw)
                .map(|s| s.into_owned())
                .unwrap_or_else(|_| raw.to_owned()),
        );
        rest = &after[end + close.len()..];
    }
    out
}
