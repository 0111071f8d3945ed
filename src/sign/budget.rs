//! Budget: how many bytes of request bodies the proxy holds in memory at once
//! (`--max-buffered-bytes`): small bodies kept for a retry, and parts of bodies of unknown length.
//! A request that would pass it is refused (503 SlowDown) before anything goes upstream.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The shared budget.
#[derive(Clone, Debug)]
pub struct Budget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: u64,
    used: AtomicU64,
}

/// The proxy holds too many request bodies to take another one now.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the proxy holds {limit} bytes of request bodies already (--max-buffered-bytes); retry later"
)]
pub struct OverBudget {
    /// The configured limit.
    pub limit: u64,
}

/// Bytes held against the budget; given back when dropped.
#[derive(Debug)]
pub struct Reserved {
    budget: Budget,
    bytes: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicU64::new(0),
            }),
        }
    }

    /// Takes `bytes` from the budget, or fails without taking any.
    pub fn reserve(&self, bytes: u64) -> Result<Reserved, OverBudget> {
        let mut reserved = Reserved {
            budget: self.clone(),
            bytes: 0,
        };
        reserved.grow(bytes)?;
        Ok(reserved)
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }
}

impl Reserved {
    /// Takes `more` bytes, or fails without taking any.
    pub fn grow(&mut self, more: u64) -> Result<(), OverBudget> {
        let inner = &self.budget.inner;
        let taken = inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(more).filter(|total| *total <= inner.limit)
            });
        match taken {
            Ok(_) => {
                self.bytes += more;
                Ok(())
            }
            Err(_) => Err(OverBudget { limit: inner.limit }),
        }
    }

    /// Gives back all but `keep` bytes.
    pub fn shrink_to(&mut self, keep: u64) {
        if keep < self.bytes {
            let back = self.bytes - keep;
            self.budget.inner.used.fetch_sub(back, Ordering::AcqRel);
            self.bytes = keep;
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let budget = Budget::new(100);
        let mut a = budget.reserve(60).unwrap();
        assert!(budget.reserve(50).is_err(), "60 + 50 > 100");
        assert_eq!(budget.used(), 60, "a failed reservation takes nothing");
        let b = budget.reserve(40).unwrap();
        assert!(a.grow(1).is_err());
        a.shrink_to(10);
        assert_eq!(budget.used(), 50);
        a.grow(50).unwrap();
        drop(b);
        drop(a);
        assert_eq!(budget.used(), 0);
        assert!(budget.reserve(u64::MAX).is_err());
    }
}
