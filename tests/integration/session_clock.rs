//! Session timing, exactly: the real pipeline (`s3x_proxy::pipeline`) against a scripted S3
//! behind the `Upstream` seam, on tokio's paused clock. No sockets, no wall-clock sleeps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::{DateTime, Format};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use prometheus::Registry;
use s3x_proxy::body::{empty, full, ProxyBody};
use s3x_proxy::config::Cli;
use s3x_proxy::proxy::Proxy;
use s3x_proxy::route::Arrival;
use s3x_proxy::upstream::{Upstream, UpstreamFuture};
use tokio::time::Instant;

use crate::harness::{assert_metric, zonal_host, BUCKET};

/// An S3 Express that issues sessions of `lifetime` on a clock that follows tokio's, and
/// answers data requests 200 while their session is valid, 400 ExpiredToken after.
struct ScriptedS3 {
    started: Instant,
    lifetime: Duration,
    state: Mutex<Script>,
}

#[derive(Default)]
struct Script {
    /// Session token → (expiry on the tokio clock, mode).
    sessions: HashMap<String, (Instant, String)>,
    /// (when, mode) of every CreateSession.
    creates: Vec<(Duration, String)>,
    /// The next CreateSession calls answered 503 SlowDown.
    slow_down: u32,
    expired_answers: u32,
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

    fn creates(&self) -> Vec<(Duration, String)> {
        self.state.lock().unwrap().creates.clone()
    }

