//! `AccessControl` end to end: reloads, a client's CreateSession and the requests signed with
//! what it minted, tunnels across reloads, and the cost of one verification.

use std::io::Write;
use std::time::Duration;

use aws_sigv4::http_request::SignableBody;
use http::request::Parts;
use http::HeaderValue;

use super::sigv4_tests::control;
use super::testing::{t0, Signer, DATA, FILE, HOST, READER_SECRET, WRITER_SECRET};
use super::*;
use crate::route::operation::Operation;

/// The status and S3 code a client sees for `err`, from the one error mapping (`crate::error`).
pub(super) fn seen(err: AuthError) -> (u16, String) {
    let reply = crate::error::ProxyError::from(err).reply();
    (reply.status.as_u16(), reply.code)
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn create_session_request(key_id: &str, secret: &str, mode: Option<&str>) -> Parts {
    let headers: Vec<(&str, &str)> = mode
        .map(|m| ("x-amz-create-session-mode", m))
        .into_iter()
        .collect();
    Signer::new(key_id, secret).sign(
        "GET",
        &format!("https://{HOST}/?session"),
        &headers,
        SignableBody::UnsignedPayload,
    )
}

/// A client's CreateSession, answered locally.
fn create_session(control: &AccessControl, request: &Parts) -> Result<MintedSession, AuthError> {
    let who = control.verify_principal(request, t0())?;
    let mode = requested_mode(&request.headers)?;
    control.create_session(&who, DATA, mode, t0())
}

fn session_signer(session: &MintedSession) -> Signer<'_> {
    Signer {
        token: Some(session.token().expose()),
        time: t0() + Duration::from_secs(60),
        ..Signer::new(session.access_key_id(), session.secret().expose())
    }
}

#[test]
fn reload_swaps_the_list_and_keeps_it_when_the_new_file_is_bad() {
    let file = file_with(FILE);
    let control = AccessControl::load(file.path()).unwrap();
    assert_eq!(control.list().len(), 2);
    let bad = file_with("[[client]]\nname = \"x\"\n");
    let err = control.reload(bad.path()).unwrap_err();
    assert!(err.to_string().contains("missing field"), "{err}");
    assert_eq!(control.list().len(), 2, "the old list stays in force");
    let one = file_with(&FILE[..FILE.find("\n[[client]]\nname = \"reader\"").unwrap()]);
    control.reload(one.path()).unwrap();
    assert_eq!(control.list().len(), 1);
    let reader = control.verify_principal(
        &create_session_request("AKIDREADER", READER_SECRET, None),
        t0(),
    );
    assert_eq!(reader.unwrap_err(), AuthError::InvalidAccessKeyId);
}

#[test]
fn a_clients_create_session_is_answered_with_credentials_that_authenticate_as_it() {
    let control = control();
    let session = create_session(
        &control,
        &create_session_request("AKIDWRITER", WRITER_SECRET, None),
    )
    .unwrap();
    assert_eq!(
        session.grant().mode(),
        Mode::ReadWrite,
        "the highest the rules allow"
    );
    let signer = session_signer(&session);
    let put = signer.sign(
        "PUT",
        &format!("https://{HOST}/k"),
        &[],
        SignableBody::UnsignedPayload,
    );
    assert!(put.headers.contains_key("x-amz-s3session-token"));
    let now = t0() + Duration::from_secs(60);
    let who = control.verify_principal(&put, now).unwrap();
    assert_eq!(who.name(), "writer");
    assert_eq!(who.session().unwrap().bucket(), DATA);
    assert_eq!(who.may(Operation::PutObject, Some(DATA), None), Ok(()));
    assert!(who
        .may(Operation::GetObject, Some("logs--usw2-az1--x-s3"), None)
        .is_err());
    // Presigned with the session: the token travels in the query.
    let presigned = Signer {
        presign: Some(Duration::from_secs(60)),
        ..signer
    }
    .sign(
        "GET",
        &format!("https://{HOST}/k"),
        &[],
        SignableBody::UnsignedPayload,
    );
    assert!(presigned
        .uri
        .query()
        .unwrap()
        .contains("x-amz-s3session-token="));
    assert_eq!(
        control.verify_principal(&presigned, now).unwrap().name(),
        "writer"
    );
    // After five minutes the session is over; a wrong secret never worked.
    let late = control.verify_principal(&put, t0() + Duration::from_secs(300));
    assert_eq!(late.unwrap_err(), AuthError::ExpiredToken);
    let forged = Signer {
        secret: WRITER_SECRET,
        ..signer
    }
    .sign(
        "PUT",
        &format!("https://{HOST}/k"),
        &[],
        SignableBody::UnsignedPayload,
    );
    assert!(matches!(
        control.verify_principal(&forged, now),
        Err(AuthError::SignatureDoesNotMatch(_))
    ));
    let mut no_token = put.clone();
    no_token.headers.remove("x-amz-s3session-token");
    assert!(matches!(
        control.verify_principal(&no_token, now),
        Err(AuthError::InvalidToken(_))
    ));
}

