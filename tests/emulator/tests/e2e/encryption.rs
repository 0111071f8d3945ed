//! SSE-KMS as S3 documents it for directory buckets: bucket default, CreateSession, objects.

use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{Config, Emulator, Sse};

use crate::support::{host, iam, Client, Creds, Resp, BUCKET, OTHER};

const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/k1";
const OTHER_KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/k2";
const ALG: &str = "x-amz-server-side-encryption";
const KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT: &str = "x-amz-server-side-encryption-context";
const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";

fn hdr(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

fn kms() -> Sse {
    Sse::Kms {
        key_id: KEY.into(),
        bucket_key_enabled: true,
    }
}

fn assert_kms(r: &Resp, what: &str) {
    assert_eq!(r.header(ALG).as_deref(), Some("aws:kms"), "{what}");
    assert_eq!(r.header(KEY_ID).as_deref(), Some(KEY), "{what}");
    assert_eq!(r.header(BUCKET_KEY).as_deref(), Some("true"), "{what}");
}

async fn start() -> (Emulator, Client) {
    let emu = Emulator::start(Config {
        buckets: vec![BUCKET.into(), OTHER.into()],
        min_part_size: 1,
        ..Config::default()
    })
    .await
    .unwrap();
    let c = Client::connect(&emu, &host(BUCKET), false).await;
    (emu, c)
}

async fn get(c: &mut Client, key: &str, creds: &Creds) -> Resp {
    c.send("GET", key, &[], vec![], Bytes::new(), creds, None)
        .await
}

#[tokio::test]
async fn sessions_and_objects_follow_the_bucket_default() {
    let (emu, mut c) = start().await;
    let aes = c.create_session(None).await.unwrap();
    let r = c.send("PUT", "a", &[], vec![], "x", &aes, None).await;
    assert_eq!(r.header(ALG).as_deref(), Some("AES256"));
    assert!(r.header(KEY_ID).is_none());

    emu.set_bucket_encryption(BUCKET, kms());
    // No SSE headers: the bucket default, named in the answer.
    let (s, r) = c.create_session_with(vec![]).await.unwrap();
    assert_kms(&r, "CreateSession");
    let r = c.send("PUT", "k", &[], vec![], "data", &s, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_kms(&r, "PutObject");
    for method in ["GET", "HEAD"] {
        let r = c
            .send(method, "k", &[], vec![], Bytes::new(), &s, None)
            .await;
        assert_kms(&r, method);
    }
    let stored = emu.object_headers(BUCKET, "k").unwrap();
    assert!(stored.contains(&hdr(KEY_ID, KEY)), "{stored:?}");
    // A session made before the change keeps its AES256.
    let r = c.send("PUT", "old", &[], vec![], "x", &aes, None).await;
    assert_eq!(r.header(ALG).as_deref(), Some("AES256"));

    // Naming the bucket's settings, with a context: remembered and echoed where S3 does.
    let context = base64::engine::general_purpose::STANDARD.encode(r#"{"project":"s3x"}"#);
    let (s, r) = c
        .create_session_with(vec![
            hdr(ALG, "aws:kms"),
            hdr(KEY_ID, KEY),
            hdr(CONTEXT, &context),
            hdr(BUCKET_KEY, "true"),
        ])
        .await
        .unwrap();
    assert_kms(&r, "CreateSession with headers");
    assert_eq!(r.header(CONTEXT).as_deref(), Some(context.as_str()));
    let r = c.send("PUT", "ctx", &[], vec![], "data", &s, None).await;
    assert_eq!(r.header(CONTEXT).as_deref(), Some(context.as_str()));
    assert!(emu
        .object_headers(BUCKET, "ctx")
        .unwrap()
        .contains(&hdr(CONTEXT, &context)));
    let r = get(&mut c, "ctx", &s).await;
    assert_kms(&r, "GET with context");
    assert!(
        r.header(CONTEXT).is_none(),
        "GetObject does not return the context"
    );
}

#[tokio::test]
async fn mismatches_get_invalid_argument() {
    let (emu, mut c) = start().await;
    emu.set_bucket_encryption(BUCKET, kms());
    for headers in [
        vec![hdr(ALG, "aws:kms"), hdr(KEY_ID, OTHER_KEY)],
        vec![hdr(ALG, "aws:kms")],
        vec![hdr(ALG, "AES256")],
        vec![
            hdr(ALG, "aws:kms"),
            hdr(KEY_ID, KEY),
            hdr(BUCKET_KEY, "false"),
        ],
        vec![hdr(KEY_ID, KEY)],
    ] {
        let r = c.create_session_with(headers.clone()).await.unwrap_err();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(r.xml("Code").unwrap(), "InvalidArgument", "{headers:?}");
        assert!(r.xml("RequestId").is_some());
    }
    // Zonal writes cannot override the session's settings.
    let s = c.create_session(None).await.unwrap();
    for headers in [
        vec![hdr(ALG, "AES256")],
        vec![hdr(ALG, "aws:kms"), hdr(KEY_ID, OTHER_KEY)],
    ] {
        let r = c
            .send("PUT", "k", &[], headers.clone(), "x", &s, None)
            .await;
        assert_eq!(r.xml("Code").unwrap(), "InvalidArgument", "{headers:?}");
        let r = c
            .send(
                "POST",
                "mp",
                &[("uploads", "")],
                headers,
                Bytes::new(),
                &s,
                None,
            )
            .await;
        assert_eq!(r.xml("Code").unwrap(), "InvalidArgument");
    }
    assert!(emu.keys(BUCKET).is_empty());
    assert!(emu.multipart_uploads(BUCKET).is_empty());
    // Repeating the session's own settings is fine.
    let same = vec![hdr(ALG, "aws:kms"), hdr(KEY_ID, KEY)];
    let r = c.send("PUT", "k", &[], same, "x", &s, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A bucket whose default is AES256 takes no aws:kms session.
    let mut other = Client::connect(&emu, &host(OTHER), false).await;
    let r = other
        .create_session_with(vec![hdr(ALG, "aws:kms"), hdr(KEY_ID, KEY)])
        .await
        .unwrap_err();
    assert_eq!(r.xml("Code").unwrap(), "InvalidArgument");
    // A directory bucket refuses SSE-C.
    let r = other
        .create_session_with(vec![hdr(
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256",
        )])
        .await
        .unwrap_err();
    assert_eq!(r.xml("Code").unwrap(), "InvalidArgument");
}

#[tokio::test]
async fn multipart_answers_carry_the_upload_encryption() {
    let (emu, mut c) = start().await;
    emu.set_bucket_encryption(BUCKET, kms());
    let s = c.create_session(None).await.unwrap();
    c.send("PUT", "src", &[], vec![], "0123456789", &s, None)
        .await;
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
    assert_kms(&r, "CreateMultipartUpload");
    let id = r.xml("UploadId").unwrap();
    let q1 = [("partNumber", "1"), ("uploadId", id.as_str())];
    let r = c.send("PUT", "mp", &q1, vec![], "part-one", &s, None).await;
    assert_kms(&r, "UploadPart");
    // UploadPartCopy: explicit settings must be the upload's.
    let q2 = [("partNumber", "2"), ("uploadId", id.as_str())];
    let copy = |extra: Vec<(String, String)>| {
        let mut h = vec![hdr("x-amz-copy-source", &format!("{BUCKET}/src"))];
        h.extend(extra);
        h
    };
    let r = c
        .send(
            "PUT",
            "mp",
            &q2,
            copy(vec![hdr(ALG, "AES256")]),
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidArgument", "{}", r.text());
    let r = c
        .send(
            "PUT",
            "mp",
            &q2,
            copy(vec![hdr(ALG, "aws:kms")]),
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_kms(&r, "UploadPartCopy");
    let doc = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>";
    let r = c
        .send(
            "POST",
            "mp",
            &[("uploadId", id.as_str())],
            vec![],
            doc,
            &s,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_kms(&r, "CompleteMultipartUpload");
    assert_kms(&get(&mut c, "mp", &s).await, "GET of the completed upload");
}

#[tokio::test]
async fn copies_may_choose_aes256_or_the_bucket_key() {
    let (emu, mut c) = start().await;
    emu.set_bucket_encryption(BUCKET, kms());
    let s = c.create_session(None).await.unwrap();
    c.send("PUT", "src", &[], vec![], "v", &s, None).await;
    let copy = |extra: &[(&str, &str)]| {
        let mut h = vec![hdr("x-amz-copy-source", &format!("/{BUCKET}/src"))];
        h.extend(extra.iter().map(|(n, v)| hdr(n, v)));
        h
    };
    let r = c
        .send(
            "PUT",
            "aes",
            &[],
            copy(&[(ALG, "AES256")]),
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header(ALG).as_deref(), Some("AES256"));
    assert_eq!(
        get(&mut c, "aes", &s).await.header(ALG).as_deref(),
        Some("AES256")
    );
    let r = c
        .send(
            "PUT",
            "kms",
            &[],
            copy(&[(ALG, "aws:kms"), (KEY_ID, KEY)]),
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_kms(&r, "CopyObject aws:kms");
    let r = c
        .send("PUT", "default", &[], copy(&[]), Bytes::new(), &iam(), None)
        .await;
    assert_kms(&r, "CopyObject with the bucket default");
    let r = c
        .send(
            "PUT",
            "bad",
            &[],
            copy(&[(ALG, "aws:kms"), (KEY_ID, OTHER_KEY)]),
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidArgument");
    assert!(emu.object(BUCKET, "bad").is_none());
    // Into an AES256 bucket, aws:kms has no bucket key to use.
    let mut other = Client::connect(&emu, &host(OTHER), false).await;
    let r = other
        .send(
            "PUT",
            "x",
            &[],
            copy(&[(ALG, "aws:kms"), (KEY_ID, KEY)]),
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidArgument");
    let r = other
        .send("PUT", "x", &[], copy(&[]), Bytes::new(), &iam(), None)
        .await;
    assert_eq!(
        r.header(ALG).as_deref(),
        Some("AES256"),
        "the destination's default"
    );
}
