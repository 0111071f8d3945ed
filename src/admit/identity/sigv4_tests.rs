//! `AccessControl::verify_sigv4` on requests signed by aws-sigv4 as SDKs sign them, and on
//! what must not verify.

use std::time::Duration;

use aws_sigv4::http_request::SignableBody;
use http::request::Parts;
use http::HeaderValue;

use super::testing::{t0, Signer, HOST, READER_SECRET, WRITER_SECRET};
use super::tests::seen;
use super::*;

pub(super) fn control() -> AccessControl {
    AccessControl::new(
        AccessList::parse(testing::FILE, "t").unwrap(),
        SessionKey::random(),
    )
}

fn writer() -> Signer<'static> {
    Signer::new("AKIDWRITER", WRITER_SECRET)
}

fn url(path_and_query: &str) -> String {
    format!("https://{HOST}{path_and_query}")
}

const SHA_OF_HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn get(signer: &Signer<'_>) -> Parts {
    signer.sign(
        "GET",
        &url("/dir/a%20b%2Bc~d?x-id=GetObject&partNumber=1"),
        &[("range", "bytes=0-9"), ("x-amz-checksum-mode", "ENABLED")],
        SignableBody::UnsignedPayload,
    )
}

fn verify(parts: &Parts) -> Result<String, AuthError> {
    control()
        .verify_principal(parts, t0())
        .map(|p| p.name().to_string())
}

#[test]
fn header_signatures_of_every_payload_kind_verify() {
    let w = writer();
    let put = |headers: &[(&str, &str)], body| w.sign("PUT", &url("/k"), headers, body);
    let chunked = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "5"),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ];
    let requests = [
        get(&w),
        put(&[("content-length", "5")], SignableBody::Bytes(b"hello")),
        put(&[], SignableBody::Precomputed(SHA_OF_HELLO.into())),
        put(&chunked, SignableBody::StreamingUnsignedPayloadTrailer),
        put(&chunked, SignableBody::StreamingSignedPayloadTrailer),
        put(
            &chunked,
            SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()),
        ),
        Signer {
            service: "s3",
            region: "eu-west-1",
            ..w
        }
        .sign(
            "GET",
            "https://gp-bucket.s3.eu-west-1.amazonaws.com/k?list-type=2&prefix=a%2Fb",
            &[],
            SignableBody::UnsignedPayload,
        ),
        Signer { h2: true, ..w }.sign("HEAD", &url("/k"), &[], SignableBody::UnsignedPayload),
        w.sign(
            "GET",
            "http://127.0.0.1:8080/data--usw2-az1--x-s3/k",
            &[],
            SignableBody::UnsignedPayload,
        ),
    ];
    for parts in &requests {
        assert_eq!(verify(parts), Ok("writer".into()), "{parts:?}");
    }
    let reader = Signer::new("AKIDREADER", READER_SECRET);
    assert_eq!(verify(&get(&reader)), Ok("reader".into()));
}

#[test]
fn presigned_urls_verify_until_they_expire() {
    let presign = Signer {
        presign: Some(Duration::from_secs(600)),
        ..writer()
    };
    // aws-sigv4 leaves x-amz-checksum-mode out of a presigned URL's signed headers: a request
    // that sends it along is one S3 refuses (aws-sdk-rust#1253), and so does the proxy.
    let with_mode = get(&presign);
    assert_eq!(
        control().verify_sigv4(&with_mode, t0()).unwrap_err(),
        Refusal::Unsigned(HeadersNotSigned {
            names: "x-amz-checksum-mode".into()
        })
    );
    let parts = presign.sign(
        "GET",
        &url("/dir/a%20b%2Bc~d?x-id=GetObject&partNumber=1"),
        &[("range", "bytes=0-9")],
        SignableBody::UnsignedPayload,
    );
    assert!(parts.uri.query().unwrap().contains("X-Amz-Signature="));
    let control = control();
    let at = |secs: u64| control.verify_principal(&parts, t0() + Duration::from_secs(secs));
    assert!(at(0).is_ok() && at(600).is_ok());
    assert_eq!(at(601).unwrap_err(), AuthError::RequestExpired);
    assert_eq!(at(601).unwrap_err().to_string(), "Request has expired");
    let early = control.verify_principal(&parts, t0() - Duration::from_secs(16 * 60));
    assert_eq!(early.unwrap_err(), AuthError::RequestNotYetValid);
    let s3 = Signer {
        service: "s3",
        ..presign
    };
    let mut s3 = s3.sign("GET", &url("/k"), &[], SignableBody::UnsignedPayload);
    assert!(verify(&s3).is_ok());
    s3.headers
        .insert("x-amz-checksum-mode", HeaderValue::from_static("ENABLED"));
    assert!(verify(&s3).is_err());
}

