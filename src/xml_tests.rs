//! Tests of `xml.rs`.
use super::*;

// Verbatim from the S3 API reference for CreateSession.
const CREATE_SESSION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CreateSessionResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
   <Credentials>
      <SessionToken>TYPE-SESSION-TOKEN</SessionToken>
      <SecretAccessKey>TYPE-SECRET-ACCESS-KEY</SecretAccessKey>
      <AccessKeyId>TYPE-ACCESS-KEY-ID</AccessKeyId>
      <Expiration>2024-01-29T18:53:01Z</Expiration>
   </Credentials>
</CreateSessionResult>"#;

// Shaped as S3 sends them (the request and host ids are S3's own format).
const EXPIRED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><RequestId>01c6cb7b2e00018c5d18e3b70509a7a1e5d5a6f4</RequestId><HostId>dAz9yTQ2Wr1HN9lJvnhTy0RVc3HPgZQz3WZFcnL1yrI=</HostId></Error>"#;

const ACCESS_DENIED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied &amp; more</Message><RequestId>XYZ</RequestId></Error>"#;

#[test]
fn parses_a_create_session_result() {
    let c = parse_create_session(CREATE_SESSION).unwrap();
    assert_eq!(c.session_token, "TYPE-SESSION-TOKEN");
    assert_eq!(c.secret_access_key, "TYPE-SECRET-ACCESS-KEY");
    assert_eq!(c.access_key_id, "TYPE-ACCESS-KEY-ID");
    assert_eq!(c.expiration, "2024-01-29T18:53:01Z");
    assert!(!format!("{c:?}").contains("TYPE-SECRET"));
    assert!(!format!("{c:?}").contains("TYPE-SESSION-TOKEN"));
}

#[test]
fn parses_error_bodies_with_entities() {
    assert_eq!(parse_error(EXPIRED).unwrap().code, "ExpiredToken");
    let e = parse_error(ACCESS_DENIED).unwrap();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("AccessDenied", "Access Denied & more")
    );
}

#[test]
fn rejects_truncated_and_incomplete_bodies() {
    assert!(parse_create_session("<CreateSessionResult><Credentials><SessionToken>x").is_err());
    assert!(parse_create_session("<CreateSessionResult/>").is_err());
    assert!(parse_error("<Error><Message>no code</Message></Error>").is_err());
    assert!(parse_error("not xml at all <<<").is_err());
}

#[test]
fn a_tree_keeps_order_nesting_and_resolved_text() {
    let xml = "<?xml version=\"1.0\"?>\n<R xmlns=\"x\"><A>1 &amp; &#x32;</A><B/><C><D> d </D><D><![CDATA[<e>]]></D></C></R>";
    let root = parse_tree(xml).unwrap();
    assert_eq!(root.name, "R");
    let names: Vec<&str> = root.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert_eq!(root.child_text("A"), Some("1 & 2"));
    assert_eq!(root.child_text("B"), Some(""));
    let texts: Vec<&str> = root
        .child("C")
        .unwrap()
        .children
        .iter()
        .map(|d| d.text.as_str())
        .collect();
    assert_eq!(texts, [" d ", "<e>"]);
    assert!(parse_tree("<R><A></R>").is_err());
    assert!(parse_tree("<R><A>").is_err());
    assert!(parse_tree("<R>&bogus;</R>").is_err());
    let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
    assert!(parse_tree(&deep).is_err());
}

#[test]
fn written_bodies_escape_and_round_trip() {
    let body = error_body("InvalidArgument", "bad <header> & value", "REQ1");
    assert_eq!(parse_error(&body).unwrap().message, "bad <header> & value");
    let body = create_session_body("AK", "S<", "T&", "2030-01-01T00:00:00Z");
    let c = parse_create_session(&body).unwrap();
    assert_eq!(
        (c.secret_access_key.as_str(), c.session_token.as_str()),
        ("S<", "T&")
    );
}

#[test]
fn reads_multipart_replies() {
    let xml = r#"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>a&amp;b</UploadId></InitiateMultipartUploadResult>"#;
    assert_eq!(parse_upload_id(xml).as_deref(), Some("a&b"));
    assert_eq!(
        parse_complete_multipart(xml),
        CompleteReply::Completed { etag: None }
    );
    let done = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>l</Location><Bucket>b</Bucket><Key>&lt;Error&gt;</Key><ETag>&quot;3858f62230ac3c915f300c664312c11f-2&quot;</ETag></CompleteMultipartUploadResult>";
    assert_eq!(
        parse_complete_multipart(done),
        CompleteReply::Completed {
            etag: Some("\"3858f62230ac3c915f300c664312c11f-2\"".into())
        }
    );
    assert_eq!(parse_upload_id(done), None);
}

#[test]
fn a_multipart_reply_with_an_error_fails_even_with_status_200() {
    // S3 sends the head of a 200 at once and pads with white space while it assembles.
    let padded = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n   \n<Error><Code>InternalError</Code><Message>m</Message><RequestId>r</RequestId></Error>";
    assert_eq!(parse_complete_multipart(padded), CompleteReply::Failed);
    let unfinished = "<Error><Code>InternalError</Code><Mess";
    assert_eq!(parse_complete_multipart(unfinished), CompleteReply::Failed);
    assert_eq!(parse_upload_id("not xml <<<"), None);
}

/// The CompleteMultipartUpload body as `unknown_length` wrote it by hand before it moved here:
/// the same bytes go on the wire.
fn complete_by_hand(algorithm: &str, parts: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, (etag, sum)) in parts.iter().enumerate() {
        let etag = escape(*etag);
        let sum = sum
            .map(|s| format!("<Checksum{algorithm}>{s}</Checksum{algorithm}>"))
            .unwrap_or_default();
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag>{sum}</Part>",
            i + 1
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml.into_bytes()
}

#[test]
fn a_complete_multipart_body_is_what_s3_documents() {
    let body = complete_multipart_body(
        "CRC32",
        [("\"a\"", Some("AAAAAA==")), ("\"b&c\"", Some("+/8A/w=="))],
    );
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><PartNumber>2</PartNumber><ETag>&quot;b&amp;c&quot;</ETag><ChecksumCRC32>+/8A/w==</ChecksumCRC32></Part></CompleteMultipartUpload>"
    );
    let body = complete_multipart_body("", [("e", None)]);
    let tree = parse_tree(std::str::from_utf8(&body).unwrap()).unwrap();
    assert_eq!(tree.child("Part").unwrap().child_text("ETag"), Some("e"));
}

proptest::proptest! {
    #[test]
    fn complete_multipart_bodies_are_the_bytes_written_by_hand(
        parts in proptest::collection::vec((".{0,12}", proptest::option::of("[A-Za-z0-9+/=]{0,12}")), 0..4),
        algorithm in proptest::sample::select(vec!["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]),
    ) {
        let parts: Vec<(&str, Option<&str>)> =
            parts.iter().map(|(e, s)| (e.as_str(), s.as_deref())).collect();
        proptest::prop_assert_eq!(
            complete_multipart_body(algorithm, parts.iter().copied()),
            complete_by_hand(algorithm, &parts)
        );
    }
}
