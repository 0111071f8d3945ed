//! Who signed a request (SigV4 with IAM or session credentials) and what they may run.

use std::time::{Duration, SystemTime};

use crate::chunked::ChunkSigner;
use crate::credentials::{injected_token_faults, resolve};
use crate::error::{Result, S3Error};
use crate::route::Op;
use crate::sigv4;
use crate::store::{Mode, Session, State};

/// How far `X-Amz-Date` may be from the emulator's clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The request head as the verifier sees it: lowercase header names, values as received.
pub(crate) struct Head {
    pub method: String,
    pub raw_path: String,
    pub raw_query: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Who signed the request.
#[derive(Clone, Debug)]
pub(crate) enum Principal {
    /// The IAM credentials, with the secret they were verified with.
    Iam(String),
    Session(Session),
}

impl Principal {
    /// The value recorded in `Counters::auth_by_operation`.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Iam(_) => "iam",
            Principal::Session(s) if s.mode == Mode::ReadOnly => "session-ro",
            Principal::Session(_) => "session-rw",
        }
    }
}

/// What `x-amz-content-sha256` announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    Unsigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked, unsigned, with trailers.
    UnsignedTrailer,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked with chained chunk signatures.
    SignedStreaming,
    /// The hex SHA-256 of the body.
    Sha256(String),
}

/// A verified request.
pub(crate) struct Auth {
    pub principal: Principal,
    pub payload: Payload,
    pub chunk_signer: Option<ChunkSigner>,
}

fn parse_payload(value: Option<&str>) -> Result<Payload> {
    let value = value.ok_or_else(|| {
        S3Error::invalid_request("Missing required header for this request: x-amz-content-sha256")
            .auth()
    })?;
    Ok(match value {
        "UNSIGNED-PAYLOAD" => Payload::Unsigned,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::UnsignedTrailer,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Payload::SignedStreaming,
        v if v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Payload::Sha256(v.to_string())
        }
        v => {
            return Err(S3Error::invalid_argument(format!(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or a lowercase SHA-256 hex digest (the emulator does not support {v:?})"
            ))
            .auth())
        }
    })
}

fn malformed(message: impl Into<String>) -> S3Error {
    S3Error::new(400, "AuthorizationHeaderMalformed", message).auth()
}

/// The credential scope a request must be signed for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope<'a> {
    /// The endpoint's region (for a general-purpose bucket: the bucket's).
    pub region: &'a str,
    /// `s3express` (Zonal, control plane) or `s3` (general purpose).
    pub service: &'a str,
}

impl Scope<'_> {
    fn general_purpose(&self) -> bool {
        self.service == "s3"
    }
}

/// AuthorizationHeaderMalformed for a scope with the wrong region; general-purpose answers
/// also name the bucket's region in `x-amz-bucket-region`.
fn wrong_region(signed: &str, scope: Scope<'_>) -> S3Error {
    let expected = scope.region;
    let e = malformed(format!(
        "The authorization header is malformed; the region '{signed}' is wrong; expecting '{expected}'"
    ))
    .with("Region", expected);
    if scope.general_purpose() {
        e.header("x-amz-bucket-region", expected)
    } else {
        e
    }
}

/// Verifies the signature and resolves the credentials.
pub(crate) fn authenticate(state: &State, head: &Head, scope: Scope<'_>, op: Op) -> Result<Auth> {
    let Some(value) = head.get("authorization") else {
        let presigned = head.raw_query.contains("X-Amz-Signature")
            || head.raw_query.contains("X-Amz-Credential");
        let msg = if presigned {
            "Presigned URLs are not supported by the emulator."
        } else if scope.general_purpose() {
            "Anonymous requests are not allowed on the emulator's general-purpose buckets."
        } else {
            "Anonymous requests are not allowed on directory buckets."
        };
        return Err(S3Error::access_denied(msg).auth());
    };
    let auth = sigv4::parse_authorization(value)
        .map_err(|e| malformed(format!("The authorization header is malformed; {e}")))?;
    if auth.service != scope.service {
        return Err(malformed(format!(
            "The authorization header is malformed; the service '{}' is wrong; expecting '{}'",
            auth.service, scope.service
        )));
    }
    if auth.region != scope.region {
        return Err(wrong_region(&auth.region, scope));
    }
    if scope.general_purpose() && head.get("x-amz-s3session-token").is_some() {
        return Err(S3Error::invalid_request(
            "x-amz-s3session-token is valid only on directory buckets' Zonal endpoints.",
        )
        .auth());
    }
    let amz_date = head.get("x-amz-date").unwrap_or("");
    let when = crate::time::parse_amz_date(amz_date).ok_or_else(|| {
        S3Error::access_denied("AWS authentication requires a valid x-amz-date header").auth()
    })?;
    if !amz_date.starts_with(&auth.date) {
        return Err(malformed(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    let now = SystemTime::now();
    let skew = match now.duration_since(when) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if skew > MAX_SKEW {
        return Err(S3Error::new(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .with("RequestTime", amz_date)
        .with("ServerTime", crate::time::amz_date(now))
        .auth());
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(S3Error::access_denied("The host header must be signed.").auth());
    }
    let unsigned: Vec<&str> = head
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("x-amz-") && !auth.signed_headers.iter().any(|s| s == n))
        .collect();
    if !unsigned.is_empty() {
        return Err(S3Error::access_denied(
            "There were headers present in the request which were not signed",
        )
        .with("HeadersNotSigned", unsigned.join(", "))
        .auth());
    }
    let payload_value = head.get("x-amz-content-sha256");
    let payload = parse_payload(payload_value)?;

    let principal = resolve(
        state,
        head,
        &auth.access_key_id,
        op,
        now,
        scope.general_purpose(),
    )?;
    let secret = match &principal {
        Principal::Iam(secret) => secret.clone(),
        Principal::Session(s) => s.secret_access_key.clone(),
    };
    let req = sigv4::Request {
        method: &head.method,
        raw_path: &head.raw_path,
        raw_query: &head.raw_query,
        headers: &head.headers,
    };
    let payload_hash = payload_value.unwrap_or_default();
    if let Err(m) = sigv4::verify(
        &req,
        &auth,
        &secret,
        amz_date,
        payload_hash,
        sigv4::Options::S3,
    ) {
        return Err(S3Error::new(403, "SignatureDoesNotMatch", m.reason)
            .with("AWSAccessKeyId", auth.access_key_id.clone())
            .with("StringToSign", m.string_to_sign)
            .with("SignatureProvided", auth.signature.clone())
            .with("CanonicalRequest", m.canonical_request)
            .auth());
    }
    if let Principal::Session(_) = &principal {
        injected_token_faults(state, head)?;
    }
    let chunk_signer = (payload == Payload::SignedStreaming).then(|| ChunkSigner {
        key: sigv4::signing_key(&secret, &auth.date, &auth.region, &auth.service),
        amz_date: amz_date.to_string(),
        scope: auth.scope(),
        seed: auth.signature.clone(),
    });
    Ok(Auth {
        principal,
        payload,
        chunk_signer,
    })
}
