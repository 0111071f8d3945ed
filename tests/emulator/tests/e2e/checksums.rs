//! Flexible checksums on upload (headers and aws-chunked trailers), corruption, and GET/HEAD.

use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{Config, Emulator, Fault};
use sha2::Digest;

use crate::support::{host, Client, Creds, Resp, BUCKET};

const ALGORITHMS: [&str; 5] = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"];

fn hdr(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The checksum, computed here independently of the emulator (CRC-64/NVME bit by bit).
fn checksum(alg: &str, data: &[u8]) -> String {
    match alg {
        "crc32" => b64(&crc32fast::hash(data).to_be_bytes()),
        "crc32c" => b64(&crc32c::crc32c(data).to_be_bytes()),
        "crc64nvme" => {
            let mut crc = u64::MAX;
            for &b in data {
                crc ^= u64::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        (crc >> 1) ^ 0x9a6c_9329_ac4b_c9b5
                    } else {
                        crc >> 1
                    };
                }
            }
            b64(&(!crc).to_be_bytes())
        }
        "sha1" => b64(&sha1::Sha1::digest(data)),
        "sha256" => b64(&sha2::Sha256::digest(data)),
        _ => unreachable!(),
    }
}

/// An aws-chunked body in two chunks with one trailer, and its headers.
fn chunked(data: &[u8], trailer: &str, value: &str) -> (Vec<(String, String)>, Bytes) {
    let (a, b) = data.split_at(data.len() / 3);
    let mut body = Vec::new();
    for chunk in [a, b] {
        body.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend(chunk);
        body.extend(b"\r\n");
    }
    body.extend(format!("0\r\n{trailer}:{value}\r\n\r\n").as_bytes());
    let headers = vec![
        hdr("content-encoding", "aws-chunked"),
        hdr("x-amz-decoded-content-length", &data.len().to_string()),
        hdr("x-amz-trailer", trailer),
    ];
    (headers, body.into())
}

const TRAILER: Option<&str> = Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
const UNSIGNED: Option<&str> = Some("UNSIGNED-PAYLOAD");

async fn start() -> (Emulator, Client, Creds) {
    let emu = Emulator::start(Config {
        buckets: vec![BUCKET.into()],
        min_part_size: 1,
        ..Config::default()
    })
    .await
    .unwrap();
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    (emu, c, s)
}

async fn get(c: &mut Client, method: &str, key: &str, s: &Creds, mode: bool) -> Resp {
    let h = if mode {
        vec![hdr("x-amz-checksum-mode", "ENABLED")]
    } else {
        vec![]
    };
    c.send(method, key, &[], h, Bytes::new(), s, None).await
}

