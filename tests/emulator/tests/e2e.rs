//! End to end over TLS: sessions, signatures, objects, listing, multipart, faults, shutdown.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{Config, Emulator, Fault, Target};
use support::{host, iam, Client, BUCKET, OTHER};

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
async fn session_put_get_over_h1_and_h2() {
    let emu = start(Config::default()).await;
    for h2 in [false, true] {
        let mut c = Client::connect(&emu, &host(BUCKET), h2).await;
        let rw = c.create_session(None).await.unwrap();
        let key = format!("dir//a b+c%ü-{h2}.txt");
        let body = Bytes::from_static(b"hello, express");
        let meta = vec![
            hdr("content-type", "text/plain"),
            hdr("x-amz-meta-color", "blue"),
        ];
        let r = c
            .send("PUT", &key, &[], meta, body.clone(), &rw, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(r.header("etag").is_some());
        assert_eq!(emu.object(BUCKET, &key).unwrap(), body);

        let r = c
            .send(
                "GET",
                &key,
                &[],
                vec![],
                Bytes::new(),
                &rw,
                Some("UNSIGNED-PAYLOAD"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.body, body);
        assert_eq!(r.header("content-type").unwrap(), "text/plain");
        assert_eq!(r.header("x-amz-meta-color").unwrap(), "blue");

        let r = c
            .send(
                "GET",
                &key,
                &[],
                vec![hdr("range", "bytes=7-")],
                Bytes::new(),
                &rw,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&r.body[..], b"express");
        assert_eq!(r.header("content-range").unwrap(), "bytes 7-13/14");
        let r = c
            .send(
                "GET",
                &key,
                &[],
                vec![hdr("range", "bytes=14-")],
                Bytes::new(),
                &rw,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.xml("Code").unwrap(), "InvalidRange");

        let r = c
            .send("HEAD", &key, &[], vec![], Bytes::new(), &rw, None)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-length").unwrap(), "14");
        assert!(r.body.is_empty());
        let r = c
            .send("HEAD", "missing", &[], vec![], Bytes::new(), &rw, None)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.body.is_empty());

        let q = [
            ("list-type", "2"),
            ("prefix", "dir/"),
            ("encoding-type", "url"),
        ];
        let r = c.send("GET", "", &q, vec![], Bytes::new(), &rw, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(
            r.text()
                .contains(&format!("<Key>dir//a%20b%2Bc%25%C3%BC-{h2}.txt</Key>")),
            "{}",
            r.text()
        );
    }
    let c = emu.counters();
    assert_eq!(c.create_session_read_write, 2);
    assert_eq!(c.auth_by_operation["GetObject"], "session-rw");
    assert_eq!(c.auth_by_operation["CreateSession"], "iam");
    assert_eq!(c.signature_failures, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn credentials_are_enforced() {
    let emu = start(Config::default()).await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let rw = c.create_session(Some("ReadWrite")).await.unwrap();
    let ro = c.create_session(Some("ReadOnly")).await.unwrap();
    let put = |creds: &support::Creds| (creds.clone(), Bytes::from_static(b"x"));

    // IAM-signed data request, session-signed copy, anonymous request.
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(
        (r.status, r.xml("Code").unwrap().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    let copy = vec![hdr("x-amz-copy-source", &format!("/{BUCKET}/k"))];
    let r = c
        .send("PUT", "k2", &[], copy.clone(), Bytes::new(), &rw, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c.raw("GET", "/k", &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.xml("RequestId").is_some() && r.header("x-amz-request-id").is_some());

    // Tampered signature, wrong secret, unsigned x-amz header, wrong region.
    let (creds, body) = put(&rw);
    let mut bad = creds.clone();
    bad.secret.push('x');
    let r = c
        .send("PUT", "k", &[], vec![], body.clone(), &bad, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "SignatureDoesNotMatch");
    assert!(r.xml("CanonicalRequest").is_some());
    let mut headers = vec![];
    support::sign(
        "PUT",
        &c.host.clone(),
        "/k",
        "",
        &mut headers,
        &support::sha256_hex(&body),
        &creds,
    );
    headers.push(hdr("x-amz-meta-sneaky", "1"));
    let r = c.raw("PUT", "/k", &headers, body.clone()).await;
    assert_eq!(
        (r.status, r.xml("Code").unwrap().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    let r = c
        .send(
            "PUT",
            "k",
            &[],
            vec![],
            body.clone(),
            &creds,
            Some(&"0".repeat(64)),
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "XAmzContentSHA256Mismatch");
    let r = c
        .send(
            "PUT",
            "k",
            &[],
            vec![hdr("x-amz-security-token", "t")],
            body.clone(),
            &creds,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // ReadOnly sessions read only; sessions are bound to their bucket.
    let r = c
        .send("PUT", "k", &[], vec![], body.clone(), &ro, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = c
        .send("PUT", "k", &[], vec![], body.clone(), &rw, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &ro, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut other = Client::connect(&emu, &host(OTHER), false).await;
    let r = other
        .send("GET", "k", &[], vec![], Bytes::new(), &rw, None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Copies are IAM-signed, across directory buckets too.
    let r = other
        .send(
            "PUT",
            "copied",
            &[],
            copy.clone(),
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(emu.object(OTHER, "copied").unwrap(), body);

    // CreateSession with a session token; unknown token; ReadOnly policy.
    let mut sess_hdr = vec![];
    support::sign(
        "GET",
        &c.host.clone(),
        "/",
        "session=",
        &mut sess_hdr,
        &support::sha256_hex(b""),
        &rw,
    );
    let r = c.raw("GET", "/?session=", &sess_hdr, Bytes::new()).await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidRequest");
    let mut forged = rw.clone();
    forged.session_token = Some("forged".into());
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &forged, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidToken");
    emu.set_read_only_policy(BUCKET, true);
    let r = c.create_session(Some("ReadWrite")).await.unwrap_err();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    c.create_session(None).await.unwrap();

    let n = emu.counters();
    assert_eq!(n.create_session_read_only, 2);
    assert!(n.signature_failures >= 6, "{n:?}");
    assert!(n.access_denied >= 6, "{n:?}");
    assert_eq!(n.invalid_token, 1);
}

#[tokio::test]
async fn sessions_expire() {
    let emu = start(Config {
        session_lifetime: Duration::from_secs(1),
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    let r = c
        .send("PUT", "k", &[], vec![], Bytes::from_static(b"v"), &s, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(
        (r.status, r.xml("Code").unwrap().as_str()),
        (StatusCode::BAD_REQUEST, "ExpiredToken")
    );
    let fresh = c.create_session(None).await.unwrap();
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &fresh, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    emu.expire_all_sessions();
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &fresh, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "ExpiredToken");
    assert_eq!(emu.counters().expired_token, 2);
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
    // UploadPart answers with the upload's encryption, as CreateMultipartUpload does.
    assert_eq!(
        r.header("x-amz-server-side-encryption").as_deref(),
        Some("AES256")
    );
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
async fn faults_and_concurrency() {
    let emu = start(Config::default()).await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    emu.inject(Fault::SlowDown {
        count: 1,
        target: Target::CreateSession,
    });
    let r = c.create_session(None).await.unwrap_err();
    assert_eq!(
        (r.status, r.xml("Code").unwrap().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "SlowDown")
    );
    let s = c.create_session(None).await.unwrap();
    emu.inject(Fault::ExpiredToken { count: 1 });
    let r = c
        .send("GET", "nothing", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "ExpiredToken");
    let r = c
        .send("GET", "nothing", &[], vec![], Bytes::new(), &s, None)
        .await;
    assert_eq!(
        r.xml("Code").unwrap(),
        "ExpiredToken",
        "the spoiled session stays expired"
    );

    emu.inject(Fault::Delay {
        count: 4,
        delay: Duration::from_millis(300),
        target: Target::CreateSession,
    });
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(&emu, &host(BUCKET), false).await;
        tasks.push(tokio::spawn(
            async move { c.create_session(None).await.is_ok() },
        ));
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert!(emu.counters().max_concurrent_create_session >= 2);

    let fresh = c.create_session(None).await.unwrap();
    c.send(
        "PUT",
        "slow",
        &[],
        vec![],
        Bytes::from(vec![1u8; 4000]),
        &fresh,
        None,
    )
    .await;
    emu.inject(Fault::SlowBody {
        bytes_per_sec: 20_000,
    });
    let t = std::time::Instant::now();
    let r = c
        .send("GET", "slow", &[], vec![], Bytes::new(), &fresh, None)
        .await;
    assert_eq!(r.body.len(), 4000);
    assert!(t.elapsed() >= Duration::from_millis(150));
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
        .send("POST", "", &[("delete", "")], vec![], doc, &s, None)
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
