//! In-memory buckets, objects, multipart uploads and sessions, shared by all connections.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;

use crate::checksum::UploadChecksum;
use crate::credentials::{IamKey, IamKeys};
use crate::faults::Faults;
use crate::seen::Log;
use crate::sse::{Settings, Sse};
use crate::{Config, Counters};

/// Headers stored with an object and returned by GetObject/HeadObject.
#[derive(Clone, Debug, Default)]
pub(crate) struct ObjectMeta {
    /// content-type, content-encoding, cache-control, ... and x-amz-meta-* (lowercase names).
    pub headers: Vec<(String, String)>,
    /// `x-amz-checksum-*` names and base64 values.
    pub checksums: Vec<(String, String)>,
    /// The object's encryption.
    pub sse: Settings,
}

#[derive(Clone, Debug)]
pub(crate) struct Object {
    pub data: Bytes,
    /// Quoted.
    pub etag: String,
    pub last_modified: SystemTime,
    pub meta: ObjectMeta,
    /// Part sizes when the object came from a multipart upload.
    pub part_sizes: Vec<u64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Part {
    pub data: Bytes,
    pub etag: String,
    pub last_modified: SystemTime,
    pub checksums: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub(crate) struct Upload {
    pub key: String,
    pub initiated: SystemTime,
    pub meta: ObjectMeta,
    /// The checksum asked for at creation.
    pub checksum: Option<UploadChecksum>,
    pub parts: BTreeMap<u32, Part>,
}

/// What a bucket's policy lets the IAM credentials do (see [`crate::Emulator::set_bucket_policy`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Everything: ReadWrite and ReadOnly sessions, copies.
    #[default]
    ReadWrite,
    /// Only ReadOnly sessions (a CreateSession asking for ReadWrite gets 403 AccessDenied) and
    /// no IAM writes (CopyObject and UploadPartCopy into the bucket get 403).
    ReadOnly,
    /// Nothing: CreateSession, IAM-signed requests and every general-purpose request get 403
    /// AccessDenied. Sessions created before keep working until they expire.
    Deny,
}

#[derive(Debug)]
pub(crate) struct Bucket {
    pub created: SystemTime,
    pub policy: Policy,
    /// The region of a general-purpose bucket; None for a directory bucket.
    pub general_purpose_region: Option<String>,
    /// The default encryption.
    pub encryption: Sse,
    pub objects: BTreeMap<String, Object>,
    /// By upload id. Uploads belong to the bucket, not to any credentials.
    pub uploads: BTreeMap<String, Upload>,
}

impl Bucket {
    /// A general-purpose bucket in `region`.
    pub fn general_purpose(region: &str) -> Bucket {
        Bucket {
            general_purpose_region: Some(region.to_string()),
            ..Bucket::new()
        }
    }

    /// A directory bucket.
    pub fn new() -> Bucket {
        Bucket {
            created: SystemTime::now(),
            policy: Policy::ReadWrite,
            general_purpose_region: None,
            encryption: Sse::Aes256,
            objects: BTreeMap::new(),
            uploads: BTreeMap::new(),
        }
    }
}

/// The access mode of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    ReadOnly,
    ReadWrite,
}

#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub bucket: String,
    pub mode: Mode,
    pub expires: SystemTime,
    /// The encryption CreateSession settled on: data requests use it and cannot change it.
    pub sse: Settings,
}

/// Everything the emulator remembers. Locks are taken poisoned or not: a handler that panicked
/// must not take every later request down with it.
pub(crate) struct State {
    pub config: Config,
    pub buckets: Mutex<BTreeMap<String, Bucket>>,
    /// By session token.
    pub sessions: Mutex<HashMap<String, Session>>,
    pub counters: Mutex<Counters>,
    pub faults: Mutex<Faults>,
    pub seen: Mutex<Log>,
    pub iam: Mutex<IamKeys>,
    pub create_session_in_flight: AtomicU64,
    /// The client connections: how many are open, how many were accepted, and the signal that
    /// cuts them all.
    pub connections: Connections,
    /// Print one line per request to stderr (`S3X_EMULATOR_LOG=1`).
    pub log: bool,
    /// Extensions that make hyper write HTTP/1.1 header names in S3's case (see
    /// `header_case`).
    pub header_case: http::Extensions,
}

/// Client connections, counted while they are open (see [`Connections::open`]).
#[derive(Default)]
pub(crate) struct Connections {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Notified to close every open connection at once.
    pub cut: tokio::sync::Notify,
}

