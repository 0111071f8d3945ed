//! An S3 Express One Zone emulator over HTTPS for testing s3x-proxy: see [`Emulator`].

use std::collections::BTreeMap;
use std::time::Duration;

mod attributes;
mod auth;
mod authorize;
mod body;
mod buckets;
mod checksum;
mod chunked;
mod classify;
mod conn;
mod copy;
mod credentials;
mod emulator;
mod error;
mod express;
mod faults;
mod header_case;
mod hosts;
mod list;
mod list_v1;
mod multipart;
mod objects;
mod ops;
mod order;
mod range;
mod receive;
mod regions;
mod respond;
mod route;
mod seen;
mod server;
pub mod sigv4;
mod sse;
mod store;
mod time;
mod tls;
mod uploads;
mod xml;

pub use emulator::Emulator;
pub use faults::{Fault, Target};
pub use seen::{AuthKind, EndpointKind, SeenRequest};
pub use sse::Sse;
pub use store::Policy;
pub use tls::{CaPem, CA_CERT_FILE, CA_KEY_FILE};

/// How the emulator is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long CreateSession credentials last (S3: 300 s).
    pub session_lifetime: Duration,
    /// The IAM access key id the emulator accepts at start (see
    /// [`Emulator::set_iam_credentials`] to rotate it).
    pub access_key_id: String,
    pub secret_access_key: String,
    /// When set, IAM-signed requests must carry this `x-amz-security-token` (temporary IAM
    /// credentials); when unset, they must carry none.
    pub iam_session_token: Option<String>,
    /// Directory buckets created at start.
    pub buckets: Vec<String>,
    /// General-purpose buckets created at start: (name, region). They are served on
    /// `s3.amazonaws.com`, `s3[-fips][.dualstack].REGION.amazonaws.com[.cn]`, virtual-hosted
    /// or path-style, with SigV4 for service `s3` and the IAM credentials.
    pub general_purpose_buckets: Vec<(String, String)>,
    /// Minimum size of every multipart part but the last (S3: 5 MiB).
    pub min_part_size: u64,
    /// The CA that signs the server certificates; `None` makes a fresh one. Keep it (see
    /// [`CaPem::load_or_create`]) so clients trusting it still work after a restart.
    pub ca: Option<CaPem>,
    /// How many requests [`Emulator::requests_log`] keeps (the oldest go first; 0 = none).
    pub requests_log_limit: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            session_lifetime: Duration::from_secs(300),
            access_key_id: "AKIDEMULATOREXAMPLE".into(),
            secret_access_key: "emulator/secret/EXAMPLEKEY".into(),
            iam_session_token: None,
            buckets: Vec::new(),
            general_purpose_buckets: Vec::new(),
            min_part_size: 5 * 1024 * 1024,
            ca: None,
            requests_log_limit: 10_000,
        }
    }
}

/// A snapshot of what the emulator has seen.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub create_session_read_only: u64,
    pub create_session_read_write: u64,
    /// Every request received.
    pub requests: u64,
    /// Requests rejected for bad or missing authentication: SignatureDoesNotMatch, unsigned
    /// `x-amz-*` headers, wrong kind of credentials for the operation, bad date, ...
    pub signature_failures: u64,
    /// Every ExpiredToken answer (sessions and IAM).
    pub expired_token: u64,
    pub invalid_token: u64,
    /// ExpiredToken answers to IAM credentials that were rotated out (or a retired token).
    pub iam_expired_token: u64,
    /// InvalidAccessKeyId answers: an access key id the emulator does not (or no longer) accept.
    pub invalid_access_key_id: u64,
    /// Every AccessDenied answer, whatever the reason.
    pub access_denied: u64,
    /// SlowDown answers (injected throttling).
    pub slow_down: u64,
    /// The most CreateSession requests ever in flight at once.
    pub max_concurrent_create_session: u64,
    /// Requests by S3 operation name ("GetObject"), counted on arrival.
    pub by_operation: BTreeMap<String, u64>,
    /// The last authenticated kind per operation: "iam", "session-ro", "session-rw" or
    /// "anonymous" (no Authorization header).
    pub auth_by_operation: BTreeMap<String, String>,
    /// Error answers by S3 error code.
    pub errors_by_code: BTreeMap<String, u64>,
    /// 301 PermanentRedirect answers: a general-purpose bucket asked for on another region's
    /// host.
    pub permanent_redirects: u64,
    /// 400 AuthorizationHeaderMalformed answers for a request signed for the wrong region.
    pub wrong_region: u64,
}
