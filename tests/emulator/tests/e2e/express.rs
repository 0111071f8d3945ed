//! What directory buckets refuse that legacy tools send (DESIGN §3.2), answered as S3 answers.

use http::StatusCode;
use s3x_emulator::{Config, Emulator, EndpointKind};

use crate::support::{crc32_header, host, iam, Client, Creds, Resp, BUCKET, REGION};

const GP: &str = "gp-legacy";

pub async fn start() -> Emulator {
    Emulator::start(Config {
        buckets: vec![BUCKET.into()],
        general_purpose_buckets: vec![(GP.into(), REGION.into())],
        min_part_size: 1,
        ..Config::default()
    })
    .await
    .unwrap()
}

fn hdr(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

/// Status, code and message of an error answer.
fn refused(r: &Resp, status: u16, code: &str, message: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.xml("Code").as_deref(), Some(code), "{}", r.text());
    assert_eq!(r.xml("Message").as_deref(), Some(message), "{}", r.text());
}

/// A Zonal client (h1 or h2) with a ReadWrite session.
pub async fn zonal(emu: &Emulator, h2: bool) -> (Client, Creds) {
    let mut c = Client::connect(emu, &host(BUCKET), h2).await;
    let s = c.create_session(None).await.unwrap();
    (c, s)
}

/// A client for the general-purpose bucket, virtual-hosted.
pub async fn general(emu: &Emulator) -> Client {
    Client::connect(emu, &format!("{GP}.s3.{REGION}.amazonaws.com"), false).await
}

/// Extra ListObjectsV2 parameters, and the refusal they get on a directory bucket (status,
/// code, message) or None.
type ListCase<'a> = (&'a [(&'a str, &'a str)], Option<(u16, &'a str, &'a str)>);

const MD5: &str = "XUFAKrxLKna5cZ2REBfFkg=="; // MD5 of "hello"
const NO_MD5: &str = "This bucket does not support Content Md5 header.";

