//! Pool: the proxy's HTTP/1.1 connections to S3. Each worker keeps its idle ones in a pool of
//! its own (hyper-util's, bounded by `--upstream-max-idle-per-host` and
//! `--upstream-idle-timeout`), and a connection is driven by the task of the request that uses
//! it (`exchange`).
//!
//! hyper-util's legacy `Client` checks a connection out of its pool for every request (a
//! SipHash of the host, twice, under a lock), hands the request to the connection's own task
//! through a channel, and spawns a task per response to put the connection back: about a tenth
//! of the proxy's instructions per request (`benches/instructions.sh`). Here a request takes an
//! idle connection from its worker's pool, and polls the hyper connection itself
//! (first while it waits for the answer's head, then from the answer's body, which the client
//! connection reads), so a request never leaves its task. A connection that waits in the pool
//! is polled by nobody: before it is used again it is polled once, so that one S3
//! closed meanwhile is seen closed and left (its request goes on another connection, which
//! `send`'s one retry never notices). A connection that ends is dropped at once, as its own
//! task would end: a request queued on it just as S3 closed it comes back unsent (and goes on
//! another connection), and one S3 may have seen fails. A connection goes back to the pool only once S3's whole answer has been read and the request written; an answer
//! dropped before its end closes its connection.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response, Uri};

use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::pool::{Pool, Poolable, Pooled, Reservation, Ver};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::IntGauge;
use tokio::time::Instant;
use tower_service::Service;

use crate::body::{BoxError, ProxyBody};
use crate::upstream::egress::Connector;

/// The stream one upstream connection runs over: TLS to S3, over what `egress` dialed.
pub type Stream = hyper_rustls::MaybeHttpsStream<crate::upstream::egress::Dialed>;
/// The connector that dials S3 and does TLS (hyper-rustls over `egress`).
pub type Dialer = hyper_rustls::HttpsConnector<Connector>;

/// Which connections can serve a request: the `host:port` its URI names (`--resolve` and the
/// egress proxy follow from it). Hashed as one string, not byte by byte as `Authority` is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(Arc<str>);

impl Key {
    /// The key of `uri` (an absolute `https://` URI).
    pub fn of(uri: &Uri) -> Key {
        Key(authority(uri).into())
    }
}

/// `host:port` of `uri`, as [`Key`] holds it.
fn authority(uri: &Uri) -> &str {
    uri.authority().map_or("", |a| a.as_str())
}

/// One HTTP/1.1 connection to S3: the sender, and the connection itself, which whoever uses it
/// polls (see the module's notes).
pub struct Conn {
    send: http1::SendRequest<ProxyBody>,
    /// The connection, until it ends or is closed. It is dropped then, as hyper's own task
    /// would end: a request still queued on it comes back unsent, and a body reading from it
    /// sees its end.
    conn: Option<Live>,
    /// Since when it has been idle in a pool, and for how long it may be.
    idle_since: Instant,
    idle_timeout: Duration,
}

/// The hyper connection, counted in `s3x_proxy_upstream_connections` while it exists.
struct Live {
    conn: Pin<Box<http1::Connection<Stream, ProxyBody>>>,
    _open: OpenGuard,
}

impl Conn {
    /// Starts HTTP/1.1 on `stream`, to be closed once idle for `idle_timeout`, and counted in
    /// `gauge` until it is.
    pub async fn handshake(
        stream: Stream,
        idle_timeout: Duration,
        gauge: &IntGauge,
    ) -> hyper::Result<Conn> {
        let mut builder = http1::Builder::new();
        // S3's header case (`ETag`, `Content-Length`) rides in the response and the
        // client-side HTTP/1.1 connection writes it back: legacy clients (libs3 2.0) match
        // header names case-sensitively (DESIGN §3.2).
        builder.preserve_header_case(true);
        let (send, conn) = builder.handshake(stream).await?;
        Ok(Conn {
            send,
            conn: Some(Live {
                conn: Box::pin(conn),
                _open: OpenGuard::new(gauge),
            }),
            idle_since: Instant::now(),
            idle_timeout,
        })
    }

    /// Lets the connection do what it can without waiting; `Ready` once it has ended (it is
    /// dropped then).
    pub fn drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(live) = self.conn.as_mut() else {
            return Poll::Ready(());
        };
        let Poll::Ready(result) = live.conn.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        if let Err(error) = result {
            tracing::debug!(%error, "upstream connection ended with an error");
        }
        self.conn = None;
        Poll::Ready(())
    }

    /// Closes it now (what is left of an exchange on it would be read as the next one's).
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// After sitting unpolled in the pool: whether it can take a request, once it
    /// has read what arrived meanwhile (S3 closing it, say).
    pub fn still_open(&mut self, cx: &mut Context<'_>) -> bool {
        self.drive(cx).is_pending() && self.is_open()
    }

    /// Lets it settle without a task to wake (it is about to wait unpolled), and starts its
    /// idle time.
    pub fn settle(&mut self) {
        let _ = self.drive(&mut Context::from_waker(Waker::noop()));
        self.idle_since = Instant::now();
    }
}

