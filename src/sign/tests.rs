//! Sign: unit tests of stripping, targets and the signing entry point.

use super::*;
use aws_credential_types::Credentials;

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method("PUT").uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

#[test]
fn strips_client_auth_and_hop_by_hop_headers() {
    let mut p = parts(
        "/k",
        &[
            ("authorization", "AWS4-HMAC-SHA256 Credential=FAKE/..."),
            ("x-amz-date", "20240101T000000Z"),
            ("x-amz-security-token", "tok"),
            ("x-amz-s3session-token", "placeholder"),
            ("x-amz-content-sha256", "abc123"),
            ("connection", "keep-alive, x-custom-hop"),
            ("x-custom-hop", "1"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("expect", "100-continue"),
            ("x-amz-meta-color", "blue"),
        ],
    );
    assert_eq!(strip_client_auth(&mut p), Payload::Unsigned);
    let left: Vec<&str> = p.headers.keys().map(|k| k.as_str()).collect();
    assert_eq!(left, ["x-amz-meta-color"]);
}

#[test]
fn keeps_the_streaming_trailer_marker_and_spots_signed_chunks() {
    let mut p = parts(
        "/k",
        &[("x-amz-content-sha256", STREAMING_UNSIGNED_TRAILER)],
    );
    assert_eq!(strip_client_auth(&mut p), Payload::StreamingUnsignedTrailer);
    let mut p = parts(
        "/k",
        &[("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")],
    );
    assert_eq!(strip_client_auth(&mut p), Payload::SignedChunks);
}

#[test]
fn signs_with_the_session_token_header_and_never_the_security_token() {
    let mut p = parts("/k", &[("x-amz-meta-a", "1")]);
    set_target(
        &mut p,
        "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com",
        "/k?x-id=PutObject",
    )
    .unwrap();
    let scope = Scope {
        region: "us-west-2",
        service: "s3express",
    };
    let credentials = SigningCredentials::new(Credentials::new(
        "ASIA",
        "secret",
        Some("session-token".into()),
        None,
        "t",
    ));
    sign_parts(
        &mut p,
        &credentials,
        TokenHeader::S3Session,
        scope,
        Payload::Unsigned,
    )
    .unwrap();
    assert_eq!(p.headers["x-amz-s3session-token"], "session-token");
    assert!(!p.headers.contains_key("x-amz-security-token"));
    assert_eq!(p.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    let auth = p.headers["authorization"].to_str().unwrap();
    assert!(auth.contains("/us-west-2/s3express/aws4_request"), "{auth}");
    assert!(
        auth.contains("x-amz-meta-a") && auth.contains("x-amz-s3session-token"),
        "{auth}"
    );
    assert!(p.headers["authorization"].is_sensitive());
}

#[test]
fn refuses_to_sign_non_ascii_values() {
    let mut p = parts("/k", &[]);
    p.headers.insert(
        "x-amz-meta-name",
        HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
    );
    set_target(&mut p, "h.example", "/k").unwrap();
    let credentials = SigningCredentials::new(Credentials::new("A", "S", None, None, "t"));
    let scope = Scope {
        region: "us-west-2",
        service: "s3",
    };
    let err = sign_parts(
        &mut p,
        &credentials,
        TokenHeader::S3Session,
        scope,
        Payload::Unsigned,
    );
    assert!(matches!(err, Err(SignError::NonAsciiHeader(_))));
}

#[test]
fn signing_credentials_and_their_keys_show_no_secret_in_debug() {
    let credentials = SigningCredentials::new(Credentials::new(
        "AKIDSHOWN",
        "secret-KEY",
        Some("session-TOKEN".into()),
        None,
        "t",
    ));
    let mut p = parts("/k", &[]);
    set_target(&mut p, "h.example", "/k").unwrap();
    let scope = Scope {
        region: "us-west-2",
        service: "s3express",
    };
    sign_parts(
        &mut p,
        &credentials,
        TokenHeader::S3Session,
        scope,
        Payload::Unsigned,
    )
    .unwrap();
    let shown = format!("{credentials:?} {:?}", credentials.keys);
    for secret in ["secret-KEY", "session-TOKEN"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("keys: 1"), "{shown}");
}