#[test]
fn anything_changed_after_signing_is_caught() {
    type Change = fn(&mut Parts);
    let changes: [(&str, Change); 9] = [
        ("a signed header", |p| {
            p.headers
                .insert("range", HeaderValue::from_static("bytes=0-99"));
        }),
        ("a second value", |p| {
            p.headers
                .append("range", HeaderValue::from_static("bytes=0-1"));
        }),
        ("a dropped header", |p| {
            p.headers.remove("x-amz-checksum-mode");
        }),
        ("the host", |p| {
            p.headers
                .insert("host", HeaderValue::from_static("other.example"));
        }),
        ("the path", |p| {
            p.uri = "/dir/a%20b%2Bc~e?x-id=GetObject&partNumber=1"
                .parse()
                .unwrap()
        }),
        ("the query", |p| {
            p.uri = "/dir/a%20b%2Bc~d?x-id=GetObject&partNumber=2"
                .parse()
                .unwrap()
        }),
        ("an added parameter", |p| {
            p.uri = "/dir/a%20b%2Bc~d?x-id=GetObject&partNumber=1&uploadId=u"
                .parse()
                .unwrap()
        }),
        ("the method", |p| p.method = http::Method::DELETE),
        ("the payload hash", |p| {
            p.headers.insert(
                "x-amz-content-sha256",
                HeaderValue::from_static(SHA_OF_HELLO),
            );
        }),
    ];
    for (what, change) in changes {
        let mut parts = get(&writer());
        change(&mut parts);
        let err = verify(&parts).unwrap_err();
        assert!(
            matches!(err, AuthError::SignatureDoesNotMatch(_)),
            "{what}: {err:?}"
        );
        assert_eq!(seen(err), (403, "SignatureDoesNotMatch".into()));
    }
    let mut parts = get(&writer());
    parts
        .headers
        .insert("x-unsigned", HeaderValue::from_static("added by a hop"));
    parts
        .headers
        .insert("user-agent", HeaderValue::from_static("changed"));
    assert!(
        verify(&parts).is_ok(),
        "headers outside SignedHeaders do not matter"
    );
}

#[test]
fn a_path_signed_canonically_but_sent_less_encoded_verifies() {
    let mut parts = writer().sign("GET", &url("/a%2Bb%21"), &[], SignableBody::UnsignedPayload);
    parts.uri = "/a+b!".parse().unwrap();
    assert!(verify(&parts).is_ok());
    parts.uri = "/a+c!".parse().unwrap();
    assert!(verify(&parts).is_err());
}

#[test]
fn header_signatures_must_be_within_fifteen_minutes() {
    let parts = get(&writer());
    let control = control();
    let at = |now| control.verify_principal(&parts, now);
    let quarter = Duration::from_secs(15 * 60);
    assert!(at(t0() + quarter).is_ok() && at(t0() - quarter).is_ok());
    for now in [
        t0() + quarter + Duration::from_secs(1),
        t0() - quarter - Duration::from_secs(1),
    ] {
        let err = at(now).unwrap_err();
        assert_eq!(err, AuthError::RequestTimeTooSkewed);
        assert_eq!(seen(err), (403, "RequestTimeTooSkewed".into()));
    }
}

#[test]
fn unknown_keys_and_wrong_secrets_are_told_apart_as_s3_does() {
    let stranger = Signer::new("AKIDSTRANGER", WRITER_SECRET);
    let err = verify(&get(&stranger)).unwrap_err();
    assert_eq!(seen(err), (403, "InvalidAccessKeyId".into()));
    let wrong = Signer::new("AKIDWRITER", READER_SECRET);
    assert!(matches!(
        verify(&get(&wrong)),
        Err(AuthError::SignatureDoesNotMatch(_))
    ));
    let session_like = Signer::new("S3XSFFFFFFFFFFFFFFFF", WRITER_SECRET);
    let err = verify(&get(&session_like)).unwrap_err();
    assert_eq!(seen(err), (400, "InvalidToken".into()));
}

fn with_header(mut parts: Parts, name: &'static str, value: &str) -> Parts {
    parts
        .headers
        .insert(name, HeaderValue::from_str(value).unwrap());
    parts
}

