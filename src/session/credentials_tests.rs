//! Tests of the IAM credentials cache, on tokio's paused clock.

use super::*;
use aws_credential_types::provider::{error::CredentialsError, future};
use std::sync::atomic::{AtomicU32, Ordering};

/// A provider that answers after `latency`, with credentials of `lifetime` (None: no expiry)
/// or, when `fail`, an error; it counts its calls and numbers its keys.
#[derive(Debug, Clone)]
struct Scripted {
    calls: Arc<AtomicU32>,
    latency: Duration,
    lifetime: Option<Duration>,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Scripted {
    fn new(latency: Duration, lifetime: Option<Duration>) -> Self {
        Self {
            calls: Arc::default(),
            latency,
            lifetime,
            fail: Arc::default(),
        }
    }

    fn failing(latency: Duration) -> Self {
        let s = Self::new(latency, None);
        s.fail.store(true, Ordering::SeqCst);
        s
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn cache(&self) -> IamCredentials {
        IamCredentials::new(SharedCredentialsProvider::new(self.clone()))
    }
}

impl ProvideCredentials for Scripted {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let (latency, lifetime) = (self.latency, self.lifetime);
        let fail = self.fail.load(Ordering::SeqCst);
        future::ProvideCredentials::new(async move {
            tokio::time::sleep(latency).await;
            if fail {
                return Err(CredentialsError::not_loaded("IMDS is unreachable"));
            }
            let expiry = lifetime.map(|l| SystemTime::now() + l);
            Ok(Credentials::new(format!("AK{n}"), "SK", None, expiry, "t"))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn caches_until_close_to_expiry() {
    let long = Scripted::new(Duration::ZERO, Some(Duration::from_secs(3600)));
    let cache = long.cache();
    for _ in 0..5 {
        cache.get().await.unwrap();
    }
    assert_eq!(long.calls(), 1);

    let short = Scripted::new(Duration::ZERO, Some(Duration::from_secs(30)));
    let cache = short.cache();
    cache.get().await.unwrap();
    cache.get().await.unwrap();
    assert_eq!(short.calls(), 2, "near-expiry credentials are loaded again");
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_of_a_failing_provider_fail_after_one_call_and_one_latency() {
    let provider = Scripted::failing(Duration::from_millis(1500));
    let cache = Arc::new(provider.cache());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let cache = cache.clone();
        tasks.spawn(async move { (cache.get().await, Instant::now()) });
    }
    while let Some(done) = tasks.join_next().await {
        let (result, at) = done.unwrap();
        let error = result.unwrap_err();
        assert!(error.reason.contains("IMDS is unreachable"), "{error}");
        assert_eq!(at - started, Duration::from_millis(1500));
    }
    assert_eq!(provider.calls(), 1);
    assert!(cache.last_failure().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_answered_at_once_until_its_backoff_ends_and_the_backoff_grows() {
    let provider = Scripted::failing(Duration::ZERO);
    let cache = provider.cache();
    assert!(cache.get().await.is_err());
    let first_retry = cache.retry_at().unwrap() - Instant::now();
    assert!(cache.get().await.is_err());
    assert_eq!(
        provider.calls(),
        1,
        "within the backoff the chain is not asked"
    );
    tokio::time::advance(first_retry).await;
    assert!(cache.get().await.is_err());
    assert_eq!(provider.calls(), 2);
    let second_retry = cache.retry_at().unwrap() - Instant::now();
    assert_eq!(second_retry, first_retry * 2);
    provider.fail.store(false, Ordering::SeqCst);
    tokio::time::advance(second_retry).await;
    assert!(cache.get().await.is_ok());
    assert!(cache.last_failure().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_hanging_provider_costs_a_request_at_most_the_wait_deadline() {
    let provider = Scripted::new(Duration::from_secs(3600), None);
    let cache = provider.cache();
    let started = Instant::now();
    let error = cache.get().await.unwrap_err();
    assert_eq!(Instant::now() - started, WAIT_DEADLINE);
    assert!(error.reason.contains("timed out"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn static_credentials_are_reloaded_in_the_background_on_a_timer() {
    let provider = Scripted::new(Duration::from_millis(10), None);
    let cache = provider.cache();
    assert_eq!(cache.get().await.unwrap().access_key_id(), "AK1");
    tokio::time::advance(STATIC_RELOAD + Duration::from_secs(1)).await;
    let served = cache.get().await.unwrap();
    assert_eq!(
        served.access_key_id(),
        "AK1",
        "no caller waits for the reload"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(cache.get().await.unwrap().access_key_id(), "AK2");
    assert_eq!(provider.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn invalidated_credentials_are_loaded_again_once() {
    let provider = Scripted::new(Duration::ZERO, None);
    let cache = provider.cache();
    let first = cache.get_loaded().await.unwrap();
    cache.invalidate(first.generation);
    cache.invalidate(first.generation);
    let second = cache.get_loaded().await.unwrap();
    assert_eq!(second.credentials.access_key_id(), "AK2");
    cache.invalidate(first.generation);
    assert_eq!(
        cache.get().await.unwrap().access_key_id(),
        "AK2",
        "a stale invalidation keeps newer keys"
    );
    assert_eq!(provider.calls(), 2);
}