#[test]
fn session_modes_follow_the_clients_rules() {
    let control = control();
    let reader = |mode| {
        create_session(
            &control,
            &create_session_request("AKIDREADER", READER_SECRET, mode),
        )
    };
    assert_eq!(reader(None).unwrap().grant().mode(), Mode::ReadOnly);
    assert_eq!(
        reader(Some("ReadOnly")).unwrap().grant().mode(),
        Mode::ReadOnly
    );
    let err = reader(Some("ReadWrite")).unwrap_err();
    assert_eq!(seen(err), (403, "AccessDenied".into()));
    assert_eq!(
        reader(Some("Admin")).unwrap_err(),
        AuthError::InvalidSessionMode
    );
    let writer = control
        .verify_principal(
            &create_session_request("AKIDWRITER", WRITER_SECRET, None),
            t0(),
        )
        .unwrap();
    let zone = control
        .create_session(&writer, "logs--usw2-az1--x-s3", None, t0())
        .unwrap();
    assert_eq!(zone.grant().mode(), Mode::ReadOnly);
    let nowhere = control.create_session(&writer, "logs--use1-az4--x-s3", None, t0());
    assert!(matches!(nowhere, Err(AuthError::AccessDenied(_))));
    // A read-only session refuses writes even for a read-write client.
    let ro = create_session(
        &control,
        &create_session_request("AKIDWRITER", WRITER_SECRET, Some("ReadOnly")),
    )
    .unwrap();
    let put = session_signer(&ro).sign(
        "PUT",
        &format!("https://{HOST}/k"),
        &[],
        SignableBody::UnsignedPayload,
    );
    let who = control
        .verify_principal(&put, t0() + Duration::from_secs(60))
        .unwrap();
    assert!(who.may(Operation::PutObject, Some(DATA), None).is_err());
    assert!(who.may(Operation::GetObject, Some(DATA), None).is_ok());
    assert!(
        control.create_session(&who, DATA, None, t0()).is_err(),
        "no sessions from sessions"
    );
}

#[test]
fn a_reload_that_changes_the_client_ends_its_sessions() {
    let file = file_with(FILE);
    let control = AccessControl::load(file.path()).unwrap();
    let session = create_session(
        &control,
        &create_session_request("AKIDWRITER", WRITER_SECRET, None),
    )
    .unwrap();
    let put = session_signer(&session).sign(
        "PUT",
        &format!("https://{HOST}/k"),
        &[],
        SignableBody::UnsignedPayload,
    );
    let now = t0() + Duration::from_secs(60);
    assert!(control.verify_principal(&put, now).is_ok());
    let unrelated =
        file_with(&FILE.replace("reader-secret-0123456789", "reader-secret-rotated-01"));
    control.reload(unrelated.path()).unwrap();
    assert!(
        control.verify_principal(&put, now).is_ok(),
        "another client's change"
    );
    let narrowed =
        file_with(&FILE.replace("{ bucket = \"gp-*\", access = \"read-write\" },\n", ""));
    control.reload(narrowed.path()).unwrap();
    let err = control.verify_principal(&put, now).unwrap_err();
    assert_eq!(seen(err), (400, "InvalidToken".into()));
}

#[test]
fn basic_auth_and_tunnels_across_reloads() {
    use base64::Engine;
    let file = file_with(FILE);
    let control = AccessControl::load(file.path()).unwrap();
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("AKIDREADER:{READER_SECRET}"));
    let header = HeaderValue::from_str(&format!("Basic {encoded}")).unwrap();
    let tunnel = control.authenticate_basic(Some(&header)).unwrap();
    assert_eq!(tunnel.name(), "reader");
    assert!(tunnel.may(Operation::PutObject, Some(DATA), None).is_err());
    // New rules apply to the open tunnel from its next request on.
    let widened = file_with(&FILE.replace(
        "allow = [{ bucket = \"*--usw2-az1--x-s3\", access = \"read-only\" }]",
        "allow = [{ bucket = \"*--usw2-az1--x-s3\", access = \"read-write\" }]",
    ));
    control.reload(widened.path()).unwrap();
    let tunnel = control.refresh(&tunnel).unwrap();
    assert_eq!(tunnel.may(Operation::PutObject, Some(DATA), None), Ok(()));
    // A rotated secret or a removed client closes it.
    let rotated = file_with(&FILE.replace(READER_SECRET, "reader-secret-rotated-01"));
    control.reload(rotated.path()).unwrap();
    let err = control.refresh(&tunnel).unwrap_err();
    assert_eq!(err, AuthError::ProxyAuth(ProxyAuthFailure::WrongSecret));
    assert_eq!(seen(err).0, 407);
    assert!(control.authenticate_basic(Some(&header)).is_err());
    let gone = file_with(&FILE[..FILE.find("\n[[client]]\nname = \"reader\"").unwrap()]);
    control.reload(gone.path()).unwrap();
    let err = control.refresh(&tunnel).unwrap_err();
    assert_eq!(err, AuthError::ProxyAuth(ProxyAuthFailure::UnknownKey));
}

