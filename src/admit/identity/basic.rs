//! `Proxy-Authorization: Basic base64(access_key_id:secret_access_key)` (forward mode, CONNECT).

use std::sync::Arc;

use aws_lc_rs::digest;
use base64::Engine;
use http::HeaderValue;
use subtle::ConstantTimeEq;

use super::error::{AuthError, ProxyAuthFailure};
use super::file::{AccessList, Client};

/// Compared against when the key id is unknown, so both failures cost the same work.
const NOT_A_SECRET_DIGEST: [u8; 32] = [0x5a; 32];

/// Authenticates a `Proxy-Authorization` value. The secret is compared as SHA-256 digests with
/// `subtle` (constant time, whatever the presented length); the key id is looked up in a map,
/// as S3 does, since key ids are not secret.
pub fn authenticate(
    list: &AccessList,
    header: Option<&HeaderValue>,
) -> Result<Arc<Client>, AuthError> {
    let fail = AuthError::ProxyAuth;
    let header = header.ok_or(fail(ProxyAuthFailure::Missing))?;
    let decoded = decode(header).ok_or(fail(ProxyAuthFailure::Malformed))?;
    let (key_id, secret) = decoded.split();
    let presented = digest::digest(&digest::SHA256, secret);
    let client = list.by_access_key_id(key_id);
    let expected = client.map_or(&NOT_A_SECRET_DIGEST, |c| c.secret_digest());
    let equal: bool = presented.as_ref().ct_eq(expected).into();
    match client {
        None => Err(fail(ProxyAuthFailure::UnknownKey)),
        Some(_) if !equal => Err(fail(ProxyAuthFailure::WrongSecret)),
        Some(client) => Ok(client.clone()),
    }
}

/// A decoded `id:secret`, split at the first colon (key ids never hold one).
struct Decoded {
    text: String,
    colon: usize,
}

impl Decoded {
    fn split(&self) -> (&str, &[u8]) {
        (
            &self.text[..self.colon],
            &self.text.as_bytes()[self.colon + 1..],
        )
    }
}

/// Reads `Basic base64(id:secret)` (the scheme case-insensitive, RFC 7617).
fn decode(header: &HeaderValue) -> Option<Decoded> {
    let value = header.to_str().ok()?;
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let colon = text.find(':')?;
    Some(Decoded { text, colon })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[client]]
name = "agent"
access_key_id = "AKIDAGENT"
secret_access_key = "agent-secret-0123456789"
"#;

    fn basic(text: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn run(header: Option<HeaderValue>) -> Result<String, AuthError> {
        let list = AccessList::parse(FILE, "test").unwrap();
        authenticate(&list, header.as_ref()).map(|c| c.name().to_string())
    }

    #[test]
    fn the_right_key_and_secret_name_the_client() {
        assert_eq!(
            run(Some(basic("AKIDAGENT:agent-secret-0123456789"))).unwrap(),
            "agent"
        );
        let lower = HeaderValue::from_str(&format!(
            "basic  {}",
            base64::engine::general_purpose::STANDARD.encode("AKIDAGENT:agent-secret-0123456789")
        ))
        .unwrap();
        assert_eq!(run(Some(lower)).unwrap(), "agent");
    }

    #[test]
    fn every_failure_is_407_and_only_the_log_tells_them_apart() {
        use ProxyAuthFailure::*;
        let cases = [
            (None, Missing),
            (Some(HeaderValue::from_static("Bearer abc")), Malformed),
            (
                Some(HeaderValue::from_static("Basic !!!not-base64")),
                Malformed,
            ),
            (Some(basic("no-colon-here")), Malformed),
            (Some(HeaderValue::from_static("Basic")), Malformed),
            (Some(basic("AKIDOTHER:agent-secret-0123456789")), UnknownKey),
            (Some(basic("AKIDAGENT:agent-secret-012345678")), WrongSecret),
            (
                Some(basic("AKIDAGENT:agent-secret-0123456789 ")),
                WrongSecret,
            ),
            (Some(basic("AKIDAGENT:")), WrongSecret),
        ];
        let mut details = std::collections::HashSet::new();
        for (header, why) in cases {
            let err = run(header.clone()).unwrap_err();
            assert_eq!(err, AuthError::ProxyAuth(why), "{header:?}");
            // What the client sees, from the one error mapping (`crate::error`).
            let response = crate::error::ProxyError::from(err).into_response("id", false);
            assert_eq!(
                response.status(),
                http::StatusCode::PROXY_AUTHENTICATION_REQUIRED
            );
            assert_eq!(
                response.headers()[http::header::PROXY_AUTHENTICATE],
                "Basic realm=\"s3x-proxy\""
            );
            assert_eq!(err.to_string(), "Proxy authentication required");
            details.insert(err.detail());
        }
        assert_eq!(
            details.len(),
            4,
            "missing, malformed, unknown key, wrong secret"
        );
    }
}
