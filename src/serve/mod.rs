//! Serve: accept connections (plain or TLS), serve HTTP/1.1 or h2 on them (an HTTP/1.1 one rests
//! between requests, see `keepalive`), and hand each request to the pipeline, or a CONNECT to
//! `tunnel`; the connection inside an intercepted tunnel is served here too.

pub mod ca;
pub(crate) mod conn;
pub(crate) mod connect;
pub(crate) mod handshake;
pub mod http_settings;
pub(crate) mod keepalive;
pub(crate) mod memory;
pub(crate) mod socket;
pub(crate) mod tunnel;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::admit::Arrival;
use crate::body::{idle_limited, BoxError, ProxyBody};
use crate::proxy::Proxy;
use crate::serve::ca::CertificateAuthority;
use crate::serve::conn::{drive, Drain, DrainWatch, Driven, InFlight, Slot, Tracked};
use crate::serve::connect::ConnectPolicy;
use crate::serve::handshake::handshake;
use crate::serve::http_settings::Http;
use crate::serve::keepalive::{BoxIo, Handoff, Prefixed, Protocol, Resting, WithoutShutdown};
use crate::workers::Workers;

/// State shared by every connection.
pub struct Shared {
    /// The request pipeline.
    pub proxy: Proxy,
    /// The local CA that mints certificates for intercepted hosts.
    pub ca: Arc<CertificateAuthority>,
    /// What CONNECT may open.
    pub connect: ConnectPolicy,
    /// Tells connections to finish at shutdown.
    pub drain: Drain,
    /// One permit per open client connection (`--max-connections`), across listeners.
    pub connections: Arc<Semaphore>,
    /// `--client-idle-timeout`.
    pub client_idle: Duration,
    /// The threads connections are served on.
    pub workers: Arc<Workers>,
    /// How HTTP/1.1 and h2 are served.
    pub http: Http,
    /// Hands back the heap pages that connections free when they rest or close.
    pub memory: Arc<crate::serve::memory::Trimmer>,
}

/// What a tunnel needs from the server: the tunnel is spawned by [`dispatch`], and the
/// connection inside it is served by [`serve_http`].
impl tunnel::Server for Arc<Shared> {
    fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    fn connect(&self) -> &ConnectPolicy {
        &self.connect
    }

    fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    fn serve(
        self,
        io: TlsStream<BoxIo>,
        arrival: Arrival,
        slot: Arc<Slot>,
    ) -> impl Future<Output = ()> + Send {
        serve_http(io, arrival, self, slot)
    }
}

/// Accepts connections until `stop` flips, serving each on its own task. At
/// `--max-connections` it stops accepting until a connection closes.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = permit(&shared.connections) => permit,
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let gauge = &shared.proxy.metrics().connections_active;
        let slot = Slot::open(permit, gauge, shared.client_idle);
        let span = tracing::info_span!("conn", client.addr = %peer);
        let (tls, worker_shared) = (tls.clone(), shared.clone());
        shared.workers.serve(stream, move |stream| {
            serve_tcp(stream, peer, tls, worker_shared, slot).instrument(span)
        });
    }
}

/// A connection permit, waiting (and saying so) when every one is taken.
async fn permit(connections: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    if let Ok(permit) = connections.clone().try_acquire_owned() {
        return permit;
    }
    tracing::debug!("--max-connections reached: not accepting until a connection closes");
    match connections.clone().acquire_owned().await {
        Ok(permit) => permit,
        Err(_) => std::future::pending().await, // Never closed.
    }
}

async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
) {
    let _ = stream.set_nodelay(true);
    let stream = slot.track(stream);
    let arrival = Arrival {
        client: peer,
        tunnel: None,
        identity: None,
    };
    match tls {
        None => serve_http(stream, arrival, shared, slot).await,
        // Boxed: a TLS handshake's state is kilobytes, which a plain connection's task would
        // otherwise carry for as long as it stays open.
        Some(acceptor) => Box::pin(serve_tls(stream, acceptor, arrival, shared, slot)).await,
    }
}

