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
//!
//! [`exchange`] sends one request on the pinned connection or one of `pool`'s, and [`Pulled`]
//! reads the answer's body from that connection and gives the connection back.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::pool::Poolable;

use crate::body::{BoxError, ProxyBody};
use crate::pool::{authority, send_on, DialError, Lease, Pools};

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

/// Why an exchange on a connection failed.
pub enum ExchangeError {
    /// No connection could be made; the request was not sent.
    Dial(DialError),
    /// The connection failed with the request in flight; S3 may have seen it.
    Request(hyper::Error),
}

/// Sends `request` (absolute URI, `Host` set) on a connection for its host, and resolves to
/// S3's response head, its body reading on from the same connection. A connection that was
/// used before and turns out closed before it took the request (S3 closed it while it sat
/// idle) is left for another, as often as that happens; the request is never sent twice.
pub async fn exchange(
    pools: &Pools,
    pinned: Option<Arc<Pinned>>,
    mut request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, ExchangeError> {
    let uri = request.uri().clone();
    *request.uri_mut() = origin_form(&uri);
    loop {
        let pinned_one = pinned.as_ref().and_then(|p| p.take(authority(&uri)));
        let (mut lease, reused) = match pinned_one {
            Some(lease) => (lease, true),
            None => pools.lease(&uri).await.map_err(ExchangeError::Dial)?,
        };
        if reused && !poll_fn(|cx| Poll::Ready(lease.still_open(cx))).await {
            continue; // Dropped: closed, as it is not open.
        }
        match send_on(&mut lease, request).await {
            Ok(response) => return Ok(response.map(|body| Pulled::boxed(body, lease, pinned))),
            Err(mut error) => match error.take_message() {
                // Closed before it took the request: hyper gives the request back.
                Some(unsent) if reused => request = unsent,
                _ => return Err(ExchangeError::Request(error.into_error())),
            },
        }
    }
}

/// The request target as HTTP/1.1 sends it to an origin: the path and query.
fn origin_form(uri: &Uri) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
}

/// S3's response body, read on the connection that carries it: reading the body drives the
/// connection. Once the body has ended the connection goes back to the client connection's pin
/// (or, without one, to the pool); a body dropped before its end closes it.
struct Pulled {
    body: Incoming,
    lease: Option<Lease>,
    pinned: Option<Arc<Pinned>>,
    ended: bool,
}

impl Pulled {
    fn boxed(body: Incoming, lease: Lease, pinned: Option<Arc<Pinned>>) -> ProxyBody {
        use http_body_util::BodyExt;
        let ended = body.is_end_stream();
        let mut pulled = Pulled {
            body,
            lease: Some(lease),
            pinned,
            ended,
        };
        if ended {
            pulled.release();
        }
        pulled.boxed_unsync()
    }

    /// The body has ended, or is dropped: the connection goes back, or is closed.
    fn release(&mut self) {
        let Some(mut lease) = self.lease.take() else {
            return;
        };
        if !self.ended {
            // Dropped mid-body: the rest of this answer would be read as the next one's.
            lease.close();
            return;
        }
        lease.settle();
        match self.pinned.take() {
            Some(pinned) if lease.is_open() => pinned.put(lease),
            // Into the pool if it is open (and the pool has room), closed otherwise.
            _ => drop(lease),
        }
    }
}

impl Body for Pulled {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut frame = Pin::new(&mut this.body).poll_frame(cx);
        if frame.is_pending() {
            if let Some(lease) = this.lease.as_mut() {
                // The connection reads on; the body may have a frame now.
                let _ = lease.drive(cx);
                frame = Pin::new(&mut this.body).poll_frame(cx);
            }
        }
        match &frame {
            Poll::Ready(None) => this.ended = true,
            Poll::Ready(Some(Ok(_))) => this.ended = this.body.is_end_stream(),
            Poll::Ready(Some(Err(_))) | Poll::Pending => {}
        }
        if this.ended {
            this.release();
        }
        frame.map(|f| f.map(|r| r.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pulled {
    fn drop(&mut self) {
        self.ended = self.ended || self.body.is_end_stream();
        self.release();
    }
}
