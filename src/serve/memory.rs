//! Memory: the heap pages that client connections free when they rest or close are handed back
//! to the operating system.
//!
//! glibc's malloc keeps the pages a process has touched. After a burst on many keep-alive
//! connections (hyper holds about 20 KiB per HTTP/1.1 connection while it serves one) the proxy's
//! RSS stayed at its peak even once every connection had rested or closed: `benches/idle_conns`
//! showed 44.6 MiB after 1,000 connections made one request each, and still 44.6 MiB after the
//! clients had closed them all. The freed memory is scattered between allocations that live on
//! (a resting connection's socket and state), so the heap cannot shrink from its top; glibc's
//! `malloc_trim(0)` releases the free pages inside it.
//!
//! The [`Trimmer`] counts connections that released their state (rested or closed) and, once
//! [`RELEASES_PER_TRIM`] have, trims on a blocking thread, at most once per [`MIN_INTERVAL`]. A
//! proxy serving few connections never trims; a burst on many trims a few times a second at most.
//! A trim costs about a millisecond of one core on a heap of tens of MiB, and takes each arena's
//! lock only while it walks that arena.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Connections that release their state between two trims.
pub const RELEASES_PER_TRIM: usize = 64;

/// The shortest time between two trims.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Counts released connections and wakes [`Trimmer::run`] when enough have been.
pub struct Trimmer {
    released: AtomicUsize,
    wake: Notify,
}

impl Trimmer {
    /// A trimmer; [`Trimmer::run`] does the trimming.
    pub fn new() -> Arc<Trimmer> {
        Arc::new(Trimmer {
            released: AtomicUsize::new(0),
            wake: Notify::new(),
        })
    }

    /// A client connection has given back its HTTP state (it rested or closed). One atomic
    /// add; every [`RELEASES_PER_TRIM`]th call wakes the trimming task.
    pub fn released(&self) {
        if self.released.fetch_add(1, Relaxed) + 1 == RELEASES_PER_TRIM {
            self.wake.notify_one();
        }
    }

    /// Calls `trim` on a blocking thread each time [`RELEASES_PER_TRIM`] connections have
    /// released their state, at most once per [`MIN_INTERVAL`]; never returns.
    pub async fn run<F>(self: Arc<Self>, trim: F)
    where
        F: Fn() + Clone + Send + 'static,
    {
        loop {
            self.wake.notified().await;
            // Releases from now on count toward the next trim.
            self.released.store(0, Relaxed);
            let _ = tokio::task::spawn_blocking(trim.clone()).await;
            tokio::time::sleep(MIN_INTERVAL).await;
        }
    }
}

/// Hands the free pages of every malloc arena back to the operating system (glibc), or does
/// nothing (other C libraries, which have no `malloc_trim`).
#[allow(unsafe_code)]
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and takes each arena's lock itself; it only gives
    // free pages back (madvise), so no live allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting() -> (Arc<AtomicUsize>, impl Fn() + Clone + Send + 'static) {
        let trims = Arc::new(AtomicUsize::new(0));
        let counter = trims.clone();
        (trims, move || {
            counter.fetch_add(1, Relaxed);
        })
    }

    /// Lets the trimming task (and its blocking thread) run.
    async fn settle(trims: &AtomicUsize, expected: usize) {
        for _ in 0..1000 {
            if trims.load(Relaxed) == expected {
                break;
            }
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        assert_eq!(trims.load(Relaxed), expected);
    }

    #[tokio::test(start_paused = true)]
    async fn trims_once_enough_connections_released_and_not_more_often_than_the_interval() {
        let (trims, trim) = counting();
        let trimmer = Trimmer::new();
        let task = tokio::spawn(trimmer.clone().run(trim));
        for _ in 0..RELEASES_PER_TRIM - 1 {
            trimmer.released();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        settle(&trims, 0).await;
        trimmer.released();
        settle(&trims, 1).await;
        // Another burst at once: it waits for the interval.
        for _ in 0..RELEASES_PER_TRIM {
            trimmer.released();
        }
        tokio::time::sleep(MIN_INTERVAL / 2).await;
        settle(&trims, 1).await;
        tokio::time::sleep(MIN_INTERVAL).await;
        settle(&trims, 2).await;
        // Nothing released since: no more trims, however long.
        tokio::time::sleep(Duration::from_secs(60)).await;
        settle(&trims, 2).await;
        task.abort();
    }

    #[test]
    fn trimming_the_heap_is_harmless() {
        let kept: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 * 1024]).collect();
        drop(kept);
        trim_heap();
        let again = vec![7u8; 1 << 20];
        assert!(again.iter().all(|&b| b == 7));
    }
}
