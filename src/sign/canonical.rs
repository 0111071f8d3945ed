//! Sign: the pieces of a canonical request as aws-sigv4 writes them, for the fast path: header
//! lines (left out, replaced, trimmed, sorted, joined) and the query (form-decoded, encoded
//! again, sorted); and the canonical request as a trace line shows it.

use std::borrow::Cow;
use std::sync::LazyLock;

use aws_sigv4::http_request::SigningSettings;
use http::header::HOST;
use http::request::Parts;
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, CONTROLS};

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

/// The date header aws-sigv4 signs.
pub(super) const DATE: &str = "x-amz-date";
/// The payload-hash header aws-sigv4 signs.
pub(super) const CONTENT_SHA256: &str = "x-amz-content-sha256";

/// Most headers signed on the fast path (the proxy's own requests have about ten).
pub(super) const MAX_HEADERS: usize = 48;
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

/// One header line of the canonical request, before sorting.
#[derive(Clone, Copy)]
pub(super) struct Line<'a> {
    name: &'a str,
    /// Its place among the request's headers (repeated names keep their order).
    seq: u16,
    value: &'a [u8],
    /// Whether the value is trimmed as aws-sigv4 trims the request's own headers (the
    /// headers it adds go in as they are).
    trim: bool,
}

pub(super) const NO_LINE: Line<'static> = Line {
    name: "",
    seq: 0,
    value: b"",
    trim: false,
};

/// A query parameter, encoded, as ranges of [`CanonicalQuery::encoded`].
struct Pair {
    start: usize,
    key_end: usize,
    end: usize,
}

/// A query in canonical form, in buffers kept from one request to the next.
#[derive(Default)]
pub(super) struct CanonicalQuery {
    encoded: Vec<u8>,
    decoded: Vec<u8>,
    pairs: Vec<Pair>,
}

impl CanonicalQuery {
    /// Parses `query` as aws-sigv4 does (form decoding: `+` is a space, a key alone has an
    /// empty value), encodes each key and value again, and sorts the pairs.
    pub(super) fn parse(&mut self, query: Option<&str>) -> Result<(), Uncovered> {
        self.encoded.clear();
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
            let start = self.encoded.len();
            encode_component(key, &mut self.decoded, &mut self.encoded);
            let key_end = self.encoded.len();
            if is_presign_param(&self.encoded[start..key_end]) {
                return Err(Uncovered::Presigned);
            }
            encode_component(value, &mut self.decoded, &mut self.encoded);
            let end = self.encoded.len();
            self.pairs.push(Pair {
                start,
                key_end,
                end,
            });
        }
        let query = &self.encoded;
        self.pairs.sort_unstable_by(|a, b| {
            let a = (&query[a.start..a.key_end], &query[a.key_end..a.end]);
            a.cmp(&(&query[b.start..b.key_end], &query[b.key_end..b.end]))
        });
        Ok(())
    }

    /// `key=value&key=value`, as parsed last.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        for (i, pair) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(b'&');
            }
            out.extend_from_slice(&self.encoded[pair.start..pair.key_end]);
            out.push(b'=');
            out.extend_from_slice(&self.encoded[pair.key_end..pair.end]);
        }
    }

    /// Gives back what a huge query made the buffers grow to.
    pub(super) fn shrink(&mut self, keep: usize) {
        for buffer in [&mut self.encoded, &mut self.decoded] {
            if buffer.capacity() > keep {
                buffer.clear();
                buffer.shrink_to(keep / 16);
            }
        }
        if self.pairs.capacity() > keep / 16 {
            self.pairs = Vec::new();
        }
    }
}

/// The lines aws-sigv4 would sign, unsorted, into `lines`: the request's headers less those it
/// leaves out or replaces, then `x-amz-date`, `x-amz-content-sha256` and the token. Returns
/// how many there are.
pub(super) fn header_lines<'a>(
    parts: &'a Parts,
    date_time: &'a [u8],
    payload_hash: &'a [u8],
    token: Option<(&'a str, &'a str)>,
    lines: &mut [Line<'a>; MAX_HEADERS + 3],
) -> Result<usize, Uncovered> {
    let mut count = 0;
    let mut host = false;
    let token_name = token.map(|(name, _)| name);
    for (name, value) in &parts.headers {
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
    add(DATE, date_time);
    add(CONTENT_SHA256, payload_hash);
    if let Some((name, value)) = token {
        add(name, value.as_bytes());
    }
    Ok(count)
}

/// `name:value,value\n` for each name of the sorted `lines`.
pub(super) fn write_headers(out: &mut Vec<u8>, lines: &[Line<'_>]) {
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

/// Sorts `lines` as aws-sigv4 orders them: by name, a repeated name's values in their order.
pub(super) fn sort_lines(lines: &mut [Line<'_>]) {
    lines.sort_unstable_by(|a, b| a.name.cmp(b.name).then(a.seq.cmp(&b.seq)));
}

/// `name;name;…` of the sorted `lines`, each name once.
pub(super) fn write_signed_headers(out: &mut Vec<u8>, lines: &[Line<'_>]) {
    for (i, line) in lines.iter().enumerate() {
        if i == 0 || lines[i - 1].name != line.name {
            if i > 0 {
                out.push(b';');
            }
            out.extend_from_slice(line.name.as_bytes());
        }
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
        && crate::route::uri::PRESIGN_PARAMS
            .iter()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(key))
}

/// A canonical request for a trace line: the values of secret headers (tokens, SSE-C keys,
/// credentials) are left out, before the log's own redactor sees it.
pub(super) struct ForLog<'a>(pub(super) &'a [u8]);

impl std::fmt::Display for ForLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(self.0);
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            // Lines 0-2 are the method, path and query; header lines follow.
            match line.split_once(':') {
                Some((name, _)) if i > 2 && is_secret_header(name) => {
                    write!(f, "{name}:{}", crate::logging::redact::REDACTED)?;
                }
                _ => f.write_str(line)?,
            }
        }
        Ok(())
    }
}

fn is_secret_header(name: &str) -> bool {
    name.ends_with("token")
        || name.contains("customer-key")
        || matches!(
            name,
            "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
        )
}
