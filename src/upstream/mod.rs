//! Upstream: the seam around S3 I/O (the [`Upstream`] trait), its production implementation
//! (always-verified HTTPS over the `egress` connector, on the connections of `pool`, driven by `exchange`),
//! and reading S3's small answers.

pub(crate) mod egress;
pub(crate) mod egress_proxy;
pub(crate) mod exchange;
pub(crate) mod outgoing;
pub(crate) mod pool;
pub(crate) mod rejection;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use prometheus::IntGauge;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::body::{BoxError, ProxyBody};
use crate::logging::chain;
use crate::upstream::egress::Connector;
use crate::upstream::egress_proxy::Egress;
use crate::upstream::exchange::{exchange, ExchangeError};
use crate::upstream::outgoing::outgoing;
use crate::upstream::pool::{Bounds, DialError, Pools};

pub use crate::upstream::egress::ResolveOverrides;

/// A future returned by [`Upstream::send`].
pub type UpstreamFuture =
    Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, UpstreamError>> + Send>>;

/// Sending a signed request to S3. Tests implement this to inject faults without sockets.
pub trait Upstream: Send + Sync + 'static {
    /// Sends one request (absolute `https://` URI, signed) and resolves to S3's response head.
    fn send(&self, request: Request<ProxyBody>) -> UpstreamFuture;

    /// The gauge of open connections to S3 (`s3x_proxy_upstream_connections`), if this
    /// upstream keeps any.
    fn connections(&self) -> Option<IntGauge> {
        None
    }
}

/// The largest S3 answer (XML result or error body) the proxy reads into memory.
pub const MAX_ANSWER_BODY: usize = 64 * 1024;

/// Why a request did not get a (readable) response from S3.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made to `host`; S3 never saw the request.
    #[error("could not connect to S3 at {host}: {}", chain(.source.as_ref()))]
    Connect {
        /// The host dialed, with the address `--resolve` sent it to, if any.
        host: String,
        /// What failed (TCP, DNS, TLS verification…).
        source: BoxError,
    },
    /// S3 did not answer within the deadline; the request may have been seen.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The connection failed while the request was in flight; it may have been seen.
    #[error("request to S3 failed: {}", chain(.0.as_ref()))]
    Request(BoxError),
    /// S3's answer (an error or result document) could not be read.
    #[error("could not read S3's answer: {}", chain(.0.as_ref()))]
    Answer(BoxError),
}

impl UpstreamError {
    /// True when S3 certainly did not see the request, so it is safe to send again.
    pub fn is_not_sent(&self) -> bool {
        matches!(self, UpstreamError::Connect { .. })
    }

    /// The innermost cause, short and free of secrets, for a client's error message.
    pub fn cause(&self) -> String {
        let innermost = |e: &(dyn std::error::Error + 'static)| {
            let mut e = e;
            while let Some(next) = e.source() {
                e = next;
            }
            e.to_string()
        };
        match self {
            UpstreamError::Connect { source, .. } => innermost(source.as_ref()),
            UpstreamError::Timeout(what) => format!("timed out waiting for {what}"),
            UpstreamError::Request(e) | UpstreamError::Answer(e) => innermost(e.as_ref()),
        }
    }
}

/// Reads one of S3's small answers (an XML result or error), refusing anything over
/// [`MAX_ANSWER_BODY`].
pub async fn read_answer(body: ProxyBody) -> Result<bytes::Bytes, UpstreamError> {
    crate::body::collect_limited(body, MAX_ANSWER_BODY)
        .await
        .map_err(UpstreamError::Answer)
}

/// Settings of the upstream client.
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    /// Extra trust roots (PEM files) besides the webpki roots.
    pub extra_roots: Vec<PathBuf>,
    /// Host → address overrides.
    pub resolve: ResolveOverrides,
    /// TCP connect deadline.
    pub connect_timeout: Duration,
    /// The egress proxy upstream connections go through (`--upstream-proxy`, `HTTPS_PROXY`),
    /// with the hosts `NO_PROXY` sends direct.
    pub egress: Option<Egress>,
    /// Deadline for S3's response head once the request is sent.
    pub header_timeout: Duration,
    /// How long an idle pooled connection is kept (`--upstream-idle-timeout`).
    pub idle_timeout: Duration,
    /// Most idle connections per host in each pool (`--upstream-max-idle-per-host`).
    pub max_idle_per_host: usize,
    /// Connection pools: one per worker thread, plus one for everything else (see `workers`).
    pub pools: usize,
}

