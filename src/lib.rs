//! s3x-proxy: a signing forward proxy that lets unmodified HTTP clients use Amazon S3 Express
//! One Zone directory buckets.
//!
//! # The life of a request
//!
//! Each stage is a folder of `src/` (or, for the small ones, a file), and depends only on the
//! stages below it (`tests/integration/layout.rs` checks that no stage reaches back up):
//!
//! ```text
//! client ─► serve/     accept a connection (plain or TLS, `handshake`; HTTP/1.1 or h2, with
//!                      hyper's settings in `http_settings`) and hand it to the least busy of the
//!                      `workers` (one single-threaded runtime per core, each with its own
//!                      upstream pool), which serves it to the end (`serve`). A CONNECT is
//!                      decided by `connect` and run by `tunnel` (intercept an S3 Express host
//!                      with a leaf `ca` mints, tunnel an --allow-connect host, or refuse);
//!                      requests inside an intercepted tunnel go on like plain ones. Every
//!                      connection holds a slot under --max-connections and is closed when idle
//!                      (`conn`); between requests an idle HTTP/1.1 connection gives hyper's
//!                      buffers back and waits holding only its socket (`keepalive`); both wrap
//!                      the socket with one pass-through (`socket`); freed heap pages go back to
//!                      the system (`memory`)
//!        ─► proxy.rs   runs the stages below for one request, top to bottom
//!        ─► admit/     a header the proxy decides on sent twice is refused (`repeats`); with
//!                      --access-file, who the client is (Basic in forward mode and CONNECT, its
//!                      own SigV4 in endpoint mode, which must cover every x-amz-* header) and
//!                      whether it may touch the bucket and the copy source (`admit`, over
//!                      `identity` and `copy_source`); what a SigV4 says of the body (a SHA-256,
//!                      chunk signatures) is checked as the body streams (`aws_chunked`, which
//!                      also frames bodies with a checksum trailer, and `sign/digest`)
//!        ─► route/     which bucket, upstream host, region and S3 operation, decided once
//!                      (`route`, with the validated `names`, the hosts of `endpoint`, the
//!                      decoded query of `uri`, the operation table of `operation`, and the
//!                      bridges for tools that predate directory buckets in `compat`)
//!        ─► policy.rs  refuse what directory buckets or --session-mode do not allow, and stale
//!                      presigned URLs; pick the credentials: a ReadOnly/ReadWrite session, or IAM
//!        ─► session/   a cached session for (endpoint, mode, SSE headers), created once however
//!                      many requests miss, renewed in the background ahead of expiry (`session`;
//!                      the CreateSession call is `create_session`, IAM keys `credentials`,
//!                      fetched directly from IMDS and the container endpoints,
//!                      `credential_egress`)
//!        ─► sign/      strip the client's auth and hop-by-hop headers, SigV4 with the session and
//!                      x-amz-s3session-token (`sign`: a fast path proved byte-identical to
//!                      aws-sigv4, keys cached per day); the checksum a body carries (`checksum`);
//!                      a Content-MD5 directory buckets refuse becomes a CRC-32 (`content_md5`),
//!                      checked as the body streams (`digest`); bodies held in memory count
//!                      against --max-buffered-bytes (`budget`)
//!        ─► send/      sign each attempt and send it through `upstream/`; again after a connect
//!                      error or, with a fresh session, after ExpiredToken or InvalidToken, when
//!                      the body was kept (`send`); a PutObject of unknown length becomes a
//!                      multipart upload (`unknown_length`); ListObjects (v1) and prefixes not
//!                      ending in `/` on directory buckets are listed page by page and answered
//!                      by the proxy (`listing`)
//!           upstream/  the seam around S3 I/O (`upstream`): HTTPS connections pooled per worker
//!                      (`pool`) and driven by the request itself (`exchange`), dialed by
//!                      `egress` (S3 names only, --resolve, an `egress_proxy`); the body waits
//!                      for 100-continue and the answer has a deadline (`outgoing`); S3's
//!                      refusals are read by `rejection`
//!        ─► respond/   relay S3's answer, count bytes, record metrics (`respond`), and write the
//!                      access line when the body is done (`record`)
//! ```
//!
//! Beside the stages: every error a client can see becomes S3-style XML in one place
//! (`error.rs`), over `xml.rs`, the one module that reads and writes XML; `body/` is the body
//! type every stage streams (with `hooked`, the one skeleton of the bodies that wrap a body);
//! `metrics.rs` holds the metrics, registered on a registry passed in; `workers.rs` runs the
//! per-core runtimes. [`run`] wires everything together; `main.rs` only parses flags
//! (`config.rs`), sets up logging (`logging/`, which redacts every line with `redact` and writes
//! the access line with `access_log`) and calls it; `admin.rs` serves /metrics and the probes.
// One call is allowed `unsafe`: glibc's `malloc_trim` in `serve::memory::trim_heap`.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub(crate) mod admin;
pub mod admit;
pub mod body;
pub mod config;
pub(crate) mod error;
pub mod logging;
pub mod metrics;
pub(crate) mod policy;
pub mod proxy;
pub(crate) mod respond;
pub mod route;
pub(crate) mod send;
pub mod serve;
pub mod session;
pub mod sign;
pub mod upstream;
pub(crate) mod workers;
pub mod xml;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