#[tokio::test]
async fn content_md5_is_refused_before_the_body_is_stored() {
    let emu = start().await;
    for h2 in [false, true] {
        let (mut c, s) = zonal(&emu, h2).await;
        let md5 = vec![hdr("content-md5", MD5)];
        let r = c
            .send("PUT", "k", &[], md5.clone(), "hello", &s, None)
            .await;
        refused(&r, 501, "NotImplemented", NO_MD5);
        assert!(emu.object(BUCKET, "k").is_none(), "nothing is stored");

        let r = c
            .send("POST", "mp", &[("uploads", "")], vec![], "", &s, None)
            .await;
        let id = r.xml("UploadId").unwrap();
        let part = [("partNumber", "1"), ("uploadId", id.as_str())];
        let r = c
            .send("PUT", "mp", &part, md5.clone(), "hello", &s, None)
            .await;
        refused(&r, 501, "NotImplemented", NO_MD5);

        c.send("PUT", "keep", &[], vec![], "v", &s, None).await;
        let doc = "<Delete><Object><Key>keep</Key></Object></Delete>";
        let r = c
            .send("POST", "", &[("delete", "")], md5.clone(), doc, &s, None)
            .await;
        refused(&r, 501, "NotImplemented", NO_MD5);
        assert!(emu.object(BUCKET, "keep").is_some());
    }
    let md5_seen: Vec<_> = emu
        .requests_log()
        .into_iter()
        .filter(|r| r.content_md5)
        .map(|r| (r.operation, r.status))
        .collect();
    let expected = [
        ("PutObject".to_string(), 501),
        ("UploadPart".to_string(), 501),
        ("DeleteObjects".to_string(), 501),
    ];
    assert_eq!(md5_seen, [expected.clone(), expected].concat());

    // A general-purpose bucket takes it.
    let mut gp = general(&emu).await;
    let r = gp
        .send(
            "PUT",
            "k",
            &[],
            vec![hdr("content-md5", MD5)],
            "hello",
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn list_objects_v1_and_get_bucket_location_are_not_implemented() {
    let emu = start().await;
    let (mut c, s) = zonal(&emu, false).await;
    for query in [&[][..], &[("prefix", "a/"), ("marker", "x")][..]] {
        let r = c.send("GET", "", query, vec![], "", &s, None).await;
        assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{}", r.text());
        assert_eq!(r.xml("Code").unwrap(), "NotImplemented");
    }
    let r = c
        .send("GET", "", &[("location", "")], vec![], "", &s, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{}", r.text());
    assert_eq!(r.xml("Code").unwrap(), "NotImplemented");
    // botocore sends it to the control plane, path-style.
    let control = format!("s3express-control.{REGION}.amazonaws.com");
    let mut cp = Client::connect(&emu, &control, false).await;
    let r = cp
        .send("GET", BUCKET, &[("location", "")], vec![], "", &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED, "{}", r.text());
    assert_eq!(r.xml("Code").unwrap(), "NotImplemented");

    let ops: Vec<_> = emu
        .requests_log()
        .into_iter()
        .filter(|r| r.status == 501)
        .map(|r| r.operation)
        .collect();
    assert_eq!(
        ops,
        [
            "ListObjects",
            "ListObjects",
            "GetBucketLocation",
            "GetBucketLocation"
        ]
    );
    // General-purpose buckets answer both.
    let mut gp = general(&emu).await;
    for q in [&[][..], &[("location", "")][..]] {
        let r = gp.send("GET", "", q, vec![], "", &iam(), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
}

#[tokio::test]
async fn list_objects_v2_refuses_prefixes_delimiters_and_start_after() {
    let emu = start().await;
    let (mut c, s) = zonal(&emu, true).await;
    c.send("PUT", "a/b", &[], vec![], "v", &s, None).await;
    let list = |extra: &[(&'static str, &'static str)]| {
        let mut q = vec![("list-type", "2")];
        q.extend_from_slice(extra);
        q
    };
    let bad_prefix = "This bucket does not support a prefix that does not end in a delimiter. Specify a prefix path ending with a delimiter and try again.";
    let bad_delimiter = "This bucket does not support a delimiter other than /. Specify / as the delimiter and try again.";
    let cases: [ListCase<'_>; 8] = [
        (&[], None),
        (&[("prefix", "")], None),
        (&[("prefix", "a/"), ("delimiter", "/")], None),
        (&[("delimiter", "")], None),
        (
            &[("prefix", "a")],
            Some((400, "InvalidRequest", bad_prefix)),
        ),
        (
            &[("prefix", "a/b")],
            Some((400, "InvalidRequest", bad_prefix)),
        ),
        (
            &[("delimiter", "-")],
            Some((400, "InvalidRequest", bad_delimiter)),
        ),
        (
            &[("start-after", "a")],
            Some((
                400,
                "InvalidArgument",
                "StartAfter is not supported for directory buckets.",
            )),
        ),
    ];
    let mut gp = general(&emu).await;
    for (extra, refusal) in cases {
        let q = list(extra);
        let r = c.send("GET", "", &q, vec![], "", &s, None).await;
        match refusal {
            None => assert_eq!(r.status, StatusCode::OK, "{extra:?}: {}", r.text()),
            Some((status, code, message)) => refused(&r, status, code, message),
        }
        let r = gp.send("GET", "", &q, vec![], "", &iam(), None).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "general purpose {extra:?}: {}",
            r.text()
        );
    }
}

#[tokio::test]
async fn only_express_onezone_is_a_storage_class() {
    let emu = start().await;
    let (mut c, s) = zonal(&emu, false).await;
    let invalid = "The storage class you specified is not valid";
    for class in ["STANDARD", "REDUCED_REDUNDANCY", "express_onezone"] {
        let sc = vec![hdr("x-amz-storage-class", class)];
        let r = c.send("PUT", "k", &[], sc.clone(), "v", &s, None).await;
        refused(&r, 400, "InvalidStorageClass", invalid);
        let r = c
            .send("POST", "mp", &[("uploads", "")], sc.clone(), "", &s, None)
            .await;
        refused(&r, 400, "InvalidStorageClass", invalid);
    }
    assert!(emu.keys(BUCKET).is_empty() && emu.multipart_uploads(BUCKET).is_empty());
    let sc = vec![hdr("x-amz-storage-class", "EXPRESS_ONEZONE")];
    let r = c.send("PUT", "k", &[], sc, "v", &s, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let copy = vec![
        hdr("x-amz-copy-source", &format!("{BUCKET}/k")),
        hdr("x-amz-storage-class", "STANDARD"),
    ];
    let r = c.send("PUT", "k2", &[], copy, "", &iam(), None).await;
    refused(&r, 400, "InvalidStorageClass", invalid);
    assert_eq!(emu.keys(BUCKET), ["k"]);
}

#[tokio::test]
async fn path_style_on_a_bare_zonal_host_is_refused() {
    let emu = start().await;
    let (_, s) = zonal(&emu, false).await;
    let bare = format!("s3express-usw2-az1.{REGION}.amazonaws.com");
    for h2 in [false, true] {
        let mut c = Client::connect(&emu, &bare, h2).await;
        for (method, key) in [
            ("PUT", format!("{BUCKET}/k")),
            ("GET", format!("{BUCKET}/k")),
        ] {
            let r = c.send(method, &key, &[], vec![], "v", &s, None).await;
            refused(
                &r,
                400,
                "InvalidRequest",
                "Path-style requests are not supported for directory buckets. Use the virtual-hosted-style endpoint BUCKET.s3express-ZONE.REGION.amazonaws.com.",
            );
        }
        let r = c
            .send("GET", BUCKET, &[("session", "")], vec![], "", &iam(), None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    }
    assert!(emu.object(BUCKET, "k").is_none());
    let path_style: Vec<_> = emu
        .requests_log()
        .into_iter()
        .filter(|r| r.path_style)
        .map(|r| (r.endpoint, r.status))
        .collect();
    assert_eq!(path_style, vec![(EndpointKind::Zonal, 400); 6]);
}

#[tokio::test]
async fn directory_bucket_names_do_not_exist_on_general_purpose_hosts() {
    let emu = start().await;
    let hosts = [
        (format!("{BUCKET}.s3.{REGION}.amazonaws.com"), String::new()),
        (format!("{BUCKET}.s3.amazonaws.com"), String::new()),
        (
            format!("{BUCKET}.s3.dualstack.{REGION}.amazonaws.com"),
            String::new(),
        ),
        (
            format!("{BUCKET}.s3-fips.{REGION}.amazonaws.com"),
            String::new(),
        ),
        ("s3.amazonaws.com".to_string(), format!("{BUCKET}/")),
        (format!("s3.{REGION}.amazonaws.com"), format!("{BUCKET}/")),
    ];
    for (h, prefix) in &hosts {
        let mut c = Client::connect(&emu, h, false).await;
        let key = format!("{prefix}k");
        let r = c.send("PUT", &key, &[], vec![], "v", &iam(), None).await;
        refused(
            &r,
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
        );
        assert_eq!(r.xml("BucketName").unwrap(), BUCKET);
        let r = c
            .send(
                "HEAD",
                prefix.trim_end_matches('/'),
                &[],
                vec![],
                "",
                &iam(),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{h}");
    }
    assert!(emu.keys(BUCKET).is_empty());
}

#[tokio::test]
async fn delete_objects_must_carry_a_checksum() {
    let emu = start().await;
    let (mut c, s) = zonal(&emu, false).await;
    c.send("PUT", "k", &[], vec![], "v", &s, None).await;
    let doc = "<Delete><Object><Key>k</Key></Object></Delete>";
    let missing = "Missing required header for this request: Content-MD5 OR x-amz-checksum-*";
    let r = c
        .send("POST", "", &[("delete", "")], vec![], doc, &s, None)
        .await;
    refused(&r, 400, "InvalidRequest", missing);
    assert!(emu.object(BUCKET, "k").is_some());
    let crc = vec![crc32_header(doc.as_bytes())];
    let r = c
        .send("POST", "", &[("delete", "")], crc.clone(), doc, &s, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(emu.object(BUCKET, "k").is_none());

    let mut gp = general(&emu).await;
    gp.send("PUT", "k", &[], vec![], "v", &iam(), None).await;
    let r = gp
        .send("POST", "", &[("delete", "")], vec![], doc, &iam(), None)
        .await;
    refused(&r, 400, "InvalidRequest", missing);
    let r = gp
        .send("POST", "", &[("delete", "")], crc, doc, &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(emu.object(GP, "k").is_none());
}
