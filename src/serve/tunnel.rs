//! Tunnels: answer a CONNECT through the same record/response path as every request, and run
//! the tunnel `connect` decided on: TLS terminated with a leaf the `ca` mints and the requests
//! inside served like any others, or bytes copied both ways to an allowed host.
//!
//! A tunnel keeps its connection's slot: it rides the same client socket, which it gets through
//! the connection's `keepalive::Handoff` (HTTP/1.1) or hyper's upgrade (h2).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::PROXY_AUTHORIZATION;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::admit::identity::Principal;
use crate::admit::Arrival;
use crate::body::ProxyBody;
use crate::proxy::Proxy;
use crate::serve::ca::CertificateAuthority;
use crate::serve::conn::Slot;
use crate::serve::connect::{ConnectPolicy, Tunnel};
use crate::serve::handshake::handshake;
use crate::serve::keepalive::{BoxIo, Handoff, Upgrade};

/// The server a tunnel runs in, as the tunnel sees it. `server` implements it; a tunnel takes
/// it as a parameter (no dynamic call), so that it need not import the server that runs it.
pub trait Server: Clone + Send + Sync + 'static {
    /// The request pipeline, which records and answers the CONNECT.
    fn proxy(&self) -> &Proxy;
    /// What CONNECT may open.
    fn connect(&self) -> &ConnectPolicy;
    /// The CA that mints leaves for intercepted hosts.
    fn ca(&self) -> &CertificateAuthority;
    /// Serves the connection inside an intercepted tunnel, as `arrival`, on the tunnel's slot.
    fn serve(
        self,
        io: TlsStream<BoxIo>,
        arrival: Arrival,
        slot: Arc<Slot>,
    ) -> impl Future<Output = ()> + Send;
}

/// Answers `request`, a CONNECT, and spawns the tunnel it opens; the tunnel keeps the
/// connection's `slot`, and gets the socket through `handoff` (HTTP/1.1) or hyper's upgrade
/// (h2).
pub async fn answer<S: Server>(
    mut request: Request<Incoming>,
    arrival: &Arrival,
    server: S,
    slot: Arc<Slot>,
    handoff: Option<Arc<Handoff>>,
) -> Response<ProxyBody> {
    let proxy = server.proxy();
    let mut record = proxy.record(request.method(), arrival);
    record.operation = "CONNECT";
    if let Err(repeated) = crate::admit::repeats::refuse_repeats(request.headers()) {
        return proxy.respond(Err(repeated.into()), record);
    }
    // With --access-file, a tunnel is opened only for a client of the file, and bound to it.
    let identity = match proxy.access() {
        Some(access) => match access.authenticate_basic(request.headers().get(PROXY_AUTHORIZATION))
        {
            Ok(principal) => Some(principal),
            Err(refused) => return proxy.respond(Err(refused.into()), record),
        },
        None => None,
    };
    record.client_name = identity.as_ref().map(|p| p.name().to_owned());
    let opened = server.connect().open(&request, server.ca()).await;
    let client = arrival.client;
    let result = opened.map(|tunnel| {
        let upgrade = Upgrade::of(&mut request, handoff.as_ref());
        match tunnel {
            Tunnel::Intercept { host, acceptor } => {
                let span = tracing::info_span!("tunnel", %host);
                let tunnel = Inner {
                    client,
                    host,
                    identity,
                };
                let tunnel = intercept(upgrade, tunnel, acceptor, server.clone(), slot);
                tokio::spawn(tunnel.instrument(span));
            }
            Tunnel::Plain(upstream) => {
                tokio::spawn(plain(upgrade, upstream, slot).in_current_span());
            }
        }
        let mut response = Response::new(crate::body::empty());
        *response.status_mut() = StatusCode::OK;
        response
    });
    proxy.respond(result, record)
}

/// Who an intercepted tunnel serves, and for which host.
struct Inner {
    client: SocketAddr,
    host: String,
    identity: Option<Principal>,
}

/// Terminates TLS inside the tunnel with a leaf for its host, then serves any number of
/// requests, as the client that opened it.
async fn intercept<S: Server>(
    upgrade: Upgrade,
    tunnel: Inner,
    acceptor: TlsAcceptor,
    server: S,
    slot: Arc<Slot>,
) {
    let upgraded = match upgrade.io().await {
        Ok(upgraded) => upgraded,
        Err(error) => return tracing::debug!(%error, "CONNECT upgrade failed"),
    };
    match handshake(acceptor.accept(upgraded), &slot).await {
        Ok(tls) => {
            let arrival = Arrival {
                client: tunnel.client,
                tunnel: Some(tunnel.host.into()),
                identity: tunnel.identity,
            };
            server.serve(tls, arrival, slot).await
        }
        Err(error) => tracing::debug!(%error, "TLS handshake inside the tunnel failed"),
    }
}

/// Copies bytes both ways between the client and an allowed host, until either side closes or
/// no byte has moved for the idle timeout.
async fn plain(upgrade: Upgrade, mut upstream: TcpStream, slot: Arc<Slot>) {
    let mut client = match upgrade.io().await {
        Ok(upgraded) => upgraded,
        Err(error) => return tracing::debug!(%error, "CONNECT upgrade failed"),
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(error) = copied {
                tracing::debug!(%error, "tunnel closed with an error");
            }
        }
        () = slot.quiet() => tracing::debug!(idle = ?slot.idle_timeout(), "closing an idle tunnel"),
    }
}