    fn expire_all(&self) {
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
        let mut response = Response::new(empty());
        response.headers_mut().insert("date", date.parse().unwrap());
        response
    }
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
struct Rig {
    s3: Arc<ScriptedS3>,
    proxy: Proxy,
    registry: Registry,
}

impl Rig {
    fn start(lifetime: Duration) -> Rig {
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

    async fn request(&self, method: Method, key: &str, body: &'static str) -> StatusCode {
        let host = zonal_host(BUCKET);
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{host}/{key}"))
            .header("host", &host)
            .header("content-length", body.len())
            .body(full(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let arrival = Arrival {
            client: "127.0.0.1:50000".parse().unwrap(),
            tunnel: None,
        };
        let response = self.proxy.handle(request, &arrival).await;
        let status = response.status();
        let _ = response.into_body().collect().await;
        status
    }

    fn metrics(&self) -> String {
        s3x_proxy::metrics::render(&self.registry)
    }
}

fn at(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[tokio::test(start_paused = true)]
async fn a_steady_client_never_waits_for_or_fails_on_a_session_over_fifteen_minutes() {
    let rig = Rig::start(Duration::from_secs(300));
    // Requests at 0, 2.5, 7.5, 12.5 … s: never at the very instant a renewal falls due.
    assert_eq!(
        rig.request(Method::PUT, "steady", "v").await,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for _ in 0..179 {
        assert_eq!(
            rig.request(Method::PUT, "steady", "v").await,
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let creates: Vec<Duration> = rig.s3.creates().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        creates,
        [at(0), at(240), at(480), at(720)],
        "created at once, then renewed a minute before each expiry"
    );
    assert_eq!(rig.s3.state.lock().unwrap().expired_answers, 0);
    let text = rig.metrics();
    assert_metric(
        &text,
        "s3x_proxy_session_cache_lookups_total",
        &[("result", "miss")],
        1.0,
    );
    assert_metric(
        &text,
        "s3x_proxy_session_cache_lookups_total",
        &[("result", "hit")],
        179.0,
    );
    assert_metric(
        &text,
        "s3x_proxy_session_cache_lookups_total",
        &[("result", "refresh")],
        0.0,
    );
}

#[tokio::test(start_paused = true)]
async fn a_bare_400_on_head_replaces_a_session_only_once_it_is_a_second_old() {
    let rig = Rig::start(Duration::from_secs(300));
    assert_eq!(rig.request(Method::PUT, "k", "v").await, StatusCode::OK);
    rig.s3.expire_all();
    assert_eq!(
        rig.request(Method::HEAD, "k", "").await,
        StatusCode::BAD_REQUEST,
        "a brand-new session is not replaced on a bare 400"
    );
    tokio::time::advance(Duration::from_millis(1100)).await;
    assert_eq!(rig.request(Method::HEAD, "k", "").await, StatusCode::OK);
    assert_eq!(rig.s3.creates().len(), 2);
    let text = rig.metrics();
    assert_metric(
        &text,
        "s3x_proxy_upstream_retries_total",
        &[("reason", "head_bad_request")],
        1.0,
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_retried_once_with_a_new_session() {
    let rig = Rig::start(Duration::from_secs(300));
    assert_eq!(rig.request(Method::PUT, "k", "v").await, StatusCode::OK);
    rig.s3.expire_all();
    assert_eq!(rig.request(Method::PUT, "k", "v2").await, StatusCode::OK);
    assert_eq!(rig.s3.creates().len(), 2);
    let text = rig.metrics();
    assert_metric(
        &text,
        "s3x_proxy_upstream_retries_total",
        &[("reason", "expired_token")],
        1.0,
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_background_refresh_keeps_serving_and_is_retried_after_a_pause() {
    let rig = Rig::start(Duration::from_secs(300));
    assert_eq!(rig.request(Method::PUT, "k", "v0").await, StatusCode::OK);
    assert_eq!(rig.request(Method::PUT, "k", "v0").await, StatusCode::OK); // used: renew it
    rig.s3.state.lock().unwrap().slow_down = 1;
    // The renewal falls due at 240 s: it fails in the background, not for a request.
    tokio::time::sleep(at(240)).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(rig.request(Method::PUT, "k", "v1").await, StatusCode::OK);
    assert_eq!(rig.s3.creates().len(), 2, "one renewal, which failed");
    assert_eq!(rig.request(Method::PUT, "k", "v2").await, StatusCode::OK);
    assert_eq!(rig.s3.creates().len(), 2, "not retried at once");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(rig.request(Method::PUT, "k", "v3").await, StatusCode::OK);
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let creates = rig.s3.creates();
    assert_eq!(
        creates.len(),
        3,
        "a request after the pause starts it again: {creates:?}"
    );
    let text = rig.metrics();
    assert_metric(
        &text,
        "s3x_proxy_sessions_created_total",
        &[("mode", "ReadWrite"), ("result", "error")],
        1.0,
    );
    assert_metric(
        &text,
        "s3x_proxy_sessions_created_total",
        &[("mode", "ReadWrite"), ("result", "ok")],
        2.0,
    );
    assert_metric(
        &text,
        "s3x_proxy_session_cache_lookups_total",
        &[("result", "miss")],
        1.0,
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_create_session_is_the_answer_for_a_second_then_asked_again() {
    let rig = Rig::start(Duration::from_secs(300));
    rig.s3.state.lock().unwrap().slow_down = 1;
    assert_eq!(
        rig.request(Method::GET, "k", "").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::advance(Duration::from_millis(900)).await;
    assert_eq!(
        rig.request(Method::GET, "k", "").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(rig.s3.creates().len(), 1, "remembered, not asked again");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(rig.request(Method::GET, "k", "").await, StatusCode::OK);
    assert_eq!(rig.s3.creates().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_used_session_is_renewed_on_time_and_an_idle_one_is_left_to_expire() {
    let rig = Rig::start(Duration::from_secs(300));
    assert_eq!(rig.request(Method::GET, "none", "").await, StatusCode::OK); // creates A
    assert_eq!(rig.request(Method::GET, "none", "").await, StatusCode::OK); // uses A
    tokio::time::sleep(at(250)).await;
    assert_eq!(
        rig.s3.creates(),
        [(at(0), "ReadOnly".into()), (at(240), "ReadOnly".into())],
        "A was used, so it was renewed (B) at 240 s with no request then"
    );
    assert_eq!(rig.request(Method::GET, "none", "").await, StatusCode::OK); // uses B
    tokio::time::sleep(at(1000)).await;
    let times: Vec<Duration> = rig.s3.creates().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        times,
        [at(0), at(240), at(480)],
        "B was used, so it was renewed (C); C saw no request, so it was left to expire"
    );
    let text = rig.metrics();
    assert_metric(
        &text,
        "s3x_proxy_session_cache_lookups_total",
        &[("result", "miss")],
        1.0,
    );
}