#[test]
fn no_debug_output_shows_a_secret() {
    let control = control();
    let request = create_session_request("AKIDWRITER", WRITER_SECRET, None);
    let session = create_session(&control, &request).unwrap();
    let put = session_signer(&session).sign(
        "PUT",
        &format!("https://{HOST}/k"),
        &[],
        SignableBody::UnsignedPayload,
    );
    let who = control
        .verify_principal(&put, t0() + Duration::from_secs(60))
        .unwrap();
    let shown = format!("{control:?} {who:?} {session:?} {:?}", control.list());
    for secret in [
        WRITER_SECRET,
        READER_SECRET,
        session.secret().expose(),
        session.token().expose(),
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("writer") && shown.contains(session.access_key_id()),
        "{shown}"
    );
}

#[test]
fn the_requested_mode_header() {
    let mut headers = http::HeaderMap::new();
    assert_eq!(requested_mode(&headers), Ok(None));
    headers.insert(
        "x-amz-create-session-mode",
        HeaderValue::from_static("ReadWrite"),
    );
    assert_eq!(requested_mode(&headers), Ok(Some(Mode::ReadWrite)));
    headers.insert(
        "x-amz-create-session-mode",
        HeaderValue::from_static("readonly"),
    );
    assert_eq!(requested_mode(&headers), Err(AuthError::InvalidSessionMode));
}

/// Per-call cost of `f`: the fastest of 20 batches (the least disturbed by other load).
fn per_call(mut f: impl FnMut()) -> Duration {
    let batch = 5_000u32;
    (0..20)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed() / batch
        })
        .min()
        .unwrap()
}

/// `cargo test --release --lib identity::tests::cost -- --ignored --nocapture`
#[test]
#[ignore = "a timing, run in release"]
fn cost_of_one_header_signature_verification() {
    let control = control();
    let writer = Signer::new("AKIDWRITER", WRITER_SECRET);
    let url = format!("https://{HOST}/dir/key.txt?x-id=PutObject");
    let headers = [("x-amz-meta-color", "blue"), ("content-type", "text/plain")];
    let hash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let put = writer.sign(
        "PUT",
        &url,
        &headers,
        SignableBody::Precomputed(hash.into()),
    );
    let get_url = format!("https://{HOST}/dir/key.txt");
    let get = writer.sign("GET", &get_url, &[], SignableBody::UnsignedPayload);
    // boto3 over plain HTTP signs a GET with the SHA-256 of the empty body.
    let get_hashed = writer.sign("GET", &get_url, &[], SignableBody::Bytes(b""));
    let request = create_session_request("AKIDWRITER", WRITER_SECRET, None);
    let session = create_session(&control, &request).unwrap();
    let via_session =
        session_signer(&session).sign("GET", &get_url, &[], SignableBody::UnsignedPayload);
    let later = t0() + Duration::from_secs(60);
    let cases = [
        ("PUT, client keys, SHA-256 payload", &put, t0()),
        ("GET, client keys, UNSIGNED-PAYLOAD", &get, t0()),
        (
            "GET, client keys, SHA-256 of the empty body",
            &get_hashed,
            t0(),
        ),
        ("GET, minted session", &via_session, later),
    ];
    for (name, parts, now) in cases {
        let each = per_call(|| {
            let admitted = control.verify_sigv4(std::hint::black_box(parts), now);
            std::hint::black_box(admitted.unwrap());
        });
        println!("verify {name}: {each:?}");
    }
    // The whole check of a boto3 GET: the signature, the unsigned headers, the (empty) body.
    let each = per_call(|| {
        let admitted = control.verify_sigv4(std::hint::black_box(&get_hashed), t0());
        if let BodyCheck::Sha256(sha256) = admitted.unwrap().body {
            sha256.check(std::hint::black_box(b"")).unwrap();
        }
    });
    println!("verify and check the body of the hashed GET: {each:?}");
    // For scale: the proxy's own upstream signing of the same GET (crate::sign).
    let identity = aws_credential_types::Credentials::new("A", "S", None, None, "t").into();
    let scope = crate::sign::Scope {
        region: "us-west-2",
        service: "s3express",
    };
    let each = per_call(|| {
        let mut parts = get.clone();
        crate::sign::sign_parts(
            &mut parts,
            &identity,
            crate::sign::TokenHeader::S3Session,
            scope,
            crate::sign::Payload::Unsigned,
        )
        .unwrap();
        std::hint::black_box(parts);
    });
    println!("for scale, sign::sign_parts of the GET: {each:?}");
}
