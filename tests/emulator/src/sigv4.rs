//! An AWS SigV4 (`AWS4-HMAC-SHA256`) verifier written from the spec, independent of `aws-sigv4`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm supported.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How the canonical URI is derived from the received path (dot-segment removal, when asked
/// for with [`Options::normalize_path`], applies first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriEncoding {
    /// Decode once, encode once (S3, S3 Express): `/a=b` and `/a%3Db` both canonicalise to
    /// `/a%3Db`, and an escaped slash `%2F` stays escaped.
    Single,
    /// Encode the received (already encoded) path again (most other services): `%3D` becomes
    /// `%253D`.
    Double,
}

/// Canonicalisation options.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Remove `.`/`..` segments and empty segments (not for S3).
    pub normalize_path: bool,
    pub encoding: UriEncoding,
}

impl Options {
    /// The rules S3 and S3 Express use: single encoding, no normalisation.
    pub const S3: Options = Options {
        normalize_path: false,
        encoding: UriEncoding::Single,
    };
}

/// A request as received, before any interpretation.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path exactly as sent on the wire (still percent-encoded).
    pub raw_path: &'a str,
    /// The query string exactly as sent, without `?`.
    pub raw_query: &'a str,
    /// Header names and values in the order received; a name may repeat.
    pub headers: &'a [(String, String)],
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD` from the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase header names, as listed.
    pub signed_headers: Vec<String>,
    /// Lowercase hex signature.
    pub signature: String,
}

impl Authorization {
    /// `DATE/REGION/SERVICE/aws4_request`
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Parses an Authorization header value. Errors describe what is malformed.
pub fn parse_authorization(value: &str) -> Result<Authorization, String> {
    let rest = value
        .trim()
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| format!("the algorithm must be {ALGORITHM}"))?;
    if !rest.starts_with(' ') {
        return Err("expected a space after the algorithm".into());
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("malformed component {part:?}"))?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(format!("unknown component {k:?}")),
        };
        if slot.replace(v.to_string()).is_some() {
            return Err(format!("component {k} repeated"));
        }
    }
    let credential = credential.ok_or("missing Credential")?;
    let signed = signed.ok_or("missing SignedHeaders")?;
    let signature = signature.ok_or("missing Signature")?;
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" || parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "Credential must be AKID/DATE/REGION/SERVICE/aws4_request, got {credential:?}"
        ));
    }
    if parts[1].len() != 8 || !parts[1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad credential date {:?}", parts[1]));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("Signature must be 64 lowercase hex digits".into());
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.to_ascii_lowercase() != *h)
    {
        return Err("SignedHeaders must be lowercase, non-empty names".into());
    }
    if signed_headers.windows(2).any(|w| w[0] >= w[1]) {
        return Err("SignedHeaders must be sorted and without repeats".into());
    }
    Ok(Authorization {
        access_key_id: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
        signed_headers,
        signature,
    })
}

/// Percent-encodes every byte except the unreserved set `A-Z a-z 0-9 - . _ ~` (and `/` when
/// `keep_slash`), with uppercase hex, as SigV4 requires.
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes once; a `%` not followed by two hex digits stays as it is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// RFC 3986 section 5.2.4 dot-segment removal, also dropping empty segments.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    let trailing = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|e| path.ends_with(e));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical URI for a received path.
pub fn canonical_uri(raw_path: &str, opts: Options) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let path = if opts.normalize_path {
        normalize_path(path)
    } else {
        path.to_string()
    };
    // Each segment is encoded on its own, so an escaped slash (%2F) stays escaped.
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| match opts.encoding {
            UriEncoding::Single => uri_encode(&percent_decode(segment), false),
            UriEncoding::Double => uri_encode(segment.as_bytes(), false),
        })
        .collect();
    segments.join("/")
}

/// Decodes one query component: `+` is a space, then `%XX` escapes are decoded.
fn decode_query_component(s: &str) -> Vec<u8> {
    percent_decode(&s.replace('+', " "))
}

/// The canonical query string: each name and value decoded, URI-encoded, then sorted.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&decode_query_component(k), false),
                uri_encode(&decode_query_component(v), false),
            )
        })
        .collect();
    pairs.sort();
    let parts: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join("&")
}

/// Trims a header value and collapses runs of whitespace into one space.
pub fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `name:value\n` lines for the signed headers (values of repeated names joined with `,` in the
/// order received). Errors name a signed header that is absent.
pub fn canonical_headers(
    headers: &[(String, String)],
    signed: &[String],
) -> Result<String, String> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| canonical_header_value(v))
            .collect();
        if values.is_empty() {
            return Err(format!("signed header {name:?} is not in the request"));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// The full canonical request.
pub fn canonical_request(
    req: &Request<'_>,
    signed_headers: &[String],
    payload_hash: &str,
    opts: Options,
) -> Result<String, String> {
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.raw_path, opts),
        canonical_query(req.raw_query),
        canonical_headers(req.headers, signed_headers)?,
        signed_headers.join(";"),
        payload_hash
    ))
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The string to sign, from the `YYYYMMDDTHHMMSSZ` timestamp, the scope and the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The derived signing key.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Lowercase hex HMAC of the string to sign.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(key, string_to_sign.as_bytes()))
}

/// Equality that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a signature did not verify, with the values S3 reports back.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub reason: String,
    pub canonical_request: String,
    pub string_to_sign: String,
}

/// Recomputes the signature of `req` with `secret` and compares it to `auth.signature`.
/// `amz_date` is the request's `X-Amz-Date`; `payload_hash` the value for the last line.
pub fn verify(
    req: &Request<'_>,
    auth: &Authorization,
    secret: &str,
    amz_date: &str,
    payload_hash: &str,
    opts: Options,
) -> Result<(), Mismatch> {
    let creq =
        canonical_request(req, &auth.signed_headers, payload_hash, opts).map_err(|reason| {
            Mismatch {
                reason,
                canonical_request: String::new(),
                string_to_sign: String::new(),
            }
        })?;
    let sts = string_to_sign(amz_date, &auth.scope(), &creq);
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    let expected = signature(&key, &sts);
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(Mismatch {
            reason: "The request signature we calculated does not match the signature you provided. Check your key and signing method.".into(),
            canonical_request: creq,
            string_to_sign: sts,
        })
    }
}

/// The string to sign of one `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` chunk.
pub fn chunk_string_to_sign(amz_date: &str, scope: &str, previous: &str, chunk: &[u8]) -> String {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{}",
        sha256_hex(chunk)
    )
}
