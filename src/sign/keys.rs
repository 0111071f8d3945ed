//! Sign: the SigV4 signing keys derived from one set of credentials, kept per UTC day, region
//! and service, so that a request costs one HMAC of its own instead of four more.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use aws_sigv4::sign::v4::generate_signing_key;
use zeroize::Zeroize;

/// Most keys kept for one set of credentials (a session signs for one region and service; IAM
/// credentials for a few).
const MAX_KEYS: usize = 8;
const SECONDS_PER_DAY: u64 = 86_400;

/// A derived key and the date of its scope, copied out for one signature (and wiped when
/// dropped).
#[derive(Clone)]
pub(super) struct DayKey {
    /// `kSigning`: HMAC of the secret over date, region, service and `aws4_request`.
    pub(super) key: [u8; 32],
    /// The scope's date, `YYYYMMDD`.
    pub(super) date: [u8; 8],
}

impl Drop for DayKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

struct Entry {
    day: u64,
    region: Box<str>,
    service: Box<str>,
    key: DayKey,
}

/// The keys derived so far. Reading takes no lock; a miss derives the key and publishes a new
/// list (bounded; keys of other days go first).
pub(super) struct KeyCache {
    entries: ArcSwap<Vec<Arc<Entry>>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("keys", &self.entries.load().len())
            .finish()
    }
}

impl KeyCache {
    pub(super) fn new() -> Self {
        Self {
            entries: ArcSwap::from_pointee(Vec::new()),
        }
    }

    /// The key for `day` (days since the Unix epoch, UTC), `region` and `service`: cached, or
    /// derived from `secret` now. `None` when the day's date has no four-digit year.
    pub(super) fn get(
        &self,
        secret: &str,
        day: u64,
        region: &str,
        service: &str,
    ) -> Option<DayKey> {
        let found = self
            .entries
            .load()
            .iter()
            .find(|e| e.day == day && *e.region == *region && *e.service == *service)
            .map(|e| e.key.clone());
        if found.is_some() {
            return found;
        }
        let date = yyyymmdd(day)?;
        let midnight = UNIX_EPOCH + Duration::from_secs(day * SECONDS_PER_DAY);
        let derived = generate_signing_key(secret, midnight, region, service);
        let mut key = [0u8; 32];
        key.copy_from_slice(derived.as_ref());
        let entry = Arc::new(Entry {
            day,
            region: region.into(),
            service: service.into(),
            key: DayKey { key, date },
        });
        let found = entry.key.clone();
        self.entries.rcu(|old| {
            let mut next: Vec<Arc<Entry>> = old
                .iter()
                .filter(|e| e.day == day && !(*e.region == *region && *e.service == *service))
                .cloned()
                .collect();
            next.truncate(MAX_KEYS - 1);
            next.push(entry.clone());
            next
        });
        Some(found)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.load().len()
    }
}

/// Seconds since the Unix epoch, or `None` before it.
pub(super) fn unix_seconds(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// The day of `seconds` (UTC), and `HHMMSS` within it.
pub(super) fn day_and_time(seconds: u64) -> (u64, [u8; 6]) {
    let within = seconds % SECONDS_PER_DAY;
    let mut hms = [0u8; 6];
    two_digits(&mut hms[0..2], within / 3600);
    two_digits(&mut hms[2..4], within / 60 % 60);
    two_digits(&mut hms[4..6], within % 60);
    (seconds / SECONDS_PER_DAY, hms)
}

/// `YYYYMMDD` of a day since the epoch; `None` past year 9999.
fn yyyymmdd(day: u64) -> Option<[u8; 8]> {
    let seconds = i64::try_from(day.checked_mul(SECONDS_PER_DAY)?).ok()?;
    let date = time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()?
        .date();
    let year = u64::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    let mut out = [0u8; 8];
    two_digits(&mut out[0..2], year / 100);
    two_digits(&mut out[2..4], year % 100);
    two_digits(&mut out[4..6], u64::from(u8::from(date.month())));
    two_digits(&mut out[6..8], u64::from(date.day()));
    Some(out)
}

fn two_digits(out: &mut [u8], n: u64) {
    // `n` < 100 at every call site; the narrowing keeps to one byte each.
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_written_in_utc() {
        assert_eq!(&yyyymmdd(0).unwrap(), b"19700101");
        // 2024-02-29 is day 19782.
        assert_eq!(&yyyymmdd(19_782).unwrap(), b"20240229");
        assert_eq!(&yyyymmdd(2_932_896).unwrap(), b"99991231");
        assert!(yyyymmdd(2_932_897).is_none());
        let (day, hms) = day_and_time(19_782 * 86_400 + 86_399);
        assert_eq!((day, &hms), (19_782, b"235959"));
        let (day, hms) = day_and_time(19_783 * 86_400);
        assert_eq!((day, &hms), (19_783, b"000000"));
    }

    #[test]
    fn a_key_is_derived_once_per_day_region_and_service() {
        let cache = KeyCache::new();
        let a = cache
            .get("secret", 19_782, "us-west-2", "s3express")
            .unwrap();
        let again = cache
            .get("other", 19_782, "us-west-2", "s3express")
            .unwrap();
        assert_eq!(a.key, again.key, "the cached key is used");
        assert_eq!(cache.len(), 1);
        let next_day = cache
            .get("secret", 19_783, "us-west-2", "s3express")
            .unwrap();
        assert_ne!(a.key, next_day.key);
        assert_eq!(&next_day.date, b"20240301");
        assert_eq!(cache.len(), 1, "keys of other days are dropped");
        let s3 = cache.get("secret", 19_783, "us-west-2", "s3").unwrap();
        let east = cache.get("secret", 19_783, "us-east-1", "s3").unwrap();
        assert_ne!(s3.key, east.key);
        assert_ne!(s3.key, next_day.key);
        assert_eq!(cache.len(), 3);
        for n in 0..20 {
            cache.get("secret", 19_783, &format!("r{n}"), "s3").unwrap();
        }
        assert_eq!(cache.len(), MAX_KEYS);
        let expected = generate_signing_key(
            "secret",
            UNIX_EPOCH + Duration::from_secs(19_783 * 86_400 + 5),
            "us-west-2",
            "s3express",
        );
        assert_eq!(next_day.key, expected.as_ref());
    }
}
