//! Sign: the fast path. For the requests the proxy shapes itself, the canonical request, the
//! string to sign and the Authorization header are written into reused buffers, with the day's
//! key from the cache; aws-sigv4 computes the HMAC. Whatever the path does not cover is left to
//! aws-sigv4's `http_request::sign`, which gives the same bytes (`fast_tests` holds them together).

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;
use std::sync::LazyLock;
use std::time::SystemTime;

use aws_lc_rs::digest;
use aws_sigv4::http_request::SigningSettings;
use aws_sigv4::sign::v4::calculate_signature;
use bytes::BytesMut;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use http::request::Parts;
use http::uri::Scheme;
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, CONTROLS};

use super::keys::{day_and_time, unix_seconds, DayKey};
use super::{Payload, Scope, SigningCredentials, TokenHeader};
use super::{SESSION_TOKEN_HEADER, STREAMING_UNSIGNED_TRAILER};

/// What the fast path leaves to aws-sigv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uncovered {
    /// The URI is not absolute `https://` with a host.
    Uri,
    /// There is no `Host` header.
    NoHost,
    /// A header value is not visible ASCII (aws-sigv4's side then refuses it).
    HeaderValue,
    /// More headers than the fast path sorts on the stack.
    TooManyHeaders,
    /// The query carries presigned-URL parameters.
    Presigned,
    /// The time is before 1970 or past 9999.
    Time,
    /// The token or the access key cannot go in a header (aws-sigv4's side then refuses).
    Credentials,
}

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
const DATE: &str = "x-amz-date";
const CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_DATE: HeaderName = HeaderName::from_static(DATE);
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static(CONTENT_SHA256);
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
const X_AMZ_S3SESSION_TOKEN: HeaderName = HeaderName::from_static(SESSION_TOKEN_HEADER);
/// Most headers signed on the fast path (the proxy's own requests have about ten).
const MAX_HEADERS: usize = 48;
/// Buffers that grew past this (a huge header) are shrunk back after use.
const KEEP_CAPACITY: usize = 64 * 1024;

/// The headers aws-sigv4 leaves out of signatures, from its own default settings.
static EXCLUDED: LazyLock<Vec<Cow<'static, str>>> = LazyLock::new(|| {
    SigningSettings::default()
        .excluded_headers
        .unwrap_or_default()
});

/// What aws-sigv4 percent-encodes in query keys and values (aws-smithy-http's `BASE_SET`:
/// everything but letters, digits and `-._~`).
const QUERY_SET: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'/')
    .add(b':')
    .add(b',')
    .add(b'?')
    .add(b'#')
    .add(b'[')
    .add(b']')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'@')
    .add(b'!')
    .add(b'$')
    .add(b'&')
    .add(b'\'')
    .add(b'(')
    .add(b')')
    .add(b'*')
    .add(b'+')
    .add(b';')
    .add(b'=')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'"')
    .add(b'^')
    .add(b'`')
    .add(b'\\');

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
struct Signing<'a> {
    parts: &'a Parts,
    request: &'a Request<'a>,
    key: &'a DayKey,
    date_time: &'a [u8; 16],
    payload_hash: &'a [u8],
    /// The token header's name and value, when the credentials have a token.
    token: Option<(&'a str, &'a str)>,
}

/// One header line of the canonical request, before sorting.
#[derive(Clone, Copy)]
struct Line<'a> {
    name: &'a str,
    /// Its place among the request's headers (repeated names keep their order).
    seq: u16,
    value: &'a [u8],
    /// Whether the value is trimmed as aws-sigv4 trims the request's own headers (the
    /// headers it adds go in as they are).
    trim: bool,
}

const NO_LINE: Line<'static> = Line {
    name: "",
    seq: 0,
    value: b"",
    trim: false,
};

/// A query parameter, encoded, as ranges of [`Buffers::query`].
struct Pair {
    start: usize,
    key_end: usize,
    end: usize,
}

/// The per-thread buffers the canonical request and the string to sign are written into.
#[derive(Default)]
struct Buffers {
    canonical: Vec<u8>,
    string_to_sign: Vec<u8>,
    query: Vec<u8>,
    decoded: Vec<u8>,
    pairs: Vec<Pair>,
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
        let count = header_lines(signing, &mut lines)?;
        let lines = &mut lines[..count];
        lines.sort_unstable_by(|a, b| a.name.cmp(b.name).then(a.seq.cmp(&b.seq)));

