//! Sessions: one CreateSession per key, refresh ahead of expiry, modes, and token retries.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::{Fault, Target};

use crate::harness::{data, metric, Harness, Options, BUCKET, RO_BUCKET};

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
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_sessions_created_total",
            &[("mode", "ReadOnly"), ("result", "ok")]
        ),
        1.0
    );
    Arc::into_inner(h).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_sessions_ahead_of_expiry_without_a_failed_or_waiting_request() {
    let lifetime = Duration::from_secs(3);
    let h = Harness::start(Options {
        session_lifetime: lifetime,
        ..Options::default()
    })
    .await;
    let body = data(2048, 5);
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/steady", &[], body.clone())
            .await
            .status,
        StatusCode::OK
    );
    let started = tokio::time::Instant::now();
    let mut requests = 0;
    while started.elapsed() < lifetime * 3 {
        let reply = h
            .forward(Method::PUT, BUCKET, "/steady", &[], body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "request {requests} failed: {}",
            reply.text()
        );
        requests += 1;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let counters = h.emulator.counters();
    assert!(
        counters.create_session_read_write >= 3,
        "sessions were renewed: {counters:?}"
    );
    assert_eq!(
        counters.expired_token, 0,
        "no request used an expired session"
    );
    let text = h.metrics().await;
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_session_cache_lookups_total",
            &[("result", "miss")]
        ),
        1.0,
        "only the very first request waited for CreateSession: {text}"
    );
    assert!(requests > 50);
    h.stop().await;
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
    // A HEAD error has no body to name the code: the proxy replaces a session that is at least
    // a second old when a session-signed HEAD gets a bare 400.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.emulator.expire_all_sessions();
    let head = h
        .forward(Method::HEAD, BUCKET, "/k2", &[], Bytes::new())
        .await;
    assert_eq!(head.status, StatusCode::OK);
    let text = h.metrics().await;
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_upstream_retries_total",
            &[("reason", "expired_token")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_upstream_retries_total",
            &[("reason", "invalid_token")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_upstream_retries_total",
            &[("reason", "head_bad_request")]
        ),
        1.0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_streamed_body_is_not_replayed_and_the_error_is_relayed() {
    let h = Harness::start(Options::default()).await;
    assert_eq!(
        h.forward(Method::PUT, BUCKET, "/warm", &[], Bytes::from_static(b"w"))
            .await
            .status,
        StatusCode::OK
    );
    h.emulator.inject(Fault::ExpiredToken { count: 1 });
    let put = h
        .forward(Method::PUT, BUCKET, "/big", &[], data(1024 * 1024, 6))
        .await;
    assert_eq!(
        (put.status, put.code().as_str()),
        (StatusCode::BAD_REQUEST, "ExpiredToken")
    );
    let again = h
        .forward(Method::PUT, BUCKET, "/big", &[], data(1024 * 1024, 6))
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the next request gets a fresh session: {}",
        again.text()
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
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_sessions_created_total",
            &[("result", "error")]
        ),
        1.0
    );
    let next = h
        .forward(Method::GET, BUCKET, "/k", &[], Bytes::new())
        .await;
    assert_eq!(next.status, StatusCode::NOT_FOUND, "errors are not cached");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_background_refresh_keeps_serving_with_the_current_session() {
    // Lifetime 6 s: refresh due at 3 s, unusable from 5.4 s.
    let h = Harness::start(Options {
        session_lifetime: Duration::from_secs(6),
        ..Options::default()
    })
    .await;
    let put = |n: u32| {
        h.forward(
            Method::PUT,
            BUCKET,
            "/refresh",
            &[],
            Bytes::from(format!("v{n}")),
        )
    };
    assert_eq!(put(0).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    h.emulator.inject(Fault::SlowDown {
        count: 1,
        target: Target::CreateSession,
    });
    assert_eq!(
        put(1).await.status,
        StatusCode::OK,
        "the refresh fails in the background, not for the request"
    );
    assert_eq!(
        put(2).await.status,
        StatusCode::OK,
        "and is not retried at once"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.emulator.counters().create_session_read_write, 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(put(3).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let counters = h.emulator.counters();
    assert_eq!(
        (counters.create_session_read_write, counters.slow_down),
        (2, 1),
        "{counters:?}"
    );
    let text = h.metrics().await;
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_sessions_created_total",
            &[("mode", "ReadWrite"), ("result", "error")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_session_cache_lookups_total",
            &[("result", "miss")]
        ),
        1.0
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_session_is_renewed_on_time_and_an_idle_one_is_left_to_expire() {
    // Lifetime 4 s: renewal due 2 s after creation, unusable from 3.6 s.
    let h = Harness::start(Options {
        session_lifetime: Duration::from_secs(4),
        ..Options::default()
    })
    .await;
    let get = || h.forward(Method::GET, BUCKET, "/none", &[], Bytes::new());
    let started = tokio::time::Instant::now();
    assert_eq!(get().await.status, StatusCode::NOT_FOUND); // creates session A
    assert_eq!(get().await.status, StatusCode::NOT_FOUND); // uses A
    tokio::time::sleep_until(started + Duration::from_millis(3000)).await;
    assert_eq!(
        h.emulator.counters().create_session_read_only,
        2,
        "A was renewed (B) at 2 s with no request then"
    );
    assert_eq!(
        get().await.status,
        StatusCode::NOT_FOUND,
        "at 3 s the cache holds B, a hit"
    );
    let text = h.metrics().await;
    assert_eq!(
        metric(
            &text,
            "s3x_proxy_session_cache_lookups_total",
            &[("result", "miss")]
        ),
        1.0,
        "{text}"
    );
    tokio::time::sleep_until(started + Duration::from_millis(7500)).await;
    // B was used, so it was renewed at 4 s (C); C saw no request, so at 6 s it was not.
    assert_eq!(
        h.emulator.counters().create_session_read_only,
        3,
        "an idle bucket costs no more sessions"
    );
    h.stop().await;
}
