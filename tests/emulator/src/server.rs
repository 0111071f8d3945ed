//! The HTTPS accept loop: TLS handshakes, h1/h2 connections, graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::conn::{AbortableTcp, Conn};
use crate::{ops, store};

pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<store::State>,
    mut stopped: oneshot::Receiver<()>,
) {
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let (acceptor, state, watcher) = (acceptor.clone(), state.clone(), graceful.watcher());
                conns.spawn(async move {
                    let counted = state.clone();
                    let _open = counted.connections.opened();
                    let cut = counted.connections.cut.notified();
                    let conn = Arc::new(Conn::default());
                    let tcp = AbortableTcp::new(tcp, conn.clone());
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                    let Ok(Ok(tls)) = handshake.await else { return };
                    let _ = conn.sni.set(tls.get_ref().1.server_name().map(str::to_string));
                    let svc = hyper::service::service_fn(move |req| {
                        let (state, conn) = (state.clone(), conn.clone());
                        async move { Ok::<_, Infallible>(ops::handle(state, conn, req).await) }
                    });
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http2().adaptive_window(true);
                    let conn = builder.serve_connection(TokioIo::new(tls), svc).into_owned();
                    // Cut: dropped mid-whatever, as a server that closes its idle connections.
                    tokio::select! {
                        _ = watcher.watch(conn) => {}
                        () = cut => {}
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}
