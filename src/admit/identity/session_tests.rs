use super::*;
use crate::admit::identity::testing::{t0, DATA, FILE};
use crate::admit::identity::tests::seen;

fn list() -> AccessList {
    AccessList::parse(FILE, "t").unwrap()
}

fn minted(key: &SessionKey, list: &AccessList, mode: Mode) -> MintedSession {
    mint(key, list.by_name("writer").unwrap(), DATA, mode, t0()).unwrap()
}

fn open_at(
    key: &SessionKey,
    list: &AccessList,
    session: &MintedSession,
    secs: u64,
) -> Result<Opened, AuthError> {
    let now = t0() + Duration::from_secs(secs);
    open(
        key,
        list,
        session.token().expose(),
        session.access_key_id(),
        now,
    )
}

#[test]
fn a_minted_session_opens_as_its_client_bucket_and_mode() {
    let (key, list) = (SessionKey::random(), list());
    let session = minted(&key, &list, Mode::ReadOnly);
    assert!(session.access_key_id().starts_with(SESSION_KEY_PREFIX));
    assert_eq!(session.access_key_id().len(), 20);
    assert_eq!(session.grant().expires(), t0() + SESSION_LIFETIME);
    let opened = open_at(&key, &list, &session, 299).unwrap();
    assert_eq!(opened.client.name(), "writer");
    assert_eq!(opened.grant, *session.grant());
    assert_eq!(
        (opened.grant.bucket(), opened.grant.mode()),
        (DATA, Mode::ReadOnly)
    );
    let creds = opened.identity.data::<Credentials>().unwrap();
    assert_eq!(creds.access_key_id(), session.access_key_id());
    assert_eq!(creds.secret_access_key(), session.secret().expose());
    assert!(
        creds.session_token().is_none(),
        "the token is verified as a signed header"
    );
}

#[test]
fn sessions_expire_after_five_minutes() {
    let (key, list) = (SessionKey::random(), list());
    let session = minted(&key, &list, Mode::ReadWrite);
    assert!(open_at(&key, &list, &session, 299).is_ok());
    assert_eq!(
        open_at(&key, &list, &session, 300).err(),
        Some(AuthError::ExpiredToken)
    );
    let err = open_at(&key, &list, &session, 3600).err().unwrap();
    assert_eq!(seen(err), (400, "ExpiredToken".into()));
}

#[test]
fn a_token_from_another_process_or_a_tampered_one_is_invalid() {
    let (key, list) = (SessionKey::random(), list());
    let session = minted(&key, &list, Mode::ReadOnly);
    let other = SessionKey::random();
    assert!(matches!(
        open_at(&other, &list, &session, 1),
        Err(AuthError::InvalidToken(_))
    ));
    let mut bytes = URL_SAFE_NO_PAD.decode(session.token().expose()).unwrap();
    // Flip the mode (ReadOnly → ReadWrite), a bit of the expiry, of the client name, of the
    // bucket, and of the tag.
    for index in [1, 9, 14, 20, bytes.len() - 1] {
        bytes[index] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(&bytes);
        let result = open(&key, &list, &forged, session.access_key_id(), t0());
        assert!(
            matches!(result, Err(AuthError::InvalidToken(_))),
            "byte {index}"
        );
        bytes[index] ^= 1;
    }
    for garbage in ["", "!!!", "AAAA", &"A".repeat(2000)] {
        let result = open(&key, &list, garbage, session.access_key_id(), t0());
        assert!(
            matches!(result, Err(AuthError::InvalidToken(_))),
            "{garbage:.10}"
        );
    }
}

#[test]
fn the_key_id_must_be_the_tokens_own() {
    let (key, list) = (SessionKey::random(), list());
    let a = minted(&key, &list, Mode::ReadOnly);
    let b = minted(&key, &list, Mode::ReadWrite);
    assert_ne!(a.access_key_id(), b.access_key_id());
    let result = open(&key, &list, a.token().expose(), b.access_key_id(), t0());
    assert_eq!(
        result.err(),
        Some(AuthError::InvalidToken(
            "the session key id is not the token's"
        ))
    );
}

