//! Sessions: a cache keyed by bucket, mode and SSE settings that creates each session once
//! and renews it in the background before it expires.

pub(crate) mod create_session;
pub mod credential_egress;
pub(crate) mod credentials;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use tokio::time::Instant;

use crate::metrics::{Lookup, Metrics};
use crate::session::create_session::{create_session, CreateSessionError, SessionKey};
use crate::session::credentials::IamCredentials;
use crate::sign::SigningCredentials;
use crate::upstream::Upstream;

/// After a failed background refresh, how long before a request may start another.
const REFRESH_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Most CreateSession calls in flight at once (a flood of new bucket names waits here).
const MAX_CONCURRENT_CREATES: usize = 32;
/// Most failed CreateSession results remembered at once.
const MAX_REMEMBERED_FAILURES: u64 = 10_000;
/// One S3 Express session.
pub struct Session {
    credentials: SigningCredentials,
    generation: u64,
    created: Instant,
    refresh_at: Instant,
    stale_at: Instant,
    refreshing: AtomicBool,
    /// Set when the cache hands the session to a request: only used sessions are renewed
    /// ahead of time, so an idle bucket stops costing CreateSession calls.
    used: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Session {
    fn new(credentials: Credentials, generation: u64, lifetime: Duration) -> Self {
        let now = Instant::now();
        // Refresh a minute ahead (half the lifetime for short sessions); stop using a session
        // 10 s (a tenth of its lifetime) before it expires, so a request signed now still
        // arrives in time.
        let ahead = Duration::from_secs(60).min(lifetime / 2);
        let margin = Duration::from_secs(10).min(lifetime / 10);
        Self {
            credentials: SigningCredentials::new(credentials),
            generation,
            created: now,
            refresh_at: now + lifetime - ahead,
            stale_at: now + lifetime - margin,
            refreshing: AtomicBool::new(false),
            used: AtomicBool::new(false),
        }
    }

    /// The session credentials, ready for signing (with their signing keys).
    pub fn credentials(&self) -> &SigningCredentials {
        &self.credentials
    }

    /// A number that identifies this session among all sessions of the process.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How long ago the session was created.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    fn usable(&self, now: Instant) -> bool {
        now < self.stale_at
    }
}

/// The session cache.
#[derive(Clone)]
pub struct SessionCache {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Cache<SessionKey, Arc<Session>>,
    /// Recent CreateSession failures, answered again until they expire.
    failures: moka::sync::Cache<SessionKey, Arc<Failure>>,
    creating: tokio::sync::Semaphore,
    upstream: Arc<dyn Upstream>,
    iam: Arc<IamCredentials>,
    metrics: Metrics,
    generations: AtomicU64,
}

/// A failed CreateSession: when it failed, and until when it is the answer for later callers.
struct Failure {
    error: CreateSessionError,
    at: Instant,
    until: Instant,
}

struct StaleAt;

impl moka::Expiry<SessionKey, Arc<Session>> for StaleAt {
    fn expire_after_create(
        &self,
        _: &SessionKey,
        session: &Arc<Session>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(session.stale_at.saturating_duration_since(Instant::now()))
    }

    fn expire_after_update(
        &self,
        key: &SessionKey,
        session: &Arc<Session>,
        at: std::time::Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, session, at)
    }
}

impl SessionCache {
    /// A cache holding up to `capacity` sessions, creating them through `upstream`.
    pub fn new(
        upstream: Arc<dyn Upstream>,
        iam: Arc<IamCredentials>,
        metrics: Metrics,
        capacity: u64,
    ) -> Self {
        let gauge = metrics.cache_entries.clone();
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(StaleAt)
            .eviction_listener(move |_, _, cause| {
                if cause != moka::notification::RemovalCause::Replaced {
                    gauge.dec();
                }
            })
            .build();
        Self {
            inner: Arc::new(Inner {
                cache,
                failures: moka::sync::Cache::builder()
                    .max_capacity(MAX_REMEMBERED_FAILURES)
                    .time_to_live(Duration::from_secs(5))
                    .build(),
                creating: tokio::sync::Semaphore::new(MAX_CONCURRENT_CREATES),
                upstream,
                iam,
                metrics,
                generations: AtomicU64::new(0),
            }),
        }
    }

