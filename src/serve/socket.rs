//! One pass-through for client sockets: a [`Wrapped`] socket passes reads and writes to the
//! socket inside it, and lets its [`Tap`] see them.
//!
//! Two wrappers are built on it: `conn::Tracked` counts the bytes that move as progress of the
//! connection's slot, and `keepalive::Prefixed` serves bytes read ahead before the socket's own.
//! Both are generic over the socket, so the pass-through costs no dynamic call.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket `io` whose reads and writes go through `tap`.
pub struct Wrapped<I, T> {
    /// The socket inside.
    pub(crate) io: I,
    /// What sees the reads and writes.
    pub(crate) tap: T,
}

/// What a [`Wrapped`] socket does besides passing reads and writes through.
pub trait Tap: Unpin {
    /// Fills `buf` with bytes the tap holds in front of the socket, if it holds any (by default
    /// none): `false` sends the read on to the socket.
    fn read_front(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let _ = buf;
        false
    }

    /// A read or write on the socket moved `n` bytes (perhaps none); by default nothing happens.
    fn moved(&self, n: usize) {
        let _ = n;
    }
}

impl<I: AsyncRead + Unpin, T: Tap> AsyncRead for Wrapped<I, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.tap.read_front(buf) {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            self.tap.moved(buf.filled().len() - before);
        }
        poll
    }
}

impl<I: AsyncWrite + Unpin, T: Tap> AsyncWrite for Wrapped<I, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<I, T: Tap> Wrapped<I, T> {
    /// Tells the tap what a write moved.
    fn wrote(&self, poll: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &poll {
            self.tap.moved(*n);
        }
        poll
    }
}
