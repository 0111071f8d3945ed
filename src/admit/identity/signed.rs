//! The signature fields of a request (SigV4 `Authorization` header or presigned query), read
//! without copying where possible, and the checks that need no key: scope, time, payload hash,
//! unsigned `x-amz-*` headers.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::SignableBody;
use http::request::Parts;
use http::HeaderName;
use percent_encoding::percent_decode_str;

use super::amz_date::parse_amz_date;
use super::error::AuthError;
use crate::sign::digest::Sha256;

/// How far `X-Amz-Date` may be from the proxy's clock (S3's RequestTimeTooSkewed bound).
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest `X-Amz-Expires` S3 accepts (7 days).
pub const MAX_PRESIGN_EXPIRES: u64 = 7 * 24 * 3600;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Where the signature came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The `Authorization` header.
    Header,
    /// A presigned URL's `X-Amz-*` query parameters.
    Query,
}

/// `AKID/DATE/REGION/SERVICE/aws4_request`, split once.
#[derive(Debug)]
pub(crate) struct Credential<'a> {
    text: Cow<'a, str>,
    slashes: [usize; 4],
}

impl<'a> Credential<'a> {
    fn parse(text: Cow<'a, str>, query: bool) -> Result<Self, AuthError> {
        let bad = |reason| AuthError::Malformed { query, reason };
        let mut slashes = [0usize; 4];
        let mut found = text.match_indices('/').map(|(i, _)| i);
        for slot in &mut slashes {
            *slot = found.next().ok_or(bad(
                "the credential is not KEY/DATE/REGION/SERVICE/aws4_request",
            ))?;
        }
        if found.next().is_some() || &text[slashes[3] + 1..] != "aws4_request" {
            return Err(bad(
                "the credential is not KEY/DATE/REGION/SERVICE/aws4_request",
            ));
        }
        let credential = Credential { text, slashes };
        if credential.access_key_id().is_empty() || credential.region().is_empty() {
            return Err(bad("the credential has an empty key id or region"));
        }
        Ok(credential)
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.slashes[i - 1] + 1 };
        &self.text[start..self.slashes[i]]
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        self.part(0)
    }

    /// The scope date, `YYYYMMDD`.
    pub fn date(&self) -> &str {
        self.part(1)
    }

    /// The scope region.
    pub fn region(&self) -> &str {
        self.part(2)
    }

    /// The scope service (`s3` or `s3express` for S3).
    pub fn service(&self) -> &str {
        self.part(3)
    }
}

/// The payload hash a signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Payload<'a> {
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    StreamingUnsignedTrailer,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: chunks signed with the client's key.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: the same, and a signed trailer.
    StreamingSignedTrailer,
    /// The SHA-256 of the body, as sent (64 hex digits) and read.
    Sha256(&'a str, Sha256),
    /// A body to hash (the test suite's requests, which carry no `x-amz-content-sha256`).
    #[cfg_attr(not(test), allow(dead_code))]
    Body(&'a [u8]),
}

const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

impl<'a> Payload<'a> {
    /// Reads an `x-amz-content-sha256` value: one of S3's markers or a SHA-256 (S3 also
    /// knows the SigV4a markers, which the proxy does not verify: refused like any other).
    fn parse(value: &'a str) -> Result<Self, AuthError> {
        Ok(match value {
            "UNSIGNED-PAYLOAD" => Payload::Unsigned,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::StreamingUnsignedTrailer,
            STREAMING_SIGNED => Payload::StreamingSigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Payload::StreamingSignedTrailer,
            hash => Payload::Sha256(
                hash,
                Sha256::from_hex(hash).ok_or(AuthError::InvalidContentSha256)?,
            ),
        })
    }

    pub(super) fn signable(self) -> SignableBody<'a> {
        match self {
            Payload::Unsigned => SignableBody::UnsignedPayload,
            Payload::StreamingUnsignedTrailer => SignableBody::StreamingUnsignedPayloadTrailer,
            Payload::StreamingSigned => SignableBody::Precomputed(STREAMING_SIGNED.to_owned()),
            Payload::StreamingSignedTrailer => SignableBody::StreamingSignedPayloadTrailer,
            Payload::Sha256(hash, _) => SignableBody::Precomputed(hash.to_owned()),
            Payload::Body(bytes) => SignableBody::Bytes(bytes),
        }
    }
}

