//! Directory-bucket sessions end to end: h1 and h2, what credentials may do, expiry, faults.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{Config, Emulator, Fault, Target};

use crate::support::{self, host, iam, Client, BUCKET, OTHER};

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
    // With a lifetime of zero a session has expired by its first use: no waiting needed.
    let short = start(Config {
        session_lifetime: Duration::ZERO,
        ..Config::default()
    })
    .await;
    let mut c = Client::connect(&short, &host(BUCKET), false).await;
    let s = c.create_session(None).await.unwrap();
    let r = c
        .send("PUT", "k", &[], vec![], Bytes::from_static(b"v"), &s, None)
        .await;
    assert_eq!(
        (r.status, r.xml("Code").unwrap().as_str()),
        (StatusCode::BAD_REQUEST, "ExpiredToken")
    );
    assert!(short.object(BUCKET, "k").is_none());
    assert_eq!(short.live_sessions(), 0);

    let emu = start(Config::default()).await;
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let fresh = c.create_session(None).await.unwrap();
    let r = c.send("PUT", "k", &[], vec![], "v", &fresh, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(emu.live_sessions(), 1);
    emu.expire_all_sessions();
    let r = c
        .send("GET", "k", &[], vec![], Bytes::new(), &fresh, None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "ExpiredToken");
    assert_eq!(emu.counters().expired_token, 1);
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
