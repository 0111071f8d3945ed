//! Between requests: a client connection that is idle holds its socket and little else.
//!
//! hyper keeps about 20 KiB per HTTP/1.1 connection for as long as it is open: an 8 KiB write
//! buffer, a read buffer of 8 to 16 KiB, and the parser's state. A thousand keep-alive
//! connections that each made one request would hold 20 MiB doing nothing. As nginx does with its
//! keep-alive connections, an HTTP/1.1 connection that has had no request in flight and no bytes
//! moving for `--client-rest-after` (1 s; see `conn::Slot::rested` for when it looks) gives all
//! of that back: hyper
//! finishes it as it would a connection closing between requests, but hands back the socket (and
//! any bytes it had read ahead) instead of closing it. The connection then waits for its next
//! bytes with only the socket and a [`Prefixed`] holding what was read ahead, and a new hyper
//! connection serves them (`server` runs this loop).
//!
//! Waking costs a new hyper connection (its buffers allocated again), a read or two more and the
//! timers that decided to rest, so resting too eagerly costs CPU on clients that pace their
//! requests: resting after 10 ms, 20 connections each sending a GET every 50 ms cost 233–257 µs
//! of CPU per request against 197–207 µs without resting, and 200 connections each sending one
//! every 200 ms about 20% more (runs on this shared machine varied by ±20%). After 1 s of silence
//! a connection is likely to stay idle, and waking it costs at most one wake-up a second.
//!
//! Because hyper then never upgrades the connection itself, a CONNECT answered 200 on HTTP/1.1
//! gets its socket through a [`Handoff`] instead of `hyper::upgrade::on`; [`Upgrade`] hides which
//! of the two a tunnel waits on (h2 CONNECT streams still use hyper's).
//!
//! The first bytes of a connection also tell HTTP/1.1 from h2 (prior knowledge, or ALPN `h2`:
//! both start with the connection preface), as hyper-util's `auto` server does.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::serve::socket::{Tap, Wrapped};

/// What a client connection speaks, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (or 1.0): anything that does not start with the h2 preface.
    Http1,
    /// h2 with prior knowledge, or negotiated by ALPN.
    Http2,
}

/// The h2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A socket with bytes already read from it in front (its tap): reads take those first.
pub type Prefixed<I> = Wrapped<I, Bytes>;

// The tap of a `Prefixed` socket is the bytes read ahead.
impl<I> Prefixed<I> {
    /// `io`, with nothing read ahead yet.
    pub fn new(io: I) -> Self {
        Wrapped {
            io,
            tap: Bytes::new(),
        }
    }

    /// Puts `more` (bytes read past the last request) after what is still unread.
    pub fn unread(&mut self, more: Bytes) {
        if more.is_empty() {
            return;
        }
        if self.tap.is_empty() {
            self.tap = more;
        } else {
            let mut joined = BytesMut::with_capacity(self.tap.len() + more.len());
            joined.extend_from_slice(&self.tap);
            joined.extend_from_slice(&more);
            self.tap = joined.freeze();
        }
    }

    /// Whether bytes are waiting in front of the socket.
    pub fn has_unread(&self) -> bool {
        !self.tap.is_empty()
    }
}

impl<I: AsyncRead + Unpin> Prefixed<I> {
    /// Waits for the next bytes (unless some are already waiting) and keeps them in front.
    /// `Ok(false)`: the client closed the connection.
    pub async fn wait(&mut self) -> io::Result<bool> {
        if self.has_unread() {
            return Ok(true);
        }
        // Small on purpose: it only has to show the connection is alive; hyper reads the rest.
        let mut first = [0u8; 64];
        let n = self.io.read(&mut first).await?;
        self.tap = Bytes::copy_from_slice(&first[..n]);
        Ok(n > 0)
    }