/// The signature fields of a request, borrowed where they can be.
#[derive(Debug)]
pub(crate) struct SignedRequest<'a> {
    pub form: Form,
    pub credential: Credential<'a>,
    pub signed_headers: Cow<'a, str>,
    pub signature: Cow<'a, str>,
    /// `X-Amz-Date`, as sent and as a time.
    pub amz_date: Cow<'a, str>,
    pub time: SystemTime,
    /// A presigned URL's `X-Amz-Expires`.
    pub expires: Option<u64>,
}

impl<'a> SignedRequest<'a> {
    /// Reads the signature fields: `Authorization` if present, else the presigned query.
    pub fn parse(parts: &'a Parts) -> Result<Self, AuthError> {
        match parts.headers.get(http::header::AUTHORIZATION) {
            Some(value) => {
                let query = parts.uri.query().unwrap_or_default();
                if query_pairs(query).any(|(k, _)| is_param(k, "X-Amz-Signature")) {
                    return Err(header_error(
                        "both an Authorization header and a presigned URL",
                    ));
                }
                let value = value
                    .to_str()
                    .map_err(|_| header_error("Authorization is not ASCII"))?;
                Self::from_header(parts, value)
            }
            None => Self::from_query(parts.uri.query().unwrap_or_default()),
        }
    }

    fn from_header(parts: &'a Parts, value: &'a str) -> Result<Self, AuthError> {
        let rest = value
            .strip_prefix(ALGORITHM)
            .filter(|r| r.starts_with(' '))
            .ok_or(AuthError::UnsupportedSignature)?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for item in rest.split(',') {
            let (key, val) = item
                .trim()
                .split_once('=')
                .ok_or(header_error("an Authorization component is not KEY=VALUE"))?;
            let slot = match key {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => return Err(header_error("an unknown Authorization component")),
            };
            if slot.replace(val).is_some() {
                return Err(header_error("a repeated Authorization component"));
            }
        }
        let missing = header_error("Authorization lacks Credential, SignedHeaders or Signature");
        let amz_date = parts
            .headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or(header_error("no X-Amz-Date header"))?;
        Ok(SignedRequest {
            form: Form::Header,
            credential: Credential::parse(Cow::Borrowed(credential.ok_or(missing)?), false)?,
            signed_headers: Cow::Borrowed(signed_headers.ok_or(missing)?),
            signature: Cow::Borrowed(signature.ok_or(missing)?),
            time: parse_amz_date(amz_date)
                .ok_or(header_error("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?,
            amz_date: Cow::Borrowed(amz_date),
            expires: None,
        })
    }

    fn from_query(query: &'a str) -> Result<Self, AuthError> {
        const NAMES: [&str; 6] = [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        ];
        let mut found: [Option<Cow<'a, str>>; 6] = Default::default();
        for (key, value) in query_pairs(query) {
            if let Some(i) = NAMES.iter().position(|n| is_param(key, n)) {
                let value = percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| query_error("a presigned parameter is not UTF-8"))?;
                if found[i].replace(value).is_some() {
                    return Err(query_error("a repeated presigned parameter"));
                }
            }
        }
        if found.iter().all(Option::is_none) {
            let sigv2 = query_pairs(query).any(|(k, _)| is_param(k, "AWSAccessKeyId"));
            return Err(if sigv2 {
                AuthError::UnsupportedSignature
            } else {
                AuthError::Anonymous
            });
        }
        let [algorithm, credential, date, expires, signed_headers, signature] =
            found.map(|v| v.ok_or(query_error("a presigned parameter is missing")));
        if algorithm? != ALGORITHM {
            return Err(query_error("X-Amz-Algorithm is not AWS4-HMAC-SHA256"));
        }
        let expires = expires?
            .parse::<u64>()
            .ok()
            .filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e))
            .ok_or(query_error("X-Amz-Expires is not 1 to 604800 seconds"))?;
        let amz_date = date?;
        Ok(SignedRequest {
            form: Form::Query,
            credential: Credential::parse(credential?, true)?,
            signed_headers: signed_headers?,
            signature: signature?,
            time: parse_amz_date(&amz_date)
                .ok_or(query_error("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?,
            amz_date,
            expires: Some(expires),
        })
    }

    pub(super) fn malformed(&self, reason: &'static str) -> AuthError {
        AuthError::Malformed {
            query: self.form == Form::Query,
            reason,
        }
    }

    /// The scope must name this day, `aws4_request`, and (for S3) `s3` or `s3express`.
    pub fn check_scope(&self, s3_only: bool) -> Result<(), AuthError> {
        if self.credential.date() != &self.amz_date[..8] {
            return Err(self.malformed("the credential date is not X-Amz-Date's day"));
        }
        if s3_only && !matches!(self.credential.service(), "s3" | "s3express") {
            return Err(self.malformed("the credential service is not s3 or s3express"));
        }
        Ok(())
    }

    /// Header signatures must be within [`MAX_SKEW`] of `now`; presigned URLs within their
    /// lifetime (and not dated more than [`MAX_SKEW`] ahead).
    pub fn check_time(&self, now: SystemTime) -> Result<(), AuthError> {
        let ahead = self.time.duration_since(now).unwrap_or_default();
        let behind = now.duration_since(self.time).unwrap_or_default();
        match self.expires {
            None if ahead > MAX_SKEW || behind > MAX_SKEW => Err(AuthError::RequestTimeTooSkewed),
            Some(_) if ahead > MAX_SKEW => Err(AuthError::RequestNotYetValid),
            Some(expires) if behind > Duration::from_secs(expires) => {
                Err(AuthError::RequestExpired)
            }
            _ => Ok(()),
        }
    }

    /// The payload hash S3 signs: `x-amz-content-sha256` (a hash, `UNSIGNED-PAYLOAD` or a
    /// `STREAMING-*` marker), required with header signatures; for presigned URLs the same
    /// when the header is present, else `UNSIGNED-PAYLOAD` (botocore's rule, and S3's).
    /// Either way the value is the canonical request's last line, so the signature covers it
    /// whether or not SignedHeaders names it.
    pub fn payload<'p>(&self, parts: &'p Parts) -> Result<Payload<'p>, AuthError> {
        let mut values = parts.headers.get_all(CONTENT_SHA256).iter();
        let value = match (values.next(), values.next()) {
            (None, _) if self.form == Form::Query => return Ok(Payload::Unsigned),
            (None, _) => return Err(AuthError::MissingContentSha256),
            (Some(_), Some(_)) => return Err(self.malformed("x-amz-content-sha256 is repeated")),
            (Some(value), None) => value,
        };
        let value = value
            .to_str()
            .map_err(|_| AuthError::InvalidContentSha256)?;
        Payload::parse(value)
    }