#[tokio::test]
async fn every_algorithm_as_header_and_trailer() {
    let (emu, mut c, s) = start().await;
    let data = b"The quick brown fox jumps over the lazy dog".as_slice();
    for alg in ALGORITHMS {
        let name = format!("x-amz-checksum-{alg}");
        let good = checksum(alg, data);
        let bad = checksum(alg, b"something else");

        let key = format!("header-{alg}");
        let r = c
            .send("PUT", &key, &[], vec![hdr(&name, &bad)], data, &s, UNSIGNED)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{alg}");
        assert_eq!(r.xml("Code").unwrap(), "BadDigest", "{alg}");
        assert!(emu.object(BUCKET, &key).is_none());
        let r = c
            .send(
                "PUT",
                &key,
                &[],
                vec![hdr(&name, &good)],
                data,
                &s,
                UNSIGNED,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{alg}: {}", r.text());
        assert_eq!(r.header(&name).as_deref(), Some(good.as_str()));

        let key = format!("trailer-{alg}");
        let (headers, body) = chunked(data, &name, &bad);
        let r = c.send("PUT", &key, &[], headers, body, &s, TRAILER).await;
        assert_eq!(r.xml("Code").unwrap(), "BadDigest", "{alg} trailer");
        assert!(emu.object(BUCKET, &key).is_none());
        let (headers, body) = chunked(data, &name, &good);
        let r = c.send("PUT", &key, &[], headers, body, &s, TRAILER).await;
        assert_eq!(r.status, StatusCode::OK, "{alg} trailer: {}", r.text());
        assert_eq!(emu.object(BUCKET, &key).unwrap(), data);

        // Returned with x-amz-checksum-mode: ENABLED only.
        for method in ["GET", "HEAD"] {
            let r = get(&mut c, method, &key, &s, true).await;
            assert_eq!(
                r.header(&name).as_deref(),
                Some(good.as_str()),
                "{alg} {method}"
            );
            assert_eq!(
                r.header("x-amz-checksum-type").as_deref(),
                Some("FULL_OBJECT")
            );
            let r = get(&mut c, method, &key, &s, false).await;
            assert!(r.header(&name).is_none());
        }
    }
    // A value that is not a checksum of that algorithm at all.
    let r = c
        .send(
            "PUT",
            "k",
            &[],
            vec![hdr("x-amz-checksum-crc32", "AAAAAAAA")],
            data,
            &s,
            UNSIGNED,
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidRequest");
}

#[tokio::test]
async fn corruption_in_transit_is_caught_by_a_checksum_and_stored_without_one() {
    let (emu, mut c, s) = start().await;
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let crc64 = checksum("crc64nvme", &data);

    // Trailer checksum: BadDigest, nothing stored.
    emu.inject(Fault::CorruptUpload { count: 1 });
    let (headers, body) = chunked(&data, "x-amz-checksum-crc64nvme", &crc64);
    let r = c
        .send(
            "PUT",
            "trailer",
            &[],
            headers.clone(),
            body.clone(),
            &s,
            TRAILER,
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "BadDigest");
    assert!(emu.object(BUCKET, "trailer").is_none());
    // The fault is used up: the same upload now succeeds.
    let r = c
        .send("PUT", "trailer", &[], headers, body, &s, TRAILER)
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Header checksum and a signed payload hash catch it too.
    emu.inject(Fault::CorruptUpload { count: 2 });
    let h = vec![hdr("x-amz-checksum-crc32", &checksum("crc32", &data))];
    let r = c
        .send("PUT", "header", &[], h, data.clone(), &s, UNSIGNED)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "BadDigest");
    let r = c
        .send("PUT", "signed", &[], vec![], data.clone(), &s, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "XAmzContentSHA256Mismatch");

    // Without a checksum the corrupted bytes are stored: one byte, the middle one, flipped.
    emu.inject(Fault::CorruptUpload { count: 1 });
    let r = c
        .send("PUT", "plain", &[], vec![], data.clone(), &s, UNSIGNED)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let stored = emu.object(BUCKET, "plain").unwrap();
    let diff: Vec<usize> = (0..data.len()).filter(|&i| stored[i] != data[i]).collect();
    assert_eq!(diff, [data.len() / 2]);
    assert_eq!(stored[5000], data[5000] ^ 1);
    assert!(emu.object(BUCKET, "header").is_none() && emu.object(BUCKET, "signed").is_none());

    // Parts too.
    let r = c
        .send(
            "POST",
            "mp",
            &[("uploads", "")],
            vec![],
            Bytes::new(),
            &s,
            None,
        )
        .await;
    let id = r.xml("UploadId").unwrap();
    emu.inject(Fault::CorruptUpload { count: 1 });
    let q = [("partNumber", "1"), ("uploadId", id.as_str())];
    let (headers, body) = chunked(&data, "x-amz-checksum-crc64nvme", &crc64);
    let r = c.send("PUT", "mp", &q, headers, body, &s, TRAILER).await;
    assert_eq!(r.xml("Code").unwrap(), "BadDigest");
}

#[tokio::test]
async fn multipart_object_checksums() {
    let (emu, mut c, s) = start().await;
    let (p1, p2) = (b"first part, ".as_slice(), b"second part".as_slice());
    let whole = [p1, p2].concat();
    for (alg, kind) in [
        ("CRC32", "COMPOSITE"),
        ("CRC64NVME", "FULL_OBJECT"),
        ("SHA256", "COMPOSITE"),
    ] {
        let lower = alg.to_lowercase();
        let name = format!("x-amz-checksum-{lower}");
        let key = format!("mp-{lower}");
        let h = vec![hdr("x-amz-checksum-algorithm", alg)];
        let r = c
            .send("POST", &key, &[("uploads", "")], h, Bytes::new(), &s, None)
            .await;
        assert_eq!(r.header("x-amz-checksum-type").as_deref(), Some(kind));
        let id = r.xml("UploadId").unwrap();
        // Part 1 sends its checksum, part 2 none (the emulator computes it).
        let q1 = [("partNumber", "1"), ("uploadId", id.as_str())];
        let h = vec![hdr(&name, &checksum(&lower, p1))];
        let r = c.send("PUT", &key, &q1, h, p1, &s, UNSIGNED).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let q2 = [("partNumber", "2"), ("uploadId", id.as_str())];
        let r = c.send("PUT", &key, &q2, vec![], p2, &s, UNSIGNED).await;
        assert_eq!(r.header(&name), Some(checksum(&lower, p2)));
        let expected = if kind == "FULL_OBJECT" {
            checksum(&lower, &whole)
        } else {
            let mut raw = Vec::new();
            for p in [p1, p2] {
                raw.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(checksum(&lower, p))
                        .unwrap(),
                );
            }
            format!("{}-2", checksum(&lower, &raw))
        };
        let doc = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>";
        let q = [("uploadId", id.as_str())];
        // A whole-object checksum that does not match is refused.
        let wrong = vec![hdr(&name, &checksum(&lower, b"nope"))];
        if kind == "FULL_OBJECT" {
            let r = c.send("POST", &key, &q, wrong, doc, &s, None).await;
            assert_eq!(r.xml("Code").unwrap(), "BadDigest");
        }
        let r = c.send("POST", &key, &q, vec![], doc, &s, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header(&name).as_deref(), Some(expected.as_str()), "{alg}");
        assert_eq!(
            r.xml(&format!("Checksum{alg}")).as_deref(),
            Some(expected.as_str())
        );
        let r = get(&mut c, "HEAD", &key, &s, true).await;
        assert_eq!(r.header(&name).as_deref(), Some(expected.as_str()));
        assert_eq!(r.header("x-amz-checksum-type").as_deref(), Some(kind));
        assert_eq!(emu.object(BUCKET, &key).unwrap(), whole);
    }
    let h = vec![
        hdr("x-amz-checksum-algorithm", "CRC64NVME"),
        hdr("x-amz-checksum-type", "COMPOSITE"),
    ];
    let r = c
        .send("POST", "x", &[("uploads", "")], h, Bytes::new(), &s, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidRequest");
}