    /// Waits for the first bytes of a connection and tells which protocol they start.
    /// `Ok(None)`: the client closed the connection before sending any.
    pub async fn protocol(&mut self) -> io::Result<Option<Protocol>> {
        let mut seen = BytesMut::new();
        loop {
            let mut more = [0u8; 64];
            let n = self.io.read(&mut more).await?;
            seen.extend_from_slice(&more[..n]);
            let decided = match seen.len().min(H2_PREFACE.len()) {
                m if seen[..m] != H2_PREFACE[..m] => Some(Protocol::Http1),
                m if m == H2_PREFACE.len() => Some(Protocol::Http2),
                _ => None,
            };
            if n == 0 || decided.is_some() {
                self.tap = seen.freeze();
                // Bytes that end before they tell (a client that closed) are HTTP/1.1's to
                // refuse.
                return Ok(match (n, decided) {
                    (0, _) if self.tap.is_empty() => None,
                    (_, decided) => Some(decided.unwrap_or(Protocol::Http1)),
                });
            }
        }
    }
}

/// Reads take the bytes in front first; writes go straight to the socket.
impl Tap for Bytes {
    fn read_front(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.is_empty() {
            return false;
        }
        let n = self.len().min(buf.remaining());
        buf.put_slice(&self[..n]);
        self.advance(n);
        if self.is_empty() {
            // An empty slice would still hold the buffer it was cut from (hyper's read
            // buffer, 8 KiB or more) for as long as the connection rests.
            *self = Bytes::new();
        }
        true
    }
}

/// Counts a connection in `s3x_proxy_connections_idle` while it rests, however the wait ends.
pub struct Resting<'a>(&'a prometheus::IntGauge);

impl<'a> Resting<'a> {
    /// Counts one more resting connection in `gauge`.
    pub fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        Resting(gauge)
    }
}

impl Drop for Resting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Any client socket, boxed: what a tunnel runs over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// Where an HTTP/1.1 connection sends its socket after answering a CONNECT with 200.
#[derive(Default)]
pub struct Handoff(Mutex<Option<oneshot::Sender<BoxIo>>>);

impl Handoff {
    /// Called by the CONNECT that is about to answer 200: its tunnel gets the socket.
    fn expect(&self) -> oneshot::Receiver<BoxIo> {
        let (sender, receiver) = oneshot::channel();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
        receiver
    }

    /// The tunnel waiting for the socket, if a CONNECT was answered.
    pub fn take(&self) -> Option<oneshot::Sender<BoxIo>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// How a tunnel gets its client socket once the CONNECT answer has gone out.
pub enum Upgrade {
    /// h2: hyper's upgrade of the stream.
    Hyper(hyper::upgrade::OnUpgrade),
    /// HTTP/1.1: the whole socket, from the connection's [`Handoff`].
    Handoff(oneshot::Receiver<BoxIo>),
}

impl Upgrade {
    /// For `request`, a CONNECT about to be answered 200 on a connection with `handoff`
    /// (HTTP/1.1) or without (h2).
    pub fn of<B>(request: &mut http::Request<B>, handoff: Option<&Arc<Handoff>>) -> Self {
        match handoff {
            Some(handoff) => Upgrade::Handoff(handoff.expect()),
            None => Upgrade::Hyper(hyper::upgrade::on(request)),
        }
    }

    /// The client socket, once the answer is out.
    pub async fn io(self) -> Result<BoxIo, crate::body::BoxError> {
        match self {
            Upgrade::Hyper(on) => Ok(Box::new(hyper_util::rt::TokioIo::new(on.await?))),
            Upgrade::Handoff(receiver) => receiver
                .await
                .map_err(|_| "the connection ended before the tunnel opened".into()),
        }
    }
}

/// An HTTP/1.1 connection served until hyper is done with it, without closing the socket:
/// `into_parts` then gives the socket back (see the module's notes).
pub struct WithoutShutdown<'a, I, S>(pub &'a mut hyper::server::conn::http1::Connection<I, S>)
where
    S: hyper::service::HttpService<hyper::body::Incoming>;

impl<I, S, B> std::future::Future for WithoutShutdown<'_, I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = hyper::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_without_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "keepalive_tests.rs"]
mod tests;
