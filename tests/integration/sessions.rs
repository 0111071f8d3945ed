//! Sessions: one CreateSession per key, refresh ahead of expiry, modes, and token retries.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::{Fault, Target};

use crate::harness::{assert_metric, data, metric, Harness, Options, BUCKET, RO_BUCKET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_cold_requests_make_exactly_one_create_session() {
    let h = Arc::new(Harness::start(Options::default()).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let h = h.clone();
        tasks.spawn(async move {
            h.forward(
                Method::GET,
                BUCKET,
                &format!("/missing-{i}"),
                &[],
                Bytes::new(),
            )
            .await
        });
    }
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::NOT_FOUND, "NoSuchKey")
        );
    }
    let counters = h.emulator.counters();
    assert_eq!(counters.create_session_read_only, 1, "{counters:?}");
    assert_eq!(counters.create_session_read_write, 0);
    assert_eq!(counters.max_concurrent_create_session, 1);
    let text = h.metrics().await;
    let misses = metric(
        &text,
        "s3x_proxy_session_cache_lookups_total",
        &[("result", "miss")],
    );
    let hits = metric(
        &text,
        "s3x_proxy_session_cache_lookups_total",
        &[("result", "hit")],
    );
    assert_eq!(misses + hits, 200.0, "{text}");
    assert!(misses >= 1.0);
    assert_metric(
        &text,
        "s3x_proxy_sessions_created_total",
        &[("mode", "ReadOnly"), ("result", "ok")],
        1.0,
    );
    Arc::into_inner(h).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_allows_only_read_only_sessions_stays_readable() {
    let h = Harness::start(Options::default()).await;
    let denied = h
        .forward(Method::PUT, RO_BUCKET, "/k", &[], Bytes::from_static(b"x"))
        .await;
    assert_eq!(
        (denied.status, denied.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "S3's own code is relayed"
    );
    let list = h
        .forward(Method::GET, RO_BUCKET, "/?list-type=2", &[], Bytes::new())
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text());
    let missing = h
        .forward(Method::GET, RO_BUCKET, "/nothing-here", &[], Bytes::new())
        .await;
    assert_eq!(
        (missing.status, missing.code().as_str()),
        (StatusCode::NOT_FOUND, "NoSuchKey")
    );
    let head = h
        .forward(Method::HEAD, RO_BUCKET, "/nothing-here", &[], Bytes::new())
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    let counters = h.emulator.counters();
    assert_eq!(counters.create_session_read_only, 1, "{counters:?}");
    assert_eq!(counters.signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_reuse_a_cached_read_write_session_instead_of_creating_another() {
    let h = Harness::start(Options::default()).await;
    let body = data(100, 8);
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/k", &[], body.clone())
            .await
            .status,
        StatusCode::OK
    );
    let get = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(get.body, body);
    let counters = h.emulator.counters();
    assert_eq!(
        (
            counters.create_session_read_write,
            counters.create_session_read_only
        ),
        (1, 0),
        "{counters:?}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_invalid_token_is_retried_once_with_a_new_session() {
    let h = Harness::start(Options::default()).await;
    let body = data(10_000, 4);
    let put = h
        .forward(Method::PUT, BUCKET, "/k", &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    h.emulator.inject(Fault::ExpiredToken { count: 1 });
    let get = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.text());
    assert!(get.body == body);
    h.emulator.inject(Fault::InvalidToken { count: 1 });
    let put = h
        .forward(Method::PUT, BUCKET, "/k2", &[], body.clone())
        .await;
    assert_eq!(
        put.status,
        StatusCode::OK,
        "a small body is kept, so the PUT is replayed: {}",
        put.text()
    );
    let text = h.metrics().await;
    assert_metric(
        &text,
        "s3x_proxy_upstream_retries_total",
        &[("reason", "expired_token")],
        1.0,
    );
    assert_metric(
        &text,
        "s3x_proxy_upstream_retries_total",
        &[("reason", "invalid_token")],
        1.0,
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_s3_refused_before_reading_is_sent_again_with_a_fresh_session() {
    let h = Harness::start(Options::default()).await;
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/warm", &[], Bytes::from_static(b"w"))
            .await
            .status,
        StatusCode::OK
    );
    // S3 checks the token before it asks for the body (Expect: 100-continue), so none of the
    // 1 MiB was sent: the proxy takes it back and sends it with a fresh session.
    h.emulator.inject(Fault::ExpiredToken { count: 1 });
    let body = data(1024 * 1024, 6);
    let put = h
        .forward(Method::PUT, BUCKET, "/big", &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(h.emulator.object(BUCKET, "big").as_deref(), Some(&body[..]));
    let text = h.metrics().await;
    assert_metric(
        &text,
        "s3x_proxy_upstream_retries_total",
        &[("reason", "expired_token")],
        1.0,
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_own_create_session_is_answered_locally_with_placeholders() {
    let h = Harness::start(Options::default()).await;
    let fake_auth = "AWS4-HMAC-SHA256 Credential=AKIDFAKE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature=00";
    let session = h
        .forward(
            Method::GET,
            BUCKET,
            "/?session",
            &[
                ("authorization", fake_auth),
                ("x-amz-create-session-mode", "ReadWrite"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(session.status, StatusCode::OK);
    let text = session.text();
    assert!(
        text.contains("<SessionToken>s3x-proxy-placeholder-token-"),
        "{text}"
    );
    assert!(
        !text.contains("emulator/secret"),
        "never the real credentials"
    );
    assert_eq!(
        h.emulator.counters().create_session_read_write,
        0,
        "nothing reached S3"
    );
    let put = h
        .forward(
            Method::PUT,
            BUCKET,
            "/after-session",
            &[
                ("authorization", fake_auth),
                ("x-amz-s3session-token", "s3x-proxy-placeholder-token-1"),
                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ],
            Bytes::from_static(b"payload"),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(
        h.emulator.object(BUCKET, "after-session").as_deref(),
        Some(&b"payload"[..])
    );
    assert_eq!(h.emulator.counters().signature_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_session_errors_reach_the_client_with_s3s_code() {
    let h = Harness::start(Options::default()).await;
    h.emulator.inject(Fault::SlowDown {
        count: 1,
        target: Target::CreateSession,
    });
    let slow = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(
        (slow.status, slow.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
    );
    let text = h.metrics().await;
    assert_metric(
        &text,
        "s3x_proxy_sessions_created_total",
        &[("result", "error")],
        1.0,
    );
    let next = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(
        next.status,
        StatusCode::NOT_FOUND,
        "a transient failure is not the answer for the next request"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_on_a_failing_create_session_share_its_answer() {
    let h = Arc::new(Harness::start(Options::default()).await);
    h.emulator.inject(Fault::Delay {
        count: 1,
        delay: std::time::Duration::from_millis(300),
        target: Target::CreateSession,
    });
    h.emulator.inject(Fault::SlowDown {
        count: 1,
        target: Target::CreateSession,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let h = h.clone();
        tasks.spawn(async move {
            let reply = h
                .forward(Method::GET, BUCKET, &format!("/k{i}"), &[], Bytes::new())
                .await;
            (reply.status, reply.code())
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, code) = done.unwrap();
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
        );
    }
    assert_eq!(h.emulator.counters().by_operation["CreateSession"], 1);
    Arc::into_inner(h).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_requests_to_a_missing_bucket_make_one_create_session() {
    let h = Arc::new(Harness::start(Options::default()).await);
    let missing = "missing--usw2-az1--x-s3";
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..15 {
        let h = h.clone();
        tasks.spawn(async move {
            let reply = h
                .forward(Method::GET, missing, &format!("/k{i}"), &[], Bytes::new())
                .await;
            (reply.status, reply.code())
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, code) = done.unwrap();
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::NOT_FOUND, "NoSuchBucket")
        );
    }
    let again = h
        .forward(Method::PUT, missing, "/k", &[], Bytes::from_static(b"x"))
        .await;
    assert_eq!(
        again.code(),
        "NoSuchBucket",
        "another mode asks S3 once more"
    );
    let counters = h.emulator.counters();
    assert_eq!(counters.by_operation["CreateSession"], 2, "{counters:?}");
    Arc::into_inner(h).unwrap().stop().await;
}
