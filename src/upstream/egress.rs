//! Egress: how the proxy's own connections to S3 leave this machine. The guard that dials only
//! AWS S3 names, `--resolve`, and an egress proxy (`--upstream-proxy`, `HTTPS_PROXY`,
//! `NO_PROXY`, parsed by `egress_proxy`) reached with HTTP CONNECT, under which TLS to S3 runs
//! as it would directly.
//!
//! The egress proxy's address and credentials appear in no log line and no client message:
//! errors say "the egress proxy", and the URL displays with its userinfo redacted.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{StatusCode, Uri};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::route::endpoint::AwsHost;
use crate::route::names::host_matches;
use crate::upstream::egress_proxy::{Egress, EgressProxy};

/// `--resolve HOST=IP:PORT` entries: exact hosts, or `*.suffix` wildcards. The most specific
/// entry wins: an exact host, else the longest matching suffix.
#[derive(Clone, Debug, Default)]
pub struct ResolveOverrides(Vec<(String, SocketAddr)>);

impl ResolveOverrides {
    /// Builds the table from `(pattern, address)` pairs.
    pub fn new(entries: Vec<(String, SocketAddr)>) -> Self {
        Self(entries)
    }

    /// Where to connect for `host`, if an entry matches.
    pub fn lookup(&self, host: &str) -> Option<SocketAddr> {
        self.0
            .iter()
            .filter(|(pattern, _)| host_matches(pattern, host))
            .max_by_key(|(pattern, _)| (!pattern.starts_with("*."), pattern.len()))
            .map(|(_, addr)| *addr)
    }
}

/// The largest answer head an egress proxy may send to CONNECT.
pub const MAX_CONNECT_ANSWER: usize = 8 * 1024;

