//! Accept: listeners, connections (plain or TLS, HTTP/1.1 or h2), and CONNECT interception.

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
use crate::error::{PolicyError, ProxyError};
use crate::names::host_matches;
use crate::proxy::Proxy;
use crate::route::{Arrival, AwsHost};

/// State shared by every connection.
pub struct Shared {
    /// The request pipeline.
    pub proxy: Proxy,
    /// The local CA that mints certificates for intercepted hosts.
    pub ca: Arc<CertificateAuthority>,
    /// Hosts CONNECT may tunnel to without interception (`*.suffix` allowed).
    pub allow_connect: Vec<String>,
    /// Deadline for opening such a tunnel's upstream connection.
    pub connect_timeout: Duration,
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
    match tls {
        None => serve_http(stream, Arrival::Listener, shared).await,
        Some(acceptor) => match handshake(acceptor.accept(stream)).await {
            Ok(stream) => serve_http(stream, Arrival::Listener, shared).await,
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
        return connect(request, shared).await;
    }
    let request = request.map(|body| body.map_err(BoxError::from).boxed_unsync());
    shared.proxy.handle(request, &arrival).await
}

/// Answers a CONNECT: intercept S3 Express hosts, tunnel allowed hosts, refuse the rest.
async fn connect(request: Request<Incoming>, shared: Arc<Shared>) -> Response<ProxyBody> {
    let request_id = shared.proxy.next_request_id();
    let Some((host, port)) = connect_target(&request) else {
        return refuse(
            ProxyError::Policy(PolicyError::BadConnectTarget),
            &request_id,
            &shared,
        );
    };
    if AwsHost::is_s3_express(&host) {
        let config = match shared.ca.server_config_for(&host) {
            Ok(config) => config,
            Err(error) => {
                tracing::warn!(%error, %host, "could not mint a certificate");
                return refuse(
                    ProxyError::Policy(PolicyError::BadConnectTarget),
                    &request_id,
                    &shared,
                );
            }
        };
        tokio::spawn(
            intercept(request, host.clone(), TlsAcceptor::from(config), shared)
                .instrument(tracing::info_span!("tunnel", %host)),
        );
        return tunnel_established();
    }
    if host_allowed(&shared.allow_connect, &host) {
        let connect = TcpStream::connect((host.as_str(), port));
        let connected = tokio::time::timeout(shared.connect_timeout, connect)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        match connected {
            Ok(upstream) => {
                tokio::spawn(
                    plain_tunnel(request, upstream)
                        .instrument(tracing::info_span!("tunnel", %host)),
                );
                return tunnel_established();
            }
            Err(error) => {
                tracing::debug!(%error, %host, "CONNECT upstream failed");
                let e = crate::forward::UpstreamError::Connect(error.into());
                return refuse(ProxyError::Upstream(e), &request_id, &shared);
            }
        }
    }
    refuse(
        ProxyError::Policy(PolicyError::ConnectDenied(host)),
        &request_id,
        &shared,
    )
}

fn refuse(error: ProxyError, request_id: &str, shared: &Shared) -> Response<ProxyBody> {
    let status = error.reply().status;
    tracing::info!(%error, request_id, status = status.as_u16(), "CONNECT refused");
    shared
        .proxy
        .metrics()
        .record_request("CONNECT", status.as_u16(), None);
    error.into_response(request_id, false)
}

fn tunnel_established() -> Response<ProxyBody> {
    let mut response = Response::new(crate::body::empty());
    *response.status_mut() = StatusCode::OK;
    response
}

/// The CONNECT target as (lowercase host without brackets, port). HTTP/1.0 CONNECTs without a
/// Host header carry the target in the request line, which is all we read.
fn connect_target(request: &Request<Incoming>) -> Option<(String, u16)> {
    let authority = request.uri().authority()?;
    let port = authority.port_u16()?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    valid.then(|| (host.trim_end_matches('.').to_ascii_lowercase(), port))
}

/// True when `host` matches an `--allow-connect` entry (exact, or `*.suffix`).
pub fn host_allowed(patterns: &[String], host: &str) -> bool {
    patterns.iter().any(|pattern| host_matches(pattern, host))
}

/// Terminates TLS inside the tunnel with a leaf for `host`, then serves any number of requests.
async fn intercept(
    request: Request<Incoming>,
    host: String,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
) {
    let upgraded = match hyper::upgrade::on(request).await {
        Ok(upgraded) => upgraded,
        Err(error) => return tracing::debug!(%error, "CONNECT upgrade failed"),
    };
    match handshake(acceptor.accept(TokioIo::new(upgraded))).await {
        Ok(tls) => serve_http(tls, Arrival::Tunnel { host }, shared).await,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_connect_patterns() {
        let patterns = vec!["sts.amazonaws.com".to_string(), "*.example.com".to_string()];
        assert!(host_allowed(&patterns, "sts.amazonaws.com"));
        assert!(host_allowed(&patterns, "a.example.com"));
        assert!(!host_allowed(&patterns, "example.com"));
        assert!(!host_allowed(&patterns, "evil-example.com"));
        assert!(!host_allowed(&patterns, "sts.amazonaws.com.evil"));
    }
}
