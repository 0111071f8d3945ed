//! IAM credentials from the standard AWS chain, cached and refreshed before they expire.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use tokio::sync::Mutex;

/// Credentials closer than this to their expiry are loaded again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// The IAM credentials could not be loaded (the chain's error is logged, never shown to clients).
#[derive(Debug, thiserror::Error)]
#[error("no AWS credentials could be loaded")]
pub struct CredentialsUnavailable;

/// A cache in front of a credentials provider: the default chain re-reads its sources on every
/// call, so without this every CreateSession would hit IMDS or the STS web-identity endpoint.
pub struct IamCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
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
            provider,
            cached: Mutex::new(None),
        }
    }

    /// Current credentials; loads them once for any number of concurrent callers.
    pub async fn get(&self) -> Result<Credentials, CredentialsUnavailable> {
        let mut cached = self.cached.lock().await;
        if let Some(creds) = cached.as_ref().filter(|c| is_fresh(c)) {
            return Ok(creds.clone());
        }
        match self.provider.provide_credentials().await {
            Ok(creds) => {
                tracing::debug!(
                    expires = ?creds.expiry(),
                    "loaded IAM credentials"
                );
                *cached = Some(creds.clone());
                Ok(creds)
            }
            Err(error) => {
                tracing::warn!(%error, "could not load AWS credentials");
                Err(CredentialsUnavailable)
            }
        }
    }
}

fn is_fresh(creds: &Credentials) -> bool {
    match creds.expiry() {
        None => true,
        Some(expiry) => expiry
            .duration_since(SystemTime::now())
            .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::future;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let expiry = SystemTime::now() + self.lifetime;
            future::ProvideCredentials::ready(Ok(Credentials::new(
                "AK",
                "SK",
                None,
                Some(expiry),
                "t",
            )))
        }
    }

    #[tokio::test]
    async fn caches_until_close_to_expiry() {
        let calls = Arc::new(AtomicU32::new(0));
        let long = IamCredentials::new(SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            lifetime: Duration::from_secs(3600),
        }));
        for _ in 0..5 {
            long.get().await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let short_calls = Arc::new(AtomicU32::new(0));
        let short = IamCredentials::new(SharedCredentialsProvider::new(Counting {
            calls: short_calls.clone(),
            lifetime: Duration::from_secs(60),
        }));
        short.get().await.unwrap();
        short.get().await.unwrap();
        assert_eq!(
            short_calls.load(Ordering::SeqCst),
            2,
            "near-expiry credentials are reloaded"
        );
    }
}