#[test]
fn sessions_die_when_their_client_entry_changes_or_goes() {
    let key = SessionKey::random();
    let session = minted(&key, &list(), Mode::ReadWrite);
    let changed = FILE.replace("{ bucket = \"gp-*\", access = \"read-write\" },\n", "");
    let changed = AccessList::parse(&changed, "t").unwrap();
    assert!(matches!(
        open_at(&key, &changed, &session, 1),
        Err(AuthError::InvalidToken(_))
    ));
    let rotated = FILE.replace("writer-secret-0123456789", "writer-secret-rotated-01");
    let rotated = AccessList::parse(&rotated, "t").unwrap();
    assert!(matches!(
        open_at(&key, &rotated, &session, 1),
        Err(AuthError::InvalidToken(_))
    ));
    let gone = AccessList::parse(
        &FILE.replace("name = \"writer\"", "name = \"writer2\""),
        "t",
    )
    .unwrap();
    assert_eq!(
        open_at(&key, &gone, &session, 1).err(),
        Some(AuthError::InvalidToken(
            "the session's client is no longer in the access file"
        ))
    );
    // Another client's change leaves it alone.
    let other = FILE.replace("reader-secret-0123456789", "reader-secret-rotated-01");
    let other = AccessList::parse(&other, "t").unwrap();
    assert!(open_at(&key, &other, &session, 1).is_ok());
}

#[test]
fn a_derived_key_survives_restarts_and_a_random_one_does_not() {
    let list = list();
    let a = SessionKey::derive(b"the proxy's own secret");
    let b = SessionKey::derive(b"the proxy's own secret");
    let session = minted(&a, &list, Mode::ReadOnly);
    assert!(open_at(&b, &list, &session, 1).is_ok());
    assert_eq!(
        minted(&b, &list, Mode::ReadOnly).token().expose(),
        session.token().expose()
    );
    assert!(open_at(&SessionKey::derive(b"another"), &list, &session, 1).is_err());
    assert_eq!(format!("{a:?}"), "SessionKey([redacted])");
}

#[test]
fn the_answer_is_s3s_create_session_body_and_debug_hides_the_secrets() {
    let (key, list) = (SessionKey::random(), list());
    let session = minted(&key, &list, Mode::ReadWrite);
    let parsed = xml::parse_create_session(&session.body()).unwrap();
    assert_eq!(parsed.access_key_id, session.access_key_id());
    assert_eq!(parsed.secret_access_key, session.secret().expose());
    assert_eq!(parsed.session_token, session.token().expose());
    assert_eq!(parsed.expiration, "2023-11-14T22:18:20Z");
    let debug = format!("{session:?}");
    assert!(!debug.contains(session.secret().expose()), "{debug}");
    assert!(!debug.contains(session.token().expose()), "{debug}");
    assert!(
        session.token().expose().len() < 200,
        "{}",
        session.token().expose().len()
    );
}

#[test]
fn tokens_are_found_in_the_header_or_the_presigned_query() {
    let parts = |uri: &str, header: Option<&str>| {
        let mut b = http::Request::builder().uri(uri);
        if let Some(h) = header {
            b = b.header("x-amz-s3session-token", h);
        }
        b.body(()).unwrap().into_parts().0
    };
    let p = parts("/k", Some("tok"));
    assert_eq!(token_of(&p, Form::Header).as_deref(), Some("tok"));
    let p = parts("/k?X-Amz-S3session-Token=a%2Db_c&x=1", None);
    assert_eq!(token_of(&p, Form::Query).as_deref(), Some("a-b_c"));
    assert_eq!(token_of(&parts("/k", None), Form::Header), None);
    assert_eq!(token_of(&parts("/k?x=1", None), Form::Query), None);
}