    /// A usable session for `key`: cached, or created now (once, however many callers wait).
    /// A session past its refresh time is still used while a background task replaces it.
    pub async fn get(
        &self,
        key: &SessionKey,
    ) -> Result<(Arc<Session>, Lookup), CreateSessionError> {
        if let Some(found) = self.get_cached(key).await {
            return Ok(found);
        }
        // Boxed: the miss path (moka's compute and a CreateSession) is large and rare, and would
        // otherwise be carried, and copied, by every request's future.
        let session = Box::pin(self.load(key, None)).await?;
        self.count(Lookup::Miss);
        Ok((session, Lookup::Miss))
    }

    /// A cached, usable session for `key` (starting its background refresh when due), or
    /// `None` without creating one.
    pub async fn get_cached(&self, key: &SessionKey) -> Option<(Arc<Session>, Lookup)> {
        let session = self.inner.cache.get(key).await?;
        let now = Instant::now();
        if !session.usable(now) {
            return None;
        }
        session.used.store(true, Ordering::Relaxed);
        let due = now >= session.refresh_at;
        let lookup = if due && !session.refreshing.swap(true, Ordering::AcqRel) {
            self.spawn_refresh(key.clone(), session.generation);
            Lookup::Refresh
        } else {
            Lookup::Hit
        };
        self.count(lookup);
        Some((session, lookup))
    }

    /// The cached, usable session for `key`, without counting a lookup or starting a refresh
    /// (a long upload checks before each part whether its session was replaced).
    pub async fn peek(&self, key: &SessionKey) -> Option<Arc<Session>> {
        let session = self.inner.cache.get(key).await?;
        session.usable(Instant::now()).then_some(session)
    }

    fn count(&self, lookup: Lookup) {
        self.inner
            .metrics
            .cache_lookups
            .with_label_values(&[lookup.as_str()])
            .inc();
    }

    /// Replaces the session `generation` (S3 said its token expired or is invalid) and returns
    /// the new one. If another caller already replaced it, that replacement is returned.
    pub async fn replace(
        &self,
        key: &SessionKey,
        generation: u64,
    ) -> Result<Arc<Session>, CreateSessionError> {
        Box::pin(self.load(key, Some(generation))).await
    }

    /// Drops the session `generation` from the cache (if it is still the cached one), so the
    /// next request creates a new one.
    pub async fn invalidate(&self, key: &SessionKey, generation: u64) {
        self.inner
            .cache
            .entry(key.clone())
            .and_compute_with(|current| async move {
                match current {
                    Some(entry) if entry.value().generation == generation => Op::Remove,
                    _ => Op::Nop,
                }
            })
            .await;
    }

    /// At the session's refresh time, renews it if requests have used it meanwhile, so a bucket
    /// in use every few minutes never waits for CreateSession (as the CRT's sweep of used
    /// sessions does). A request that arrives past the refresh time starts the renewal itself.
    fn renew_when_due(&self, key: SessionKey, session: &Session) {
        let cache = self.clone();
        let (generation, refresh_at) = (session.generation, session.refresh_at);
        tokio::spawn(async move {
            tokio::time::sleep_until(refresh_at).await;
            let Some(current) = cache.inner.cache.get(&key).await else {
                return;
            };
            let unused = !current.used.load(Ordering::Relaxed);
            if current.generation != generation || unused {
                return;
            }
            if !current.refreshing.swap(true, Ordering::AcqRel) {
                cache.spawn_refresh(key, generation);
            }
        });
    }

    fn spawn_refresh(&self, key: SessionKey, generation: u64) {
        let cache = self.clone();
        tokio::spawn(async move {
            if let Err(error) = cache.load(&key, Some(generation)).await {
                tracing::warn!(bucket = %key.bucket(), mode = key.mode.as_str(), %error, "background session refresh failed");
                // The current session stays in use; let a request try again after a pause, so
                // a throttled CreateSession is not retried at the request rate.
                tokio::time::sleep(REFRESH_RETRY_PAUSE).await;
                if let Some(session) = cache.inner.cache.get(&key).await {
                    session.refreshing.store(false, Ordering::Release);
                }
            }
        });
    }

