//! Client sessions: the credentials the proxy mints when a client sends its own CreateSession,
//! and their stateless verification.
//!
//! A session token is `base64url(payload ‖ tag)`:
//! - `payload` = version (1) ‖ mode (0 ReadOnly, 1 ReadWrite) ‖ expiry (u64 BE, Unix seconds)
//!   ‖ client name (u8 length ‖ bytes) ‖ bucket (u8 length ‖ bytes);
//! - `tag` = HMAC-SHA256(process key, "s3x-proxy session token v1\0" ‖ payload ‖ the client
//!   entry's fingerprint). The fingerprint covers the client's name, key id, secret and rules,
//!   so any change to the entry (or its removal) kills its sessions.
//!
//! The session access key id is `S3XS` + the first 8 bytes of the tag in upper-case hex; the
//! session secret is base64url(HMAC-SHA256(process key, "s3x-proxy session secret v1\0" ‖ tag)).
//! Nothing is stored: a request carrying the token is checked by recomputing the tag (compared
//! in constant time), the expiry, the key id, and then the signature with the derived secret.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_lc_rs::hmac;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::date_time::{DateTime, Format};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::request::Parts;
use percent_encoding::percent_decode_str;
use std::borrow::Cow;
use subtle::ConstantTimeEq;

use super::error::AuthError;
use super::file::{AccessList, Client, SESSION_KEY_PREFIX};
use super::secret::Secret;
use super::signed::Form;
use crate::route::operation::Mode;
use crate::sign::SESSION_TOKEN_HEADER;
use crate::xml;

/// How long a minted session lasts, like S3's.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(300);

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
const MAX_TOKEN_LEN: usize = 1024;
const TOKEN_CONTEXT: &[u8] = b"s3x-proxy session token v1\0";
const SECRET_CONTEXT: &[u8] = b"s3x-proxy session secret v1\0";

/// The key that signs session tokens. Random per process by default: sessions then die with
/// the process (clients get 400 InvalidToken and must create a new session). [`SessionKey::derive`]
/// from a persistent proxy secret keeps them across restarts and replicas.
pub struct SessionKey(hmac::Key);

