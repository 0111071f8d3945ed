//! Starts the emulator and the real proxy (via `s3x_proxy::run`) on port 0, and talks to them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use s3x_emulator::{Config as EmulatorConfig, Emulator};
use s3x_proxy::config::Cli;
use s3x_proxy::{Config, Listeners};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub const BUCKET: &str = "demo--usw2-az1--x-s3";
pub const RO_BUCKET: &str = "readonly--usw2-az1--x-s3";
pub const OTHER_BUCKET: &str = "other--use1-az4--x-s3";
/// A general-purpose bucket in us-west-2 (the proxy's --region).
pub const GP_BUCKET: &str = "gp-west-data";
/// A general-purpose bucket in eu-west-1: its region must be discovered.
pub const GP_EUROPE: &str = "gp-europe-data";
/// A general-purpose bucket with dots (path-style upstream).
pub const GP_DOTTED: &str = "gp.dotted.data";

/// The Zonal host of a bucket in the test zones.
pub fn zonal_host(bucket: &str) -> String {
    let zone = bucket
        .trim_end_matches("--x-s3")
        .rsplit("--")
        .next()
        .unwrap();
    let region = if zone.starts_with("use1") {
        "us-east-1"
    } else {
        "us-west-2"
    };
    format!("{bucket}.s3express-{zone}.{region}.amazonaws.com")
}

#[derive(Clone)]
pub struct Options {
    pub session_lifetime: Duration,
    pub extra_args: Vec<String>,
    pub tls_listener: bool,
    pub min_part_size: u64,
    /// Pass `--upstream-ca` with the emulator's CA (the proxy must verify upstream TLS).
    pub trust_emulator: bool,
    /// Where the proxy's IAM credentials come from (default: the emulator's static keys).
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    /// Pass `--resolve '*.amazonaws.com=EMULATOR'`; without it upstream names resolve as in
    /// production (the egress tests route them through a CONNECT proxy instead).
    pub resolve: bool,
    /// Changes the proxy's configuration before it starts (settings without a flag).
    pub tweak: Option<fn(&mut Config)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            session_lifetime: Duration::from_secs(300),
            extra_args: Vec::new(),
            tls_listener: false,
            min_part_size: 5 * 1024 * 1024,
            trust_emulator: true,
            credentials: None,
            resolve: true,
            tweak: None,
        }
    }
}

pub struct Harness {
    pub emulator: Emulator,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub tls: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    options: Options,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

impl Harness {
    pub async fn start(options: Options) -> Harness {
        init();
        let emulator = Emulator::start(EmulatorConfig {
            session_lifetime: options.session_lifetime,
            buckets: vec![BUCKET.into(), RO_BUCKET.into(), OTHER_BUCKET.into()],
            general_purpose_buckets: vec![
                (GP_BUCKET.into(), "us-west-2".into()),
                (GP_EUROPE.into(), "eu-west-1".into()),
                (GP_DOTTED.into(), "us-west-2".into()),
            ],
            min_part_size: options.min_part_size,
            ..EmulatorConfig::default()
        })
        .await
        .expect("emulator starts");
        emulator.set_read_only_policy(RO_BUCKET, true);
        let dir = tempfile::tempdir().unwrap();
        let mut harness = Harness {
            emulator,
            proxy: ([127, 0, 0, 1], 0).into(),
            admin: ([127, 0, 0, 1], 0).into(),
            tls: None,
            dir,
            options,
            stop: None,
            task: None,
        };
        harness.start_proxy().await;
        harness
    }

    /// Stops the proxy and starts a new one (same options, same emulator): nothing it kept in
    /// memory survives. The listeners get new ports.
    pub async fn restart_proxy(&mut self) {
        self.stop_proxy().await;
        self.start_proxy().await;
    }

