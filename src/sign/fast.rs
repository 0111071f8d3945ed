//! Sign: the fast path. For the requests the proxy shapes itself, the canonical request, the
//! string to sign and the Authorization header are written into reused buffers, with the day's
//! key from the cache; aws-sigv4 computes the HMAC. Whatever the path does not cover is left to
//! aws-sigv4's `http_request::sign`, which gives the same bytes (`fast_tests` holds them together).

use std::cell::RefCell;
use std::ops::Range;
use std::time::SystemTime;

use aws_lc_rs::digest;
use aws_sigv4::sign::v4::calculate_signature;
use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::request::Parts;
use http::uri::Scheme;

use super::canonical::{header_lines, sort_lines, write_headers, write_signed_headers};
use super::canonical::{CanonicalQuery, ForLog, Uncovered, MAX_HEADERS, NO_LINE};
use super::canonical::{CONTENT_SHA256, DATE};
use super::keys::{day_and_time, unix_seconds, DayKey};
use super::{Payload, Scope, SigningCredentials, TokenHeader};
use super::{SESSION_TOKEN_HEADER, STREAMING_UNSIGNED_TRAILER};

/// One request to sign.
pub(super) struct Request<'a> {
    pub(super) credentials: &'a SigningCredentials,
    pub(super) token: TokenHeader,
    pub(super) scope: Scope<'a>,
    pub(super) payload: Payload,
    pub(super) time: SystemTime,
}

const ALGORITHM: &[u8] = b"AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const X_AMZ_DATE: HeaderName = HeaderName::from_static(DATE);
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static(CONTENT_SHA256);
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
const X_AMZ_S3SESSION_TOKEN: HeaderName = HeaderName::from_static(SESSION_TOKEN_HEADER);
/// Buffers that grew past this (a huge header) are shrunk back after use.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Signs `parts` in place, or says why it is left to aws-sigv4 (then `parts` is untouched).
pub(super) fn sign(parts: &mut Parts, request: &Request<'_>) -> Result<(), Uncovered> {
    let seconds = unix_seconds(request.time).ok_or(Uncovered::Time)?;
    let (day, hms) = day_and_time(seconds);
    let credentials = request.credentials;
    let token = match (credentials.credentials.session_token(), &credentials.token) {
        (None, _) => None,
        (Some(raw), Some(value)) => Some((raw, value)),
        (Some(_), None) => return Err(Uncovered::Credentials),
    };
    let key = credentials
        .keys
        .get(
            credentials.credentials.secret_access_key(),
            day,
            request.scope.region,
            request.scope.service,
        )
        .ok_or(Uncovered::Time)?;
    let mut date_time = [b'T'; 16];
    date_time[..8].copy_from_slice(&key.date);
    date_time[9..15].copy_from_slice(&hms);
    date_time[15] = b'Z';
    let mut empty_hash = [0u8; 64];
    let payload_hash = match request.payload {
        Payload::Unsigned | Payload::SignedChunks => UNSIGNED_PAYLOAD.as_bytes(),
        Payload::StreamingUnsignedTrailer => STREAMING_UNSIGNED_TRAILER.as_bytes(),
        Payload::Empty => {
            sha256_hex(b"", &mut empty_hash);
            &empty_hash[..]
        }
    };
    let token_name = match request.token {
        TokenHeader::S3Session => X_AMZ_S3SESSION_TOKEN,
        TokenHeader::SecurityToken => X_AMZ_SECURITY_TOKEN,
    };
    let signing = Signing {
        parts,
        request,
        key: &key,
        date_time: &date_time,
        payload_hash,
        token: token.map(|(raw, _)| (token_name.as_str(), raw)),
    };
    let authorization = with_buffers(|buffers| buffers.authorization(&signing))?;
    let date_time = HeaderValue::from_bytes(&date_time).map_err(|_| Uncovered::Time)?;
    let payload_hash = match request.payload {
        Payload::Unsigned | Payload::SignedChunks => HeaderValue::from_static(UNSIGNED_PAYLOAD),
        Payload::StreamingUnsignedTrailer => HeaderValue::from_static(STREAMING_UNSIGNED_TRAILER),
        Payload::Empty => HeaderValue::from_bytes(&empty_hash).map_err(|_| Uncovered::Time)?,
    };
    let headers = &mut parts.headers;
    headers.insert(X_AMZ_DATE, date_time);
    headers.insert(AUTHORIZATION, authorization);
    headers.insert(X_AMZ_CONTENT_SHA256, payload_hash);
    if let Some((_, value)) = token {
        headers.insert(token_name, value.clone());
    }
    Ok(())
}

/// What one signature is made of.
pub(super) struct Signing<'a> {
    pub(super) parts: &'a Parts,
    request: &'a Request<'a>,
    key: &'a DayKey,
    pub(super) date_time: &'a [u8; 16],
    pub(super) payload_hash: &'a [u8],
    /// The token header's name and value, when the credentials have a token.
    pub(super) token: Option<(&'a str, &'a str)>,
}

