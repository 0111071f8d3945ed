//! General-purpose buckets through the same proxy: every mode, IAM signatures for service `s3`,
//! region discovery from S3's own answers, and IAM credentials that rotate under the proxy.

use std::sync::{Arc, Mutex};

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use bytes::Bytes;
use http::{Method, StatusCode};
use s3x_emulator::AuthKind;

use crate::harness::{
    assert_metric, data, Harness, Options, BUCKET, GP_BUCKET, GP_DOTTED, GP_EUROPE,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn general_purpose_buckets_work_in_forward_and_endpoint_modes_with_iam_for_s3() {
    let h = Harness::start(Options::default()).await;
    let host = format!("{GP_BUCKET}.s3.us-west-2.amazonaws.com");
    let body = data(100_000, 1);
    let put = h
        .send(
            Method::PUT,
            &format!("http://{host}/a/forward"),
            &host,
            &[],
            body.clone(),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let endpoint = h
        .endpoint(Method::GET, GP_BUCKET, "/a/forward", &[], Bytes::new())
        .await;
    assert_eq!(
        endpoint.body, body,
        "path-style endpoint mode reads what forward mode wrote"
    );
    let proxy = h.proxy.to_string();
    let vhost = format!("{GP_BUCKET}.localhost:{}", h.proxy.port());
    let virtual_host = h
        .send(Method::GET, "/a/forward", &vhost, &[], Bytes::new())
        .await;
    assert_eq!(
        virtual_host.body, body,
        "virtual-host endpoint mode (--endpoint-host localhost)"
    );
    let dotted = h
        .send(
            Method::PUT,
            &format!("/{GP_DOTTED}/k"),
            &proxy,
            &[],
            Bytes::from_static(b"dots"),
        )
        .await;
    assert_eq!(dotted.status, StatusCode::OK, "{}", dotted.text());
    let list = h
        .endpoint(Method::GET, GP_BUCKET, "?prefix=a/", &[], Bytes::new())
        .await;
    assert_eq!(
        list.status,
        StatusCode::OK,
        "ListObjects v1 is fine on general-purpose buckets"
    );
    let log = h.emulator.requests_log();
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(
            (r.auth, r.service.as_deref()),
            (AuthKind::Iam, Some("s3")),
            "{r:?}"
        );
        assert!(!r.s3session_token, "{r:?}");
        assert!(r.signature_verified, "{r:?}");
    }
    assert!(log
        .iter()
        .any(|r| r.host == "s3.us-west-2.amazonaws.com" && r.path.starts_with("/gp.dotted.data/")));
    assert_eq!(
        h.emulator.counters().by_operation.get("CreateSession"),
        None
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buckets_region_is_learned_from_s3_and_used_from_then_on() {
    let h = Harness::start(Options::default()).await;
    // Endpoint mode sends to --region (us-west-2); S3 answers 301 with the bucket's region.
    // The body is large and streamed: S3 refused it before reading (Expect: 100-continue),
    // so the proxy sends it again to eu-west-1.
    let body = data(1 << 20, 2);
    let put = h
        .endpoint(Method::PUT, GP_EUROPE, "/big", &[], body.clone())
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(h.emulator.counters().permanent_redirects, 1);
    let get = h
        .endpoint(Method::GET, GP_EUROPE, "/big", &[], Bytes::new())
        .await;
    assert_eq!(get.body, body);
    // Forward mode naming the wrong region goes straight to the learned one too.
    let wrong = format!("{GP_EUROPE}.s3.us-west-2.amazonaws.com");
    let head = h
        .send(
            Method::HEAD,
            &format!("http://{wrong}/big"),
            &wrong,
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    let counters = h.emulator.counters();
    assert_eq!(
        (counters.permanent_redirects, counters.wrong_region),
        (1, 0),
        "{counters:?}"
    );
    let text = h.metrics().await;
    assert_metric(
        &text,
        "s3x_proxy_upstream_retries_total",
        &[("reason", "wrong_region")],
        1.0,
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_host_signed_for_us_east_1_is_corrected_too() {
    let h = Harness::start(Options::default()).await;
    let global = "s3.amazonaws.com";
    let put = h
        .send(
            Method::PUT,
            &format!("http://{global}/{GP_EUROPE}/k"),
            global,
            &[],
            Bytes::from_static(b"eu"),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let counters = h.emulator.counters();
    assert_eq!(
        counters.wrong_region + counters.permanent_redirects,
        1,
        "{counters:?}"
    );
    h.stop().await;
}

/// Static credentials that the test can swap, as a rotated key file or profile would.
#[derive(Debug, Clone)]
struct Rotating(Arc<Mutex<Credentials>>);

impl ProvideCredentials for Rotating {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Ok(self.0.lock().unwrap().clone()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_iam_keys_are_reloaded_once_and_the_call_repeated() {
    let keys = Rotating(Arc::new(Mutex::new(Credentials::new(
        "AKIDEMULATOREXAMPLE",
        "emulator/secret/EXAMPLEKEY",
        None,
        None,
        "test",
    ))));
    let h = Harness::start(Options {
        credentials: Some(SharedCredentialsProvider::new(keys.clone())),
        ..Options::default()
    })
    .await;
    let put = h
        .endpoint(
            Method::PUT,
            GP_BUCKET,
            "/rot",
            &[],
            Bytes::from_static(b"1"),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    // The keys rotate: S3 takes only the new ones, the provider now gives the new ones, and
    // the proxy still holds the old ones (static keys are reloaded every five minutes).
    h.emulator
        .set_iam_credentials("AKIDROTATED000001", "rotated/secret", None);
    *keys.0.lock().unwrap() =
        Credentials::new("AKIDROTATED000001", "rotated/secret", None, None, "test");
    let get = h
        .endpoint(Method::GET, GP_BUCKET, "/rot", &[], Bytes::new())
        .await;
    assert_eq!(
        get.status,
        StatusCode::OK,
        "an IAM-signed call heals: {}",
        get.text()
    );
    // CreateSession (IAM-signed) heals the same way after another rotation.
    h.emulator
        .set_iam_credentials("AKIDROTATED000002", "rotated/again", None);
    *keys.0.lock().unwrap() =
        Credentials::new("AKIDROTATED000002", "rotated/again", None, None, "test");
    let put = h
        .forward(Method::PUT, BUCKET, "/rot", &[], Bytes::from_static(b"2"))
        .await;
    assert_eq!(
        put.status,
        StatusCode::OK,
        "CreateSession heals: {}",
        put.text()
    );
    let counters = h.emulator.counters();
    assert_eq!(counters.invalid_access_key_id, 2, "{counters:?}");
    let text = h.metrics().await;
    assert_metric(
        &text,
        "s3x_proxy_upstream_retries_total",
        &[("reason", "iam_credentials")],
        1.0,
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fips_and_dualstack_endpoints_are_chosen_in_endpoint_mode() {
    let h = Harness::start(Options {
        extra_args: vec!["--fips".into(), "--dualstack".into()],
        ..Options::default()
    })
    .await;
    let put = h
        .endpoint(Method::PUT, BUCKET, "/fips", &[], Bytes::from_static(b"f"))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let gp = h
        .endpoint(
            Method::PUT,
            GP_BUCKET,
            "/fips",
            &[],
            Bytes::from_static(b"g"),
        )
        .await;
    assert_eq!(gp.status, StatusCode::OK, "{}", gp.text());
    let hosts: Vec<String> = h
        .emulator
        .requests_log()
        .into_iter()
        .map(|r| r.host)
        .collect();
    assert!(
        hosts.iter().any(|h| h
            == "demo--usw2-az1--x-s3.s3express-fips-usw2-az1.dualstack.us-west-2.amazonaws.com"),
        "{hosts:?}"
    );
    assert!(
        hosts
            .iter()
            .any(|h| h == "gp-west-data.s3-fips.dualstack.us-west-2.amazonaws.com"),
        "{hosts:?}"
    );
    assert!(
        hosts
            .iter()
            .all(|h| h.contains("fips") && h.contains("dualstack")),
        "{hosts:?}"
    );
    h.stop().await;
}