    /// Every `x-amz-*` header of the request must be among the signed headers (S3's rule),
    /// but `x-amz-content-sha256`, which the signature covers as its payload line (see
    /// [`SignedRequest::payload`]). The names of those that are not, sorted, comma-separated.
    pub fn unsigned_amz_headers(&self, parts: &Parts) -> Option<String> {
        let mut unsigned: Vec<&str> = parts
            .headers
            .keys()
            .map(HeaderName::as_str)
            .filter(|name| name.starts_with("x-amz-") && *name != CONTENT_SHA256)
            .filter(|name| {
                !self
                    .signed_headers
                    .split(';')
                    .any(|signed| signed.eq_ignore_ascii_case(name))
            })
            .collect();
        if unsigned.is_empty() {
            return None;
        }
        unsigned.sort_unstable();
        Some(unsigned.join(", "))
    }
}

const CONTENT_SHA256: &str = "x-amz-content-sha256";

fn header_error(reason: &'static str) -> AuthError {
    AuthError::Malformed {
        query: false,
        reason,
    }
}

fn query_error(reason: &'static str) -> AuthError {
    AuthError::Malformed {
        query: true,
        reason,
    }
}

/// Raw `key=value` pairs of a query (no decoding).
pub(super) fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// True when a raw query key is `name` (percent-decoded, case-insensitive).
pub(super) fn is_param(raw_key: &str, name: &str) -> bool {
    if !raw_key.contains('%') {
        return raw_key.eq_ignore_ascii_case(name);
    }
    percent_decode_str(raw_key)
        .decode_utf8()
        .is_ok_and(|k| k.eq_ignore_ascii_case(name))
}
