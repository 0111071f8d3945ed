//! Sign: strip the client's own auth and hop-by-hop headers, then SigV4-sign for S3 Express:
//! the requests the proxy itself shapes on a fast path (`fast`, with keys cached per day in
//! `keys`), anything else with aws-sigv4.

pub(crate) mod budget;
pub mod checksum;
pub mod content_md5;
pub mod digest;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::Uri;

mod canonical;
mod fast;
mod keys;

pub(crate) use canonical::Uncovered;

/// Why a request could not be signed; nothing was sent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignError {
    /// A header value we would have to sign is not visible ASCII.
    #[error("header {0} has a value that is not ASCII; it cannot be signed")]
    NonAsciiHeader(String),
    /// The target or a header could not be expressed in a signed request.
    #[error("the request could not be signed: {0}")]
    Unsignable(&'static str),
}

/// The header that carries an S3 Express session token.
pub const SESSION_TOKEN_HEADER: &str = "x-amz-s3session-token";
/// The payload hash of unsigned aws-chunked bodies with trailers; such bodies pass unchanged.
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const STREAMING_SIGNED_PREFIX: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

/// How the request body is declared in the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD`: the body streams through unhashed (the upstream is always TLS).
    Unsigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked with a checksum trailer, as the client
    /// sent it or as the proxy framed it (`aws_chunked`).
    StreamingUnsignedTrailer,
    /// The client sent chunks signed with its own (fake) key: they must be decoded to the raw body.
    SignedChunks,
    /// The SHA-256 of an empty body (requests the proxy makes itself).
    Empty,
}

/// Which credentials sign, and where their token goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenHeader {
    /// IAM credentials: a temporary token goes in `x-amz-security-token`.
    SecurityToken,
    /// Session credentials: the token goes in `x-amz-s3session-token`.
    S3Session,
}

/// Headers that belong to one connection and never travel upstream. (Names, not strings: a
/// lookup by string parses it first.)
const HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::TRANSFER_ENCODING,
    header::EXPECT,
];

const CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");

/// Auth the client may have added itself; it is never forwarded.
const CLIENT_AUTH: [HeaderName; 5] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-amz-date"),
    HeaderName::from_static("x-amz-security-token"),
    HeaderName::from_static(SESSION_TOKEN_HEADER),
    CONTENT_SHA256,
];

/// Removes hop-by-hop headers, including those named by `Connection`.
pub fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    remove_all(headers, &HOP_BY_HOP);
}

/// Removes every header named in `names`. It looks first: most heads carry none of them, and
/// a removal hashes the name even when it is absent.
fn remove_all(headers: &mut http::HeaderMap, names: &[HeaderName]) {
    if headers.keys().any(|key| names.contains(key)) {
        for name in names {
            headers.remove(name);
        }
    }
}

/// Strips the client's own auth, and says how the body must be signed.
pub fn strip_client_auth(parts: &mut Parts) -> Payload {
    let payload = match parts
        .headers
        .get(&CONTENT_SHA256)
        .and_then(|v| v.to_str().ok())
    {
        Some(STREAMING_UNSIGNED_TRAILER) => Payload::StreamingUnsignedTrailer,
        Some(v) if v.starts_with(STREAMING_SIGNED_PREFIX) => Payload::SignedChunks,
        _ => Payload::Unsigned,
    };
    strip_hop_by_hop(&mut parts.headers);
    remove_all(&mut parts.headers, &CLIENT_AUTH);
    payload
}

/// Points the request at `https://host` + `path_and_query` (already in canonical form, see
/// `uri`) and sets `Host`.
pub fn set_target(parts: &mut Parts, host: &str, path_and_query: &str) -> Result<(), SignError> {
    const HTTPS: &str = "https://";
    let mut target = String::with_capacity(HTTPS.len() + host.len() + path_and_query.len());
    target.push_str(HTTPS);
    target.push_str(host);
    target.push_str(path_and_query);
    // From a `String` the URI keeps its bytes; parsing a `&str` would copy them.
    parts.uri = Uri::try_from(target)
        .map_err(|_| SignError::Unsignable("the target is not a valid URI"))?;
    parts.version = http::Version::HTTP_11;
    let host =
        HeaderValue::from_str(host).map_err(|_| SignError::Unsignable("the host is not valid"))?;
    parts.headers.insert(header::HOST, host);
    Ok(())
}

/// Where a signature is for: the region and the service (`s3express` or `s3`).
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The signing region.
    pub region: &'a str,
    /// The signing name of the service.
    pub service: &'static str,
}

