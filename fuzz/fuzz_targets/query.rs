//! `Query::parse` → `canonical`, `canonical_path` and `path_and_query`: the canonical form uses
//! only unreserved characters, `%XX`, and the separators; canonicalising it again changes
//! nothing; and it reads back to the same parameters (so the `session` test and the operation
//! table see on the canonical form what they saw on the client's).
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3x_proxy::route::uri::{canonical_path, path_and_query, Query, PRESIGN_PARAMS};

/// Only RFC 3986 unreserved characters, `%XX` (uppercase hex) and the given separators.
fn is_canonical(s: &str, separators: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_alphanumeric() || b"-._~".contains(&c) || separators.contains(&c) => {
                i += 1
            }
            b'%' if i + 2 < b.len()
                && b[i + 1..=i + 2]
                    .iter()
                    .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)) =>
            {
                i += 3
            }
            _ => return false,
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let query = Query::parse(Some(raw));
    match query.canonical() {
        None => assert!(query.is_empty()),
        Some(canonical) => {
            assert!(is_canonical(&canonical, b"&="), "{raw:?} -> {canonical:?}");
            let again = Query::parse(Some(&canonical));
            assert_eq!(
                again.canonical().as_deref(),
                Some(canonical.as_str()),
                "{raw:?}"
            );
            assert_eq!(
                again.keys().collect::<Vec<_>>(),
                query.keys().collect::<Vec<_>>()
            );
            for key in query.keys() {
                assert_eq!(again.value(key), query.value(key), "{raw:?} {key:?}");
            }
            assert_eq!(again.names_session(), query.names_session(), "{raw:?}");
        }
    }
    // Presigned-URL parameters are never among the forwarded keys.
    for key in query.keys() {
        assert!(
            !PRESIGN_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(key)),
            "{raw:?}: {key:?} forwarded"
        );
    }
    // Paths: canonical, idempotent, the same number of segments.
    let path = canonical_path(raw);
    assert!(is_canonical(&path, b"/"), "{raw:?} -> {path:?}");
    assert_eq!(canonical_path(&path), path, "{raw:?}");
    assert_eq!(path.split('/').count(), raw.split('/').count(), "{raw:?}");
    let full = path_and_query(raw, &query);
    let sent_path = canonical_path(if raw.is_empty() { "/" } else { raw });
    assert!(full.starts_with(&sent_path), "{raw:?} -> {full:?}");
    assert!(is_canonical(&full, b"/?&="), "{raw:?} -> {full:?}");
    assert!(full.matches('?').count() <= 1, "{full:?}");
});
