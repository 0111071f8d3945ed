//! Client identities (`--access-file`): who a request comes from, and what it may touch.
//!
//! # Design
//!
//! - **The file** (`file`) is TOML, parsed once per (re)load into an immutable [`AccessList`]:
//!   names, key ids and secrets validated, bucket globs compiled (globset) into one read-write
//!   and one read-only set per client, so "the highest access that matches wins" is two
//!   lookups. [`AccessControl`] holds the current list in an `ArcSwap`: requests read it
//!   without locks, [`AccessControl::reload`] swaps in a new one and keeps the old one when the
//!   new file does not parse.
//! - **Forward mode and CONNECT** (`basic`): `Proxy-Authorization: Basic`. The presented secret
//!   is hashed and compared with the stored SHA-256 in constant time (`subtle`), so neither its
//!   content nor its length shows in the timing; an unknown key id costs the same comparison.
//! - **Endpoint mode** (`sigv4`, `signed`): the client's own SigV4, header or presigned, is
//!   re-created by aws-sigv4 (the proxy's one signer) from exactly what the client signed, with
//!   the client's secret, and compared in constant time. Every `x-amz-*` header must be signed
//!   (`x-amz-content-sha256` is, as the payload line). What the signature says of the body is
//!   handed on as a [`BodyCheck`]: a SHA-256 for `digest` to check, or the chain of chunk
//!   signatures (`chunks`) for `aws_chunked` to check as it decodes.
//! - **Client sessions** (`session`): the answer to a client's CreateSession is minted
//!   statelessly: the token is an HMAC (per-process random key) over client, bucket, mode,
//!   expiry and the client entry's fingerprint; the session secret and key id derive from that
//!   HMAC. Nothing is stored, nothing needs evicting, and an edited or removed client entry
//!   invalidates its sessions at once.
//! - **Authorisation** (`access`): [`Principal::may`] checks bucket, access level, copy source,
//!   and a session's own bucket and mode.
//!
//! # What the pipeline calls
//!
//! ```text
//! let access = Arc::new(AccessControl::load(path)?);            // start-up; SIGHUP: access.reload(path)
//! // forward mode / CONNECT (407 with Proxy-Authenticate on error):
//! let who = access.authenticate_basic(parts.headers.get(PROXY_AUTHORIZATION))?;
//! // endpoint mode (before stripping the client's auth):
//! let Admission { principal: who, body } = access.verify_sigv4(&parts, SystemTime::now())?;
//! // after routing, before anything goes upstream:
//! who.may(route.operation, bucket.as_deref(), parts.headers.get("x-amz-copy-source"))?;
//! // a client's own CreateSession:
//! let mode = identity::requested_mode(&parts.headers)?;
//! let minted = access.create_session(&who, bucket, mode, SystemTime::now())?;  // 200, minted.body()
//! // an open tunnel, on each later request: who = access.refresh(&who)?;
//! ```
//! Every error is an [`AuthError`] with a client-safe `Display` and a `detail()` for the log;
//! the status and S3 code a client sees are decided in `error.rs`, with every other error's.

mod access;
mod amz_date;
mod basic;
mod chunks;
mod error;
mod file;
mod secret;
mod session;
mod signed;
mod sigv4;

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use http::request::Parts;
use http::{HeaderMap, HeaderValue};

pub use access::{copy_source_bucket, required_access, Principal};
pub use amz_date::parse_amz_date;
pub use chunks::{ChunkSignatures, SIGNATURE_LEN};
pub use error::{AccessFileError, AuthError, HeadersNotSigned, ProxyAuthFailure, Refusal};
pub use file::SESSION_KEY_PREFIX;
pub use file::{Access, AccessList, Client};
pub use secret::Secret;
pub use session::{MintedSession, SessionGrant, SessionKey, SESSION_LIFETIME};
pub use signed::{MAX_PRESIGN_EXPIRES, MAX_SKEW};

use crate::route::operation::Mode;
use crate::sign::digest::Sha256;
use signed::SignedRequest;

/// A request its own SigV4 signature admits: who sent it, and what its body must satisfy.
#[derive(Debug)]
pub struct Admission {
    /// The client (or its session).
    pub principal: Principal,
    /// What the signature says of the body.
    pub body: BodyCheck,
}

/// What a client's signature says its body is, for the proxy to check as it streams.
#[derive(Debug, Default)]
pub enum BodyCheck {
    /// Nothing to check (`UNSIGNED-PAYLOAD`, an unsigned trailer, or not a SigV4 request).
    #[default]
    None,
    /// The body's SHA-256 (`x-amz-content-sha256`).
    Sha256(Sha256),
    /// Chunk signatures (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`; boxed, as few
    /// requests carry them).
    Chunks(Box<ChunkSignatures>),
}

impl BodyCheck {
    /// The SHA-256 to check, and the chunk signatures to check.
    pub fn split(self) -> (Option<Sha256>, Option<Box<ChunkSignatures>>) {
        match self {
            BodyCheck::None => (None, None),
            BodyCheck::Sha256(sha256) => (Some(sha256), None),
            BodyCheck::Chunks(chunks) => (None, Some(chunks)),
        }
    }
}

/// The current access list and the key that signs session tokens; shared by every connection.
#[derive(Debug)]
pub struct AccessControl {
    list: ArcSwap<AccessList>,
    key: SessionKey,
}

