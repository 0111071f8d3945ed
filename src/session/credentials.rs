//! IAM credentials from the standard AWS chain: cached, refreshed in the background before they
//! expire (static ones reloaded on a timer), fetched once however many requests wait, and a
//! failure cached with backoff so a broken chain is not hammered.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::logging::chain;
use crate::sign::SigningCredentials;

/// Credentials closer than this to their expiry are refreshed in the background.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Credentials closer than this to their expiry are not used at all.
const MIN_VALIDITY: Duration = Duration::from_secs(60);
/// Credentials without an expiry (static keys, some profiles) are reloaded this often.
pub const STATIC_RELOAD: Duration = Duration::from_secs(5 * 60);
/// The longest a request waits for credentials.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(10);
/// The longest one call to the provider chain may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failure the chain is not asked again for this long, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The IAM credentials could not be loaded (the reason is logged, never shown to clients).
#[derive(Debug, Clone, thiserror::Error)]
#[error("no AWS credentials could be loaded: {reason}")]
pub struct CredentialsUnavailable {
    /// Why, as the chain said (or that the wait timed out).
    pub reason: Arc<str>,
}

/// Credentials with the number that identifies this load (see [`IamCredentials::invalidate`]).
#[derive(Clone)]
pub struct Loaded {
    /// The credentials.
    pub credentials: Credentials,
    /// The same, ready for signing (with the signing keys derived from them).
    pub signing: Arc<SigningCredentials>,
    /// Which load they came from.
    pub generation: u64,
    loaded_at: Instant,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A cache in front of a credentials provider: the default chain re-reads its sources on every
/// call, so without this every CreateSession would hit IMDS or the STS web-identity endpoint.
pub struct IamCredentials {
    inner: Arc<Inner>,
}

struct Inner {
    provider: SharedCredentialsProvider,
    state: Mutex<State>,
    fetched: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    loaded: Option<Loaded>,
    failure: Option<Failure>,
    fetching: bool,
    generations: u64,
}

struct Failure {
    reason: Arc<str>,
    retry_at: Instant,
    backoff: Duration,
}

/// What the cache holds, judged now.
enum Judged {
    /// Use them.
    Fresh,
    /// Use them, and fetch new ones in the background.
    Ageing,
    /// Valid, but too close to expiry to use unless a fetch just brought them.
    Short,
    /// None, or expired.
    Missing,
}

impl std::fmt::Debug for IamCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IamCredentials { .. }")
    }
}

