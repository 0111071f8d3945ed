//! Client connections to the proxy in the four ways clients use it (forward-proxy absolute
//! form, path-style endpoint, and HTTP/1.1 or h2 inside an intercepted CONNECT tunnel), the
//! requests each one sends, and reading an answer while checking its bytes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

#[path = "conns.rs"]
mod conns;
pub use conns::{Conns, H2Pool};

pub type Body = BoxBody<Bytes, Infallible>;

/// How a client reaches the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Plain HTTP/1.1, `GET http://BUCKET.s3express-…/key` (HTTP_PROXY).
    Forward,
    /// Plain HTTP/1.1, `GET /BUCKET/key` with the proxy as the endpoint.
    Endpoint,
    /// CONNECT, TLS with the proxy's CA, HTTP/1.1 inside (HTTPS_PROXY).
    TunnelH1,
    /// CONNECT, TLS with the proxy's CA, h2 inside.
    TunnelH2,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Forward,
        Mode::Endpoint,
        Mode::TunnelH1,
        Mode::TunnelH2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Forward => "forward",
            Mode::Endpoint => "endpoint",
            Mode::TunnelH1 => "tunnel-h1",
            Mode::TunnelH2 => "tunnel-h2",
        }
    }

    fn tunnel(self) -> bool {
        matches!(self, Mode::TunnelH1 | Mode::TunnelH2)
    }
}

/// The Zonal host of a bucket named `NAME--ZONE--x-s3`.
pub fn zonal_host(bucket: &str) -> String {
    let zone = bucket.split("--").nth(1).expect("a directory bucket name");
    format!("{bucket}.s3express-{zone}.us-west-2.amazonaws.com")
}

/// Characters percent-encoded in key paths: all but unreserved ones and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

/// A body holding these bytes (its length is known).
pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed()
}

/// A body streamed in 64 KiB frames, declaring no length of its own.
pub fn streamed(bytes: Bytes) -> Body {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = (0..bytes.len())
        .step_by(64 * 1024)
        .map(|at| {
            Ok(Frame::data(
                bytes.slice(at..(at + 64 * 1024).min(bytes.len())),
            ))
        })
        .collect();
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// Where the proxy is and how tunnels trust it.
pub struct Endpoints {
    pub proxy: SocketAddr,
    tls_h1: Arc<rustls::ClientConfig>,
    tls_h2: Arc<rustls::ClientConfig>,
}

impl Endpoints {
    pub fn new(proxy: SocketAddr, ca_pem: &[u8]) -> Endpoints {
        let config = |alpn: &[&[u8]]| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca_pem) {
                roots.add(cert.expect("PEM certificate")).expect("root");
            }
            let mut c = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Arc::new(c)
        };
        Endpoints {
            proxy,
            tls_h1: config(&[b"http/1.1"]),
            tls_h2: config(&[b"h2"]),
        }
    }
}

/// An error and its causes, on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// How a response body was read.
pub struct Read {
    /// The body (kept when no expected bytes were given).
    pub body: Bytes,
    /// Bytes received.
    pub received: usize,
    /// Offset of the first byte that differed from the expected bytes.
    pub mismatch_at: Option<usize>,
    /// The body ended with an error after `received` bytes.
    pub error: Option<String>,
}

/// Reads a body; with `expected`, compares it byte for byte as it arrives instead of keeping
/// it. A per-frame stall longer than `stall` ends the read with an error.
pub async fn read_body(
    mut body: hyper::body::Incoming,
    expected: Option<&Bytes>,
    stall: Duration,
) -> Read {
    let mut kept = BytesMut::new();
    let mut received = 0usize;
    let mut mismatch_at = None;
    loop {
        let frame = match tokio::time::timeout(stall, body.frame()).await {
            Err(_) => {
                let error = format!("no body data for {} s", stall.as_secs());
                return Read {
                    body: kept.freeze(),
                    received,
                    mismatch_at,
                    error: Some(error),
                };
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Read {
                    body: kept.freeze(),
                    received,
                    mismatch_at,
                    error: Some(chain(&e)),
                }
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        match expected {
            Some(want) => {
                if mismatch_at.is_none() {
                    let end = (received + data.len()).min(want.len());
                    let overlap = end.saturating_sub(received);
                    if data[..overlap] != want[received..end] {
                        let at = (0..overlap)
                            .find(|&i| data[i] != want[received + i])
                            .unwrap_or(0);
                        mismatch_at = Some(received + at);
                    } else if overlap < data.len() {
                        mismatch_at = Some(end);
                    }
                }
            }
            None => kept.extend_from_slice(&data),
        }
        received += data.len();
    }
    Read {
        body: kept.freeze(),
        received,
        mismatch_at,
        error: None,
    }
}