impl AccessControl {
    /// Holds `list`, with `key` for session tokens.
    pub fn new(list: AccessList, key: SessionKey) -> Self {
        AccessControl {
            list: ArcSwap::from_pointee(list),
            key,
        }
    }

    /// Loads the file at `path`, with a random session key.
    pub fn load(path: &Path) -> Result<Self, AccessFileError> {
        Ok(Self::new(AccessList::load(path)?, SessionKey::random()))
    }

    /// Re-reads `path`; on any error the current list stays in force.
    pub fn reload(&self, path: &Path) -> Result<(), AccessFileError> {
        let list = AccessList::load(path)?;
        self.list.store(Arc::new(list));
        Ok(())
    }

    /// The list in force now.
    pub fn list(&self) -> Arc<AccessList> {
        self.list.load_full()
    }

    /// Forward mode and CONNECT: the client named by `Proxy-Authorization` (407 otherwise).
    pub fn authenticate_basic(&self, header: Option<&HeaderValue>) -> Result<Principal, AuthError> {
        basic::authenticate(&self.list.load(), header).map(Principal::client)
    }

    /// Endpoint mode: the client whose SigV4 signature (header or presigned; its own keys or
    /// a session minted for it) the request carries, and what its body must then hash to.
    /// Call it on the request as received. Every `x-amz-*` header must be signed.
    pub fn verify_sigv4(&self, parts: &Parts, now: SystemTime) -> Result<Admission, Refusal> {
        let signed = SignedRequest::parse(parts)?;
        signed.check_scope(true)?;
        let payload = signed.payload(parts)?;
        let list = self.list.load();
        let key_id = signed.credential.access_key_id();
        if let Some(client) = list.by_access_key_id(key_id) {
            signed.check_time(now)?;
            let body = signed.admit(parts, client.identity(), payload)?;
            let principal = Principal::client(client.clone());
            return Ok(Admission { principal, body });
        }
        if !key_id.starts_with(SESSION_KEY_PREFIX) {
            return Err(AuthError::InvalidAccessKeyId.into());
        }
        let token = session::token_of(parts, signed.form).ok_or(AuthError::InvalidToken(
            "a session key id without a session token",
        ))?;
        signed.check_time(now)?;
        let opened = session::open(&self.key, &list, &token, key_id, now)?;
        let body = signed.admit(parts, &opened.identity, payload)?;
        let principal = Principal {
            client: opened.client,
            session: Some(opened.grant),
        };
        Ok(Admission { principal, body })
    }

    /// A client's own CreateSession on `bucket`: session credentials bound to it and the
    /// bucket. `requested` is `x-amz-create-session-mode` (see [`requested_mode`]); without
    /// one, the highest mode the client's rules allow, as S3 does.
    pub fn create_session(
        &self,
        principal: &Principal,
        bucket: &str,
        requested: Option<Mode>,
        now: SystemTime,
    ) -> Result<MintedSession, AuthError> {
        principal.may(
            crate::route::operation::Operation::CreateSession,
            Some(bucket),
            None,
        )?;
        let access = principal.client.access(bucket);
        let mode = match (requested, access) {
            (Some(Mode::ReadWrite), Some(Access::ReadOnly)) => {
                return Err(AuthError::AccessDenied(
                    "a read-only client asked for a ReadWrite session",
                ))
            }
            (Some(mode), _) => mode,
            (None, Some(Access::ReadWrite)) => Mode::ReadWrite,
            (None, _) => Mode::ReadOnly,
        };
        session::mint(&self.key, &principal.client, bucket, mode, now)
    }

    /// The same principal under the list in force now (for a tunnel's later requests): its
    /// entry's new rules, or an error if the entry is gone or its secret (for a session: any
    /// part of it) changed.
    pub fn refresh(&self, principal: &Principal) -> Result<Principal, AuthError> {
        let list = self.list.load();
        let old = &principal.client;
        let current = list
            .by_access_key_id(old.access_key_id())
            .filter(|c| c.name() == old.name());
        match (current, &principal.session) {
            (None, None) => Err(AuthError::ProxyAuth(ProxyAuthFailure::UnknownKey)),
            (Some(c), None) if c.secret_digest() != old.secret_digest() => {
                Err(AuthError::ProxyAuth(ProxyAuthFailure::WrongSecret))
            }
            (Some(c), Some(_)) if c.fingerprint() != old.fingerprint() => Err(
                AuthError::InvalidToken("the session's client entry changed"),
            ),
            (None, Some(_)) => Err(AuthError::InvalidToken(
                "the session's client is no longer in the access file",
            )),
            (Some(c), session) => Ok(Principal {
                client: c.clone(),
                session: session.clone(),
            }),
        }
    }
}

/// `x-amz-create-session-mode`: `None` when absent.
pub fn requested_mode(headers: &HeaderMap) -> Result<Option<Mode>, AuthError> {
    match headers
        .get("x-amz-create-session-mode")
        .map(HeaderValue::as_bytes)
    {
        None => Ok(None),
        Some(b"ReadOnly") => Ok(Some(Mode::ReadOnly)),
        Some(b"ReadWrite") => Ok(Some(Mode::ReadWrite)),
        Some(_) => Err(AuthError::InvalidSessionMode),
    }
}

#[cfg(test)]
mod botocore_tests;
#[cfg(test)]
mod props_tests;
#[cfg(test)]
mod sigv4_tests;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors_tests;
