//! Serve: accept connections (plain or TLS), serve HTTP/1.1 or h2 on them, and run the tunnels
//! that CONNECT opens.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Mutex;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::body::{BoxError, ProxyBody};
use crate::ca::CertificateAuthority;
use crate::connect::{ConnectPolicy, Tunnel};
use crate::proxy::Proxy;
use crate::route::Arrival;

/// State shared by every connection.
pub struct Shared {
    /// The request pipeline.
    pub proxy: Proxy,
    /// The local CA that mints certificates for intercepted hosts.
    pub ca: Arc<CertificateAuthority>,
    /// What CONNECT may open.
    pub connect: ConnectPolicy,
    /// Tracks connections for graceful shutdown; taken when the drain starts.
    pub graceful: Mutex<Option<GracefulShutdown>>,
}

/// Accepts connections until `stop` flips, serving each on its own task.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
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
        let shared = shared.clone();
        let tls = tls.clone();
        let span = tracing::info_span!("conn", client.addr = %peer);
        tokio::spawn(serve_tcp(stream, peer, tls, shared).instrument(span));
    }
}

async fn serve_tcp(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let gauge = shared.proxy.metrics().connections_active.clone();
    gauge.inc();
    let arrival = Arrival {
        client: peer,
        tunnel: None,
    };
    match tls {
        None => serve_http(stream, arrival, shared).await,
        Some(acceptor) => match handshake(acceptor.accept(stream)).await {
            Ok(stream) => serve_http(stream, arrival, shared).await,
            Err(error) => tracing::debug!(%error, %peer, "TLS handshake failed"),
        },
    }
    gauge.dec();
}

/// Serves HTTP/1.1 or h2 on one connection, with CONNECT upgrades, until it closes.
/// (Boxed: a tunnel serves its inner connection with this same function.)
fn serve_http<I>(
    io: I,
    arrival: Arrival,
    shared: Arc<Shared>,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Box::pin(async move {
        let service_shared = shared.clone();
        let service = service_fn(move |request: Request<Incoming>| -> ServiceFuture {
            let shared = service_shared.clone();
            let arrival = arrival.clone();
            Box::pin(async move { Ok(dispatch(request, arrival, shared).await) })
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(60));
        builder.http2().timer(TokioTimer::new());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        let watcher = shared
            .graceful
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(GracefulShutdown::watcher));
        let Some(watcher) = watcher else {
            return; // Draining: a tunnel opened just now gets no new connection.
        };
        if let Err(error) = watcher.watch(connection.into_owned()).await {
            tracing::debug!(%error, "connection ended with an error");
        }
    })
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

async fn dispatch(
    request: Request<Incoming>,
    arrival: Arrival,
    shared: Arc<Shared>,
) -> Response<ProxyBody> {
    if request.method() == Method::CONNECT {
        return connect(request, &arrival, shared).await;
    }
    let request = request.map(|body| body.map_err(BoxError::from).boxed_unsync());
    shared.proxy.handle(request, &arrival).await
}

/// Answers a CONNECT through the same record/response path as every request, and spawns the
/// tunnel it opens.
async fn connect(
    request: Request<Incoming>,
    arrival: &Arrival,
    shared: Arc<Shared>,
) -> Response<ProxyBody> {
    let mut record = shared.proxy.record(request.method(), arrival);
    record.operation = "CONNECT";
    let opened = shared.connect.open(&request, &shared.ca).await;
    let client = arrival.client;
    let result = opened.map(|tunnel| {
        match tunnel {
            Tunnel::Intercept { host, acceptor } => {
                let span = tracing::info_span!("tunnel", %host);
                tokio::spawn(
                    intercept(request, host, client, acceptor, shared.clone()).instrument(span),
                );
            }
            Tunnel::Plain(upstream) => {
                tokio::spawn(plain_tunnel(request, upstream).in_current_span());
            }
        }
        let mut response = Response::new(crate::body::empty());
        *response.status_mut() = StatusCode::OK;
        response
    });
    shared.proxy.respond(result, record)
}

/// Terminates TLS inside the tunnel with a leaf for `host`, then serves any number of requests.
async fn intercept(
    request: Request<Incoming>,
    host: String,
    client: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
) {
    let upgraded = match hyper::upgrade::on(request).await {
        Ok(upgraded) => upgraded,
        Err(error) => return tracing::debug!(%error, "CONNECT upgrade failed"),
    };
    match handshake(acceptor.accept(TokioIo::new(upgraded))).await {
        Ok(tls) => {
            let arrival = Arrival {
                client,
                tunnel: Some(host.into()),
            };
            serve_http(tls, arrival, shared).await
        }
        Err(error) => tracing::debug!(%error, "TLS handshake inside the tunnel failed"),
    }
}

/// A client TLS handshake, bounded so a silent client cannot hold a connection open.
async fn handshake<T>(
    accept: tokio_rustls::Accept<T>,
) -> std::io::Result<tokio_rustls::server::TlsStream<T>>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, accept)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// How long a client may take to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Copies bytes both ways between the client and an allowed host.
async fn plain_tunnel(request: Request<Incoming>, mut upstream: TcpStream) {
    let upgraded = match hyper::upgrade::on(request).await {
        Ok(upgraded) => upgraded,
        Err(error) => return tracing::debug!(%error, "CONNECT upgrade failed"),
    };
    let mut client = TokioIo::new(upgraded);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%error, "tunnel closed with an error");
    }
}
