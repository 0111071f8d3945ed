//! Session timing, exactly: the real pipeline against a scripted S3 (`scripted.rs`), on tokio's
//! paused clock. No sockets, no wall-clock sleeps.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::harness::assert_metric;
use crate::scripted::Rig;

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
async fn a_bare_400_on_head_is_read_with_a_one_byte_get_and_a_token_error_replaces_the_session() {
    let rig = Rig::start(Duration::from_secs(300));
    assert_eq!(rig.request(Method::PUT, "k", "v").await, StatusCode::OK);
    rig.s3.expire_all();
    // However young the session, the HEAD's bare 400 is read for what it is.
    assert_eq!(rig.request(Method::HEAD, "k", "").await, StatusCode::OK);
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
async fn a_transient_create_session_failure_is_not_the_answer_for_later_requests() {
    let rig = Rig::start(Duration::from_secs(300));
    rig.s3.state.lock().unwrap().slow_down = 1;
    assert_eq!(
        rig.request(Method::GET, "k", "").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        rig.request(Method::GET, "k", "").await,
        StatusCode::OK,
        "one 503 from S3 fails the requests that waited on it, not the next one"
    );
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
