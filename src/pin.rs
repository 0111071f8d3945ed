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

use crate::pool::Lease;

tokio::task_local! {
    /// The pin of the client connection whose request is running.
    static PINNED: Arc<Pinned>;
}

/// The upstream connection a client connection keeps between requests, if any.
#[derive(Default)]
pub struct Pinned(Mutex<Option<Lease>>);

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
    /// back with [`Pinned::put`]. (The caller checks that it is still open and has not been
    /// idle past `--upstream-idle-timeout`.)
    pub fn take(&self, authority: &str) -> Option<Lease> {
        let mut slot = self.lock();
        if slot
            .as_ref()
            .is_some_and(|lease| lease.key().serves(authority))
        {
            slot.take()
        } else {
            None
        }
    }

    /// Pins `lease` (ready for another request); a connection pinned before goes to the pool.
    pub fn put(&self, lease: Lease) {
        let before = self.lock().replace(lease);
        drop(before);
    }

    /// Gives the pinned connection back to the pool (the client connection rests, closes, or
    /// hands its socket to a tunnel).
    pub fn release(&self) {
        let before = self.lock().take();
        drop(before);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Lease>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
