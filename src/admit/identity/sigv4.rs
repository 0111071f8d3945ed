//! Verifying a client's own SigV4 signature (endpoint mode), header or presigned-query form.
//!
//! The canonical request is rebuilt from what the client sent (its SignedHeaders and only
//! those, values as received, its path and query, its payload hash) and signed again by
//! aws-sigv4, the same signer the proxy uses upstream, with the client's scope and time and
//! the secret from the access file. Settings mirror S3: single URI encoding, no path
//! normalisation, no headers excluded. The two signatures are compared in constant time.
use std::borrow::Cow;
use std::sync::LazyLock;

use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableRequest, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;
use subtle::ConstantTimeEq;

use super::chunks::{ChunkSignatures, Scope};
use super::error::{AuthError, HeadersNotSigned, Refusal};
use super::signed::{is_param, Form, Payload, SignedRequest};
use super::BodyCheck;

impl SignedRequest<'_> {
    /// Verifies the signature with `identity`, refuses `x-amz-*` headers it does not cover,
    /// and says what the body must then satisfy.
    pub fn admit(
        &self,
        parts: &Parts,
        identity: &Identity,
        payload: Payload<'_>,
    ) -> Result<BodyCheck, Refusal> {
        self.verify(parts, identity, payload)?;
        if let Some(names) = self.unsigned_amz_headers(parts) {
            return Err(HeadersNotSigned { names }.into());
        }
        let trailer = match payload {
            Payload::Sha256(_, sha256) => return Ok(BodyCheck::Sha256(sha256)),
            Payload::StreamingSigned => false,
            Payload::StreamingSignedTrailer => true,
            _ => return Ok(BodyCheck::None),
        };
        let scope = Scope {
            amz_date: &self.amz_date,
            time: self.time,
            date: self.credential.date(),
            region: self.credential.region(),
            service: self.credential.service(),
        };
        let chunks = ChunkSignatures::new(identity, scope, &self.signature, trailer);
        Ok(BodyCheck::Chunks(Box::new(chunks)))
    }

    /// Recomputes the signature with `identity` (whose secret the client should have used)
    /// and compares it with the client's in constant time.
    pub fn verify(
        &self,
        parts: &Parts,
        identity: &Identity,
        payload: Payload<'_>,
    ) -> Result<(), AuthError> {
        let path = parts.uri.path();
        let expected = self.expected_signature(parts, identity, payload, path)?;
        if self.matches(&expected) {
            return Ok(());
        }
        // A client may have signed the canonical encoding of a path it sent less encoded
        // (`/a+b` signed as `/a%2Bb`); both name the same key, the one the proxy forwards.
        let canonical = crate::route::uri::canonical_path(path);
        if canonical != path {
            let expected = self.expected_signature(parts, identity, payload, &canonical)?;
            if self.matches(&expected) {
                return Ok(());
            }
        }
        Err(AuthError::SignatureDoesNotMatch(
            "the signature does not match",
        ))
    }

    fn matches(&self, expected: &str) -> bool {
        expected.as_bytes().ct_eq(self.signature.as_bytes()).into()
    }

    fn expected_signature(
        &self,
        parts: &Parts,
        identity: &Identity,
        payload: Payload<'_>,
        path: &str,
    ) -> Result<String, AuthError> {
        let headers = self.signed_header_values(parts)?;
        let target = self.target(parts, path);
        let request = SignableRequest::new(
            parts.method.as_str(),
            target,
            headers.into_iter(),
            payload.signable(),
        )
        .map_err(|_| AuthError::SignatureDoesNotMatch("the target cannot be canonicalised"))?;
        let settings = match self.form {
            Form::Header => HEADER_SETTINGS.clone(),
            Form::Query => QUERY_SETTINGS.clone(),
        };
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(self.credential.region())
            .name(self.credential.service())
            .time(self.time)
            .settings(settings)
            .build()
            .map_err(|_| AuthError::SignatureDoesNotMatch("incomplete signing parameters"))?
            .into();
        let output = sign(request, &params)
            .map_err(|_| AuthError::SignatureDoesNotMatch("the request cannot be signed"))?;
        Ok(output.into_parts().1)
    }

    /// `(name, value)` for every signed header, every value in order. `host` is the URI's
    /// authority when it has one (h2's `:authority`, which routing follows), else Host.
    fn signed_header_values<'p>(
        &'p self,
        parts: &'p Parts,
    ) -> Result<Vec<(&'p str, &'p str)>, AuthError> {
        let mismatch = AuthError::SignatureDoesNotMatch;
        let mut out = Vec::with_capacity(self.signed_headers.len() / 8 + 1);
        let mut host = false;
        for name in self.signed_headers.split(';') {
            let before = out.len();
            for value in parts.headers.get_all(name) {
                let value = value
                    .to_str()
                    .map_err(|_| mismatch("a signed header is not ASCII"))?;
                out.push((name, value));
            }
            if name == "host" {
                host = true;
                // Routing takes the target's authority (h2's `:authority`) over Host, so that
                // is the host verified; a Host header beside it must name the same one.
                match parts.uri.authority() {
                    Some(authority) => {
                        if out[before..].iter().any(|(_, v)| *v != authority.as_str()) {
                            return Err(mismatch("Host and the request target differ"));
                        }
                        out.truncate(before);
                        out.push((name, authority.as_str()));
                    }
                    None if out.len() == before => return Err(mismatch("no host to verify")),
                    None => {}
                }
            } else if out.len() == before {
                return Err(mismatch("a signed header is not in the request"));
            }
        }
        if !host {
            return Err(self.malformed("SignedHeaders does not include host"));
        }
        Ok(out)
    }

    /// The path and query to canonicalise: as sent, less a presigned URL's signature.
    fn target<'p>(&self, parts: &'p Parts, path: &'p str) -> Cow<'p, str> {
        let path = if path.is_empty() { "/" } else { path };
        let Some(query) = parts.uri.query() else {
            return Cow::Borrowed(path);
        };
        match parts.uri.path_and_query() {
            Some(pq) if self.form == Form::Header && path == parts.uri.path() => {
                Cow::Borrowed(pq.as_str())
            }
            _ => {
                let mut out = String::with_capacity(path.len() + query.len() + 1);
                out.push_str(path);
                let mut separator = '?';
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let key = pair.split_once('=').map_or(pair, |(k, _)| k);
                    if self.form == Form::Query && is_param(key, "X-Amz-Signature") {
                        continue;
                    }
                    out.push(separator);
                    separator = '&';
                    out.push_str(pair);
                }
                Cow::Owned(out)
            }
        }
    }
}

/// S3's settings, with nothing excluded: only the client's signed headers are passed in.
static HEADER_SETTINGS: LazyLock<SigningSettings> = LazyLock::new(|| {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.excluded_headers = None;
    settings
});

/// The same for presigned URLs: the query already holds `X-Amz-Date` and the rest, so the
/// header aws-sigv4 adds for the date is left out of the signed headers.
static QUERY_SETTINGS: LazyLock<SigningSettings> = LazyLock::new(|| {
    let mut settings = HEADER_SETTINGS.clone();
    settings.excluded_headers = Some(vec![Cow::Borrowed("x-amz-date")]);
    settings
});
