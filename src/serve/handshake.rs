//! Client TLS handshakes (on `--tls-listen` and inside intercepted tunnels), bounded so that a
//! silent or dawdling client cannot hold a connection open.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::Accept;

use crate::serve::conn::Slot;

/// How long a client may take to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client TLS handshake on `slot`'s connection: it must finish within
/// [`TLS_HANDSHAKE_TIMEOUT`], and bytes must keep moving.
pub async fn handshake<T>(accept: Accept<T>, slot: &Slot) -> io::Result<TlsStream<T>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    tokio::select! {
        done = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, accept) => {
            done.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        }
        () = slot.quiet() => Err(io::ErrorKind::TimedOut.into()),
    }
}
