//! A worker's connections to the proxy: plain HTTP/1.1, or a CONNECT tunnel with TLS inside
//! (HTTP/1.1 per worker, h2 shared by the h2 workers), opened on demand, rotated now and then.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{chain, zonal_host, Body, Endpoints, Mode};

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

/// One open connection and how it has been used.
struct Open {
    sender: Sender,
    uses: u32,
    /// The last exchange ended cleanly, with no `Connection: close`.
    clean: bool,
}

/// h2 tunnels shared by the h2 workers: one per bucket host, so two clients' streams are
/// multiplexed on it at once.
#[derive(Clone, Default)]
pub struct H2Pool(Arc<std::sync::Mutex<HashMap<String, Shared2>>>);

struct Shared2 {
    sender: hyper::client::conn::http2::SendRequest<Body>,
    uses: u32,
}

impl H2Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Shared2>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker's connections: one for plain modes, one tunnel per bucket host otherwise (shared
/// with the other h2 workers in h2 mode).
pub struct Conns {
    pub mode: Mode,
    endpoints: Arc<Endpoints>,
    open: HashMap<String, Open>,
    h2: H2Pool,
    /// Connections (or tunnels) opened so far.
    pub opened: u64,
    /// Requests after which a connection is replaced, to exercise accept, CONNECT and
    /// handshakes throughout the run.
    pub rotate_after: u32,
}

/// A response head, or why there was none.
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: hyper::body::Incoming,
}

impl Conns {
    pub fn new(mode: Mode, endpoints: Arc<Endpoints>, h2: H2Pool, rotate_after: u32) -> Conns {
        Conns {
            mode,
            endpoints,
            open: HashMap::new(),
            h2,
            opened: 0,
            rotate_after,
        }
    }

    /// The request line and headers for `bucket` and an encoded `path` (`/key`, or `/` for the
    /// bucket) in this mode, plus `?query`.
    pub fn request(&self, method: Method, bucket: &str, path: &str, query: &str) -> Request<()> {
        let host = zonal_host(bucket);
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let (uri, host_header) = match self.mode {
            Mode::Forward => (format!("http://{host}{path}{q}"), Some(host)),
            Mode::Endpoint => {
                let path = if path == "/" { "" } else { path };
                let proxy = self.endpoints.proxy.to_string();
                (format!("/{bucket}{path}{q}"), Some(proxy))
            }
            Mode::TunnelH1 => (format!("{path}{q}"), Some(host)),
            Mode::TunnelH2 => (format!("https://{host}{path}{q}"), None),
        };
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(h) = host_header {
            builder = builder.header("host", h);
        }
        builder.body(()).expect("a valid request")
    }

    fn slot(&self, bucket: &str) -> String {
        if self.mode.tunnel() {
            zonal_host(bucket)
        } else {
            String::new()
        }
    }

    /// Forgets the connection used for `bucket` (after a hang, or to rotate it).
    pub fn discard(&mut self, bucket: &str) {
        let slot = self.slot(bucket);
        self.open.remove(&slot);
        if self.mode == Mode::TunnelH2 {
            self.h2.lock().remove(&slot);
        }
    }

    /// After an error answer or a failed body: an HTTP/1.1 connection is dropped; a shared
    /// h2 tunnel is kept, since one failed stream must not take the others with it.
    pub fn after_error(&mut self, bucket: &str) {
        if self.mode != Mode::TunnelH2 {
            self.discard(bucket);
        }
    }

    pub fn close_all(&mut self) {
        self.open.clear();
        self.h2.lock().clear();
    }

    /// Sends a request on the connection for `bucket`, opening one if needed. A connection
    /// whose last exchange was clean but that cannot take another request counts as
    /// `closed_idle` (the caller decides what that means) and is replaced; so does a shared
    /// h2 tunnel that is found closed.
    pub async fn send(
        &mut self,
        bucket: &str,
        request: Request<Body>,
        closed_idle: &mut u64,
    ) -> Result<Head, String> {
        if self.mode == Mode::TunnelH2 {
            return self.send_h2(bucket, request, closed_idle).await;
        }
        let slot = self.slot(bucket);
        if let Some(open) = self.open.get_mut(&slot) {
            let ready = match &mut open.sender {
                Sender::H1(s) => s.ready().await.is_ok(),
                Sender::H2(s) => s.ready().await.is_ok(),
            };
            if !ready {
                if open.clean {
                    *closed_idle += 1;
                }
                self.open.remove(&slot);
            }
        }
        if !self.open.contains_key(&slot) {
            let sender = self.connect(bucket).await?;
            self.opened += 1;
            self.open.insert(
                slot.clone(),
                Open {
                    sender,
                    uses: 0,
                    clean: true,
                },
            );
        }
        let open = self.open.get_mut(&slot).expect("just opened");
        open.uses += 1;
        open.clean = false;
        let sent = match &mut open.sender {
            Sender::H1(s) => s.send_request(request).await,
            Sender::H2(s) => s.send_request(request).await,
        };
        match sent {
            Ok(response) => Ok(head(response)),
            Err(e) => {
                self.open.remove(&slot);
                Err(format!("sending the request failed: {}", chain(&e)))
            }
        }
    }