async fn serve_tls(
    stream: Tracked<TcpStream>,
    acceptor: TlsAcceptor,
    arrival: Arrival,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
) {
    match handshake(acceptor.accept(stream), &slot).await {
        Ok(stream) => serve_http(stream, arrival, shared, slot).await,
        Err(error) => tracing::debug!(%error, peer = %arrival.client, "TLS handshake failed"),
    }
}

/// Serves HTTP/1.1 or h2 on one connection, with CONNECT tunnels, until it closes, the drain
/// closes it, or it sits idle. (Boxed: a tunnel serves its inner connection with this same
/// function.)
fn serve_http<I>(
    io: I,
    arrival: Arrival,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        let Some(mut drain) = shared.drain.watch() else {
            return; // Draining: a tunnel opened just now gets no new connection.
        };
        {
            let mut quiet = pin!(slot.quiet());
            let mut io = Prefixed::new(io);
            let protocol = tokio::select! {
                protocol = io.protocol() => protocol,
                () = drain.started() => Ok(None),
                () = quiet.as_mut() => Ok(None),
            };
            let mut open = Open {
                shared: &shared,
                slot: &slot,
                quiet: quiet.as_mut(),
                drain: &mut drain,
            };
            match protocol {
                Ok(Some(Protocol::Http1)) => open.http1(io, arrival).await,
                // Boxed, so that HTTP/1.1 connections do not carry h2's state.
                Ok(Some(Protocol::Http2)) => Box::pin(open.http2(io, arrival)).await,
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "connection ended before a request"),
            }
        }
        shared.memory.released();
        // The slot goes before the watch, so a finished drain finds the gauge down.
        drop(slot);
        drop(drain);
    })
}

/// One client connection being served: what `drive` needs, for either protocol.
struct Open<'a, Q> {
    shared: &'a Arc<Shared>,
    slot: &'a Arc<Slot>,
    quiet: Pin<&'a mut Q>,
    drain: &'a mut DrainWatch,
}

impl<Q: Future<Output = ()>> Open<'_, Q> {
    /// HTTP/1.1: served by hyper until it has rested (see `keepalive`), then by a new hyper
    /// connection once the next bytes arrive; CONNECT hands the socket to its tunnel.
    async fn http1<I>(&mut self, mut io: Prefixed<I>, arrival: Arrival)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handoff = Arc::new(Handoff::default());
        let mut service = self.service(arrival, Some(handoff.clone()));
        loop {
            // Boxed: hyper's connection is allocated for its turn only, so a resting
            // connection's future holds the socket and little else.
            let Some((driven, parts)) = Box::pin(self.h1_turn(io, service)).await else {
                return;
            };
            service = parts.service;
            io = parts.io.into_inner();
            io.unread(parts.read_buf);
            if let Some(tunnel) = handoff.take() {
                let _ = tunnel.send(Box::new(io));
                return;
            }
            if driven != Driven::Rested {
                // Closed for the drain, when idle, or by the client: as hyper would.
                let _ = tokio::time::timeout(self.slot.close_grace(), io.shutdown()).await;
                return;
            }
            let resting = Resting::new(&self.shared.proxy.metrics().connections_idle);
            self.shared.memory.released();
            let woke = tokio::select! {
                woke = io.wait() => woke,
                () = self.drain.started() => Ok(false),
                () = self.quiet.as_mut() => Ok(false),
            };
            drop(resting);
            if !matches!(woke, Ok(true)) {
                return;
            }
        }
    }

    /// One hyper connection's turn on an HTTP/1.1 socket: until it rests, hands the socket to a
    /// tunnel, or ends. `None`: it ended with an error, or was dropped.
    async fn h1_turn<I>(
        &mut self,
        io: Prefixed<I>,
        service: Dispatch,
    ) -> Option<(Driven, http1::Parts<TokioIo<Prefixed<I>>, Dispatch>)>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let begun = self.slot.begun();
        let open = self.shared.proxy.metrics().connections_active.get();
        let mut conn = self
            .shared
            .http
            .h1
            .serve_connection(TokioIo::new(io), service);
        let driven = drive(
            WithoutShutdown(&mut conn),
            |c| Pin::new(&mut *c.get_mut().0).graceful_shutdown(),
            self.quiet.as_mut(),
            self.slot.rested(self.shared.http.rest_after(open), begun),
            self.slot,
            self.drain,
        )
        .await;
        match driven {
            Ok(Driven::Dropped) => None,
            Ok(driven) => Some((driven, conn.into_parts())),
            Err(error) => {
                tracing::debug!(%error, "connection ended with an error");
                None
            }
        }
    }

    /// h2: served by hyper until it closes (CONNECT streams upgrade through hyper).
    async fn http2<I>(&mut self, io: Prefixed<I>, arrival: Arrival)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = self.service(arrival, None);
        let conn = self
            .shared
            .http
            .h2
            .serve_connection(TokioIo::new(io), service);
        let driven = drive(
            conn,
            |c| c.graceful_shutdown(),
            self.quiet.as_mut(),
            std::future::pending(),
            self.slot,
            self.drain,
        )
        .await;
        if let Err(error) = driven {
            tracing::debug!(%error, "connection ended with an error");
        }
    }

    fn service(&self, arrival: Arrival, handoff: Option<Arc<Handoff>>) -> Dispatch {
        Dispatch {
            shared: self.shared.clone(),
            slot: self.slot.clone(),
            arrival,
            handoff,
        }
    }
}

