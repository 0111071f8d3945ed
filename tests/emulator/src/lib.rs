//! An S3 Express One Zone emulator for testing s3x-proxy: HTTPS (h1 and h2), real SigV4
//! verification, real session enforcement, in-memory directory buckets, and injectable faults.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let emu = s3x_emulator::Emulator::start(s3x_emulator::Config::default()).await?;
//! println!("listening on {} with CA\n{}", emu.addr(), emu.ca_pem());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Life of a request (see `ops.rs`): count it, route it by Host (Zonal
//! `BUCKET.s3express-ZONE.REGION.amazonaws.com` or control plane
//! `s3express-control.REGION.amazonaws.com`), classify the S3 operation, apply injected faults,
//! authenticate (`auth.rs`, `sigv4.rs`), authorise (IAM vs session, bucket binding, ReadOnly
//! mode), read and verify the body (`chunked.rs`), run the operation on the in-memory store.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

mod attributes;
mod auth;
mod body;
mod buckets;
mod chunked;
mod copy;
mod error;
mod faults;
mod list;
mod multipart;
mod objects;
mod ops;
mod range;
mod receive;
mod route;
pub mod sigv4;
mod store;
mod time;
mod tls;
mod xml;

pub use faults::{Fault, Target};

/// How the emulator is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long CreateSession credentials last (S3: 300 s).
    pub session_lifetime: Duration,
    /// The IAM access key id the emulator accepts.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, IAM-signed requests must carry this `x-amz-security-token` (temporary IAM
    /// credentials); when unset, they must carry none.
    pub iam_session_token: Option<String>,
    /// Directory buckets created at start.
    pub buckets: Vec<String>,
    /// Minimum size of every multipart part but the last (S3: 5 MiB).
    pub min_part_size: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            session_lifetime: Duration::from_secs(300),
            access_key_id: "AKIDEMULATOREXAMPLE".into(),
            secret_access_key: "emulator/secret/EXAMPLEKEY".into(),
            iam_session_token: None,
            buckets: Vec::new(),
            min_part_size: 5 * 1024 * 1024,
        }
    }
}

/// A snapshot of what the emulator has seen.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub create_session_read_only: u64,
    pub create_session_read_write: u64,
    /// Every request received.
    pub requests: u64,
    /// Requests rejected for bad or missing authentication: SignatureDoesNotMatch, unsigned
    /// `x-amz-*` headers, wrong kind of credentials for the operation, bad date, ...
    pub signature_failures: u64,
    pub expired_token: u64,
    pub invalid_token: u64,
    /// Every AccessDenied answer, whatever the reason.
    pub access_denied: u64,
    /// SlowDown answers (injected throttling).
    pub slow_down: u64,
    /// The most CreateSession requests ever in flight at once.
    pub max_concurrent_create_session: u64,
    /// Requests by S3 operation name ("GetObject"), counted on arrival.
    pub by_operation: BTreeMap<String, u64>,
    /// The last authenticated kind per operation: "iam", "session-ro", "session-rw" or
    /// "anonymous" (no Authorization header).
    pub auth_by_operation: BTreeMap<String, String>,
    /// Error answers by S3 error code.
    pub errors_by_code: BTreeMap<String, u64>,
}

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops the server.
pub struct Emulator {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<store::State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts an HTTPS server (h1 and h2 by ALPN) on 127.0.0.1 with a random port.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        Emulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Like [`Emulator::start`], on a chosen address. With `S3X_EMULATOR_LOG=1` in the
    /// environment, every request is printed to stderr.
    pub async fn start_on(config: Config, addr: SocketAddr) -> std::io::Result<Emulator> {
        let minter = Arc::new(tls::CertMinter::new()?);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(minter.server_config()?));
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(store::State::new(config));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, acceptor, state.clone(), stopped));
        Ok(Emulator {
            addr,
            ca_pem: minter.ca_pem(),
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the test CA that signs the server certificates.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Creates a directory bucket (no-op if it exists).
    pub fn create_bucket(&self, name: &str) {
        self.state
            .buckets()
            .entry(name.to_string())
            .or_insert_with(store::Bucket::new);
    }

    /// With `true`, the bucket policy allows only ReadOnly sessions (and no IAM writes).
    /// Panics if the bucket does not exist.
    pub fn set_read_only_policy(&self, bucket: &str, read_only: bool) {
        let mut buckets = self.state.buckets();
        let b = buckets
            .get_mut(bucket)
            .unwrap_or_else(|| panic!("no bucket {bucket}"));
        b.read_only_policy = read_only;
    }

    /// Every existing session token answers ExpiredToken from now on.
    pub fn expire_all_sessions(&self) {
        let past = SystemTime::now() - Duration::from_secs(1);
        for s in self.state.sessions().values_mut() {
            s.expires = s.expires.min(past);
        }
    }

    pub fn inject(&self, fault: Fault) {
        self.state.faults().add(fault);
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.state.counters().clone()
    }

    /// Resets every counter to zero.
    pub fn reset_counters(&self) {
        *self.state.counters() = Counters::default();
    }

    /// The stored bytes of an object.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Bytes> {
        let buckets = self.state.buckets();
        Some(buckets.get(bucket)?.objects.get(key)?.data.clone())
    }

    /// The stored headers of an object: content-type and friends, `x-amz-meta-*`,
    /// `x-amz-checksum-*` and SSE headers, plus `etag`.
    pub fn object_headers(&self, bucket: &str, key: &str) -> Option<Vec<(String, String)>> {
        let buckets = self.state.buckets();
        let o = buckets.get(bucket)?.objects.get(key)?;
        let mut h = o.meta.headers.clone();
        h.extend(o.meta.checksums.iter().cloned());
        h.extend(o.meta.sse.iter().cloned());
        h.push(("etag".into(), o.etag.clone()));
        Some(h)
    }

    /// Keys of a bucket, in order.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let buckets = self.state.buckets();
        buckets
            .get(bucket)
            .map(|b| b.objects.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// (key, upload id) of the multipart uploads in progress in a bucket.
    pub fn multipart_uploads(&self, bucket: &str) -> Vec<(String, String)> {
        let buckets = self.state.buckets();
        buckets
            .get(bucket)
            .map(|b| {
                b.uploads
                    .iter()
                    .map(|(id, u)| (u.key.clone(), id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many sessions were ever created and are not yet expired.
    pub fn live_sessions(&self) -> usize {
        let now = SystemTime::now();
        self.state
            .sessions()
            .values()
            .filter(|s| s.expires > now)
            .count()
    }

    /// Stops accepting, lets open connections finish for up to a second, then ends them.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(
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
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                    let Ok(Ok(tls)) = handshake.await else { return };
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(ops::handle(state, req).await) }
                    });
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http2().adaptive_window(true);
                    let conn = builder.serve_connection(TokioIo::new(tls), svc).into_owned();
                    let _ = watcher.watch(conn).await;
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
