//! The [`Emulator`] handle: start, stop, inspect and steer a running emulator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::tls::{CaPem, CertMinter};
use crate::{server, store, Config, Counters, Fault, Policy, SeenRequest, Sse};

/// A running S3 Express One Zone emulator: HTTPS (h1 and h2), real SigV4 verification, real
/// session enforcement, in-memory buckets and injectable faults. Dropping it (or
/// [`Emulator::shutdown`]) stops the server.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let emu = s3x_emulator::Emulator::start(s3x_emulator::Config::default()).await?;
/// println!("listening on {} with CA\n{}", emu.addr(), emu.ca_pem());
/// emu.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Emulator {
    addr: SocketAddr,
    ca: CaPem,
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
        let ca = match &config.ca {
            Some(ca) => ca.clone(),
            None => CaPem::generate()?,
        };
        let minter = Arc::new(CertMinter::from_ca(&ca)?);
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(minter.server_config()?));
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let header_case = crate::header_case::s3_header_case().await?;
        let state = Arc::new(store::State::new(config, header_case));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, acceptor, state.clone(), stopped));
        Ok(Emulator {
            addr,
            ca,
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
        self.ca.cert_pem.clone()
    }

    /// The CA certificate and key, to save (see [`CaPem::save`]) or pass to the next start.
    pub fn ca(&self) -> CaPem {
        self.ca.clone()
    }

    /// Creates a directory bucket (no-op if it exists).
    pub fn create_bucket(&self, name: &str) {
        self.state
            .buckets()
            .entry(name.to_string())
            .or_insert_with(store::Bucket::new);
    }

    /// Sets a bucket's default encryption (AES256 until set). CreateSession must then ask for
    /// it or for nothing, and its sessions write with it. Panics if the bucket does not exist.
    pub fn set_bucket_encryption(&self, bucket: &str, sse: Sse) {
        let mut buckets = self.state.buckets();
        let b = buckets
            .get_mut(bucket)
            .unwrap_or_else(|| panic!("no bucket {bucket}"));
        b.encryption = sse;
    }

    /// Creates a general-purpose bucket in `region` (no-op if a bucket of that name exists).
    pub fn create_general_purpose_bucket(&self, name: &str, region: &str) {
        self.state
            .buckets()
            .entry(name.to_string())
            .or_insert_with(|| store::Bucket::general_purpose(region));
    }

    /// With `true`, the bucket policy allows only ReadOnly sessions (and no IAM writes); with
    /// `false`, everything. Panics if the bucket does not exist.
    pub fn set_read_only_policy(&self, bucket: &str, read_only: bool) {
        let policy = if read_only {
            Policy::ReadOnly
        } else {
            Policy::ReadWrite
        };
        self.set_bucket_policy(bucket, policy);
    }

    /// Sets what the bucket's policy allows. Panics if the bucket does not exist.
    pub fn set_bucket_policy(&self, bucket: &str, policy: Policy) {
        let mut buckets = self.state.buckets();
        let b = buckets
            .get_mut(bucket)
            .unwrap_or_else(|| panic!("no bucket {bucket}"));
        b.policy = policy;
    }

    /// Rotates the IAM credentials the emulator accepts: from now on only these are valid
    /// (`token` is the `x-amz-security-token` of temporary credentials). Requests with the
    /// previous ones get 400 ExpiredToken when they carried a token (temporary credentials, or
    /// the current key id with a retired token) and 403 InvalidAccessKeyId when they did not.
    /// Sessions created before keep working until they expire.
    pub fn set_iam_credentials(&self, access_key_id: &str, secret: &str, token: Option<&str>) {
        self.state.iam().rotate(crate::credentials::IamKey {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret.to_string(),
            token: token.map(str::to_string),
        });
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

    /// The last requests received, oldest first (at most [`Config::requests_log_limit`]).
    pub fn requests_log(&self) -> Vec<SeenRequest> {
        self.state.seen().entries.iter().cloned().collect()
    }

    /// Forgets the logged requests.
    pub fn clear_requests_log(&self) {
        self.state.seen().entries.clear();
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
        h.extend(o.meta.sse.headers(true));
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

    /// The secrets of every session CreateSession has issued and not forgotten: (session token,
    /// session secret access key). Log tests search for them.
    pub fn session_secrets(&self) -> Vec<(String, String)> {
        self.state
            .sessions()
            .iter()
            .map(|(token, s)| (token.clone(), s.secret_access_key.clone()))
            .collect()
    }

    /// Connections open now: accepted (TLS handshake or not) and not yet closed.
    pub fn open_connections(&self) -> u64 {
        let open = &self.state.connections.open;
        open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections accepted since the emulator started.
    pub fn connections_accepted(&self) -> u64 {
        let accepted = &self.state.connections.accepted;
        accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Closes every open connection at once, whatever it is doing, as S3 closes connections
    /// that sat idle (no TLS close_notify: the TCP connection just ends).
    pub fn cut_connections(&self) {
        self.state.connections.cut.notify_waiters();
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