/// Why a connection through the egress proxy failed. The messages name "the egress proxy",
/// never its address or credentials, and carry their cause in the text (so the innermost error
/// a client is shown still says where it failed).
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The egress proxy could not be reached (DNS, TCP).
    #[error("could not reach the egress proxy: {0}")]
    Unreachable(String),
    /// TLS with an `https://` egress proxy failed.
    #[error("TLS with the egress proxy failed: {0}")]
    Tls(&'static str),
    /// The connection to the egress proxy broke during CONNECT.
    #[error("the connection to the egress proxy failed during CONNECT: {0}")]
    Io(io::Error),
    /// The egress proxy answered CONNECT with a status other than 2xx.
    #[error("the egress proxy refused the tunnel: {} {}", .0.as_u16(), .0.canonical_reason().unwrap_or(""))]
    Refused(StatusCode),
    /// The egress proxy's answer could not be read.
    #[error("the egress proxy's answer to CONNECT {0}")]
    BadAnswer(&'static str),
    /// Connecting through the egress proxy took longer than `--connect-timeout`.
    #[error("connecting through the egress proxy timed out")]
    TimedOut,
}

impl From<EgressError> for io::Error {
    fn from(error: EgressError) -> Self {
        let kind = match &error {
            EgressError::TimedOut => io::ErrorKind::TimedOut,
            EgressError::Refused(_) => io::ErrorKind::ConnectionRefused,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// Opens the tunnel: sends `CONNECT host:port` (with `Proxy-Authorization` when the proxy has
/// credentials) and reads a 2xx answer, leaving `stream` at the first byte of the tunnel.
pub async fn connect_tunnel<S>(
    stream: &mut S,
    proxy: &EgressProxy,
    host: &str,
    port: u16,
) -> Result<(), EgressError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some(authorization) = &proxy.authorization {
        head.push_str("Proxy-Authorization: ");
        head.push_str(authorization);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(EgressError::Io)?;
    stream.flush().await.map_err(EgressError::Io)?;
    read_connect_answer(stream).await
}

/// Reads the answer head (at most [`MAX_CONNECT_ANSWER`] bytes): Ok for 2xx. A 2xx followed by
/// bytes is refused too: the server speaks only after our TLS ClientHello.
async fn read_connect_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(), EgressError> {
    let mut head = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(EgressError::Io)?;
        if n == 0 {
            return Err(EgressError::BadAnswer("ended before its head did"));
        }
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        let end = head[searched_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| searched_from + i + 4);
        if let Some(end) = end.filter(|end| *end <= MAX_CONNECT_ANSWER) {
            let status = status_of(&head[..end])?;
            if !status.is_success() {
                return Err(EgressError::Refused(status));
            }
            if end < head.len() {
                return Err(EgressError::BadAnswer("had bytes after its head"));
            }
            return Ok(());
        }
        if head.len() >= MAX_CONNECT_ANSWER {
            return Err(EgressError::BadAnswer("had a head over 8 KiB"));
        }
    }
}

/// The status of `HTTP/1.x NNN reason`.
fn status_of(head: &[u8]) -> Result<StatusCode, EgressError> {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.splitn(3, |b| *b == b' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with(b"HTTP/1.") || code.len() != 3 {
        return Err(EgressError::BadAnswer("was not HTTP/1.x"));
    }
    StatusCode::from_bytes(code).map_err(|_| EgressError::BadAnswer("had no valid status"))
}

/// The stream a connection to S3 runs TLS over: TCP, direct or tunnelled through an `http://`
/// egress proxy, or TLS to an `https://` egress proxy.
pub type Dialed = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The TCP connector under hyper-rustls: the S3-only guard, `--resolve`, the egress proxy, and
/// a connect deadline over all of it (DNS, TCP, TLS to the proxy, CONNECT).
#[derive(Clone)]
pub struct Connector {
    resolve: Arc<ResolveOverrides>,
    egress: Option<Arc<Egress>>,
    /// TLS to an `https://` egress proxy (the upstream roots, no ALPN).
    proxy_tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
}

impl Connector {
    /// A connector; `tls` verifies an `https://` egress proxy (TLS to S3 is hyper-rustls's).
    pub fn new(
        resolve: Arc<ResolveOverrides>,
        egress: Option<Egress>,
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
    ) -> Self {
        if let Some(egress) = &egress {
            tracing::info!(
                source = egress.source,
                credentials = egress.proxy.has_credentials(),
                no_proxy_rules = egress.no_proxy.len(),
                "upstream connections to S3 go through an egress proxy"
            );
        }
        Self {
            resolve,
            egress: egress.map(Arc::new),
            proxy_tls: tokio_rustls::TlsConnector::from(tls),
            connect_timeout,
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = Dialed;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Dialed>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.dial(uri).await })
    }
}

impl Connector {
    async fn dial(self, uri: Uri) -> io::Result<Dialed> {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI has no host"))?
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let overridden = self.resolve.lookup(&host);
        if overridden.is_none() && (!AwsHost::is_s3(&host) || port != 443) {
            // Hosts are rebuilt from validated parts, so this never happens; but the
            // credentials the request carries must reach nothing but AWS S3.
            let why = format!("{host}:{port} is not an AWS S3 endpoint");
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
        let proxy = match overridden {
            Some(_) => None,
            None => self
                .egress
                .as_deref()
                .and_then(|e| e.proxy_for(&host, port)),
        };
        let deadline = self.connect_timeout;
        match proxy {
            Some(proxy) => tokio::time::timeout(deadline, self.through(proxy, &host, port))
                .await
                .map_err(|_| EgressError::TimedOut)?
                .map_err(io::Error::from),
            None => tokio::time::timeout(deadline, direct(&host, port, overridden))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
                .map(|tcp| MaybeHttpsStream::Http(TokioIo::new(tcp))),
        }
    }

    /// A tunnel to `host:port` through the egress proxy.
    async fn through(
        &self,
        proxy: &EgressProxy,
        host: &str,
        port: u16,
    ) -> Result<Dialed, EgressError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|e| EgressError::Unreachable(e.to_string()))?
            .collect();
        // The error leaves out the address: it is the egress proxy's.
        let mut tcp = tcp_to(&addrs)
            .await
            .map_err(|(_, e)| EgressError::Unreachable(e.to_string()))?;
        if !proxy.tls {
            connect_tunnel(&mut tcp, proxy, host, port).await?;
            return Ok(MaybeHttpsStream::Http(TokioIo::new(tcp)));
        }
        let name = ServerName::try_from(proxy.host.clone())
            .map_err(|_| EgressError::Tls("its host is not a valid TLS name"))?;
        let mut tls = self
            .proxy_tls
            .connect(name, TokioIo::new(TokioIo::new(tcp)))
            .await
            .map_err(|e| EgressError::Tls(tls_failure(&e)))?;
        connect_tunnel(&mut tls, proxy, host, port).await?;
        Ok(MaybeHttpsStream::Https(TokioIo::new(tls)))
    }
}

/// What went wrong in TLS with the egress proxy, without rustls's text (which names the
/// proxy's host).
fn tls_failure(error: &io::Error) -> &'static str {
    use rustls::CertificateError as C;
    let rustls_error = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "its certificate is not valid for its name"
            }
            C::UnknownIssuer => "its certificate's issuer is not trusted (see --upstream-ca)",
            C::Expired | C::ExpiredContext { .. } => "its certificate has expired",
            _ => "its certificate was refused",
        },
        Some(_) => "the handshake failed",
        None => "the connection broke during the handshake",
    }
}

/// TCP to `host:port` (or the `--resolve` address) without a proxy; an error names the S3
/// address that refused.
async fn direct(host: &str, port: u16, overridden: Option<SocketAddr>) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match overridden {
        Some(addr) => vec![addr],
        None => tokio::net::lookup_host((host, port)).await?.collect(),
    };
    tcp_to(&addrs)
        .await
        .map_err(|(addr, e)| io::Error::new(e.kind(), format!("{addr}: {e}")))
}

/// The first of `addrs` that accepts, with `TCP_NODELAY`; else the last address tried and why.
async fn tcp_to(addrs: &[SocketAddr]) -> Result<TcpStream, (String, io::Error)> {
    let mut last = (
        String::from("no address"),
        io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    );
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream
                    .set_nodelay(true)
                    .map_err(|e| (addr.to_string(), e))?;
                return Ok(stream);
            }
            Err(e) => last = (addr.to_string(), e),
        }
    }
    Err(last)
}

#[cfg(test)]
#[path = "egress_tests.rs"]
mod tests;
