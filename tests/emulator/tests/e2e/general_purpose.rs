//! General-purpose buckets: hosts, path and virtual style, operations, copies, region answers.

use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{AuthKind, Config, Emulator, EndpointKind, Fault, Target};

use crate::support::{crc32_header, host, iam, Client, BUCKET};

pub const EU: &str = "gp-eu";
pub const US: &str = "gp.us.dotted";

pub async fn start() -> Emulator {
    Emulator::start(Config {
        buckets: vec![BUCKET.into()],
        general_purpose_buckets: vec![
            (EU.into(), "eu-west-1".into()),
            (US.into(), "us-east-1".into()),
        ],
        min_part_size: 4,
        ..Config::default()
    })
    .await
    .unwrap()
}

fn hdr(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

#[tokio::test]
async fn objects_on_every_host_form() {
    let emu = start().await;
    let hosts = [
        (format!("{EU}.s3.eu-west-1.amazonaws.com"), ""),
        (format!("{EU}.s3.dualstack.eu-west-1.amazonaws.com"), ""),
        (format!("{EU}.s3-fips.eu-west-1.amazonaws.com"), ""),
        (
            format!("{EU}.s3-fips.dualstack.eu-west-1.amazonaws.com"),
            "",
        ),
        ("s3.eu-west-1.amazonaws.com".to_string(), "gp-eu/"),
        (format!("{US}.s3.amazonaws.com"), ""),
        ("s3.amazonaws.com".to_string(), "gp.us.dotted/"),
        ("s3.us-east-1.amazonaws.com".to_string(), "gp.us.dotted/"),
    ];
    for (i, (h, prefix)) in hosts.iter().enumerate() {
        for h2 in [false, true] {
            let mut c = Client::connect(&emu, h, h2).await;
            let key = format!("{prefix}dir/a b+{i}-{h2}");
            let r = c
                .send("PUT", &key, &[], vec![], "hello", &iam(), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{h}: {}", r.text());
            assert_eq!(r.header("x-amz-server-side-encryption").unwrap(), "AES256");
            let r = c
                .send("GET", &key, &[], vec![], Bytes::new(), &iam(), None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{h}: {}", r.text());
            assert_eq!(&r.body[..], b"hello");
            let r = c
                .send("HEAD", &key, &[], vec![], Bytes::new(), &iam(), None)
                .await;
            assert_eq!(r.header("content-length").unwrap(), "5");
            assert!(
                r.header("x-amz-storage-class").is_none(),
                "STANDARD is left out"
            );
            let r = c
                .send("DELETE", &key, &[], vec![], Bytes::new(), &iam(), None)
                .await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
            let r = c
                .send("HEAD", &key, &[], vec![], Bytes::new(), &iam(), None)
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert!(r.body.is_empty());
        }
    }
    assert!(emu.keys(EU).is_empty() && emu.keys(US).is_empty());
    let log = emu.requests_log();
    assert!(log
        .iter()
        .all(|r| r.endpoint == EndpointKind::GeneralPurpose
            && r.auth == AuthKind::Iam
            && r.service.as_deref() == Some("s3")));
}

#[tokio::test]
async fn listings_v1_and_v2() {
    let emu = start().await;
    let mut c = Client::connect(&emu, "s3.eu-west-1.amazonaws.com", false).await;
    for k in ["a-1", "a-2", "b", "c-x-1", "d"] {
        let r = c
            .send("PUT", &format!("{EU}/{k}"), &[], vec![], "v", &iam(), None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // Any delimiter on a general-purpose bucket.
    let r = c
        .send(
            "GET",
            EU,
            &[("list-type", "2"), ("delimiter", "-")],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("<Prefix>a-</Prefix>"), "{}", r.text());
    assert!(r.text().contains("<StorageClass>STANDARD</StorageClass>"));

    // v1 pages with a marker and NextMarker, common prefixes included, each entry once.
    let mut seen = Vec::new();
    let mut marker = String::new();
    for _ in 0..10 {
        let q = [
            ("delimiter", "-"),
            ("max-keys", "1"),
            ("marker", marker.as_str()),
        ];
        let r = c
            .send("GET", EU, &q, vec![], Bytes::new(), &iam(), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let text = r.text();
        assert!(
            text.contains(&format!("<Marker>{marker}</Marker>")),
            "{text}"
        );
        for part in text.split("<Key>").skip(1) {
            seen.push(part.split("</Key>").next().unwrap().to_string());
        }
        for part in text.split("<CommonPrefixes><Prefix>").skip(1) {
            seen.push(format!("P:{}", part.split("</Prefix>").next().unwrap()));
        }
        match r.xml("NextMarker") {
            Some(next) => marker = next,
            None => {
                assert_eq!(r.xml("IsTruncated").unwrap(), "false");
                break;
            }
        }
    }
    assert_eq!(seen, ["P:a-", "b", "P:c-", "d"]);
    let r = c
        .send(
            "GET",
            EU,
            &[("prefix", "a"), ("max-keys", "1")],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.xml("IsTruncated").unwrap(), "true");
    assert!(
        r.xml("NextMarker").is_none(),
        "no NextMarker without a delimiter"
    );
    // Directory buckets still refuse v1.
    let mut dir = Client::connect(&emu, &host(BUCKET), false).await;
    let s = dir.create_session(None).await.unwrap();
    let r = dir
        .send("GET", "", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
}

#[tokio::test]
async fn multipart_and_copies_across_bucket_kinds() {
    let emu = start().await;
    let mut gp = Client::connect(&emu, &format!("{EU}.s3.eu-west-1.amazonaws.com"), true).await;
    let mut dir = Client::connect(&emu, &host(BUCKET), false).await;
    let s = dir.create_session(None).await.unwrap();
    dir.send("PUT", "src", &[], vec![], "0123456789", &s, None)
        .await;

    // Directory bucket -> general purpose (on the general-purpose host).
    let copy = vec![hdr("x-amz-copy-source", &format!("/{BUCKET}/src"))];
    let r = gp
        .send("PUT", "from-dir", &[], copy, Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(&emu.object(EU, "from-dir").unwrap()[..], b"0123456789");
    // General purpose -> directory bucket (IAM-signed on the Zonal host).
    let copy = vec![hdr("x-amz-copy-source", &format!("{EU}/from-dir"))];
    let r = dir
        .send("PUT", "from-gp", &[], copy, Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(&emu.object(BUCKET, "from-gp").unwrap()[..], b"0123456789");

    // A general-purpose multipart upload with a part copied from a directory bucket.
    let r = gp
        .send(
            "POST",
            "mp",
            &[("uploads", "")],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    let id = r.xml("UploadId").unwrap();
    let q1 = [("partNumber", "1"), ("uploadId", id.as_str())];
    let copy = vec![
        hdr("x-amz-copy-source", &format!("{BUCKET}/src")),
        hdr("x-amz-copy-source-range", "bytes=0-4"),
    ];
    let r = gp
        .send("PUT", "mp", &q1, copy, Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let q2 = [("partNumber", "2"), ("uploadId", id.as_str())];
    let r = gp
        .send("PUT", "mp", &q2, vec![], "-end", &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = gp
        .send(
            "GET",
            "mp",
            &[("uploadId", id.as_str())],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert!(r.text().contains("<StorageClass>STANDARD</StorageClass>"));
    let doc = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>";
    let r = gp
        .send(
            "POST",
            "mp",
            &[("uploadId", id.as_str())],
            vec![],
            doc,
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(&emu.object(EU, "mp").unwrap()[..], b"01234-end");
    // DeleteObjects.
    let doc = "<Delete><Object><Key>mp</Key></Object><Object><Key>from-dir</Key></Object></Delete>";
    let r = gp
        .send(
            "POST",
            "",
            &[("delete", "")],
            vec![crc32_header(doc.as_bytes())],
            doc,
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(emu.keys(EU).is_empty());
}

#[tokio::test]
async fn only_iam_credentials_for_service_s3() {
    let emu = start().await;
    let mut dir = Client::connect(&emu, &host(BUCKET), false).await;
    let session = dir.create_session(None).await.unwrap();
    let mut c = Client::connect(&emu, &format!("{EU}.s3.eu-west-1.amazonaws.com"), false).await;

    // Session credentials, with and without their token header.
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &session, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidRequest", "{}", r.text());
    let mut bare = session.clone();
    bare.session_token = None;
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &bare, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidAccessKeyId");
    // IAM credentials with a session token header.
    let mut with_token = iam();
    with_token.session_token = Some("x".into());
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &with_token, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.xml("Code").unwrap(), "InvalidRequest");
    // Signed for s3express.
    c.service = "s3express".into();
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "AuthorizationHeaderMalformed");
    c.service = "s3".into();
    // Anonymous, a missing bucket, a directory bucket on a general-purpose host, and what
    // directory buckets alone do.
    let r = c.raw("GET", "/k", &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for b in ["nope", BUCKET] {
        let mut m = Client::connect(&emu, &format!("{b}.s3.eu-west-1.amazonaws.com"), false).await;
        let r = m
            .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
            .await;
        assert_eq!(r.xml("Code").unwrap(), "NoSuchBucket", "{b}");
    }
    let r = c
        .send(
            "PUT",
            "k",
            &[("renameObject", "")],
            vec![hdr("x-amz-rename-source", "a")],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    let r = c
        .send(
            "PUT",
            "k",
            &[],
            vec![hdr("x-amz-write-offset-bytes", "0")],
            "x",
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    let r = c
        .send(
            "PUT",
            "k",
            &[],
            vec![hdr("x-amz-storage-class", "EXPRESS_ONEZONE")],
            "x",
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidStorageClass");

    // Faults can aim at general-purpose requests alone.
    emu.inject(Fault::SlowDown {
        count: 1,
        target: Target::GeneralPurpose,
    });
    let r = dir
        .send("GET", "k", &[], vec![], Bytes::new(), &session, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "NoSuchKey");
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "SlowDown");
}