pub use config::Config;

/// The sockets [`run`] serves, bound by the caller (port 0 in tests).
pub struct Listeners {
    /// The proxy listener (`--listen`).
    pub proxy: TcpListener,
    /// The TLS proxy listener (`--tls-listen`).
    pub tls: Option<TcpListener>,
    /// The admin listener (`--admin-listen`).
    pub admin: Option<TcpListener>,
}

/// Errors that stop the proxy from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The CA could not be loaded or created.
    #[error(transparent)]
    Ca(#[from] serve::ca::CaError),
    /// The upstream client could not be built.
    #[error(transparent)]
    Upstream(#[from] upstream::UpstreamSetupError),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The access file could not be read.
    #[error(transparent)]
    AccessFile(#[from] admit::identity::AccessFileError),
    /// The worker threads could not be started.
    #[error("could not start the worker threads: {0}")]
    Workers(#[from] std::io::Error),
}

/// Runs the proxy on `listeners` until `shutdown` resolves, then drains in-flight requests for
/// up to `config.shutdown_grace`.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let upstream: Arc<dyn upstream::Upstream> =
        Arc::new(upstream::HyperUpstream::new(&config.upstream)?);
    run_with_upstream(config, listeners, upstream, shutdown).await
}

/// [`run`], sending to S3 through `upstream` (tests inject faults here).
pub async fn run_with_upstream(
    config: Config,
    listeners: Listeners,
    upstream: Arc<dyn upstream::Upstream>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let registry = Registry::new();
    let proxy = pipeline(&config, upstream, &registry)?;
    let metrics = proxy.metrics().clone();
    let iam = proxy.credentials().clone();
    let ca = Arc::new(serve::ca::CertificateAuthority::load_or_create(&config.ca_dir).await?);
    let workers = Arc::new(workers::Workers::start(config.workers)?);
    let shared = Arc::new(serve::Shared {
        proxy,
        ca: ca.clone(),
        connect: serve::connect::ConnectPolicy {
            general_purpose: config.route.general_purpose,
            allow: config.allow_connect.clone(),
            connect_timeout: config.upstream.connect_timeout,
        },
        drain: serve::conn::Drain::default(),
        connections: Arc::new(Semaphore::new(config.max_connections)),
        client_idle: config.client_idle_timeout,
        workers: workers.clone(),
        http: serve::http_settings::Http::new(config.client_idle_timeout, config.client_rest_after),
        memory: serve::memory::Trimmer::new(),
    });
    tokio::spawn(shared.memory.clone().run(serve::memory::trim_heap));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let health = admin::Health::default();

    let mut accept_loops = tokio::task::JoinSet::new();
    tracing::info!(addr = %local(&listeners.proxy), ca = %ca.cert_path().display(), "proxy listening");
    accept_loops.spawn(serve::accept_loop(
        listeners.proxy,
        None,
        shared.clone(),
        stop_rx.clone(),
    ));
    if let Some(listener) = listeners.tls {
        let tls = tls_acceptor(&config.tls, &ca)?;
        tracing::info!(addr = %local(&listener), "TLS proxy listening");
        accept_loops.spawn(serve::accept_loop(
            listener,
            Some(tls),
            shared.clone(),
            stop_rx,
        ));
    }
    let admin = listeners.admin.map(|listener| {
        tracing::info!(addr = %local(&listener), "admin listening");
        tokio::spawn(admin::serve(
            listener,
            registry,
            health.clone(),
            admin_stop_rx,
        ))
    });
    tokio::spawn(wait_for_credentials(iam, health.clone()));
    if let (Some(access), Some(path)) = (shared.proxy.access(), config.access_file.clone()) {
        tokio::spawn(reload_access_file(access.clone(), path));
    }

    shutdown.await;
    health.set_draining();
    tracing::info!(grace = ?config.shutdown_grace, "shutting down: no new connections; draining");
    let _ = stop_tx.send(true);
    while accept_loops.join_next().await.is_some() {}
    drain(&shared.drain, config.shutdown_grace, &metrics).await;
    drop(shared);
    workers.stop().await;
    // The admin listener outlives the drain, so probes see /readyz turn 503 meanwhile.
    let _ = admin_stop_tx.send(true);
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    Ok(())
}

/// The request pipeline and everything it needs (session cache, credentials, sender,
/// metrics registered on `registry`), without listeners: tests drive it with
/// [`proxy::Proxy::handle`] on tokio's paused clock.
pub fn pipeline(
    config: &Config,
    upstream: Arc<dyn upstream::Upstream>,
    registry: &Registry,
) -> Result<proxy::Proxy, StartError> {
    let metrics = metrics::Metrics::new(registry, config.metrics_bucket_label)?;
    metrics::register_upstream_connections(registry, upstream.connections())?;
    let iam = Arc::new(session::credentials::IamCredentials::new(
        config.credentials.clone(),
    ));
    let sessions = session::SessionCache::new(
        upstream.clone(),
        iam.clone(),
        metrics.clone(),
        config.session_cache_size,
    );
    let settings = proxy::PipelineSettings {
        route: config.route.clone(),
        session_mode: config.session_mode,
        log_names: config.log_object_names,
        max_buffered_bytes: config.max_buffered_bytes,
        checksum: config.checksum,
        listing: config.listing.clone(),
    };
    let regions = route::endpoint::BucketRegions::default();
    let access = match &config.access_file {
        Some(path) => Some(Arc::new(admit::identity::AccessControl::load(path)?)),
        None => None,
    };
    let sender = send::Sender::new(
        upstream,
        sessions.clone(),
        iam.clone(),
        regions.clone(),
        metrics.clone(),
    );
    let proxy = proxy::Proxy::new(settings, sessions, iam, sender, regions, metrics);
    Ok(proxy.with_access(access))
}

/// The certificate of `--tls-listen`: the operator's files, or one our CA mints.
fn tls_acceptor(
    source: &config::TlsSource,
    ca: &serve::ca::CertificateAuthority,
) -> Result<TlsAcceptor, serve::ca::CaError> {
    let config = match source {
        config::TlsSource::Files { cert, key } => serve::ca::server_config_from_files(cert, key)?,
        config::TlsSource::Minted(names) => ca.server_config_for_names(names)?,
    };
    Ok(TlsAcceptor::from(config))
}

fn local(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// Asks every connection to finish, waits for them up to `grace`, and says what was cut. The
/// counts are client connections, tunnels included; uninspected `--allow-connect` tunnels cannot
/// be asked to finish, so the drain does not wait for them.
async fn drain(drain: &serve::conn::Drain, grace: Duration, metrics: &metrics::Metrics) {
    let open = metrics.connections_active.get();
    let finished = tokio::time::timeout(grace, drain.run()).await.is_ok();
    let cut = metrics.connections_active.get();
    if !finished {
        tracing::warn!(grace = ?grace, cut, "shutdown grace ran out; cutting the connections still open");
    } else if cut > 0 {
        tracing::info!(
            connections = open,
            cut,
            "drained; cutting the tunnels still open"
        );
    } else {
        tracing::info!(connections = open, "drained; exiting");
    }
}

/// How often the access file is checked for changes (a Kubernetes Secret volume is updated in
/// place by the kubelet; no one can send SIGHUP into a shell-less container).
const ACCESS_FILE_POLL: Duration = Duration::from_secs(10);

/// Reloads the access file on SIGHUP, and when it changes on disk; a file that does not parse
/// is logged and the old one kept. Requests in flight keep the list they started with; open
/// tunnels see the new one from their next request on.
async fn reload_access_file(access: Arc<admit::identity::AccessControl>, path: std::path::PathBuf) {
    let stamp = |path: &std::path::Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = stamp(&path);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let mut hangup: Option<std::future::Pending<()>> = None;
    let mut poll = tokio::time::interval(ACCESS_FILE_POLL);
    poll.tick().await;
    loop {
        let signalled = async {
            match hangup.as_mut() {
                #[cfg(unix)]
                Some(signals) => signals.recv().await,
                #[cfg(not(unix))]
                Some(_) => None,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = poll.tick() => {
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
            }
            _ = signalled => {}
        }
        match access.reload(&path) {
            Ok(()) => tracing::info!(
                path = %path.display(),
                clients = access.list().len(),
                "reloaded the access file"
            ),
            Err(error) => {
                tracing::warn!(%error, "the access file did not load; keeping the old one")
            }
        }
    }
}

/// Marks the proxy ready once IAM credentials resolve; until then `/readyz` says why not. The
/// cache backs off between failed loads (and logs a cause once), so this just follows it.
async fn wait_for_credentials(
    iam: Arc<session::credentials::IamCredentials>,
    health: admin::Health,
) {
    loop {
        match iam.get().await {
            Ok(_) => return health.set_credentials_ok(),
            Err(error) => health.set_credentials_error(&error.reason),
        }
        let retry = iam
            .retry_at()
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1));
        tokio::time::sleep_until(retry).await;
    }
}