impl Poolable for Conn {
    fn is_open(&self) -> bool {
        // Ready: the connection has finished its last exchange and waits for the next. One
        // idle for longer than the idle timeout may be closing at S3's end.
        self.conn.is_some()
            && self.send.is_ready()
            && self.idle_since.elapsed() <= self.idle_timeout
    }

    fn reserve(self) -> Reservation<Self> {
        Reservation::Unique(self)
    }

    fn can_share(&self) -> bool {
        false
    }
}

/// A connection checked out of a pool (or dialed for it): dropped, it goes back if it is
/// ready for another request, and is closed otherwise.
pub type Lease = Pooled<Conn, Key>;

/// Counts one open connection in a gauge until dropped.
struct OpenGuard(IntGauge);

impl OpenGuard {
    fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        OpenGuard(gauge.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Why no connection could be had.
#[derive(Debug)]
pub struct DialError(pub BoxError);

/// The pools (one per worker, plus one for threads that are not workers), the dialer, and the
/// gauge of open connections.
pub struct Pools {
    pools: Vec<Pool<Conn, Key>>,
    bounds: Bounds,
    dialer: Dialer,
    gauge: IntGauge,
}

/// Bounds of the idle connections in each pool.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// `--upstream-max-idle-per-host` (0: none are kept idle).
    pub max_idle_per_host: usize,
    /// `--upstream-idle-timeout`.
    pub idle_timeout: Duration,
}

impl Pools {
    /// `count` pools of `bounds`, dialing with `dialer`, counting connections in `gauge`.
    pub fn new(count: usize, bounds: Bounds, dialer: Dialer, gauge: IntGauge) -> Self {
        let config = hyper_util::client::legacy::pool::Config {
            idle_timeout: Some(bounds.idle_timeout),
            max_idle_per_host: bounds.max_idle_per_host,
        };
        let pools = (0..count.max(1))
            .map(|_| Pool::new(config, TokioExecutor::new(), Some(TokioTimer::new())))
            .collect();
        Pools {
            pools,
            bounds,
            dialer,
            gauge,
        }
    }

    /// The pool of the worker this runs on.
    fn here(&self) -> &Pool<Conn, Key> {
        let last = self.pools.len() - 1;
        let index = crate::workers::current().map_or(last, |i| i.min(last));
        &self.pools[index]
    }

    /// A connection for `uri`: an idle one from this worker's pool (`true`: it has been used
    /// before), else a new one.
    pub async fn lease(&self, uri: &Uri) -> Result<(Lease, bool), DialError> {
        let key = Key::of(uri);
        let pool = self.here();
        // Only an idle connection at hand: with none, dialing starts at once. (The checkout is
        // dropped first: it would take a connection put back meanwhile, and then drop it.)
        let idle = {
            let mut checkout = std::pin::pin!(pool.checkout(key.clone()));
            poll_fn(|cx| Poll::Ready(checkout.as_mut().poll(cx))).await
        };
        if let Poll::Ready(Ok(lease)) = idle {
            return Ok((lease, true));
        }
        let conn = self.dial(uri).await?;
        let connecting = pool
            .connecting(&key, Ver::Auto)
            .expect("HTTP/1.1 connections are never shared");
        Ok((pool.pooled(connecting, conn), false))
    }

    /// Dials S3 (TCP or the egress proxy, then TLS) and starts HTTP/1.1 on the connection.
    async fn dial(&self, uri: &Uri) -> Result<Conn, DialError> {
        let stream = self
            .dialer
            .clone()
            .call(uri.clone())
            .await
            .map_err(DialError)?;
        Conn::handshake(stream, self.bounds.idle_timeout, &self.gauge)
            .await
            .map_err(|e| DialError(e.into()))
    }
}

/// Sends `request` on `conn`, driving it until S3's response head is in. A request the
/// connection never started (it ended first) comes back in the error.
pub async fn send_on(
    conn: &mut Conn,
    request: Request<ProxyBody>,
) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<ProxyBody>>> {
    let mut response = std::pin::pin!(conn.send.try_send_request(request));
    poll_fn(|cx| {
        // The connection writes the request and reads the answer; then the answer is in. Once
        // it has ended it is dropped, and a request still queued on it comes back.
        let _ = conn.drive(cx);
        response.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
