//! The chunk signatures of a client's `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` body,
//! checked against the client's own key as the body streams (`aws_chunked` feeds the data).
//!
//! Each chunk's signature is the HMAC, with the request's signing key, of
//! `AWS4-HMAC-SHA256-PAYLOAD \n DATE \n SCOPE \n PREVIOUS \n SHA256("") \n SHA256(chunk)`, where
//! PREVIOUS is the signature before it (the request's own for the first chunk), the final
//! empty chunk included. The trailer variant ends with `x-amz-trailer-signature`, chained from
//! the final chunk's signature over the trailer lines.
//!
//! aws-sigv4 makes both signatures, but its `sign_chunk` hashes a whole chunk held in memory,
//! and chunks may be large: here the chunk is hashed as its slices pass (aws-lc-rs) and only
//! the string to sign is written out, signed with aws-sigv4's `calculate_signature` and the key
//! of its `generate_signing_key`. Trailers are small and arrive whole: `sign_trailer` signs
//! them as they are.

use std::fmt::Write;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_lc_rs::digest::{self as lc, SHA256};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::http::Headers;
use subtle::ConstantTimeEq;

use super::error::AuthError;

/// The hex SHA-256 of nothing, the fifth line of every chunk's string to sign.
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The length of a hex signature.
pub const SIGNATURE_LEN: usize = 64;

const MISMATCH: AuthError = AuthError::SignatureDoesNotMatch("a chunk signature does not match");

/// The running check of one request's chunk signatures.
pub struct ChunkSignatures {
    key: [u8; 32],
    amz_date: Box<str>,
    /// `DATE/REGION/SERVICE/aws4_request`.
    scope: Box<str>,
    /// The signature the next one chains from.
    previous: String,
    /// The current chunk's data, hashed so far.
    hasher: lc::Context,
    /// What `sign_trailer` needs; `Some` for the trailer variant.
    trailer: Option<TrailerParams>,
}

struct TrailerParams {
    identity: Identity,
    region: Box<str>,
    service: Box<str>,
    time: SystemTime,
}

impl std::fmt::Debug for ChunkSignatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSignatures")
            .field("scope", &self.scope)
            .field("trailer", &self.trailer.is_some())
            .finish_non_exhaustive()
    }
}

/// Where a signature was made: the request's scope and time.
pub(crate) struct Scope<'a> {
    pub amz_date: &'a str,
    pub time: SystemTime,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl ChunkSignatures {
    /// The check of a body whose request was signed with `identity` in `scope`, its signature
    /// `seed`; `trailer` for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`.
    pub(crate) fn new(identity: &Identity, scope: Scope<'_>, seed: &str, trailer: bool) -> Self {
        let secret = identity
            .data::<Credentials>()
            .map(|c| c.secret_access_key())
            .unwrap_or_default();
        let derived = v4::generate_signing_key(secret, scope.time, scope.region, scope.service);
        let mut key = [0u8; 32];
        key.copy_from_slice(derived.as_ref());
        let trailer = trailer.then(|| TrailerParams {
            identity: identity.clone(),
            region: scope.region.into(),
            service: scope.service.into(),
            time: scope.time,
        });
        ChunkSignatures {
            key,
            amz_date: scope.amz_date.into(),
            scope: format!(
                "{}/{}/{}/aws4_request",
                scope.date, scope.region, scope.service
            )
            .into(),
            previous: seed.to_owned(),
            hasher: lc::Context::new(&SHA256),
            trailer,
        }
    }

    /// Whether the body must end with a signed trailer.
    pub fn expects_trailer(&self) -> bool {
        self.trailer.is_some()
    }

    /// Data of the current chunk, as it passes.
    pub fn data(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// The current chunk (all its data seen) ends; `presented` is the signature its header
    /// carried. The next chunk chains from it.
    pub fn end_chunk(&mut self, presented: &[u8]) -> Result<(), AuthError> {
        let hasher = std::mem::replace(&mut self.hasher, lc::Context::new(&SHA256));
        let digest = hasher.finish();
        let mut to_sign = String::with_capacity(256);
        let _ = write!(
            to_sign,
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256_HEX}\n",
            self.amz_date, self.scope, self.previous
        );
        for byte in digest.as_ref() {
            let _ = write!(to_sign, "{byte:02x}");
        }
        let expected = v4::calculate_signature(self.key, to_sign.as_bytes());
        self.accept(expected, presented)
    }

    /// The trailer lines (`name`, `value`; the signature line left out) and the
    /// `x-amz-trailer-signature` that closes them, chained from the final chunk's signature.
    pub fn end_trailer(
        &mut self,
        lines: &[(String, String)],
        presented: &[u8],
    ) -> Result<(), AuthError> {
        let trailer = self
            .trailer
            .as_ref()
            .ok_or(AuthError::SignatureDoesNotMatch(
                "a trailer signature on a body signed without trailer",
            ))?;
        let mut headers = Headers::new();
        for (name, value) in lines {
            headers
                .try_append(name.clone(), value.clone())
                .map_err(|_| AuthError::SignatureDoesNotMatch("a trailer line cannot be signed"))?;
        }
        let params = v4::SigningParams::<()>::builder()
            .identity(&trailer.identity)
            .region(&trailer.region)
            .name(&trailer.service)
            .time(trailer.time)
            .settings(())
            .build()
            .map_err(|_| AuthError::SignatureDoesNotMatch("incomplete signing parameters"))?;
        let expected = v4::sign_trailer(&headers, &self.previous, &params)
            .map_err(|_| AuthError::SignatureDoesNotMatch("the trailer cannot be signed"))?
            .into_parts()
            .1;
        self.accept(expected, presented)
    }

    fn accept(&mut self, expected: String, presented: &[u8]) -> Result<(), AuthError> {
        if !bool::from(expected.as_bytes().ct_eq(presented)) {
            return Err(MISMATCH);
        }
        self.previous = expected;
        Ok(())
    }
}

#[cfg(test)]
#[path = "chunks_tests.rs"]
mod tests;