        self.canonical_query(uri.query())?;
        let out = &mut self.canonical;
        out.clear();
        out.extend_from_slice(signing.parts.method.as_str().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(uri.path().as_bytes());
        out.push(b'\n');
        for (i, pair) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(b'&');
            }
            out.extend_from_slice(&self.query[pair.start..pair.key_end]);
            out.push(b'=');
            out.extend_from_slice(&self.query[pair.key_end..pair.end]);
        }
        out.push(b'\n');
        write_headers(out, lines);
        out.push(b'\n');
        let start = out.len();
        for (i, line) in lines.iter().enumerate() {
            if i == 0 || lines[i - 1].name != line.name {
                if i > 0 {
                    out.push(b';');
                }
                out.extend_from_slice(line.name.as_bytes());
            }
        }
        let signed_headers = start..out.len();
        out.push(b'\n');
        out.extend_from_slice(signing.payload_hash);
        Ok(signed_headers)
    }

    /// Parses `query` as aws-sigv4 does (form decoding: `+` is a space, a key alone has an
    /// empty value), encodes each key and value again, and sorts the pairs into `pairs`.
    fn canonical_query(&mut self, query: Option<&str>) -> Result<(), Uncovered> {
        self.query.clear();
        self.pairs.clear();
        let Some(query) = query else {
            return Ok(());
        };
        for sequence in query.as_bytes().split(|b| *b == b'&') {
            if sequence.is_empty() {
                continue;
            }
            let (key, value) = match sequence.iter().position(|b| *b == b'=') {
                Some(at) => (&sequence[..at], &sequence[at + 1..]),
                None => (sequence, &[][..]),
            };
            let start = self.query.len();
            encode_component(key, &mut self.decoded, &mut self.query);
            let key_end = self.query.len();
            if is_presign_param(&self.query[start..key_end]) {
                return Err(Uncovered::Presigned);
            }
            encode_component(value, &mut self.decoded, &mut self.query);
            let end = self.query.len();
            self.pairs.push(Pair {
                start,
                key_end,
                end,
            });
        }
        let query = &self.query;
        self.pairs.sort_unstable_by(|a, b| {
            let a = (&query[a.start..a.key_end], &query[a.key_end..a.end]);
            a.cmp(&(&query[b.start..b.key_end], &query[b.key_end..b.end]))
        });
        Ok(())
    }

    fn shrink(&mut self) {
        for buffer in [
            &mut self.canonical,
            &mut self.string_to_sign,
            &mut self.query,
            &mut self.decoded,
        ] {
            if buffer.capacity() > KEEP_CAPACITY {
                buffer.clear();
                buffer.shrink_to(KEEP_CAPACITY / 16);
            }
        }
        if self.pairs.capacity() > KEEP_CAPACITY / 16 {
            self.pairs = Vec::new();
        }
    }
}

/// The lines aws-sigv4 would sign, unsorted, into `lines`: the request's headers less those it
/// leaves out or replaces, then `x-amz-date`, `x-amz-content-sha256` and the token. Returns
/// how many there are.
fn header_lines<'a>(
    signing: &'a Signing<'_>,
    lines: &mut [Line<'a>; MAX_HEADERS + 3],
) -> Result<usize, Uncovered> {
    let mut count = 0;
    let mut host = false;
    let token_name = signing.token.map(|(name, _)| name);
    for (name, value) in &signing.parts.headers {
        let name = name.as_str();
        if EXCLUDED.iter().any(|excluded| excluded == name)
            || name == DATE
            || name == CONTENT_SHA256
            || Some(name) == token_name
        {
            continue;
        }
        let value = value.to_str().map_err(|_| Uncovered::HeaderValue)?;
        if count == MAX_HEADERS {
            return Err(Uncovered::TooManyHeaders);
        }
        host |= name == HOST.as_str();
        lines[count] = Line {
            name,
            seq: count as u16, // below MAX_HEADERS
            value: value.as_bytes(),
            trim: true,
        };
        count += 1;
    }
    if !host {
        return Err(Uncovered::NoHost);
    }
    let mut add = |name: &'a str, value: &'a [u8]| {
        lines[count] = Line {
            name,
            seq: count as u16,
            value,
            trim: false,
        };
        count += 1;
    };
    add(DATE, signing.date_time);
    add(CONTENT_SHA256, signing.payload_hash);
    if let Some((name, value)) = signing.token {
        add(name, value.as_bytes());
    }
    Ok(count)
}

/// `name:value,value\n` for each name of the sorted `lines`.
fn write_headers(out: &mut Vec<u8>, lines: &[Line<'_>]) {
    for (i, line) in lines.iter().enumerate() {
        let first = i == 0 || lines[i - 1].name != line.name;
        if first {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(line.name.as_bytes());
            out.push(b':');
        } else {
            out.push(b',');
        }
        if line.trim {
            write_trimmed(out, line.value);
        } else {
            out.extend_from_slice(line.value);
        }
    }
    if !lines.is_empty() {
        out.push(b'\n');
    }
}

/// A header value as aws-sigv4 signs it: spaces (only spaces) trimmed at both ends and runs of
/// them squeezed to one.
fn write_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let Some(start) = value.iter().position(|b| *b != b' ') else {
        return;
    };
    let end = value
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |e| e + 1);
    let value = &value[start..end];
    if !value.windows(2).any(|w| w == b"  ") {
        out.extend_from_slice(value);
        return;
    }
    let mut after_space = false;
    for &b in value {
        if b == b' ' && after_space {
            continue;
        }
        after_space = b == b' ';
        out.push(b);
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

/// One query key or value as aws-sigv4 writes it: form-decoded, then percent-encoded with
/// [`QUERY_SET`]. Already canonical ones (the proxy's own) are copied as they are.
fn encode_component(raw: &[u8], decoded: &mut Vec<u8>, out: &mut Vec<u8>) {
    if raw
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        out.extend_from_slice(raw);
        return;
    }
    decoded.clear();
    for (i, piece) in raw.split(|b| *b == b'+').enumerate() {
        if i > 0 {
            decoded.push(b' ');
        }
        decoded.extend(percent_decode(piece));
    }
    let text = String::from_utf8_lossy(decoded);
    for chunk in utf8_percent_encode(&text, QUERY_SET) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

/// True for the parameters of a presigned URL (the proxy never forwards them).
fn is_presign_param(key: &[u8]) -> bool {
    key.len() > 6
        && key[..6].eq_ignore_ascii_case(b"x-amz-")
        && crate::uri::PRESIGN_PARAMS
            .iter()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(key))
}

/// The lowercase hex SHA-256 of `data`.
fn sha256_hex(data: &[u8], out: &mut [u8; 64]) {
    let hash = digest::digest(&digest::SHA256, data);
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(hash.as_ref(), out);
}
