//! `--workers`: connections spread over worker threads share one session cache, and every
//! setting (none, one, more than the CPUs) serves the same answers.

use http::{Method, StatusCode};

use crate::harness::{data, Harness, Options, BUCKET};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_count_serves_and_shares_one_session() {
    for workers in ["0", "1", "4"] {
        let h = Harness::start(Options {
            extra_args: vec!["--workers".into(), workers.into()],
            ..Options::default()
        })
        .await;
        let h = std::sync::Arc::new(h);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24usize {
            let h = h.clone();
            tasks.spawn(async move {
                let key = format!("/w/{i}.bin");
                let body = data(2048 + i, i as u64);
                let put = h
                    .forward(Method::PUT, BUCKET, &key, &[], body.clone())
                    .await;
                assert_eq!(put.status, StatusCode::OK, "{}", put.text());
                let get = h
                    .forward(Method::GET, BUCKET, &key, &[], bytes::Bytes::new())
                    .await;
                assert_eq!(get.status, StatusCode::OK, "{}", get.text());
                assert!(get.body == body, "the same bytes back");
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let created = h
            .emulator
            .counters()
            .by_operation
            .get("CreateSession")
            .copied()
            .unwrap_or(0);
        // The PUTs create the ReadWrite session, and the GETs find it (it covers reads).
        assert_eq!(
            created, 1,
            "--workers {workers}: one session for all 48 requests, whichever worker served them"
        );
    }
}
