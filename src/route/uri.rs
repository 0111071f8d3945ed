//! Request targets: the path and query decoded once, as the proxy reads them, and written back
//! in SigV4 canonical form, so that what is classified, signed and sent are the same bytes.

use percent_encoding::{
    percent_decode, percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC,
};

/// Characters SigV4 leaves unencoded (RFC 3986 unreserved).
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Presigned-URL query parameters (compared case-insensitively); never forwarded.
pub const PRESIGN_PARAMS: &[&str] = &[
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-signedheaders",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-s3session-token",
];

/// Re-encodes a path exactly as SigV4 canonicalises it (each segment decoded once, then every
/// byte but the unreserved ones percent-encoded), so that the path on the wire and the signed
/// canonical URI agree whatever the client sent (`+`, spaces, `!`, unicode, `//`).
pub fn canonical_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let raw: Vec<u8> = percent_decode_str(segment).collect();
        out.extend(percent_encode(&raw, AWS_ENCODE));
    }
    out
}

/// Percent-encodes a query key or value as SigV4 canonicalises it (every byte but the
/// unreserved ones), for queries the proxy writes itself.
pub fn encode_component(value: &str) -> String {
    percent_encode(value.as_bytes(), AWS_ENCODE).to_string()
}

/// A query string, decoded with form rules (`+` is a space, as aws-sigv4 reads it), in the
/// client's order, valueless keys kept, presigned-URL parameters set apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, Option<String>)>,
    presign: Vec<(String, String)>,
}

fn form_decode(part: &str) -> String {
    let spaced = part.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8_lossy()
        .into_owned()
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut query = Query::default();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.split_once('=') {
                Some((k, v)) => (form_decode(k), Some(form_decode(v))),
                None => (form_decode(pair), None),
            };
            if PRESIGN_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(&key)) {
                query
                    .presign
                    .push((key.to_ascii_lowercase(), value.unwrap_or_default()));
            } else {
                query.pairs.push((key, value));
            }
        }
        query
    }

    /// True when the (decoded) key is present.
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// The (decoded) value of a key, if present with a value.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// True when no parameter (other than presigned-URL ones) is present.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The decoded keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// True when any key names the `session` subresource, in any spelling or case.
    pub fn names_session(&self) -> bool {
        self.keys().any(|k| k.eq_ignore_ascii_case("session"))
    }

    /// A presigned-URL parameter the client sent (lowercase name), if any.
    pub fn presigned(&self, name: &str) -> Option<&str> {
        self.presign
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query in SigV4 canonical encoding, presigned parameters left out; `None` when empty.
    pub fn canonical(&self) -> Option<String> {
        if self.pairs.is_empty() {
            return None;
        }
        let mut out = String::new();
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.extend(percent_encode(key.as_bytes(), AWS_ENCODE));
            if let Some(value) = value {
                out.push('=');
                out.extend(percent_encode(value.as_bytes(), AWS_ENCODE));
            }
        }
        Some(out)
    }
}

/// `path?query` as sent: the canonical path and the canonical query.
pub fn path_and_query(path: &str, query: &Query) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let path = canonical_path(path);
    match query.canonical() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries_are_sent_in_canonical_form() {
        assert_eq!(
            canonical_path("/a b/c+d/%7Ee%21/x//y"),
            "/a%20b/c%2Bd/~e%21/x//y"
        );
        assert_eq!(canonical_path("/caf%C3%A9/\u{e9}"), "/caf%C3%A9/%C3%A9");
        assert_eq!(
            canonical_path("/already%20encoded%2Bkey"),
            "/already%20encoded%2Bkey"
        );
        let q = Query::parse(Some("list-type=2&prefix=a+b%2Fc&uploads"));
        assert_eq!(
            q.canonical().unwrap(),
            "list-type=2&prefix=a%20b%2Fc&uploads"
        );
        let q = Query::parse(Some("delimiter=&x-id=GetObject"));
        assert_eq!(q.canonical().unwrap(), "delimiter=&x-id=GetObject");
    }

    #[test]
    fn keys_are_read_decoded_so_no_spelling_hides_a_subresource() {
        for raw in [
            "session",
            "%73ession",
            "%73%65%73%73%69%6F%6E",
            "policy&%73ession",
            "Session=",
            "SESSION",
        ] {
            let q = Query::parse(Some(raw));
            assert!(q.names_session(), "{raw}");
        }
        assert!(!Query::parse(Some("sessions&x=session")).names_session());
        assert_eq!(
            Query::parse(Some("%70olicy")).canonical().unwrap(),
            "policy"
        );
    }

    #[test]
    fn presigned_parameters_are_set_apart_and_others_kept() {
        let q = Query::parse(Some(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&partNumber=1&X-Amz-Signature=ab&uploadId=u&X-Amz-Expires=60",
        ));
        assert_eq!(q.canonical().unwrap(), "partNumber=1&uploadId=u");
        assert_eq!(q.presigned("x-amz-expires"), Some("60"));
        assert_eq!(
            Query::parse(Some("X-Amz-Credential=a%2Fb")).canonical(),
            None
        );
    }
}
