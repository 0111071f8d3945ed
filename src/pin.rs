//! Pin: the upstream connection an HTTP/1.1 client connection keeps between its requests.
//!
//! A client connection (a plain or TLS socket, or an intercepted tunnel, which is a client
//! connection too) holds a [`Pinned`] while it is served. Its requests run inside
//! [`Pinned::scope`], where `upstream` finds it: a request for the host of the pinned
//! connection takes it (so it skips the pool), and once the answer's body has ended the
//! connection comes back to the pin rather than to the pool. A request for another host, or a
//! second request while the pinned connection is out, goes through the pool, and the
//! connection it used becomes the pin once it is done (the one pinned before goes to the
//! pool). Only one request at a time ever holds a connection, so two clients' requests never
//! mix on it.
//!
//! The pin gives its connection back to the pool when the client connection rests
//! (`keepalive`), hands its socket to a tunnel, or closes. h2 client connections, whose streams
//! run concurrently, have no pin: each request uses the pool.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::pool::Lease;

tokio::task_local! {
    /// The pin of the client connection whose request is running.
    static PINNED: Arc<Pinned>;
}

/// The upstream connection a client connection keeps between requests, if any, and since when
/// it has waited.
#[derive(Default)]
pub struct Pinned(Mutex<Option<(Lease, Instant)>>);

impl Pinned {
    /// Runs `request` (one request of the client connection that owns `pinned`) with the pin
    /// in reach of [`Pinned::current`].
    pub fn scope<F: Future>(pinned: Arc<Pinned>, request: F) -> impl Future<Output = F::Output> {
        PINNED.scope(pinned, request)
    }

    /// The pin of the client connection whose request is running, if it has one.
    pub fn current() -> Option<Arc<Pinned>> {
        PINNED.try_with(Arc::clone).ok()
    }

    /// The pinned connection, if it serves `authority`; it is the caller's until it comes
    /// back with [`Pinned::put`]. One that has waited longer than `idle_timeout` (as the pool's
    /// idle connections may) is closed instead: S3 may be closing it.
    pub fn take(&self, authority: &str, idle_timeout: Duration) -> Option<Lease> {
        let mut slot = self.lock();
        match slot.as_ref() {
            Some((lease, _)) if lease.key().serves(authority) => {}
            _ => return None,
        }
        let (lease, since) = slot.take()?;
        drop(slot);
        (since.elapsed() <= idle_timeout).then_some(lease)
    }

    /// Pins `lease` (ready for another request); a connection pinned before goes to the pool.
    pub fn put(&self, lease: Lease) {
        let before = self.lock().replace((lease, Instant::now()));
        drop(before);
    }

    /// Gives the pinned connection back to the pool (the client connection rests or closes).
    pub fn release(&self) {
        let before = self.lock().take();
        drop(before);
    }

    /// Whether a connection is pinned now.
    pub fn is_pinned(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Lease, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