    /// Starts the proxy (`s3x_proxy::run` on a task) against the emulator.
    async fn start_proxy(&mut self) {
        let (emulator, dir, options) = (&self.emulator, &self.dir, &self.options);
        let emulator_ca = dir.path().join("emulator-ca.pem");
        std::fs::write(&emulator_ca, emulator.ca_pem()).unwrap();
        let mut argv: Vec<String> = vec![
            "s3x-proxy".into(),
            "--ca-dir".into(),
            dir.path().join("ca").display().to_string(),
            "--region".into(),
            "us-west-2".into(),
            "--shutdown-grace".into(),
            "5s".into(),
        ];
        if options.resolve {
            argv.extend([
                "--resolve".into(),
                format!("*.amazonaws.com={}", emulator.addr()),
            ]);
        }
        if options.trust_emulator {
            argv.extend(["--upstream-ca".into(), emulator_ca.display().to_string()]);
        }
        argv.extend(options.extra_args.iter().cloned());
        let mut cli = Cli::try_parse_from_args(argv);
        // The machine exports AWS_CA_BUNDLE globally: the proxy under test must not see it.
        cli.args.aws_ca_bundle = None;
        let creds = aws_credential_types::Credentials::new(
            "AKIDEMULATOREXAMPLE",
            "emulator/secret/EXAMPLEKEY",
            None,
            None,
            "test",
        );
        let provider = options.credentials.clone().unwrap_or_else(|| {
            aws_credential_types::provider::SharedCredentialsProvider::new(creds)
        });
        let mut config = Config::from_args(&cli.args, provider).expect("valid config");
        if let Some(tweak) = options.tweak {
            tweak(&mut config);
        }
        let proxy_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_listener = if options.tls_listener {
            Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
        } else {
            None
        };
        let proxy = proxy_listener.local_addr().unwrap();
        let admin = admin_listener.local_addr().unwrap();
        let tls = tls_listener.as_ref().map(|l| l.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            proxy: proxy_listener,
            tls: tls_listener,
            admin: Some(admin_listener),
        };
        let task = tokio::spawn(async move {
            s3x_proxy::run(config, listeners, async {
                let _ = stopped.await;
            })
            .await
            .expect("proxy runs");
        });
        (self.proxy, self.admin, self.tls) = (proxy, admin, tls);
        (self.stop, self.task) = (Some(stop), Some(task));
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// Path of the proxy's CA certificate (exists once the proxy has started).
    pub async fn proxy_ca(&self) -> PathBuf {
        let path = self.ca_dir().join("ca.pem");
        eventually(WAIT, || async { path.exists() }).await;
        path
    }

    /// Sends one request on a fresh HTTP/1.1 connection to the proxy listener. `target` is an
    /// absolute URI (forward-proxy form) or a path (endpoint mode, with `host`).
    pub async fn send(
        &self,
        method: Method,
        target: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        send_http1(self.proxy, method, target, host, headers, body.into()).await
    }

    /// PUTs `body` to BUCKET/`key` with no Content-Length (HTTP/1.1 chunked), in frames of
    /// `frame` bytes, on a connection of its own: the proxy sends it as a multipart upload.
    pub async fn put_unknown_length(&self, key: &str, body: &Bytes, frame: usize) -> Reply {
        let host = zonal_host(BUCKET);
        let frames: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> = body
            .chunks(frame)
            .map(|c| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("http://{host}/{key}"))
            .header("host", &host)
            .body(http_body_util::StreamBody::new(futures_util::stream::iter(
                frames,
            )))
            .unwrap();
        send_on_new_connection(self.proxy, request).await
    }

    /// A forward-proxy request to `bucket`'s Zonal host.
    pub async fn forward(
        &self,
        method: Method,
        bucket: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let host = zonal_host(bucket);
        let uri = format!("http://{host}{path_and_query}");
        self.send(method, &uri, &host, headers, body).await
    }

    /// An endpoint-mode, path-style request (`--endpoint-url http://127.0.0.1:PORT`).
    pub async fn endpoint(
        &self,
        method: Method,
        bucket: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let target = format!("/{bucket}{path_and_query}");
        let host = self.proxy.to_string();
        self.send(method, &target, &host, headers, body).await
    }

    pub async fn metrics(&self) -> String {
        let reply = send_http1(
            self.admin,
            Method::GET,
            "/metrics",
            &self.admin.to_string(),
            &[],
            Bytes::new(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        reply.text()
    }

    pub async fn stop(mut self) {
        self.stop_proxy().await;
    }

    async fn stop_proxy(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("proxy stops within its grace")
                .unwrap();
        }
    }
}

trait ParseArgs {
    fn try_parse_from_args(argv: Vec<String>) -> Cli;
}

impl ParseArgs for Cli {
    fn try_parse_from_args(argv: Vec<String>) -> Cli {
        <Cli as clap::Parser>::try_parse_from(argv).expect("valid flags")
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 XML error body.
    pub fn code(&self) -> String {
        let text = self.text();
        let start = text.find("<Code>").map(|i| i + 6).unwrap_or(0);
        let end = text.find("</Code>").unwrap_or(start);
        text[start..end].to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send_http1(
    addr: SocketAddr,
    method: Method,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .header("host", host);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(body)).unwrap();
    send_on_new_connection(addr, request).await
}

/// Sends `request` on a new HTTP/1.1 connection to `addr` and reads the whole answer.
pub async fn send_on_new_connection<B>(addr: SocketAddr, request: Request<B>) -> Reply
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect to proxy");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A request body fed frame by frame through a channel: the client sends what the test hands
/// it, when the test says, and holds the body open until the sender is dropped.
pub fn channel_body() -> (
    tokio::sync::mpsc::Sender<Bytes>,
    impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> + Send + 'static,
) {
    let (sender, frames) = tokio::sync::mpsc::channel::<Bytes>(1);
    let frames = futures_util::stream::unfold(frames, |mut frames| async move {
        let data = frames.recv().await?;
        Some((Ok(http_body::Frame::data(data)), frames))
    });
    (sender, http_body_util::StreamBody::new(frames))
}

/// Deterministic test data.
pub fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A metric's value from Prometheus text, summing every series whose labels contain `labels`.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Asserts that a metric (summed over the series whose labels contain `labels`) has `expected`.
#[track_caller]
pub fn assert_metric(text: &str, name: &str, labels: &[(&str, &str)], expected: f64) {
    let value = metric(text, name, labels);
    assert!(
        value == expected,
        "{name}{labels:?} is {value}, expected {expected}; the exposition:\n{text}"
    );
}

/// Now, as a presigned URL's `X-Amz-Date` writes it (`20240101T000000Z`).
pub fn presign_date() -> String {
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let text = now
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let basic: String = text.chars().filter(|c| *c != '-' && *c != ':').collect();
    // Drop fractional seconds if any: YYYYMMDDTHHMMSS + Z.
    format!("{}Z", &basic[..15])
}

/// How long a test waits for something another task or process does (a log line, a gauge, a
/// file): generous, as the machine may be loaded; a wait that holds returns as soon as it does.
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds or `within` has passed, and says whether it held: for
/// waiting on what another task or process does after the client already has its answer (a log
/// line, the emulator's record of a cut upload). No test depends on how long that takes. This is
/// the one poll loop of the tests: every wait for an event without a channel to wait on goes
/// through it.
pub async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        // The poll interval (the one in the tests), not a wait for anything: the loop ends on
        // the condition or the deadline.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