/// The per-thread buffers the canonical request and the string to sign are written into.
#[derive(Default)]
struct Buffers {
    canonical: Vec<u8>,
    string_to_sign: Vec<u8>,
    query: CanonicalQuery,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Runs `f` with this thread's buffers (fresh ones if they are busy or gone).
fn with_buffers<T>(mut f: impl FnMut(&mut Buffers) -> T) -> T {
    let reused = BUFFERS.try_with(|cell| {
        let mut buffers = cell.try_borrow_mut().ok()?;
        let result = f(&mut buffers);
        buffers.shrink();
        Some(result)
    });
    match reused {
        Ok(Some(result)) => result,
        _ => f(&mut Buffers::default()),
    }
}

impl Buffers {
    /// The Authorization header of `signing`.
    fn authorization(&mut self, signing: &Signing<'_>) -> Result<HeaderValue, Uncovered> {
        let signed_headers = self.canonical_request(signing)?;
        let mut hash = [0u8; 64];
        sha256_hex(&self.canonical, &mut hash);
        let scope = signing.request.scope;
        let sts = &mut self.string_to_sign;
        sts.clear();
        sts.extend_from_slice(ALGORITHM);
        sts.push(b'\n');
        sts.extend_from_slice(signing.date_time);
        sts.push(b'\n');
        for piece in scope_pieces(&signing.key.date, scope) {
            sts.extend_from_slice(piece);
        }
        sts.push(b'\n');
        sts.extend_from_slice(&hash);
        let signature = calculate_signature(signing.key.key, sts);
        tracing::trace!(
            canonical_request = %ForLog(&self.canonical),
            string_to_sign = std::str::from_utf8(sts).unwrap_or_default(),
            "signed on the fast path"
        );

        let access_key = signing.request.credentials.credentials.access_key_id();
        let signed_headers = &self.canonical[signed_headers];
        let mut value = BytesMut::with_capacity(
            120 + access_key.len()
                + scope.region.len()
                + scope.service.len()
                + signed_headers.len(),
        );
        value.extend_from_slice(ALGORITHM);
        value.extend_from_slice(b" Credential=");
        value.extend_from_slice(access_key.as_bytes());
        value.extend_from_slice(b"/");
        for piece in scope_pieces(&signing.key.date, scope) {
            value.extend_from_slice(piece);
        }
        value.extend_from_slice(b", SignedHeaders=");
        value.extend_from_slice(signed_headers);
        value.extend_from_slice(b", Signature=");
        value.extend_from_slice(signature.as_bytes());
        let mut value =
            HeaderValue::from_maybe_shared(value.freeze()).map_err(|_| Uncovered::Credentials)?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Writes the canonical request into `canonical`; returns where its signed-headers list is.
    fn canonical_request(&mut self, signing: &Signing<'_>) -> Result<Range<usize>, Uncovered> {
        let uri = &signing.parts.uri;
        if uri.scheme() != Some(&Scheme::HTTPS) || uri.authority().is_none() {
            return Err(Uncovered::Uri);
        }
        let mut lines = [NO_LINE; MAX_HEADERS + 3];
        let count = header_lines(
            signing.parts,
            signing.date_time,
            signing.payload_hash,
            signing.token,
            &mut lines,
        )?;
        let lines = &mut lines[..count];
        sort_lines(lines);

        self.query.parse(uri.query())?;
        let out = &mut self.canonical;
        out.clear();
        out.extend_from_slice(signing.parts.method.as_str().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(uri.path().as_bytes());
        out.push(b'\n');
        self.query.write(out);
        out.push(b'\n');
        write_headers(out, lines);
        out.push(b'\n');
        let start = out.len();
        write_signed_headers(out, lines);
        let signed_headers = start..out.len();
        out.push(b'\n');
        out.extend_from_slice(signing.payload_hash);
        Ok(signed_headers)
    }

    fn shrink(&mut self) {
        for buffer in [&mut self.canonical, &mut self.string_to_sign] {
            if buffer.capacity() > KEEP_CAPACITY {
                buffer.clear();
                buffer.shrink_to(KEEP_CAPACITY / 16);
            }
        }
        self.query.shrink(KEEP_CAPACITY);
    }
}

/// `YYYYMMDD/region/service/aws4_request`, in pieces.
fn scope_pieces<'a>(date: &'a [u8; 8], scope: Scope<'a>) -> [&'a [u8]; 6] {
    [
        date,
        b"/",
        scope.region.as_bytes(),
        b"/",
        scope.service.as_bytes(),
        b"/aws4_request",
    ]
}

/// The lowercase hex SHA-256 of `data`.
fn sha256_hex(data: &[u8], out: &mut [u8; 64]) {
    let hash = digest::digest(&digest::SHA256, data);
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(hash.as_ref(), out);
}
