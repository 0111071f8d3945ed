//! The verifier on requests botocore signed, byte for byte as they reached a socket
//! (`testdata/botocore`, made by `testdata/capture_botocore.py`, which says how).
//!
//! The client is `writer` of `testing::FILE`. Its CreateSession was answered with a session
//! this module minted at `MINTED_AT` with the fixture session key, so the requests botocore
//! then signed with that session verify here too.

use std::time::{Duration, SystemTime};

use super::testing::{parse_head, DATA, FILE};
use super::tests::seen;
use super::*;
use crate::route::operation::Operation;

const FIXTURE_KEY: &[u8] = b"s3x-proxy botocore fixtures";
/// When the fixture session was minted (Unix seconds).
const MINTED_AT: u64 = 1795975250;

fn control() -> AccessControl {
    let list = AccessList::parse(FILE, "botocore fixtures").unwrap();
    AccessControl::new(list, SessionKey::derive(FIXTURE_KEY))
}

fn writer_principal(control: &AccessControl) -> Principal {
    Principal::client(control.list().by_name("writer").unwrap().clone())
}

/// Mints the fixture session at `S3X_FIXTURE_NOW` and prints its CreateSession answer.
#[test]
#[ignore = "generates fixtures"]
fn print_fixture_session() {
    let now: u64 = std::env::var("S3X_FIXTURE_NOW").unwrap().parse().unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now);
    let control = control();
    let minted = control
        .create_session(&writer_principal(&control), DATA, None, now)
        .unwrap();
    println!("{}", minted.body());
}

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("testdata/botocore/", $name, ".http")))),*]
    };
}

/// Every captured request but the SigV2 one.
const SIGNED: &[(&str, &str)] = fixtures!(
    "00-gp-put-object",
    "01-gp-get-object-range",
    "02-gp-list-objects-v2",
    "03-express-create-session",
    "04-express-put-object",
    "05-express-get-object",
    "06-express-head-object",
    "07-express-copy-object",
    "09-gp-presigned-get",
    "10-express-presigned-get",
);

/// When botocore signed it: `X-Amz-Date`, from the header or the presigned query.
fn signed_at(parts: &http::request::Parts) -> SystemTime {
    let from_query = parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Date="))
            .map(str::to_string)
    });
    let date = match parts.headers.get("x-amz-date") {
        Some(v) => v.to_str().unwrap().to_string(),
        None => from_query.unwrap(),
    };
    parse_amz_date(&date).unwrap()
}

#[test]
fn every_botocore_request_verifies_as_the_client_that_signed_it() {
    let control = control();
    for (name, raw) in SIGNED {
        let parts = parse_head(raw);
        let now = signed_at(&parts);
        let who = control.verify_principal(&parts, now);
        let who = who.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(who.name(), "writer", "{name}");
        let via_session = ["04", "05", "06", "10"].contains(&&name[..2]);
        assert_eq!(who.session().is_some(), via_session, "{name}");
        if let Some(session) = who.session() {
            assert_eq!(
                (session.bucket(), session.mode()),
                (DATA, Mode::ReadWrite),
                "{name}"
            );
        }
    }
}

#[test]
fn the_fixture_session_is_the_one_the_create_session_fixture_gets() {
    let control = control();
    let request = parse_head(SIGNED[3].1);
    let who = control
        .verify_principal(&request, signed_at(&request))
        .unwrap();
    let mode = requested_mode(&request.headers).unwrap();
    let minted_at = SystemTime::UNIX_EPOCH + Duration::from_secs(MINTED_AT);
    let minted = control.create_session(&who, DATA, mode, minted_at).unwrap();
    let put = parse_head(SIGNED[4].1);
    assert_eq!(
        put.headers["x-amz-s3session-token"],
        minted.token().expose()
    );
    assert!(put.headers["authorization"]
        .to_str()
        .unwrap()
        .contains(minted.access_key_id()));
}

#[test]
fn botocore_bodies_match_their_signed_hashes() {
    use aws_lc_rs::digest;
    for (name, raw) in SIGNED {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let parts = parse_head(head);
        let Some(hash) = parts.headers.get("x-amz-content-sha256") else {
            continue;
        };
        let actual = digest::digest(&digest::SHA256, body.as_bytes());
        let hex: String = actual.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash.to_str().unwrap(), hex, "{name}");
    }
}

#[test]
fn a_changed_botocore_request_does_not_verify() {
    let control = control();
    for (name, raw) in SIGNED {
        let tampered = raw.replacen("/data--usw2-az1--x-s3", "/data--usw2-az2--x-s3", 1);
        let tampered = tampered.replacen("/gp-bucket", "/gp-bucker", 1);
        let parts = parse_head(&tampered);
        let result = control.verify_principal(&parts, signed_at(&parts));
        assert!(
            matches!(result, Err(AuthError::SignatureDoesNotMatch(_))),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn the_pipeline_checks_pass_for_botocores_requests() {
    let control = control();
    let check = |index: usize, op: Operation, bucket: &str| {
        let parts = parse_head(SIGNED[index].1);
        let who = control.verify_principal(&parts, signed_at(&parts)).unwrap();
        who.may(op, Some(bucket), parts.headers.get("x-amz-copy-source"))
    };
    assert_eq!(check(0, Operation::PutObject, "gp-bucket"), Ok(()));
    assert_eq!(check(4, Operation::PutObject, DATA), Ok(()));
    assert_eq!(check(7, Operation::CopyObject, DATA), Ok(()));
    let other_bucket = check(5, Operation::GetObject, "logs--usw2-az1--x-s3");
    assert!(other_bucket.is_err(), "the session is for {DATA} only");
}

#[test]
fn botocores_default_sigv2_presigned_url_is_refused_as_unsupported() {
    let raw = include_str!("testdata/botocore/08-gp-presigned-get-sigv2.http");
    let parts = parse_head(raw);
    let err = control()
        .verify_principal(&parts, SystemTime::now())
        .unwrap_err();
    assert_eq!(seen(err), (400, "InvalidRequest".into()));
}
