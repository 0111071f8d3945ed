//! Repeats: a header the proxy decides on must appear once. The proxy reads one value (the
//! first) where S3 may read another, so a second `x-amz-copy-source` would be a copy source that
//! was never authorised; such a request is refused with S3's `400 DuplicateHeaderName` before
//! anything else looks at it (DESIGN §3.2, "Repeated headers").

use http::header::HeaderMap;

/// A header the proxy decides on appears more than once (400 DuplicateHeaderName).
#[derive(Debug, thiserror::Error)]
#[error("Your request contains duplicate headers: {0}")]
pub struct RepeatedHeader(pub &'static str);

/// The headers whose value decides what the proxy does: routing (`Host`), identity and
/// signing (`Authorization`, `Proxy-Authorization`, the date, tokens and payload hash), the
/// body's framing and checks, what is authorised (copy and rename sources), the session a
/// request uses (its mode and SSE settings), and the bridges (`x-amz-storage-class`).
const DECIDED: &[&str] = &[
    "host",
    "authorization",
    "proxy-authorization",
    "content-length",
    "content-md5",
    "expect",
    "x-amz-content-sha256",
    "x-amz-decoded-content-length",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-s3session-token",
    "x-amz-trailer",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-copy-source",
    "x-amz-copy-source-range",
    "x-amz-write-offset-bytes",
    "x-amz-rename-source",
    "x-amz-create-session-mode",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
];

/// Refuses a request in which a header of [`DECIDED`] appears more than once. A request with no
/// repeated header at all (nearly every request) costs one comparison: `len` counts values,
/// `keys_len` names.
pub fn refuse_repeats(headers: &HeaderMap) -> Result<(), RepeatedHeader> {
    if headers.len() == headers.keys_len() {
        return Ok(());
    }
    repeated(headers)
}

#[cold]
fn repeated(headers: &HeaderMap) -> Result<(), RepeatedHeader> {
    for name in DECIDED {
        if headers.get_all(*name).iter().nth(1).is_some() {
            return Err(RepeatedHeader(name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{self, HeaderName};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_decided_header_twice_is_refused_and_others_may_repeat() {
        let single = headers(&[("host", "h"), ("x-amz-copy-source", "/a/k")]);
        assert!(refuse_repeats(&single).is_ok());
        let other = headers(&[("accept", "a"), ("accept", "b"), ("x-amz-meta-a", "1")]);
        assert!(refuse_repeats(&other).is_ok());
        for name in DECIDED {
            let twice = headers(&[(name, "1"), ("accept", "a"), (name, "2")]);
            let refused = refuse_repeats(&twice).unwrap_err();
            assert_eq!(refused.0, *name);
            assert_eq!(
                refused.to_string(),
                format!("Your request contains duplicate headers: {name}")
            );
        }
        // Names are case-insensitive: `Host` and `host` are one header.
        let mut map = HeaderMap::new();
        map.append("Host", "a".parse().unwrap());
        map.append("HOST", "b".parse().unwrap());
        assert_eq!(refuse_repeats(&map).unwrap_err().0, "host");
    }

    #[test]
    fn every_name_is_lowercase_and_listed_once() {
        for (i, name) in DECIDED.iter().enumerate() {
            assert_eq!(HeaderName::from_static(name).as_str(), *name);
            assert!(!DECIDED[i + 1..].contains(name), "{name}");
        }
        assert!(DECIDED.contains(&header::HOST.as_str()));
        for sse in crate::session::create_session::SSE_HEADERS {
            assert!(DECIDED.contains(sse), "{sse}");
        }
    }
}
