//! Client connections: the slot each holds (a `--max-connections` permit, counted in
//! `s3x_proxy_connections_active`), the watchdog that closes it when idle, and the drain.
//!
//! A [`Slot`] lives as long as the client socket and everything serving it: the socket's
//! [`Tracked`] wrapper, the task serving it, requests in flight, and any tunnel a CONNECT on it
//! opened (the tunnel rides the same socket, so it is the same connection). When the last of
//! these lets go, the permit returns and the gauge goes down.
//!
//! Idleness costs the hot path one relaxed atomic increment per read or write that moved bytes,
//! and two per request; the watchdog reads the counters every quarter of the idle timeout.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::{Instant, MissedTickBehavior};

use crate::serve::socket::{Tap, Wrapped};

/// How many watchdog looks make up one idle timeout.
const LOOKS_PER_TIMEOUT: u32 = 4;

/// The longest time between two looks at a busy connection for [`Slot::rested`]: a connection
/// that stays busy costs one timer a second.
pub const REST_LOOKS_AT_MOST: Duration = Duration::from_secs(1);

/// One open client connection.
pub struct Slot {
    /// Bumped whenever bytes move on the client socket.
    progress: AtomicU64,
    /// Requests whose response head has not gone out yet.
    in_flight: AtomicUsize,
    /// Requests begun on this connection.
    begun: AtomicU64,
    idle: Duration,
    gauge: IntGauge,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// A connection that was just accepted under `permit`; counted in `gauge` until dropped.
    pub fn open(permit: OwnedSemaphorePermit, gauge: &IntGauge, idle: Duration) -> Arc<Slot> {
        gauge.inc();
        Arc::new(Slot {
            progress: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
            idle,
            gauge: gauge.clone(),
            _permit: permit,
        })
    }

    /// `--client-idle-timeout`.
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// Wraps the client socket so that the bytes moving on it count as progress.
    pub fn track<I>(self: &Arc<Self>, io: I) -> Tracked<I> {
        Wrapped {
            io,
            tap: self.clone(),
        }
    }

    /// Marks a request in flight until the returned guard drops (at the response head).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        self.begun.fetch_add(1, Relaxed);
        InFlight(self.clone())
    }

    /// How many requests have begun on this connection.
    pub fn begun(&self) -> u64 {
        self.begun.load(Relaxed)
    }

    /// Resolves once a request has begun since `begun` and then, for a whole period, no
    /// request has been in flight and no byte has moved (see `keepalive`); never if `after` is
    /// `None`. The period starts at `after` and doubles, up to [`REST_LOOKS_AT_MOST`] (or
    /// `after`, if longer), each time the connection is found busy: one timer per period.
    pub async fn rested(&self, after: Option<Duration>, begun: u64) {
        let Some(first) = after else {
            return std::future::pending().await;
        };
        let longest = first.max(REST_LOOKS_AT_MOST);
        let mut period = first;
        let mut seen = self.progress.load(Relaxed);
        loop {
            tokio::time::sleep(period).await;
            let progress = self.progress.load(Relaxed);
            if progress == seen
                && self.in_flight.load(Relaxed) == 0
                && self.begun.load(Relaxed) != begun
            {
                return;
            }
            seen = progress;
            period = (period * 2).min(longest);
        }
    }

    /// Resolves once no request has been in flight and no byte has moved for the idle timeout
    /// (it notices within a quarter of the timeout more).
    pub async fn quiet(&self) {
        let period = (self.idle / LOOKS_PER_TIMEOUT).max(Duration::from_millis(1));
        let mut looks = tokio::time::interval_at(Instant::now() + period, period);
        looks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seen = self.progress.load(Relaxed);
        let mut quiet_looks = 0;
        while quiet_looks < LOOKS_PER_TIMEOUT {
            looks.tick().await;
            let progress = self.progress.load(Relaxed);
            if progress != seen || self.in_flight.load(Relaxed) > 0 {
                seen = progress;
                quiet_looks = 0;
            } else {
                quiet_looks += 1;
            }
        }
    }

    /// How long a connection asked to close while idle gets before it is dropped.
    pub fn close_grace(&self) -> Duration {
        self.idle / LOOKS_PER_TIMEOUT
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// A request in flight on a [`Slot`].
pub struct InFlight(Arc<Slot>);

impl InFlight {
    /// The connection the request arrived on.
    pub fn slot(&self) -> &Arc<Slot> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// How [`drive`] left a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driven {
    /// It finished: the client closed it, or it closed for the drain or when idle.
    Finished,
    /// `rest` fired and it finished between requests: the socket is still open.
    Rested,
    /// It was idle, asked to close, and had not a quarter of the timeout later: dropped.
    Dropped,
}

/// Serves `conn` until it ends. When the drain starts, or `quiet` (the slot's idle watchdog)
/// fires, `shutdown` asks the connection to close gracefully (h2 sends GOAWAY; an h1
/// connection between requests closes at once); an idle one still open a quarter of the
/// timeout later is dropped. When `rest` fires first, `shutdown` asks it to finish between
/// requests, and it ends [`Driven::Rested`].
pub async fn drive<C, E>(
    conn: C,
    shutdown: impl Fn(Pin<&mut C>),
    mut quiet: Pin<&mut impl Future<Output = ()>>,
    rest: impl Future<Output = ()>,
    slot: &Slot,
    drain: &mut DrainWatch,
) -> Result<Driven, E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = pin!(conn);
    let mut rest = pin!(rest);
    let (mut draining, mut resting) = (false, false);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                let rested = resting && !draining;
                return result.map(|()| if rested { Driven::Rested } else { Driven::Finished });
            }
            () = drain.started(), if !draining => {
                draining = true;
                shutdown(conn.as_mut());
            }
            () = rest.as_mut(), if !resting && !draining => {
                resting = true;
                shutdown(conn.as_mut());
            }
            () = quiet.as_mut() => break,
        }
    }
    tracing::debug!(idle = ?slot.idle, "closing an idle connection");
    if !draining {
        shutdown(conn.as_mut());
    }
    match tokio::time::timeout(slot.close_grace(), conn).await {
        Ok(result) => result.map(|()| Driven::Finished),
        Err(_) => {
            tracing::debug!("the idle connection did not close; dropped it");
            Ok(Driven::Dropped)
        }
    }
}