/// The service of one client connection: each request is dispatched on a future of its own,
/// counted in flight until its response head.
struct Dispatch {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    arrival: Arrival,
    /// HTTP/1.1 only: where a CONNECT's tunnel gets the socket.
    handoff: Option<Arc<Handoff>>,
}

impl hyper::service::Service<Request<Incoming>> for Dispatch {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: Request<Incoming>) -> ServiceFuture {
        let in_flight = self.slot.begin();
        let shared = self.shared.clone();
        let arrival = self.arrival.clone();
        let handoff = self.handoff.clone();
        Box::pin(async move { Ok(dispatch(request, arrival, shared, in_flight, handoff).await) })
    }
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

/// Routes one request: CONNECT opens a tunnel; anything else goes through the pipeline, with
/// both bodies cut when they stall for the idle timeout. `in_flight` drops with the response
/// head.
///
/// This future is boxed for every request, so its size is copied and allocated each time:
/// rare paths (CONNECT, a session miss, a retry, a multipart upload) are boxed where they are
/// taken instead of being carried inline. `tests::request_futures_stay_small` keeps it so.
async fn dispatch(
    request: Request<Incoming>,
    arrival: Arrival,
    shared: Arc<Shared>,
    in_flight: InFlight,
    handoff: Option<Arc<Handoff>>,
) -> Response<ProxyBody> {
    if request.method() == Method::CONNECT {
        let slot = in_flight.slot().clone();
        return Box::pin(tunnel::answer(request, &arrival, shared, slot, handoff)).await;
    }
    let idle = shared.client_idle;
    let request =
        request.map(|body| idle_limited(body.map_err(BoxError::from).boxed_unsync(), idle));
    let response = shared.proxy.handle(request, &arrival).await;
    response.map(|body| idle_limited(body, idle))
}

#[cfg(test)]
mod tests {
    /// The size of the future an async fn of five arguments returns.
    fn future_size5<A, B, C, D, E, R>(_: impl Fn(A, B, C, D, E) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every request allocates and fills its `dispatch` future (9.4 KiB before the rare paths
    /// were boxed, 4.3 KiB after), and every connection's task holds a `serve_tcp` future (4.2 KiB before the
    /// TLS handshake was boxed).
    #[test]
    fn request_futures_stay_small() {
        let dispatch = future_size5(super::dispatch);
        let serve_tcp = future_size5(super::serve_tcp);
        eprintln!("dispatch future {dispatch} B, serve_tcp future {serve_tcp} B");
        assert!(dispatch <= 5120, "dispatch future is {dispatch} bytes");
        assert!(serve_tcp <= 512, "serve_tcp future is {serve_tcp} bytes");
    }
}

#[cfg(test)]
#[path = "server_rest_tests.rs"]
mod rest_tests;
