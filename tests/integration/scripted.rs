//! A scripted S3 Express behind the `Upstream` seam, and the real pipeline
//! (`s3x_proxy::pipeline`) in front of it: driven without sockets, on tokio's paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::{DateTime, Format};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use prometheus::Registry;
use s3x_proxy::admit::Arrival;
use s3x_proxy::body::{empty, full, ProxyBody};
use s3x_proxy::config::Cli;
use s3x_proxy::proxy::Proxy;
use s3x_proxy::upstream::{Upstream, UpstreamFuture};
use tokio::time::Instant;

use crate::harness::{zonal_host, BUCKET};

/// An S3 Express that issues sessions of `lifetime` on a clock that follows tokio's, and
/// answers data requests 200 while their session is valid, 400 ExpiredToken after.
pub struct ScriptedS3 {
    started: Instant,
    lifetime: Duration,
    pub state: Mutex<Script>,
}

#[derive(Default)]
pub struct Script {
    /// Session token → (expiry on the tokio clock, mode).
    sessions: HashMap<String, (Instant, String)>,
    /// (when, mode) of every CreateSession.
    creates: Vec<(Duration, String)>,
    /// The next CreateSession calls answered 503 SlowDown.
    pub slow_down: u32,
    pub expired_answers: u32,
}

impl ScriptedS3 {
    fn new(lifetime: Duration) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            lifetime,
            state: Mutex::default(),
        })
    }

    /// This S3's wall clock: a fixed date plus the tokio time elapsed.
    fn date(&self, at: Instant) -> DateTime {
        let secs = 1_700_000_000 + (at - self.started).as_secs();
        DateTime::from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    pub fn creates(&self) -> Vec<(Duration, String)> {
        self.state.lock().unwrap().creates.clone()
    }

    pub fn expire_all(&self) {
        let now = Instant::now();
        for (expiry, _) in self.state.lock().unwrap().sessions.values_mut() {
            *expiry = now;
        }
    }

    fn answer(&self, request: &Request<ProxyBody>) -> Response<ProxyBody> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let date = self.date(now).fmt(Format::HttpDate).unwrap();
        if request.uri().query() == Some("session") {
            let mode = request.headers()["x-amz-create-session-mode"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(!request.headers().contains_key("x-amz-s3session-token"));
            state.creates.push((now - self.started, mode.clone()));
            if state.slow_down > 0 {
                state.slow_down -= 1;
                return xml(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &date,
                    "<Error><Code>SlowDown</Code><Message>slow</Message></Error>".into(),
                );
            }
            let token = format!("token-{}", state.creates.len());
            state
                .sessions
                .insert(token.clone(), (now + self.lifetime, mode));
            let expiration = self
                .date(now + self.lifetime)
                .fmt(Format::DateTime)
                .unwrap();
            let body = format!("<CreateSessionResult><Credentials><SessionToken>{token}</SessionToken><SecretAccessKey>s</SecretAccessKey><AccessKeyId>k</AccessKeyId><Expiration>{expiration}</Expiration></Credentials></CreateSessionResult>");
            return xml(StatusCode::OK, &date, body);
        }
        let token = request.headers()["x-amz-s3session-token"].to_str().unwrap();
        let (expiry, _) = state.sessions[token].clone();
        if now >= expiry {
            state.expired_answers += 1;
            let body = match *request.method() {
                Method::HEAD => String::new(),
                _ => "<Error><Code>ExpiredToken</Code><Message>expired</Message></Error>".into(),
            };
            return xml(StatusCode::BAD_REQUEST, &date, body);
        }
        let mut response = Response::new(match request.uri().path() {
            "/chunked" => unsized_body(false),
            "/cut" => unsized_body(true),
            _ => empty(),
        });
        response.headers_mut().insert("date", date.parse().unwrap());
        response
    }
}

/// An answer without a length, as S3 sends chunked XML: 3 × 1000 bytes, or 1000 and a cut.
fn unsized_body(cut: bool) -> ProxyBody {
    let mut frames: Vec<Result<http_body::Frame<Bytes>, s3x_proxy::body::BoxError>> =
        vec![Ok(http_body::Frame::data(Bytes::from(vec![b'x'; 1000])))];
    if cut {
        frames.push(Err("connection reset".into()));
    } else {
        frames.extend((0..2).map(|_| Ok(http_body::Frame::data(Bytes::from(vec![b'x'; 1000])))));
    }
    http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

fn xml(status: StatusCode, date: &str, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert("date", date.parse().unwrap());
    response
}

struct Seam(Arc<ScriptedS3>);

impl Upstream for Seam {
    fn send(&self, request: Request<ProxyBody>) -> UpstreamFuture {
        let s3 = self.0.clone();
        Box::pin(async move {
            let response = s3.answer(&request);
            // S3 reads the whole request body before it answers.
            let _ = request.into_body().collect().await;
            Ok(response)
        })
    }
}

/// The pipeline in front of a scripted S3.
pub struct Rig {
    pub s3: Arc<ScriptedS3>,
    pub proxy: Proxy,
    registry: Registry,
}

impl Rig {
    pub fn start(lifetime: Duration) -> Rig {
        crate::harness::init();
        let dir = tempfile::tempdir().unwrap();
        let cli = <Cli as clap::Parser>::try_parse_from([
            "s3x-proxy",
            "--ca-dir",
            dir.path().to_str().unwrap(),
            "--region",
            "us-west-2",
        ])
        .unwrap();
        let creds = aws_credential_types::Credentials::new("AKID", "SECRET", None, None, "test");
        let config = s3x_proxy::Config::from_args(
            &cli.args,
            aws_credential_types::provider::SharedCredentialsProvider::new(creds),
        )
        .unwrap();
        let s3 = ScriptedS3::new(lifetime);
        let registry = Registry::new();
        let proxy = s3x_proxy::pipeline(&config, Arc::new(Seam(s3.clone())), &registry).unwrap();
        Rig {
            s3,
            proxy,
            registry,
        }
    }

    pub async fn request(&self, method: Method, key: &str, body: &'static str) -> StatusCode {
        self.request_as(http::Version::HTTP_11, method, key, body)
            .await
            .0
    }

    /// A request from a client speaking `version`: the status, Content-Length and body length.
    pub async fn request_as(
        &self,
        version: http::Version,
        method: Method,
        key: &str,
        body: &'static str,
    ) -> (StatusCode, Option<String>, Result<usize, String>) {
        let host = zonal_host(BUCKET);
        let request = Request::builder()
            .version(version)
            .method(method)
            .uri(format!("http://{host}/{key}"))
            .header("host", &host)
            .header("content-length", body.len())
            .body(full(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let arrival = Arrival {
            client: "127.0.0.1:50000".parse().unwrap(),
            tunnel: None,
            identity: None,
        };
        let response = self.proxy.handle(request, &arrival).await;
        let status = response.status();
        let length = response
            .headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await;
        let read = body.map(|b| b.to_bytes().len()).map_err(|e| e.to_string());
        (status, length, read)
    }

    pub fn metrics(&self) -> String {
        s3x_proxy::metrics::render(&self.registry)
    }
}
