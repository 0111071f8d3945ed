//! Tests of `content_md5.rs`: what the bridge does to a request (the MD5 check itself is
//! `digest`'s, tested in `digest_tests.rs`).
use http::HeaderValue;

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(*n, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn what_the_bridge_adds_by_operation() {
    let md5 = "XrY7u+Ae7tCTyyK7j1rNww==";
    let parsed = ContentMd5::parse(md5.as_bytes()).ok();
    let put = Operation::PutObject;
    let run = |method: Method, op, pairs: &[(&'static str, &str)], flag| {
        let mut h = headers(pairs);
        let bridged = bridge(&method, op, &mut h, Payload::Unsigned, flag);
        assert!(!h.contains_key(CONTENT_MD5), "the header is always removed");
        bridged
    };
    let with = |md5, add| Ok(Some(Bridged { md5, add }));
    // PutObject: CRC-32, or --checksum's algorithm; nothing when it brings its own.
    let m = [("content-md5", md5)];
    assert_eq!(
        run(Method::PUT, put, &m, None),
        with(parsed, Some(Computed::Crc32))
    );
    let flag = Some(Computed::Crc64Nvme);
    assert_eq!(run(Method::PUT, put, &m, flag), with(parsed, flag));
    let own = [("content-md5", md5), ("x-amz-checksum-crc32c", "yZRlqg==")];
    assert_eq!(run(Method::PUT, put, &own, None), with(parsed, None));
    let append = [("content-md5", md5), ("x-amz-write-offset-bytes", "10")];
    assert_eq!(run(Method::PUT, put, &append, None), with(parsed, None));
    // UploadPart: checked, nothing added (S3 would refuse a checksum its upload did not name).
    let part = Operation::UploadPart;
    assert_eq!(run(Method::PUT, part, &m, flag), with(parsed, None));
    // DeleteObjects: CRC-32 whatever --checksum says, with MD5 or nothing; its own is kept.
    let delete = Operation::DeleteObjects;
    let crc32 = Some(Computed::Crc32);
    assert_eq!(run(Method::POST, delete, &m, flag), with(parsed, crc32));
    assert_eq!(run(Method::POST, delete, &[], flag), with(None, crc32));
    let own = [("x-amz-checksum-crc32", "DUoRhQ==")];
    assert_eq!(run(Method::POST, delete, &own, None), Ok(None));
    // Other methods carry no body to check: the header just goes, even a malformed one.
    let get = Operation::GetObject;
    assert_eq!(run(Method::GET, get, &m, None), Ok(None));
    assert_eq!(
        run(Method::GET, get, &[("content-md5", "?")], None),
        Ok(None)
    );
    // Malformed, or twice.
    let bad = [("content-md5", "not base64")];
    assert_eq!(run(Method::PUT, put, &bad, None), Err(DigestError::Invalid));
    let twice = [("content-md5", md5), ("content-md5", md5)];
    assert_eq!(
        run(Method::PUT, put, &twice, None),
        Err(DigestError::Invalid)
    );
}

#[test]
fn only_zonal_requests_with_content_md5_or_delete_objects_apply() {
    let m = headers(&[("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")]);
    let none = HeaderMap::new();
    assert!(applies(true, Operation::PutObject, &m));
    assert!(
        !applies(false, Operation::PutObject, &m),
        "general purpose keeps it"
    );
    assert!(!applies(true, Operation::PutObject, &none));
    assert!(applies(true, Operation::DeleteObjects, &none));
    assert!(!applies(false, Operation::DeleteObjects, &none));
}