    /// Creates a session unless a usable one (other than `replace`) is cached; per-key serialised.
    async fn load(
        &self,
        key: &SessionKey,
        replace: Option<u64>,
    ) -> Result<Arc<Session>, CreateSessionError> {
        let asked = Instant::now();
        self.recent_failure(key, asked)?;
        let this = self.clone();
        let owned_key = key.clone();
        let result = self
            .inner
            .cache
            .entry(key.clone())
            .and_try_compute_with(move |current| async move {
                if let Some(entry) = current {
                    let session = entry.into_value();
                    if session.usable(Instant::now()) && replace != Some(session.generation) {
                        return Ok(Op::Nop);
                    }
                }
                // Callers queued behind a failed call get its answer, not a call of their own.
                this.recent_failure(&owned_key, asked)?;
                let session = this.create(&owned_key).await?;
                Ok::<_, CreateSessionError>(Op::Put(Arc::new(session)))
            })
            .await?;
        match result {
            CompResult::Inserted(entry) => {
                self.inner.metrics.cache_entries.inc();
                let session = entry.into_value();
                self.renew_when_due(key.clone(), &session);
                Ok(session)
            }
            CompResult::ReplacedWith(entry) => {
                let session = entry.into_value();
                self.renew_when_due(key.clone(), &session);
                Ok(session)
            }
            CompResult::Unchanged(entry) => Ok(entry.into_value()),
            // The closure above only ever returns Nop or Put.
            CompResult::StillNone(_) | CompResult::Removed(_) => Err(
                CreateSessionError::BadResponse("the session cache lost its entry".into()),
            ),
        }
    }

    /// The failure a CreateSession for `key` ended with, if it is the answer for a caller that
    /// asked at `asked`: every caller that was already waiting gets it; later callers only
    /// while it stands (S3's refusals of the request; see `CreateSessionError::cache_for`).
    fn recent_failure(&self, key: &SessionKey, asked: Instant) -> Result<(), CreateSessionError> {
        match self.inner.failures.get(key) {
            Some(f) if f.at > asked || Instant::now() < f.until => Err(f.error.clone()),
            _ => Ok(()),
        }
    }

    async fn create(&self, key: &SessionKey) -> Result<Session, CreateSessionError> {
        let inner = &self.inner;
        let _permit = inner.creating.acquire().await;
        let metrics = &inner.metrics;
        let started = Instant::now();
        let result = create_session(inner.upstream.as_ref(), &inner.iam, key).await;
        if let Err(error) = &result {
            let at = Instant::now();
            let failure = Arc::new(Failure {
                error: error.clone(),
                at,
                until: at + error.cache_for(),
            });
            inner.failures.insert(key.clone(), failure);
        } else {
            inner.failures.invalidate(key);
        }
        metrics
            .create_session_duration
            .observe(started.elapsed().as_secs_f64());
        let label = if result.is_ok() { "ok" } else { "error" };
        metrics
            .sessions_created
            .with_label_values(&[key.mode.as_str(), label])
            .inc();
        let (credentials, lifetime) = result?;
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(bucket = %key.bucket(), mode = key.mode.as_str(), generation, lifetime_secs = lifetime.as_secs(), "created session");
        Ok(Session::new(credentials, generation, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sessions_refresh_ahead_and_go_stale_before_expiry() {
        let credentials = Credentials::new("a", "b", Some("c".into()), None, "t");
        let s = Session::new(credentials.clone(), 1, Duration::from_secs(300));
        let now = Instant::now();
        assert_eq!(s.refresh_at - now, Duration::from_secs(240));
        assert_eq!(s.stale_at - now, Duration::from_secs(290));
        let short = Session::new(credentials, 2, Duration::from_secs(10));
        assert_eq!(short.refresh_at - now, Duration::from_secs(5));
        assert_eq!(short.stale_at - now, Duration::from_secs(9));
    }
}
