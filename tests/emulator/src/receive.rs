//! Reading a request body: `x-amz-content-sha256`, aws-chunked, trailers and checksum checks.

use hyper::body::Incoming;

use bytes::Bytes;

use crate::auth::{Auth, Head, Payload};
use crate::error::{Result, S3Error};
use crate::ops::Received;
use crate::route::Op;
use crate::store::State;
use crate::{checksum, chunked};

/// `data` with the byte at `at` flipped (XOR 0x01), as an injected CorruptUpload does.
pub(crate) fn flip(data: Bytes, at: usize) -> Bytes {
    let mut v = data.to_vec();
    if let Some(b) = v.get_mut(at) {
        *b ^= 0x01;
    }
    v.into()
}

/// Reads the body, verifies `x-amz-content-sha256`, removes aws-chunked framing, and checks
/// any checksum headers and trailers. A pending CorruptUpload fault flips a byte of an object
/// upload's data first.
pub(crate) async fn read_body(
    state: &State,
    head: &Head,
    auth: &Auth,
    op: Op,
    incoming: Incoming,
) -> Result<Received> {
    let hint = head.get("content-length").and_then(|v| v.parse().ok());
    let declared_length = hint.is_some() || head.get("x-amz-decoded-content-length").is_some();
    if matches!(op, Op::PutObject | Op::UploadPart) && !declared_length {
        // S3 does not take object data of unknown length (plain Transfer-Encoding: chunked).
        crate::ops::drain(incoming).await;
        return Err(S3Error::new(
            411,
            "MissingContentLength",
            "You must provide the Content-Length HTTP header.",
        ));
    }
    let raw = crate::body::read_all(incoming, hint).await.map_err(|e| {
        S3Error::new(
            400,
            "IncompleteBody",
            format!("Could not read the request body: {e}"),
        )
    })?;
    let aws_chunked = head.get("content-encoding").is_some_and(|e| {
        e.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("aws-chunked"))
    });
    let streaming = matches!(
        auth.payload,
        Payload::UnsignedTrailer | Payload::SignedStreaming
    );
    if aws_chunked && !streaming {
        return Err(S3Error::invalid_argument(
            "Content-Encoding: aws-chunked needs a STREAMING-* x-amz-content-sha256.",
        ));
    }
    let decoded_length: Option<usize> = if streaming {
        head.get("x-amz-decoded-content-length")
            .and_then(|v| v.parse().ok())
    } else {
        Some(raw.len())
    };
    let corrupt_at = match decoded_length {
        Some(n) if n > 0 && matches!(op, Op::PutObject | Op::UploadPart) => {
            state.faults().take_corrupt().then_some(n / 2)
        }
        _ => None,
    };
    let raw = match (streaming, corrupt_at) {
        (false, Some(at)) => flip(raw, at),
        _ => raw,
    };
    let mut checksums = Vec::new();
    let data = match &auth.payload {
        Payload::Unsigned => raw,
        Payload::Sha256(claimed) => {
            let actual = crate::sigv4::sha256_hex(&raw);
            if &actual != claimed {
                return Err(S3Error::new(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
                .with("ClientComputedContentSHA256", claimed.clone())
                .with("S3ComputedContentSHA256", actual));
            }
            raw
        }
        Payload::UnsignedTrailer | Payload::SignedStreaming => {
            let declared: Vec<String> = head
                .get("x-amz-trailer")
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            if auth.payload == Payload::UnsignedTrailer && declared.is_empty() {
                return Err(S3Error::invalid_request(
                    "STREAMING-UNSIGNED-PAYLOAD-TRAILER requires an x-amz-trailer header.",
                ));
            }
            let decoded =
                chunked::decode(&raw, auth.chunk_signer.as_ref(), corrupt_at).map_err(|e| {
                    if e.contains("signature") {
                        S3Error::new(403, "SignatureDoesNotMatch", e).auth()
                    } else {
                        S3Error::new(400, "IncompleteBody", format!("Bad aws-chunked body: {e}"))
                    }
                })?;
            let want: Option<u64> = head
                .get("x-amz-decoded-content-length")
                .and_then(|v| v.parse().ok());
            match want {
                None => {
                    return Err(S3Error::new(
                        411,
                        "MissingContentLength",
                        "aws-chunked bodies need x-amz-decoded-content-length.",
                    ))
                }
                Some(n) if n != decoded.data.len() as u64 => {
                    return Err(S3Error::new(
                        400,
                        "IncompleteBody",
                        format!(
                            "x-amz-decoded-content-length is {n} but the body decodes to {} bytes.",
                            decoded.data.len()
                        ),
                    ))
                }
                _ => {}
            }
            for (name, value) in &decoded.trailers {
                if !declared.contains(name) {
                    return Err(S3Error::new(
                        400,
                        "MalformedTrailerError",
                        format!("Trailer {name} was not declared in x-amz-trailer."),
                    ));
                }
                checksums.push((name.clone(), value.clone()));
            }
            if let Some(missing) = declared
                .iter()
                .find(|d| !decoded.trailers.iter().any(|(n, _)| n == *d))
            {
                return Err(S3Error::new(
                    400,
                    "MalformedTrailerError",
                    format!("The declared trailer {missing} is missing."),
                ));
            }
            decoded.data
        }
    };
    // CompleteMultipartUpload's checksum headers describe the object, not the XML body.
    for name in checksum::HEADERS
        .iter()
        .filter(|_| op != Op::CompleteMultipartUpload)
    {
        if let Some(v) = head.get(name) {
            checksums.push((name.to_string(), v.to_string()));
        }
    }
    for (name, value) in &checksums {
        checksum::verify(name, value, &data)?;
    }
    Ok(Received { data, checksums })
}
