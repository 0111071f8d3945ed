//! The fault injector and its ledger: what was injected upstream, when, and which
//! client-visible outcomes each injection has explained so far.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use s3x_emulator::{Fault, Target};
use tokio::time::Instant;

use crate::{Rng, Shared};

/// The S3 error code RejectEarly answers with: a code nothing else in the run produces.
pub const REJECT_CODE: &str = "EntityTooLarge";
/// Smallest number of bytes a ResetMidBody lets through; every GET the workers make asks for
/// more than `RESET_MAX_BYTES`, so every reset cuts a body short.
pub const RESET_MIN_BYTES: u64 = 512;
pub const RESET_MAX_BYTES: u64 = 3583;

/// One ResetMidBody, which exactly one GetObject consumes.
#[derive(Debug)]
pub struct Reset {
    pub after_bytes: u64,
    pub injected: Instant,
    /// When a client reported the cut it caused.
    pub claimed: Option<Instant>,
}

/// What the injector did, and what of it clients have seen.
#[derive(Default)]
pub struct Ledger {
    /// Injections by kind.
    pub injected: BTreeMap<&'static str, u64>,
    /// When each ExpiredToken or InvalidToken was injected.
    pub token_faults: Vec<Instant>,
    /// CreateSession faults: when, and the code S3 answered with.
    pub create_session_faults: Vec<(Instant, &'static str)>,
    /// Resets, in order; at most one is unclaimed at a time.
    pub resets: Vec<Reset>,
    /// RejectEarly injections so far.
    pub reject_early: u64,
    /// The latest issue time of a whole or ranged GET that returned every byte.
    pub last_full_get_issued: Option<Instant>,
    /// A reset that no client saw although a later GET succeeded (filled in by the checks).
    pub swallowed_resets: Vec<String>,
}

impl Ledger {
    fn note(&mut self, kind: &'static str) {
        *self.injected.entry(kind).or_default() += 1;
    }

    /// Claims the outstanding reset if a cut after `received` bytes fits it (0: a stream reset
    /// before any head, on h2). Returns whether the byte count was exactly the one injected.
    pub fn claim_reset(&mut self, received: usize) -> Option<bool> {
        let reset = self
            .resets
            .iter_mut()
            .find(|r| r.claimed.is_none() && received as u64 <= r.after_bytes)?;
        reset.claimed = Some(Instant::now());
        Some(received as u64 == reset.after_bytes)
    }

    fn reset_outstanding(&self) -> Option<&Reset> {
        self.resets.iter().find(|r| r.claimed.is_none())
    }

    /// How many ExpiredToken/InvalidToken faults were injected at a time that could have
    /// spoiled a session used by a request that started at `started` and was answered just
    /// now? A session lives `lifetime`, so an injection before `started - lifetime` cannot have.
    pub fn token_faults_during(&self, started: Instant, lifetime: Duration) -> usize {
        let from = started.checked_sub(lifetime).unwrap_or(started);
        self.token_faults.iter().filter(|t| **t >= from).count()
    }

    /// Was a CreateSession fault with `code` injected before now?
    pub fn create_session_fault(&self, code: &str) -> bool {
        self.create_session_faults.iter().any(|(_, c)| *c == code)
    }