#[test]
fn malformed_and_unsigned_requests_are_refused_with_s3s_codes() {
    let good = get(&writer());
    let auth = good.headers["authorization"].to_str().unwrap().to_string();
    let cases: Vec<(Parts, &str)> = vec![
        (
            with_header(good.clone(), "authorization", "AWS AKIDWRITER:c2lnbmF0dXJl"),
            "InvalidRequest",
        ),
        (
            with_header(
                good.clone(),
                "authorization",
                &auth.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
            ),
            "InvalidRequest",
        ),
        (
            with_header(
                good.clone(),
                "authorization",
                &auth.replace(", Signature", ", Sig"),
            ),
            "AuthorizationHeaderMalformed",
        ),
        (
            with_header(
                good.clone(),
                "authorization",
                &format!("{auth}, Signature=00"),
            ),
            "AuthorizationHeaderMalformed",
        ),
        (
            with_header(
                good.clone(),
                "authorization",
                &auth.replace("/s3express/", "/sts/"),
            ),
            "AuthorizationHeaderMalformed",
        ),
        (
            with_header(
                good.clone(),
                "authorization",
                &auth.replace("/20231114/", "/20231113/"),
            ),
            "AuthorizationHeaderMalformed",
        ),
        (
            with_header(
                good.clone(),
                "authorization",
                &auth.replace("aws4_request", "aws5_request"),
            ),
            "AuthorizationHeaderMalformed",
        ),
        (
            with_header(good.clone(), "authorization", &auth.replace("host;", "")),
            "AuthorizationHeaderMalformed",
        ),
        (
            with_header(good.clone(), "x-amz-date", "2023-11-14T22:13:20Z"),
            "AuthorizationHeaderMalformed",
        ),
        (
            with_header(good.clone(), "x-amz-date", "20231131T221320Z"),
            "AuthorizationHeaderMalformed",
        ),
        (
            http::Request::get("/k")
                .header("host", HOST)
                .body(())
                .unwrap()
                .into_parts()
                .0,
            "AccessDenied",
        ),
    ];
    for (parts, code) in cases {
        let err = verify(&parts).unwrap_err();
        assert_eq!(
            seen(err).1,
            code,
            "{err:?} {:?}",
            parts.headers.get("authorization")
        );
    }
    let mut no_hash = good.clone();
    no_hash.headers.remove("x-amz-content-sha256");
    assert_eq!(verify(&no_hash), Err(AuthError::MissingContentSha256));
    let mut both = good.clone();
    both.uri = "/dir/a%20b%2Bc~d?x-id=GetObject&partNumber=1&X-Amz-Signature=00"
        .parse()
        .unwrap();
    assert!(matches!(
        verify(&both),
        Err(AuthError::Malformed { query: false, .. })
    ));
}

#[test]
fn malformed_presigned_urls_are_refused() {
    let presign = Signer {
        presign: Some(Duration::from_secs(600)),
        ..writer()
    };
    let good = get(&presign).uri.to_string();
    let variants = [
        good.replace("X-Amz-Expires=600", "X-Amz-Expires=0"),
        good.replace("X-Amz-Expires=600", "X-Amz-Expires=604801"),
        good.replace(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA1",
        ),
        good.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", ""),
        format!("{good}&X-Amz-Date=20231114T221320Z"),
    ];
    for uri in variants {
        let mut parts = get(&presign);
        parts.uri = uri.parse().unwrap();
        let err = verify(&parts).unwrap_err();
        assert_eq!(
            seen(err),
            (400, "AuthorizationQueryParametersError".into()),
            "{uri}"
        );
    }
}

#[test]
fn the_host_verified_is_the_one_routing_follows() {
    // h2: the URI carries `:authority`, which routing takes over any Host header.
    let h2 = Signer {
        h2: true,
        ..writer()
    }
    .sign("GET", &url("/k"), &[], SignableBody::UnsignedPayload);
    assert!(verify(&h2).is_ok());
    let mut same = h2.clone();
    same.headers.insert("host", HeaderValue::from_static(HOST));
    assert!(verify(&same).is_ok(), "a Host header that says the same");
    // Another bucket's host as the target, the signed one left in Host: refused.
    let other = "other--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";
    let mut moved = same.clone();
    moved.uri = format!("https://{other}/k").parse().unwrap();
    assert!(matches!(
        verify(&moved),
        Err(AuthError::SignatureDoesNotMatch(_))
    ));
    // An authority-form target in front of the signed Host header: the same.
    let mut authority_form = get(&writer());
    authority_form.uri = "elsewhere.example:443".parse().unwrap();
    assert!(verify(&authority_form).is_err());
}