impl IamCredentials {
    /// Wraps a provider (the default chain in production, static credentials in tests).
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                state: Mutex::new(State::default()),
                fetched: watch::channel(0).0,
            }),
        }
    }

    /// Current credentials: cached, or loaded now (once for any number of callers, at most
    /// [`WAIT_DEADLINE`]); a recent failure is answered at once.
    pub async fn get(&self) -> Result<Credentials, CredentialsUnavailable> {
        self.get_loaded().await.map(|l| l.credentials)
    }

    /// [`IamCredentials::get`], with the load's generation.
    pub async fn get_loaded(&self) -> Result<Loaded, CredentialsUnavailable> {
        let deadline = Instant::now() + WAIT_DEADLINE;
        let mut waited = false;
        loop {
            let mut fetched = self.inner.fetched.subscribe();
            {
                let mut state = self.inner.lock();
                let now = Instant::now();
                if let Some(loaded) = state.loaded.clone() {
                    match judge(&loaded, now) {
                        Judged::Fresh => return Ok(loaded),
                        Judged::Short if waited => return Ok(loaded),
                        Judged::Ageing => {
                            self.start_fetch(&mut state, now);
                            return Ok(loaded);
                        }
                        Judged::Short | Judged::Missing => {}
                    }
                }
                if let Some(failure) = state.failure.as_ref().filter(|f| now < f.retry_at) {
                    return Err(CredentialsUnavailable {
                        reason: failure.reason.clone(),
                    });
                }
                self.start_fetch(&mut state, now);
            }
            if tokio::time::timeout_at(deadline, fetched.changed())
                .await
                .is_err()
            {
                return Err(CredentialsUnavailable {
                    reason: "timed out waiting for the credentials provider".into(),
                });
            }
            waited = true;
        }
    }

    /// Drops the credentials of load `generation` (S3 said they are invalid or expired), so
    /// the next caller loads new ones. A newer load is kept.
    pub fn invalidate(&self, generation: u64) {
        let mut state = self.inner.lock();
        if state
            .loaded
            .as_ref()
            .is_some_and(|l| l.generation == generation)
        {
            tracing::info!(
                generation,
                "S3 rejected the IAM credentials; reloading them"
            );
            state.loaded = None;
            state.failure = None;
        }
    }

    /// Why credentials are unavailable now, if they are (for `/readyz`).
    pub fn last_failure(&self) -> Option<Arc<str>> {
        let state = self.inner.lock();
        match state.loaded {
            Some(_) => None,
            None => state.failure.as_ref().map(|f| f.reason.clone()),
        }
    }

    /// When a failed load may be tried again, if the last load failed.
    pub fn retry_at(&self) -> Option<Instant> {
        self.inner.lock().failure.as_ref().map(|f| f.retry_at)
    }

    fn start_fetch(&self, state: &mut State, now: Instant) {
        let backing_off = state.failure.as_ref().is_some_and(|f| now < f.retry_at);
        if state.fetching || backing_off {
            return;
        }
        state.fetching = true;
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let result =
                tokio::time::timeout(FETCH_TIMEOUT, inner.provider.provide_credentials()).await;
            let result = match result {
                Ok(Ok(credentials)) => Ok(credentials),
                Ok(Err(error)) => Err(chain(&error)),
                Err(_) => Err("the credentials provider timed out".to_owned()),
            };
            inner.store(result);
        });
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn store(&self, result: Result<Credentials, String>) {
        let mut state = self.lock();
        state.fetching = false;
        let now = Instant::now();
        match result {
            Ok(credentials) => {
                if state.failure.take().is_some() || state.loaded.is_none() {
                    tracing::info!(expires = ?credentials.expiry(), "loaded IAM credentials");
                }
                state.generations += 1;
                state.loaded = Some(Loaded {
                    signing: Arc::new(SigningCredentials::new(credentials.clone())),
                    credentials,
                    generation: state.generations,
                    loaded_at: now,
                });
            }
            Err(reason) => {
                let backoff = match &state.failure {
                    Some(previous) => (previous.backoff * 2).min(MAX_BACKOFF),
                    None => FIRST_BACKOFF,
                };
                let changed = state.failure.as_ref().is_none_or(|f| *f.reason != *reason);
                if changed {
                    tracing::warn!(error = %reason, retry_in = ?backoff, "could not load AWS credentials");
                } else {
                    tracing::debug!(error = %reason, retry_in = ?backoff, "still no AWS credentials");
                }
                state.failure = Some(Failure {
                    reason: reason.into(),
                    retry_at: now + backoff,
                    backoff,
                });
            }
        }
        drop(state);
        self.fetched.send_modify(|n| *n += 1);
    }
}

fn judge(loaded: &Loaded, now: Instant) -> Judged {
    match loaded.credentials.expiry() {
        None if now.duration_since(loaded.loaded_at) < STATIC_RELOAD => Judged::Fresh,
        None => Judged::Ageing,
        Some(expiry) => match expiry.duration_since(SystemTime::now()) {
            Ok(left) if left > REFRESH_BEFORE_EXPIRY => Judged::Fresh,
            Ok(left) if left > MIN_VALIDITY => Judged::Ageing,
            Ok(left) if !left.is_zero() => Judged::Short,
            _ => Judged::Missing,
        },
    }
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