    /// The outstanding reset, if a GET issued after it returned all its bytes more than
    /// `grace` ago and still no client has reported a cut: the reset went unnoticed.
    pub fn check_swallowed(&mut self, grace: Duration) {
        let Some(reset) = self.reset_outstanding() else {
            return;
        };
        let Some(issued) = self.last_full_get_issued else {
            return;
        };
        if issued > reset.injected && issued.elapsed() > grace {
            let detail = format!(
                "ResetMidBody (after {} bytes) injected {:.1} s ago was consumed by a GetObject \
                 (a GET issued later returned every byte) but no client saw a cut body",
                reset.after_bytes,
                reset.injected.elapsed().as_secs_f64()
            );
            let after = reset.after_bytes;
            if let Some(r) = self.resets.iter_mut().find(|r| r.after_bytes == after) {
                r.claimed = Some(Instant::now());
            }
            self.swallowed_resets.push(detail);
        }
    }
}

/// The kinds the injector chooses from, with weights.
const KINDS: &[(&str, u32)] = &[
    ("SlowDown", 4),
    ("InternalError", 4),
    ("ResetMidBody", 3),
    ("ExpiredToken", 2),
    ("InvalidToken", 2),
    ("RejectEarly", 2),
    ("Delay", 2),
    ("CreateSession SlowDown", 1),
    ("CreateSession InternalError", 1),
];

/// Injects one fault about every `mean` until `shared.stop`, one at a time, keeping at most
/// one of each kind whose consumption cannot be observed outstanding.
pub async fn inject(shared: Arc<Shared>, mean: Duration, seed: u64) {
    let mut rng = Rng::new(seed);
    let total: u32 = KINDS.iter().map(|(_, w)| w).sum();
    let mut last_token_counters = 0;
    let mut reset_seq = 0u64;
    while !shared.stopping() {
        let wait = mean.as_millis() as u64 / 2 + rng.below(mean.as_millis() as u64 + 1);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if shared.stopping() {
            break;
        }
        shared.ledger().check_swallowed(Duration::from_secs(10));
        let mut pick = rng.below(u64::from(total)) as u32;
        let kind = KINDS
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map(|(k, _)| *k)
            .expect("a kind");
        let emulator = &shared.emulator;
        let mut ledger = shared.ledger();
        let fault = match kind {
            "SlowDown" => Fault::SlowDown {
                count: 1,
                target: Target::Data,
            },
            "InternalError" => Fault::InternalError {
                count: 1,
                target: Target::Data,
            },
            "ResetMidBody" => {
                if ledger.reset_outstanding().is_some() {
                    continue;
                }
                // A different byte count each time, so a cut names its injection.
                reset_seq += 1;
                let span = RESET_MAX_BYTES - RESET_MIN_BYTES + 1;
                let after_bytes = RESET_MIN_BYTES + (reset_seq * 211) % span;
                ledger.resets.push(Reset {
                    after_bytes,
                    injected: Instant::now(),
                    claimed: None,
                });
                Fault::ResetMidBody {
                    count: 1,
                    after_bytes,
                    target: Target::Operation("GetObject"),
                }
            }
            "ExpiredToken" | "InvalidToken" => {
                // One at a time: the previous one must have been consumed, so a retry never
                // meets a second injected token error.
                let c = emulator.counters();
                let consumed = c.expired_token + c.invalid_token;
                if consumed < last_token_counters {
                    continue;
                }
                last_token_counters = consumed + 1;
                ledger.token_faults.push(Instant::now());
                if kind == "ExpiredToken" {
                    Fault::ExpiredToken { count: 1 }
                } else {
                    Fault::InvalidToken { count: 1 }
                }
            }
            "RejectEarly" => {
                let consumed = emulator
                    .counters()
                    .errors_by_code
                    .get(REJECT_CODE)
                    .copied()
                    .unwrap_or(0);
                if consumed < ledger.reject_early {
                    continue;
                }
                ledger.reject_early += 1;
                Fault::RejectEarly {
                    count: 1,
                    status: 400,
                    code: REJECT_CODE,
                    target: Target::Operation("PutObject"),
                    after: Duration::ZERO,
                }
            }
            "Delay" => Fault::Delay {
                count: 1,
                delay: Duration::from_millis(500 + rng.below(2500)),
                target: Target::Data,
            },
            "CreateSession SlowDown" => {
                ledger
                    .create_session_faults
                    .push((Instant::now(), "SlowDown"));
                Fault::SlowDown {
                    count: 1,
                    target: Target::CreateSession,
                }
            }
            "CreateSession InternalError" => {
                ledger
                    .create_session_faults
                    .push((Instant::now(), "InternalError"));
                Fault::InternalError {
                    count: 1,
                    target: Target::CreateSession,
                }
            }
            other => unreachable!("{other}"),
        };
        ledger.note(kind);
        drop(ledger);
        emulator.inject(fault);
    }
}
