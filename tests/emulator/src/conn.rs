//! One client connection: its TLS SNI, and a TCP stream that can be cut short on request.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the request handlers know about the connection a request came on.
#[derive(Debug, Default)]
pub(crate) struct Conn {
    /// The SNI the client sent in its TLS handshake (set once the handshake is done).
    pub sni: OnceLock<Option<String>>,
    abort: AtomicBool,
}

impl Conn {
    /// The SNI, or None when the client sent none (IP literals) or the handshake is not done.
    pub fn sni(&self) -> Option<String> {
        self.sni.get().cloned().flatten()
    }

    /// Asks for the connection to be cut: once everything written so far has reached the
    /// socket, the TCP stream is shut down (FIN after that data, no TLS close_notify) and the
    /// connection fails, so the client sees its response end early.
    pub fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn aborting(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }
}

/// A TCP stream that cuts the connection once its [`Conn`] asks for it.
///
/// A FIN rather than an RST: an abortive close (SO_LINGER 0) would also throw away the data
/// still in the send queue, so the client would not reliably get the bytes sent before the cut.
pub(crate) struct AbortableTcp {
    tcp: TcpStream,
    conn: Arc<Conn>,
    /// The write side is shut down: nothing more goes out.
    cut: bool,
}

impl AbortableTcp {
    pub fn new(tcp: TcpStream, conn: Arc<Conn>) -> AbortableTcp {
        AbortableTcp {
            tcp,
            conn,
            cut: false,
        }
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection cut by an injected fault",
    )
}

impl AsyncRead for AbortableTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    /// TLS calls this only after writing out every record it holds, so an abort requested
    /// after the last data frame was handed over cuts the connection after that data.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Err(aborted()));
        }
        std::task::ready!(Pin::new(&mut this.tcp).poll_flush(cx))?;
        if this.conn.aborting() {
            std::task::ready!(Pin::new(&mut this.tcp).poll_shutdown(cx))?;
            this.cut = true;
            return Poll::Ready(Err(aborted()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut || this.conn.aborting() {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
