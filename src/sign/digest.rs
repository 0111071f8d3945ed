//! Digests a request declares for its body, checked by the proxy as the body streams: a
//! `Content-MD5` (bridged for directory buckets, `content_md5`) and, with `--access-file`, the
//! hex SHA-256 a client signed as `x-amz-content-sha256` (`identity`).
//!
//! [`Verified`] is the one body that checks them: it hashes each frame on its way through and,
//! when the last bytes arrive, finishes the digests before it passes those bytes on, failing
//! instead when one differs. The upstream request then dies unfinished and S3 stores nothing.
//! A body kept in memory is checked whole with [`Expected::check`] before anything is sent; a
//! body of unknown length fails as it ends, before the multipart upload it became completes
//! (`unknown_length`). The failure travels in the body's error chain and `error` finds it there.

use std::ops::ControlFlow;
use std::task::{Context, Poll};

use aws_lc_rs::digest::{self as lc, SHA256};
use base64::Engine;
use http_body::Body;
use http_body_util::BodyExt;
use md5::{Digest, Md5};

use crate::body::hooked::{Given, Hook, Hooked, Step};
use crate::body::{BoxError, ProxyBody};

/// A body that does not match a digest its request declared (the client's fault: 400), or a
/// `Content-MD5` that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// The `Content-MD5` header is not the base64 of 16 bytes (S3's `InvalidDigest`).
    #[error("Content-MD5 is not the base64 of an MD5 digest")]
    Invalid,
    /// The body does not hash to `Content-MD5` (S3's `BadDigest`).
    #[error("the body's MD5 is {calculated}, Content-MD5 said {expected}")]
    Mismatch {
        /// The digest the client sent, base64.
        expected: String,
        /// The digest of what arrived, base64.
        calculated: String,
    },
    /// The body does not hash to the signed `x-amz-content-sha256` (S3's
    /// `XAmzContentSHA256Mismatch`).
    #[error("the body's SHA-256 is {calculated}, x-amz-content-sha256 said {expected}")]
    Sha256Mismatch {
        /// The digest the client sent, lowercase hex.
        expected: String,
        /// The digest of what arrived, lowercase hex.
        calculated: String,
    },
}

/// A parsed `Content-MD5`: the digest the body must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentMd5([u8; 16]);

impl ContentMd5 {
    /// Parses a header value: the (padded) base64 of 16 bytes, blanks around it allowed.
    pub fn parse(value: &[u8]) -> Result<Self, DigestError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim_ascii())
            .map_err(|_| DigestError::Invalid)?;
        decoded
            .try_into()
            .map(ContentMd5)
            .map_err(|_| DigestError::Invalid)
    }

    /// Checks a whole body held in memory.
    pub fn check(&self, body: &[u8]) -> Result<(), DigestError> {
        self.matches(Md5::new_with_prefix(body))
    }

    fn matches(&self, hasher: Md5) -> Result<(), DigestError> {
        let calculated: [u8; 16] = hasher.finalize().into();
        if calculated == self.0 {
            return Ok(());
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        Err(DigestError::Mismatch {
            expected: b64.encode(self.0),
            calculated: b64.encode(calculated),
        })
    }
}

/// A SHA-256 the body must have (a signed `x-amz-content-sha256`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sha256([u8; 32]);

/// The SHA-256 of nothing: what a body-less request signs.
const EMPTY_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

