//! IAM credentials that rotate at run time: ExpiredToken and InvalidAccessKeyId, as S3 answers.

use bytes::Bytes;
use http::StatusCode;
use s3x_emulator::{AuthKind, Config, Emulator};

use crate::support::{host, iam, Client, Creds, BUCKET};

fn creds(akid: &str, secret: &str, token: Option<&str>) -> Creds {
    Creds {
        access_key_id: akid.into(),
        secret: secret.into(),
        session_token: None,
        security_token: token.map(str::to_string),
    }
}

/// CreateSession signed with `c`; the answer.
async fn create_session(client: &mut Client, c: &Creds) -> (StatusCode, Option<String>) {
    let r = client
        .send("GET", "", &[("session", "")], vec![], Bytes::new(), c, None)
        .await;
    (r.status, r.xml("Code"))
}

#[tokio::test]
async fn temporary_credentials_rotate() {
    let first = creds("ASIAFIRST", "first-secret", Some("token-1"));
    let emu = Emulator::start(Config {
        buckets: vec![BUCKET.into()],
        access_key_id: first.access_key_id.clone(),
        secret_access_key: first.secret.clone(),
        iam_session_token: first.security_token.clone(),
        ..Config::default()
    })
    .await
    .unwrap();
    let mut c = Client::connect(&emu, &host(BUCKET), false).await;
    let r = c
        .send(
            "GET",
            "",
            &[("session", "")],
            vec![],
            Bytes::new(),
            &first,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let old_session = Creds {
        access_key_id: r.xml("AccessKeyId").unwrap(),
        secret: r.xml("SecretAccessKey").unwrap(),
        session_token: r.xml("SessionToken"),
        security_token: None,
    };

    let second = creds("ASIASECOND", "second-secret", Some("token-2"));
    emu.set_iam_credentials("ASIASECOND", "second-secret", Some("token-2"));
    let expired = (StatusCode::BAD_REQUEST, Some("ExpiredToken".to_string()));
    // The old temporary credentials have expired.
    assert_eq!(create_session(&mut c, &first).await, expired);
    // The new key id with the old token: a known key, a stale token.
    let stale = creds("ASIASECOND", "second-secret", Some("token-1"));
    assert_eq!(create_session(&mut c, &stale).await, expired);
    // The new key id with no token, or one never issued.
    for token in [None, Some("forged")] {
        let r = create_session(&mut c, &creds("ASIASECOND", "second-secret", token)).await;
        assert_eq!(r, (StatusCode::FORBIDDEN, Some("InvalidToken".to_string())));
    }
    // The new credentials work, with a bad secret they do not.
    assert_eq!(
        create_session(&mut c, &second).await,
        (StatusCode::OK, None)
    );
    let wrong = creds("ASIASECOND", "not-the-secret", Some("token-2"));
    assert_eq!(
        create_session(&mut c, &wrong).await.1.as_deref(),
        Some("SignatureDoesNotMatch")
    );
    // A key id never seen.
    let r = create_session(&mut c, &creds("AKIDNEVERSEEN", "x", None)).await;
    assert_eq!(
        r,
        (
            StatusCode::FORBIDDEN,
            Some("InvalidAccessKeyId".to_string())
        )
    );
    // Sessions made with the old credentials live until they expire.
    let r = c
        .send("PUT", "k", &[], vec![], "v", &old_session, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let n = emu.counters();
    assert_eq!(n.iam_expired_token, 2);
    assert_eq!(n.expired_token, 2);
    assert_eq!(n.invalid_access_key_id, 1);
    // The log names the old key as IAM.
    let log = emu.requests_log();
    assert!(log
        .iter()
        .filter(|r| r.access_key_id.as_deref() == Some("ASIAFIRST"))
        .all(|r| r.auth == AuthKind::Iam && r.security_token));
}

#[tokio::test]
async fn long_term_keys_rotate() {
    let emu = Emulator::start(Config {
        buckets: vec![BUCKET.into()],
        ..Config::default()
    })
    .await
    .unwrap();
    let mut c = Client::connect(&emu, &host(BUCKET), true).await;
    assert_eq!(create_session(&mut c, &iam()).await.0, StatusCode::OK);
    emu.set_iam_credentials("AKIDROTATED", "rotated-secret", None);
    // A deleted long-term key is unknown from then on.
    let r = create_session(&mut c, &iam()).await;
    assert_eq!(
        r,
        (
            StatusCode::FORBIDDEN,
            Some("InvalidAccessKeyId".to_string())
        )
    );
    let new = creds("AKIDROTATED", "rotated-secret", None);
    assert_eq!(create_session(&mut c, &new).await.0, StatusCode::OK);
    // Temporary credentials from then on; the long-term key is rotated out too.
    emu.set_iam_credentials("ASIATEMP", "temp-secret", Some("t"));
    assert_eq!(
        create_session(&mut c, &new).await.1.as_deref(),
        Some("InvalidAccessKeyId")
    );
    let temp = creds("ASIATEMP", "temp-secret", Some("t"));
    assert_eq!(create_session(&mut c, &temp).await.0, StatusCode::OK);
    let copy = vec![("x-amz-copy-source".to_string(), format!("{BUCKET}/nothing"))];
    let r = c
        .send("PUT", "k", &[], copy, Bytes::new(), &temp, None)
        .await;
    assert_eq!(
        r.xml("Code").unwrap(),
        "NoSuchKey",
        "IAM-signed copies use them too"
    );
    assert_eq!(emu.counters().invalid_access_key_id, 2);
}
