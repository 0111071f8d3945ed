//! Directory buckets end to end: aws-chunked uploads, multipart, control plane, batch operations.

use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{Config, Emulator};

use crate::support::{crc32_header, host, iam, Client, BUCKET, OTHER};

async fn start(config: Config) -> Emulator {
    let config = Config {
        buckets: vec![BUCKET.into(), OTHER.into()],
        ..config
    };
    Emulator::start(config).await.unwrap()
}

fn hdr(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

#[tokio::test]
async fn aws_chunked_upload_with_trailer() {
    let emu = start(Config::default()).await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    let data = b"hello world";
    let framed = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
    let headers = vec![
        hdr("content-encoding", "aws-chunked"),
        hdr("x-amz-decoded-content-length", &data.len().to_string()),
        hdr("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    let payload = Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    let r = c
        .send("PUT", "chunked", &[], headers.clone(), framed, &s, payload)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(&emu.object(BUCKET, "chunked").unwrap()[..], data);
    let bad = framed.replace("DUoRhQ==", "AAAAAA==");
    let r = c
        .send("PUT", "chunked2", &[], headers, bad, &s, payload)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "BadDigest");
}

#[tokio::test]
async fn multipart_survives_session_rotation() {
    let emu = start(Config {
        min_part_size: 4,
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&emu, &host(BUCKET), true).await;
    let s1 = c.create_session(None).await.unwrap();
    c.send(
        "PUT",
        "src",
        &[],
        vec![],
        Bytes::from_static(b"0123456789"),
        &s1,
        None,
    )
    .await;
    let r = c
        .send(
            "POST",
            "big",
            &[("uploads", "")],
            vec![],
            Bytes::new(),
            &s1,
            None,
        )
        .await;
    let upload = r.xml("UploadId").unwrap();
    let q2 = [("partNumber", "2"), ("uploadId", upload.as_str())];
    let r = c
        .send(
            "PUT",
            "big",
            &q2,
            vec![],
            Bytes::from_static(b"-tail"),
            &s1,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let q1 = [("partNumber", "1"), ("uploadId", upload.as_str())];
    let copy = vec![
        hdr("x-amz-copy-source", &format!("{BUCKET}/src")),
        hdr("x-amz-copy-source-range", "bytes=2-7"),
    ];
    let r = c
        .send("PUT", "big", &q1, copy, Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s2 = c.create_session(None).await.unwrap();
    let r = c
        .send(
            "GET",
            "big",
            &[("uploadId", upload.as_str())],
            vec![],
            Bytes::new(),
            &s2,
            None,
        )
        .await;
    let text = r.text();
    assert!(text.find("<PartNumber>1<").unwrap() < text.find("<PartNumber>2<").unwrap());
    let e1 = text
        .split("<ETag>")
        .nth(1)
        .unwrap()
        .split("</ETag>")
        .next()
        .unwrap()
        .replace("&quot;", "\"");
    let doc = format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{e1}</ETag></Part><Part><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>");
    let r = c
        .send(
            "POST",
            "big",
            &[("uploadId", upload.as_str())],
            vec![],
            doc,
            &s2,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(&emu.object(BUCKET, "big").unwrap()[..], b"234567-tail");
    assert!(emu.multipart_uploads(BUCKET).is_empty());
}

#[tokio::test]
async fn control_plane_and_unsupported() {
    let emu = start(Config::default()).await;
    let mut cp = Client::connect(&emu, "s3express-control.us-west-2.amazonaws.com", false).await;
    let r = cp
        .send(
            "PUT",
            "new--usw2-az1--x-s3",
            &[],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = cp
        .send("GET", "", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert!(r.text().contains("<Name>new--usw2-az1--x-s3</Name>"));
    let r = cp
        .send(
            "DELETE",
            "new--usw2-az1--x-s3",
            &[],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    let r = c.send("GET", "", &[], vec![], Bytes::new(), &s, None).await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    let mut missing = Client::connect(&emu, &host("nope--usw2-az1--x-s3"), false).await;
    let r = missing.create_session(None).await.unwrap_err();
    assert_eq!(r.xml("Code").unwrap(), "NoSuchBucket");
    let mut path_style =
        Client::connect(&emu, "s3express-usw2-az1.us-west-2.amazonaws.com", false).await;
    let r = path_style
        .send(
            "GET",
            &format!("{BUCKET}/k"),
            &[],
            vec![],
            Bytes::new(),
            &s,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(emu.counters().by_operation["CreateSession"], 2);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let emu = start(Config::default()).await;
    let addr = emu.addr();
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    c.create_session(None).await.unwrap();
    emu.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
#[ignore = "timing probe: cargo test -p s3x-emulator --test e2e -- --ignored --nocapture"]
async fn large_put_timing() {
    let emu = start(Config::default()).await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    let n: usize = std::env::var("S3X_PROBE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let body = Bytes::from(vec![7u8; n << 20]);
    let t = std::time::Instant::now();
    let r = c
        .send(
            "PUT",
            "big",
            &[],
            vec![],
            body.clone(),
            &s,
            Some("UNSIGNED-PAYLOAD"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    println!("PUT {n} MiB: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let r = c
        .send("GET", "big", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(r.body.len(), body.len());
    println!("GET {n} MiB: {:?}", t.elapsed());
}

#[tokio::test]
async fn batch_delete_attributes_and_upload_listing() {
    let emu = start(Config::default()).await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    let crc = vec![hdr("x-amz-checksum-crc32", "DUoRhQ==")];
    let r = c
        .send("PUT", "a&b <c>", &[], crc, "hello world", &s, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    c.send("PUT", "z", &[], vec![], "zz", &s, None).await;

    let attrs = vec![hdr(
        "x-amz-object-attributes",
        "ETag,Checksum,ObjectSize,StorageClass",
    )];
    let ro = c.create_session(Some("ReadOnly")).await.unwrap();
    let r = c
        .send(
            "GET",
            "a&b <c>",
            &[("attributes", "")],
            attrs,
            Bytes::new(),
            &ro,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.xml("ObjectSize").unwrap(), "11");
    assert_eq!(r.xml("ChecksumCRC32").unwrap(), "DUoRhQ==");

    let r = c
        .send(
            "POST",
            "u/1",
            &[("uploads", "")],
            vec![],
            Bytes::new(),
            &s,
            None,
        )
        .await;
    let id = r.xml("UploadId").unwrap();
    let r = c
        .send(
            "GET",
            "",
            &[("uploads", "")],
            vec![],
            Bytes::new(),
            &ro,
            None,
        )
        .await;
    assert_eq!(r.xml("Key").unwrap(), "u/1");
    let r = c
        .send(
            "DELETE",
            "u/1",
            &[("uploadId", id.as_str())],
            vec![],
            Bytes::new(),
            &s,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c
        .send(
            "DELETE",
            "u/1",
            &[("uploadId", id.as_str())],
            vec![],
            Bytes::new(),
            &s,
            None,
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "NoSuchUpload");

    let doc = "<Delete><Object><Key>a&amp;b &lt;c&gt;</Key></Object><Object><Key>nope</Key></Object></Delete>";
    let r = c
        .send(
            "POST",
            "",
            &[("delete", "")],
            vec![crc32_header(doc.as_bytes())],
            doc,
            &s,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().contains("<Key>a&amp;b &lt;c&gt;</Key>"),
        "{}",
        r.text()
    );
    assert_eq!(emu.keys(BUCKET), ["z"]);
    let r = c
        .send("DELETE", "z", &[], vec![], Bytes::new(), &ro, None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "ReadOnly sessions cannot delete"
    );
}