impl SessionKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        // aws-lc's system RNG fails only if the OS has none; nothing could be secure then.
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator failed");
        SessionKey(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// A key derived from secret material only the proxy holds (say, its CA private key).
    pub fn derive(material: &[u8]) -> Self {
        let extract = hmac::Key::new(hmac::HMAC_SHA256, material);
        let bytes = hmac::sign(&extract, b"s3x-proxy session key v1");
        SessionKey(hmac::Key::new(hmac::HMAC_SHA256, bytes.as_ref()))
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

/// What a session allows: one bucket, one mode, until `expires`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionGrant {
    bucket: Box<str>,
    mode: Mode,
    expires: SystemTime,
}

impl SessionGrant {
    /// The one bucket the session is for.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// ReadOnly or ReadWrite.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// When the session ends.
    pub fn expires(&self) -> SystemTime {
        self.expires
    }

    #[cfg(test)]
    pub(crate) fn for_tests(bucket: &str, mode: Mode, expires: SystemTime) -> Self {
        SessionGrant {
            bucket: bucket.into(),
            mode,
            expires,
        }
    }
}

/// Session credentials minted for a client's CreateSession.
#[derive(Debug)]
pub struct MintedSession {
    access_key_id: String,
    secret: Secret,
    token: Secret,
    grant: SessionGrant,
}

impl MintedSession {
    /// The session access key id (`S3XS…`).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The session secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The session token (`x-amz-s3session-token`).
    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// Bucket, mode and expiry.
    pub fn grant(&self) -> &SessionGrant {
        &self.grant
    }

    /// The expiry as S3 writes it (`2024-01-29T18:53:01Z`).
    pub fn expiration(&self) -> String {
        let secs = unix_secs(self.grant.expires);
        DateTime::from_secs(secs as i64)
            .fmt(Format::DateTime)
            .unwrap_or_default()
    }

    /// The `CreateSessionResult` body of the 200 answer.
    pub fn body(&self) -> String {
        xml::create_session_body(
            &self.access_key_id,
            self.secret.expose(),
            self.token.expose(),
            &self.expiration(),
        )
    }
}

/// Mints a session for `client` on `bucket` (at most 255 bytes: routing validates names).
pub(crate) fn mint(
    key: &SessionKey,
    client: &Client,
    bucket: &str,
    mode: Mode,
    now: SystemTime,
) -> Result<MintedSession, AuthError> {
    let expires = unix_secs(now) + SESSION_LIFETIME.as_secs();
    let bucket_len = u8::try_from(bucket.len())
        .map_err(|_| AuthError::AccessDenied("the bucket name is too long for a session"))?;
    let name = client.name().as_bytes();
    let mut token = Vec::with_capacity(12 + name.len() + bucket.len() + TAG_LEN);
    token.push(VERSION);
    token.push(u8::from(mode == Mode::ReadWrite));
    token.extend_from_slice(&expires.to_be_bytes());
    token.push(name.len() as u8); // names are at most 64 bytes (file validation)
    token.extend_from_slice(name);
    token.push(bucket_len);
    token.extend_from_slice(bucket.as_bytes());
    let tag = tag(key, &token, client.fingerprint());
    token.extend_from_slice(&tag);
    Ok(MintedSession {
        access_key_id: key_id_for(&tag),
        secret: Secret::new(secret_for(key, &tag)),
        token: Secret::new(URL_SAFE_NO_PAD.encode(&token)),
        grant: SessionGrant {
            bucket: bucket.into(),
            mode,
            expires: SystemTime::UNIX_EPOCH + Duration::from_secs(expires),
        },
    })
}

/// A verified session token: whose it is, what it allows, and the key pair to check the
/// request's signature with.
pub(crate) struct Opened {
    pub client: Arc<Client>,
    pub grant: SessionGrant,
    pub identity: Identity,
}

/// Checks a session token presented with `key_id`, against the current access list.
pub(crate) fn open(
    key: &SessionKey,
    list: &AccessList,
    token: &str,
    key_id: &str,
    now: SystemTime,
) -> Result<Opened, AuthError> {
    let invalid = AuthError::InvalidToken;
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("the session token is too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid("the session token is not one the proxy mints"))?;
    let (payload, presented) = bytes
        .split_at_checked(bytes.len().saturating_sub(TAG_LEN))
        .ok_or(invalid("the session token is too short"))?;
    let fields =
        Fields::parse(payload).ok_or(invalid("the session token is not one the proxy mints"))?;
    let client = list.by_name(fields.client).ok_or(invalid(
        "the session's client is no longer in the access file",
    ))?;
    let expected = tag(key, payload, client.fingerprint());
    if !bool::from(expected.as_slice().ct_eq(presented)) {
        return Err(invalid(
            "the session token was not minted by this proxy for this client entry",
        ));
    }
    if unix_secs(now) >= fields.expires {
        return Err(AuthError::ExpiredToken);
    }
    if key_id != key_id_for(&expected) {
        return Err(invalid("the session key id is not the token's"));
    }
    let secret = secret_for(key, &expected);
    let identity = Credentials::new(key_id, secret, None, None, "s3x-proxy-session").into();
    Ok(Opened {
        client: client.clone(),
        grant: SessionGrant {
            bucket: fields.bucket.into(),
            mode: fields.mode,
            expires: SystemTime::UNIX_EPOCH + Duration::from_secs(fields.expires),
        },
        identity,
    })
}

/// The session token of a request: `x-amz-s3session-token`, or a presigned URL's
/// `X-Amz-S3session-Token`.
pub(crate) fn token_of(parts: &Parts, form: Form) -> Option<Cow<'_, str>> {
    match form {
        Form::Header => parts
            .headers
            .get(SESSION_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(Cow::Borrowed),
        Form::Query => parts
            .uri
            .query()?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| k.eq_ignore_ascii_case(SESSION_TOKEN_HEADER))
            .and_then(|(_, v)| percent_decode_str(v).decode_utf8().ok()),
    }
}

struct Fields<'a> {
    mode: Mode,
    expires: u64,
    client: &'a str,
    bucket: &'a str,
}

impl<'a> Fields<'a> {
    fn parse(payload: &'a [u8]) -> Option<Self> {
        let (&version, rest) = payload.split_first()?;
        let (&mode, rest) = rest.split_first()?;
        let (expires, rest) = rest.split_first_chunk::<8>()?;
        let (client, rest) = short_str(rest)?;
        let (bucket, rest) = short_str(rest)?;
        let mode = match mode {
            0 => Mode::ReadOnly,
            1 => Mode::ReadWrite,
            _ => return None,
        };
        (version == VERSION && rest.is_empty()).then_some(Fields {
            mode,
            expires: u64::from_be_bytes(*expires),
            client,
            bucket,
        })
    }
}

/// A u8-length-prefixed UTF-8 string, and what follows it.
fn short_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let (text, rest) = rest.split_at_checked(len as usize)?;
    Some((std::str::from_utf8(text).ok()?, rest))
}

fn tag(key: &SessionKey, payload: &[u8], fingerprint: &[u8; 32]) -> [u8; TAG_LEN] {
    let mut ctx = hmac::Context::with_key(&key.0);
    ctx.update(TOKEN_CONTEXT);
    ctx.update(payload);
    ctx.update(fingerprint);
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

fn secret_for(key: &SessionKey, tag: &[u8; TAG_LEN]) -> String {
    let mut ctx = hmac::Context::with_key(&key.0);
    ctx.update(SECRET_CONTEXT);
    ctx.update(tag);
    URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
}

fn key_id_for(tag: &[u8; TAG_LEN]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(SESSION_KEY_PREFIX.len() + 16);
    out.push_str(SESSION_KEY_PREFIX);
    for byte in &tag[..8] {
        let _ = write!(out, "{byte:02X}");
    }
    out
}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