/// The production upstream: HTTP/1.1 over rustls, always verified, with a pool of connections
/// per worker, each request driving the connection it uses (`pool`, `exchange`).
pub struct HyperUpstream {
    shared: Arc<Shared>,
    connections: IntGauge,
}

/// What every request of a [`HyperUpstream`] needs.
struct Shared {
    pools: Pools,
    header_timeout: Duration,
    resolve: Arc<ResolveOverrides>,
}

/// Errors building the upstream client.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    /// A trust-root file could not be read or parsed.
    #[error("could not load CA certificates from {path}: {reason}")]
    Roots {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

impl HyperUpstream {
    /// Builds the client, loading the trust roots.
    pub fn new(settings: &UpstreamSettings) -> Result<Self, UpstreamSetupError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in &settings.extra_roots {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| UpstreamSetupError::Roots {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(UpstreamSetupError::Roots {
                    path: path.clone(),
                    reason: "no certificates found".into(),
                });
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let resolve = Arc::new(settings.resolve.clone());
        let dialer = Connector::new(
            resolve.clone(),
            settings.egress.clone(),
            Arc::new(tls.clone()),
            settings.connect_timeout,
        );
        let dialer = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(dialer);
        let connections =
            crate::metrics::upstream_connections_gauge().expect("a valid metric name");
        let bounds = Bounds {
            max_idle_per_host: settings.max_idle_per_host,
            idle_timeout: settings.idle_timeout,
        };
        let pools = Pools::new(settings.pools, bounds, dialer, connections.clone());
        let shared = Shared {
            pools,
            header_timeout: settings.header_timeout,
            resolve,
        };
        Ok(Self {
            shared: Arc::new(shared),
            connections,
        })
    }
}

impl Upstream for HyperUpstream {
    fn send(&self, request: Request<ProxyBody>) -> UpstreamFuture {
        let uri = request.uri().clone();
        let (parts, body) = request.into_parts();
        let (body, sent, gate) = outgoing(body);
        let mut request = Request::from_parts(parts, body.boxed_unsync());
        if let Some(gate) = &gate {
            // Added after signing: S3 ignores unsigned standard headers.
            request.headers_mut().insert(
                http::header::EXPECT,
                http::HeaderValue::from_static("100-continue"),
            );
            let on_continue = gate.clone();
            hyper::ext::on_informational(&mut request, move |informational| {
                if informational.status() == http::StatusCode::CONTINUE {
                    on_continue.open();
                }
            });
        }
        let upstream = self.shared.clone();
        Box::pin(async move {
            let response = exchange(&upstream.pools, request);
            // The deadline for S3's answer starts once the request body has been sent.
            let answer_deadline = async {
                let _ = sent.await;
                tokio::time::sleep(upstream.header_timeout).await;
            };
            let result = tokio::select! {
                result = response => result,
                () = answer_deadline => return Err(UpstreamError::Timeout("S3's response headers")),
            };
            if let Some(gate) = gate {
                // S3 answered without asking for the body: it is not sent.
                gate.abort();
            }
            result.map_err(|error| match error {
                ExchangeError::Dial(DialError(source)) => UpstreamError::Connect {
                    host: dialed(&uri, &upstream.resolve),
                    source,
                },
                ExchangeError::Request(e) => UpstreamError::Request(e.into()),
            })
        })
    }

    fn connections(&self) -> Option<IntGauge> {
        Some(self.connections.clone())
    }
}

/// `host:port`, and where `--resolve` sends it (for error messages).
fn dialed(uri: &Uri, resolve: &ResolveOverrides) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(443);
    match resolve.lookup(host) {
        Some(addr) => format!("{host}:{port} (--resolve {addr})"),
        None => format!("{host}:{port}"),
    }
}