impl Sha256 {
    /// Parses 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |b: u8| char::from(b).to_digit(16);
            *byte = (digit(pair[0])? << 4 | digit(pair[1])?) as u8;
        }
        Some(Sha256(out))
    }

    /// Checks a whole body held in memory.
    pub fn check(&self, body: &[u8]) -> Result<(), DigestError> {
        if body.is_empty() && self.0 == EMPTY_SHA256 {
            return Ok(());
        }
        let mut hasher = lc::Context::new(&SHA256);
        hasher.update(body);
        self.matches(hasher)
    }

    fn matches(&self, hasher: lc::Context) -> Result<(), DigestError> {
        let calculated = hasher.finish();
        if calculated.as_ref() == self.0 {
            return Ok(());
        }
        Err(DigestError::Sha256Mismatch {
            expected: hex(&self.0),
            calculated: hex(calculated.as_ref()),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The digests a request's body must have; both empty for most requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// A bridged `Content-MD5`.
    pub md5: Option<ContentMd5>,
    /// A signed `x-amz-content-sha256`.
    pub sha256: Option<Sha256>,
}

impl From<ContentMd5> for Expected {
    fn from(md5: ContentMd5) -> Self {
        Expected {
            md5: Some(md5),
            sha256: None,
        }
    }
}

impl Expected {
    /// No digest to check.
    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha256.is_none()
    }

    /// Checks a whole body held in memory.
    pub fn check(&self, body: &[u8]) -> Result<(), DigestError> {
        if let Some(md5) = &self.md5 {
            md5.check(body)?;
        }
        if let Some(sha256) = &self.sha256 {
            sha256.check(body)?;
        }
        Ok(())
    }

    /// `body`, checked as it streams when there is anything to check ([`Verified`]); `length`
    /// is its data length when known.
    pub fn verify(self, body: ProxyBody, length: Option<u64>) -> ProxyBody {
        if self.is_empty() {
            return body;
        }
        Verified::new(body, self, length).boxed_unsync()
    }
}

/// The running digests of a [`Verified`] body.
struct Hashers {
    md5: Option<Md5>,
    sha256: Option<lc::Context>,
}

impl Hashers {
    fn new(expected: &Expected) -> Self {
        Hashers {
            md5: expected.md5.map(|_| Md5::new()),
            sha256: expected.sha256.map(|_| lc::Context::new(&SHA256)),
        }
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(data);
        }
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(data);
        }
    }

    fn finish(self, expected: &Expected) -> Result<(), DigestError> {
        if let (Some(hasher), Some(md5)) = (self.md5, &expected.md5) {
            md5.matches(hasher)?;
        }
        if let (Some(hasher), Some(sha256)) = (self.sha256, &expected.sha256) {
            sha256.matches(hasher)?;
        }
        Ok(())
    }
}

/// A body whose digests are checked as it streams (see the module doc). With `length`, the
/// check happens as the frame that completes it arrives, before that frame is passed on;
/// without, when the body ends (or says it has ended). On a mismatch it fails with
/// [`DigestError`] in place of the frame or the end, and yields nothing after.
pub type Verified<B> = Hooked<B, Digests>;

/// What a [`Verified`] body checks, and how far it got.
pub struct Digests {
    expected: Expected,
    /// The running digests; `None` once checked.
    hashers: Option<Hashers>,
    /// Data bytes still due, when the length is known.
    remaining: Option<u64>,
    failed: bool,
}

impl<B: Body> Verified<B> {
    /// Checks `inner` against `expected`; `length` is its data length when known.
    pub fn new(inner: B, expected: impl Into<Expected>, length: Option<u64>) -> Self {
        let expected = expected.into();
        let digests = Digests {
            hashers: Some(Hashers::new(&expected)),
            expected,
            remaining: length,
            failed: false,
        };
        Hooked::wrap(inner, digests)
    }
}

impl Digests {
    /// Finishes the digests (once) and compares them.
    fn finish(&mut self) -> Result<(), BoxError> {
        let Some(hashers) = self.hashers.take() else {
            return Ok(());
        };
        hashers.finish(&self.expected).map_err(|e| {
            self.failed = true;
            BoxError::from(e)
        })
    }
}

impl<B: Body> Hook<B> for Digests {
    fn before(&mut self, _: &mut Context<'_>) -> Step {
        match self.failed {
            true => ControlFlow::Break(Poll::Ready(None)),
            false => ControlFlow::Continue(()),
        }
    }

    fn frame(&mut self, given: Given, inner: &mut B, _: &mut Context<'_>) -> Step {
        let frame = match given {
            Some(Ok(frame)) => frame,
            None => return ControlFlow::Break(Poll::Ready(self.finish().err().map(Err))),
            error => return ControlFlow::Break(Poll::Ready(error)),
        };
        if let (Some(data), Some(hashers)) = (frame.data_ref(), self.hashers.as_mut()) {
            hashers.update(data);
            let last = match self.remaining.as_mut() {
                Some(remaining) => {
                    *remaining = remaining.saturating_sub(data.len() as u64);
                    *remaining == 0
                }
                None => false,
            };
            if last || inner.is_end_stream() {
                if let Err(e) = self.finish() {
                    return ControlFlow::Break(Poll::Ready(Some(Err(e))));
                }
            }
        }
        ControlFlow::Break(Poll::Ready(Some(Ok(frame))))
    }

    fn is_end_stream(&self, inner: &B) -> bool {
        // Not before the check: an empty body must still be polled to be checked.
        self.failed || (self.hashers.is_none() && inner.is_end_stream())
    }
}

#[cfg(test)]
#[path = "digest_tests.rs"]
mod tests;