impl Connections {
    /// Counts a connection just accepted, until the returned guard drops.
    pub fn opened(&self) -> OpenConnection<'_> {
        self.accepted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OpenConnection(self)
    }
}

/// One open connection, counted in [`Connections::open`] until dropped.
pub(crate) struct OpenConnection<'a>(&'a Connections);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl State {
    pub fn new(config: Config, header_case: http::Extensions) -> State {
        let directory = config.buckets.iter().map(|b| (b.clone(), Bucket::new()));
        let general_purpose = config
            .general_purpose_buckets
            .iter()
            .map(|(b, region)| (b.clone(), Bucket::general_purpose(region)));
        let buckets = directory.chain(general_purpose).collect();
        State {
            buckets: Mutex::new(buckets),
            sessions: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            faults: Mutex::new(Faults::default()),
            seen: Mutex::new(Log::new(config.requests_log_limit)),
            iam: Mutex::new(IamKeys {
                current: IamKey {
                    access_key_id: config.access_key_id.clone(),
                    secret_access_key: config.secret_access_key.clone(),
                    token: config.iam_session_token.clone(),
                },
                retired: Vec::new(),
            }),
            create_session_in_flight: AtomicU64::new(0),
            connections: Connections::default(),
            log: std::env::var("S3X_EMULATOR_LOG").is_ok_and(|v| !v.is_empty() && v != "0"),
            header_case,
            config,
        }
    }

    pub fn buckets(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bucket>> {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Log> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn bucket_exists(&self, name: &str) -> bool {
        self.buckets().contains_key(name)
    }

    /// The region of a general-purpose bucket; None when there is no such bucket.
    pub fn general_purpose_region(&self, bucket: &str) -> Option<String> {
        self.buckets().get(bucket)?.general_purpose_region.clone()
    }

    /// The default encryption of a bucket (AES256 when it does not exist).
    pub fn bucket_encryption(&self, bucket: &str) -> Sse {
        self.buckets()
            .get(bucket)
            .map_or(Sse::Aes256, |b| b.encryption.clone())
    }

    /// The policy of a bucket (ReadWrite when it does not exist).
    pub fn policy(&self, bucket: &str) -> Policy {
        self.buckets()
            .get(bucket)
            .map_or(Policy::ReadWrite, |b| b.policy)
    }

    pub fn iam(&self) -> std::sync::MutexGuard<'_, IamKeys> {
        self.iam.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an access key id is or was an IAM one.
    pub fn is_iam_key(&self, akid: &str) -> bool {
        self.iam().knows(akid)
    }

    /// Marks a CreateSession as started; the guard marks it finished.
    pub fn create_session_started(&self) -> InFlight<'_> {
        let now = self.create_session_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut c = self.counters();
        c.max_concurrent_create_session = c.max_concurrent_create_session.max(now);
        InFlight(&self.create_session_in_flight)
    }
}

/// Decrements an in-flight count when dropped.
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Random bytes from the OS.
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("OS random source");
    buf
}

/// Random string over `[A-Z0-9]` of length `n`.
pub(crate) fn random_upper(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    random_bytes(n)
        .into_iter()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// Random URL-safe base64 of `n` random bytes.
pub(crate) fn random_token(n: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(n))
}

/// A content-derived ETag (quoted, 32 hex digits): CRC32C, CRC32 and length. Stable for equal
/// content and cheap even for GiB bodies in debug builds.
pub(crate) fn etag_of(data: &[u8]) -> String {
    format!(
        "\"{:08x}{:08x}{:016x}\"",
        crc32c::crc32c(data),
        crc32fast::hash(data),
        data.len()
    )
}

/// The ETag of a completed multipart upload: a hash of the part ETags, with `-N`.
pub(crate) fn multipart_etag(part_etags: &[&str]) -> String {
    let joined: String = part_etags.concat();
    let inner = etag_of(joined.as_bytes());
    format!("{}-{}\"", inner.trim_end_matches('"'), part_etags.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_stable_and_distinct() {
        assert_eq!(etag_of(b"abc"), etag_of(b"abc"));
        assert_ne!(etag_of(b"abc"), etag_of(b"abd"));
        assert_eq!(etag_of(b"abc").len(), 34);
        assert!(multipart_etag(&["\"a\"", "\"b\""]).ends_with("-2\""));
        assert_eq!(random_upper(16).len(), 16);
        assert_ne!(random_token(32), random_token(32));
    }
}