/// Tells every connection to finish at shutdown, and knows when all have.
pub struct Drain(watch::Sender<bool>);

impl Default for Drain {
    fn default() -> Self {
        Drain(watch::Sender::new(false))
    }
}

impl Drain {
    /// A watch for one connection being served, or `None` once the drain has started.
    pub fn watch(&self) -> Option<DrainWatch> {
        let watch = self.0.subscribe();
        let started = *watch.borrow();
        (!started).then_some(DrainWatch(watch))
    }

    /// Asks every watched connection to finish, and waits until all have dropped their watch.
    pub async fn run(&self) {
        self.0.send_replace(true);
        self.0.closed().await;
    }
}

/// Held by a connection while it is served; see [`Drain`].
pub struct DrainWatch(watch::Receiver<bool>);

impl DrainWatch {
    /// Resolves once the drain has started.
    pub async fn started(&mut self) {
        let _ = self.0.wait_for(|started| *started).await;
    }
}

/// A client socket whose reads and writes that move bytes count as progress of its [`Slot`].
pub type Tracked<I> = Wrapped<I, Arc<Slot>>;

impl Tap for Arc<Slot> {
    fn moved(&self, n: usize) {
        if n > 0 {
            self.progress.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    fn slot() -> Arc<Slot> {
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let gauge = IntGauge::new("test_connections", "test").unwrap();
        Slot::open(permit, &gauge, Duration::from_secs(60))
    }

    const FIRST: Duration = Duration::from_millis(10);
    const LONGEST: Duration = REST_LOOKS_AT_MOST;

    /// Whether `rested` resolves within `within` (of paused, auto-advancing time).
    async fn rests_within(slot: &Slot, begun: u64, within: Duration) -> bool {
        tokio::time::timeout(within, slot.rested(Some(FIRST), begun))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_rests_only_after_a_request_and_a_quiet_period() {
        let slot = slot();
        // No request yet (a head still arriving, say): never.
        assert!(!rests_within(&slot, slot.begun(), Duration::from_secs(5)).await);
        // A request in flight: never, however quiet.
        let begun = slot.begun();
        let in_flight = slot.begin();
        assert!(!rests_within(&slot, begun, Duration::from_secs(5)).await);
        // Its head went out and nothing moves: within two periods.
        drop(in_flight);
        assert!(rests_within(&slot, begun, FIRST * 2 + Duration::from_millis(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rest_period_a_connection_never_rests() {
        let slot = slot();
        let begun = slot.begun();
        drop(slot.begin());
        let never = tokio::time::timeout(Duration::from_secs(3600), slot.rested(None, begun));
        assert!(never.await.is_err());
    }

    #[tokio::test]
    async fn reads_and_writes_that_move_bytes_count_as_progress() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let slot = slot();
        let (mut client, server) = tokio::io::duplex(64);
        let mut tracked = slot.track(server);
        let progress = || slot.progress.load(Relaxed);
        tracked.write_all(b"answer").await.unwrap();
        assert_eq!(progress(), 1, "a write");
        client.write_all(b"ask").await.unwrap();
        let mut read = [0u8; 3];
        tracked.read_exact(&mut read).await.unwrap();
        assert_eq!(progress(), 2, "a read");
        drop(client);
        assert_eq!(tracked.read(&mut read).await.unwrap(), 0);
        assert_eq!(progress(), 2, "the end of the stream moves nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_looked_at_less_and_less_often() {
        let slot = slot();
        let begun = slot.begun();
        drop(slot.begin());
        let rested = slot.rested(Some(FIRST), begun);
        tokio::pin!(rested);
        // Bytes move every 5 ms for 3 s: no rest.
        let busy_until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < busy_until {
            tokio::select! {
                () = rested.as_mut() => panic!("rested while busy"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {
                    slot.progress.fetch_add(1, Relaxed);
                }
            }
        }
        // Then quiet: the period has grown to a second, so it rests one to two seconds later.
        let quiet_since = Instant::now();
        rested.await;
        let took = quiet_since.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took <= LONGEST * 2,
            "{took:?}"
        );
    }
}
