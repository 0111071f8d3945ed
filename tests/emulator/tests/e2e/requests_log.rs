//! The request log: Host, SNI, credential kind and SigV4 scope of every request, bounded.

use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{AuthKind, Config, Emulator, EndpointKind};

use crate::support::{host, iam, Client, Creds, BUCKET, OTHER, REGION};

/// Operations that may be signed with the IAM credentials on a Zonal host.
const IAM_ON_ZONAL: [&str; 4] = [
    "CreateSession",
    "CopyObject",
    "UploadPartCopy",
    "HeadBucket",
];

#[tokio::test]
async fn every_request_is_logged_with_its_credentials_and_scope() {
    let emu = Emulator::start(Config {
        buckets: vec![BUCKET.into(), OTHER.into()],
        ..Config::default()
    })
    .await
    .unwrap();
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let rw = c.create_session(None).await.unwrap();
    let ro = c.create_session(Some("ReadOnly")).await.unwrap();
    emu.clear_requests_log();

    c.send("PUT", "k", &[], vec![], "v", &rw, None).await;
    c.send("GET", "k", &[], vec![], Bytes::new(), &ro, None)
        .await;
    let copy = vec![("x-amz-copy-source".to_string(), format!("{BUCKET}/k"))];
    c.send("PUT", "k2", &[], copy, Bytes::new(), &iam(), None)
        .await;
    c.raw("GET", "/k", &[], Bytes::new()).await;
    let stranger = Creds {
        access_key_id: "AKIDSTRANGER".into(),
        secret: "x".into(),
        ..Creds::default()
    };
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &stranger, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "InvalidAccessKeyId");
    // IAM-signed data request: refused, but logged as what it was.
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A Host that is not the SNI.
    c.host = host(OTHER);
    c.send("HEAD", "", &[], vec![], Bytes::new(), &iam(), None)
        .await;

    // A presigned credential names its credentials too.
    let presigned = "/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEMULATOREXAMPLE%2F20240101%2Fus-west-2%2Fs3express%2Faws4_request&X-Amz-Signature=00";
    let r = c.raw("GET", presigned, &[], Bytes::new()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let log = emu.requests_log();
    let presigned = log.last().unwrap();
    assert_eq!(presigned.auth, AuthKind::Iam);
    assert_eq!(presigned.service.as_deref(), Some("s3express"));
    assert_eq!(presigned.operation, "GetObject");
    let log = &log[..log.len() - 1];
    let summary: Vec<(&str, AuthKind, bool, u16)> = log
        .iter()
        .map(|r| (r.operation.as_str(), r.auth, r.signature_verified, r.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("PutObject", AuthKind::SessionReadWrite, true, 200),
            ("GetObject", AuthKind::SessionReadOnly, true, 200),
            ("CopyObject", AuthKind::Iam, true, 200),
            ("GetObject", AuthKind::Anonymous, false, 403),
            ("GetObject", AuthKind::Unknown, false, 403),
            ("GetObject", AuthKind::Iam, true, 403),
            ("HeadBucket", AuthKind::Iam, true, 200),
        ]
    );
    for r in log {
        assert_eq!(r.endpoint, EndpointKind::Zonal);
        assert_eq!(r.sni.as_deref(), Some(host(BUCKET).as_str()));
        assert!(!r.request_id.is_empty());
        if r.auth != AuthKind::Anonymous {
            assert_eq!(r.service.as_deref(), Some("s3express"));
            assert_eq!(r.region.as_deref(), Some(REGION));
        }
    }
    assert_eq!(log[0].host, host(BUCKET));
    assert_eq!(log[0].bucket.as_deref(), Some(BUCKET));
    assert!(log[0].s3session_token && !log[0].security_token);
    assert_eq!(log[3].access_key_id, None);
    assert_eq!(log[4].access_key_id.as_deref(), Some("AKIDSTRANGER"));
    assert_eq!(log[5].error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(log[6].host, host(OTHER));
    assert_eq!(log[6].bucket.as_deref(), Some(OTHER));

    // The check a security test makes, which this log fails because of the IAM-signed GET.
    let leaks: Vec<&str> = log
        .iter()
        .filter(|r| r.endpoint == EndpointKind::Zonal && r.auth == AuthKind::Iam)
        .filter(|r| !IAM_ON_ZONAL.contains(&r.operation.as_str()))
        .map(|r| r.operation.as_str())
        .collect();
    assert_eq!(leaks, ["GetObject"]);
}

#[tokio::test]
async fn the_log_is_bounded() {
    let emu = Emulator::start(Config {
        buckets: vec![BUCKET.into()],
        requests_log_limit: 3,
        ..Config::default()
    })
    .await
    .unwrap();
    let mut c = Client::connect(&emu, &host(BUCKET), true).await;
    for _ in 0..5 {
        c.create_session(None).await.unwrap();
    }
    let s = c.create_session(None).await.unwrap();
    c.send("GET", "x", &[], vec![], Bytes::new(), &s, None)
        .await;
    let log = emu.requests_log();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2].operation, "GetObject");
    assert_eq!(log[2].status, 404);
    assert_eq!(log[2].error_code.as_deref(), Some("NoSuchKey"));
    assert_eq!(log[0].operation, "CreateSession");
    // h2: the :authority is the host.
    assert_eq!(log[2].host, host(BUCKET));
    emu.clear_requests_log();
    assert!(emu.requests_log().is_empty());
}
