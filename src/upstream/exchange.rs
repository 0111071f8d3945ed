//! Exchange: one request on one of `pool`'s connections to S3, driven by the request's own task.
//!
//! [`exchange`] takes a connection from the worker's pool (or dials one), writes the request and
//! reads the answer's head by polling the hyper connection itself, and [`Pulled`] reads the
//! answer's body from that connection, polling it again as the client reads, then gives the
//! connection back to the pool. A request never leaves its task: hyper-util's `Client` handed
//! each request to the connection's own task through a channel and spawned a task per response
//! to put the connection back.
//!
//! Pinning a connection to each HTTP/1.1 client connection between its requests was tried and
//! dropped: it saved about 3,000 instructions a request (2%), but 1,000 client connections that
//! each made one request held 1,000 upstream TLS connections until they rested, where the pool
//! alone reused 32 (`benches/idle_conns`: 67 MiB against 43 MiB).

use std::future::poll_fn;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::{Request, Response, Uri};
use http_body::Body;
use hyper::body::Incoming;

use crate::body::hooked::{Given, Hook, Hooked, Polled, Step};
use crate::body::{BoxError, ProxyBody};
use crate::upstream::pool::{send_on, DialError, Lease, Pools};

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
    mut request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, ExchangeError> {
    let uri = request.uri().clone();
    *request.uri_mut() = origin_form(&uri);
    loop {
        let (mut lease, reused) = pools.lease(&uri).await.map_err(ExchangeError::Dial)?;
        if reused && !poll_fn(|cx| Poll::Ready(lease.still_open(cx))).await {
            continue; // Dropped: closed, as it is not open.
        }
        match send_on(&mut lease, request).await {
            Ok(response) => return Ok(response.map(|body| Pulled::boxed(body, lease))),
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
/// connection. Once the body has ended the connection goes back to the pool (if it is open and
/// the pool has room; it is closed otherwise); a body dropped before its end closes it.
struct Pulled {
    lease: Option<Lease>,
    ended: bool,
}

impl Pulled {
    fn boxed(body: Incoming, lease: Lease) -> ProxyBody {
        use http_body_util::BodyExt;
        let ended = body.is_end_stream();
        let mut pulled = Pulled {
            lease: Some(lease),
            ended,
        };
        if ended {
            pulled.release();
        }
        Hooked::wrap(body, pulled).boxed_unsync()
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
        // Into the pool if it is open (and the pool has room), closed otherwise.
        drop(lease);
    }

    /// What the body gave: the connection goes back once it has ended.
    fn given(&mut self, given: Given, body: &Incoming) -> Polled {
        match &given {
            None => self.ended = true,
            Some(Ok(_)) => self.ended = body.is_end_stream(),
            Some(Err(_)) => {}
        }
        if self.ended {
            self.release();
        }
        Poll::Ready(given)
    }
}

impl Hook<Incoming> for Pulled {
    fn frame(&mut self, given: Given, body: &mut Incoming, _: &mut Context<'_>) -> Step {
        ControlFlow::Break(self.given(given, body))
    }

    fn pending(&mut self, body: &mut Incoming, cx: &mut Context<'_>) -> Polled {
        let Some(lease) = self.lease.as_mut() else {
            return Poll::Pending;
        };
        // The connection reads on; the body may have a frame now.
        let _ = lease.drive(cx);
        let given = ready!(Pin::new(&mut *body).poll_frame(cx));
        self.given(given.map(|r| r.map_err(BoxError::from)), body)
    }

    fn is_end_stream(&self, body: &Incoming) -> bool {
        self.ended || body.is_end_stream()
    }

    fn dropped(&mut self, body: &mut Incoming) {
        self.ended = self.ended || body.is_end_stream();
        self.release();
    }
}