/// Credentials ready to sign with: the keys, the token as a header value, and the signing keys
/// derived from them (kept per day, region and service; the secret never changes).
pub struct SigningCredentials {
    credentials: Credentials,
    /// The session token as a (sensitive) header value; `None` when there is none or it cannot
    /// be one (then aws-sigv4 signs, and refuses it).
    token: Option<HeaderValue>,
    keys: keys::KeyCache,
}

impl std::fmt::Debug for SigningCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningCredentials { .. }")
    }
}

impl From<Credentials> for SigningCredentials {
    fn from(credentials: Credentials) -> Self {
        Self::new(credentials)
    }
}

impl SigningCredentials {
    /// Wraps `credentials`, with no key derived yet.
    pub fn new(credentials: Credentials) -> Self {
        let token = credentials
            .session_token()
            .and_then(|t| HeaderValue::from_str(t).ok())
            .map(|mut t| {
                t.set_sensitive(true);
                t
            });
        Self {
            credentials,
            token,
            keys: keys::KeyCache::new(),
        }
    }

    /// The credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }
}

/// Which way a request was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signed {
    /// By the fast path.
    Fast,
    /// By aws-sigv4, because the fast path does not cover the request.
    Fallback(Uncovered),
}

/// Signs the request head in place with SigV4, now.
pub fn sign_parts(
    parts: &mut Parts,
    credentials: &SigningCredentials,
    token: TokenHeader,
    scope: Scope<'_>,
    payload: Payload,
) -> Result<(), SignError> {
    sign_at(parts, credentials, token, scope, payload, SystemTime::now()).map(|_| ())
}

/// Signs the request head in place with SigV4 at `time`: on the fast path when it covers the
/// request, else with aws-sigv4 (the same signature either way).
pub(crate) fn sign_at(
    parts: &mut Parts,
    credentials: &SigningCredentials,
    token: TokenHeader,
    scope: Scope<'_>,
    payload: Payload,
    time: SystemTime,
) -> Result<Signed, SignError> {
    let request = fast::Request {
        credentials,
        token,
        scope,
        payload,
        time,
    };
    match fast::sign(parts, &request) {
        Ok(()) => Ok(Signed::Fast),
        Err(why) => {
            tracing::debug!(target: "s3x_proxy::sign::fast", ?why, "signing with aws-sigv4");
            let identity: Identity = credentials.credentials.clone().into();
            sign_with_aws_sigv4(parts, &identity, token, scope, payload, time)?;
            Ok(Signed::Fallback(why))
        }
    }
}

/// The settings the proxy signs with (the fast path gives the same signatures).
fn settings(token: TokenHeader) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    if token == TokenHeader::S3Session {
        settings.session_token_name_override = Some(SESSION_TOKEN_HEADER);
    }
    settings
}

/// Signs with aws-sigv4's `http_request::sign`.
fn sign_with_aws_sigv4(
    parts: &mut Parts,
    identity: &Identity,
    token: TokenHeader,
    scope: Scope<'_>,
    payload: Payload,
    time: SystemTime,
) -> Result<(), SignError> {
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings(token))
        .build()
        .map_err(|_| SignError::Unsignable("incomplete signing parameters"))?
        .into();
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let value = value
            .to_str()
            .map_err(|_| SignError::NonAsciiHeader(name.to_string()))?;
        headers.push((name.as_str(), value));
    }
    let body = match payload {
        Payload::Unsigned | Payload::SignedChunks => SignableBody::UnsignedPayload,
        Payload::StreamingUnsignedTrailer => SignableBody::StreamingUnsignedPayloadTrailer,
        Payload::Empty => SignableBody::Bytes(&[]),
    };
    let uri = parts.uri.to_string();
    let signable = SignableRequest::new(parts.method.as_str(), uri, headers.into_iter(), body)
        .map_err(|_| SignError::Unsignable("the request cannot be canonicalised"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|_| SignError::Unsignable("SigV4 signing failed"))?
        .into_parts();
    let (signed_headers, _) = instructions.into_parts();
    for h in signed_headers {
        let mut value = HeaderValue::from_str(h.value())
            .map_err(|_| SignError::Unsignable("a signed header value is invalid"))?;
        value.set_sensitive(h.sensitive() || h.name() == "authorization");
        parts.headers.insert(h.name(), value);
    }
    Ok(())
}

#[cfg(test)]
mod fallback_tests;
#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod tests;