    async fn send_h2(
        &mut self,
        bucket: &str,
        request: Request<Body>,
        closed_idle: &mut u64,
    ) -> Result<Head, String> {
        let slot = self.slot(bucket);
        let rotate = self.rotate_after;
        let pooled = {
            let mut pool = self.h2.lock();
            let entry = pool.get_mut(&slot);
            entry.map(|e| {
                e.uses += 1;
                (e.sender.clone(), e.uses >= rotate)
            })
        };
        let mut sender = match pooled {
            Some((mut sender, rotate)) => {
                if rotate {
                    // Later requests open a new tunnel; this one still uses the old one.
                    self.h2.lock().remove(&slot);
                }
                if sender.ready().await.is_ok() {
                    Some(sender)
                } else {
                    *closed_idle += 1;
                    self.h2.lock().remove(&slot);
                    None
                }
            }
            None => None,
        };
        if sender.is_none() {
            let Sender::H2(fresh) = self.connect(bucket).await? else {
                unreachable!("an h2 tunnel speaks h2");
            };
            self.opened += 1;
            let shared = Shared2 {
                sender: fresh.clone(),
                uses: 1,
            };
            self.h2.lock().insert(slot.clone(), shared);
            sender = Some(fresh);
        }
        let mut sender = sender.expect("a sender");
        match sender.send_request(request).await {
            Ok(response) => Ok(head(response)),
            Err(e) => Err(format!("sending the request failed: {}", chain(&e))),
        }
    }

    /// Marks the exchange on `bucket`'s connection as cleanly finished; rotates it when due.
    pub fn finished_cleanly(&mut self, bucket: &str, connection_close: bool) {
        let slot = self.slot(bucket);
        let rotate = self.rotate_after;
        if let Some(open) = self.open.get_mut(&slot) {
            open.clean = !connection_close;
            if connection_close || open.uses >= rotate {
                self.open.remove(&slot);
            }
        }
    }

    async fn connect(&self, bucket: &str) -> Result<Sender, String> {
        let tcp = TcpStream::connect(self.endpoints.proxy)
            .await
            .map_err(|e| format!("TCP connect to the proxy failed: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if !self.mode.tunnel() {
            return h1(tcp).await;
        }
        let host = zonal_host(bucket);
        let tcp = connect_tunnel(tcp, &host).await?;
        let config = match self.mode {
            Mode::TunnelH2 => &self.endpoints.tls_h2,
            _ => &self.endpoints.tls_h1,
        };
        let name = ServerName::try_from(host.clone()).expect("DNS name");
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake inside the tunnel to {host} failed: {e}"))?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        match (self.mode, alpn.as_deref()) {
            (Mode::TunnelH2, Some(b"h2")) => h2(tls).await,
            (Mode::TunnelH1, Some(b"http/1.1") | None) => h1(tls).await,
            (mode, alpn) => Err(format!(
                "ALPN chose {:?} for a {} tunnel",
                alpn.map(String::from_utf8_lossy),
                mode.name()
            )),
        }
    }
}

async fn h1<I>(io: I) -> Result<Sender, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP/1.1 handshake failed: {e}"))?;
    tokio::spawn(conn);
    Ok(Sender::H1(sender))
}

async fn h2<I>(io: I) -> Result<Sender, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| format!("h2 handshake failed: {e}"))?;
    tokio::spawn(conn);
    Ok(Sender::H2(sender))
}

/// `CONNECT host:443` and the proxy's `200`.
async fn connect_tunnel(mut tcp: TcpStream, host: &str) -> Result<TcpStream, String> {
    let connect = format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n");
    tcp.write_all(connect.as_bytes())
        .await
        .map_err(|e| format!("writing CONNECT failed: {e}"))?;
    // The proxy says nothing after its answer until the client speaks TLS.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading the CONNECT answer failed: {e}"))?;
        if n == 0 {
            return Err("the proxy closed the connection after CONNECT".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "CONNECT answered {}",
            String::from_utf8_lossy(&head).trim()
        ));
    }
    Ok(tcp)
}

fn head(response: http::Response<hyper::body::Incoming>) -> Head {
    let (parts, body) = response.into_parts();
    Head {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}
