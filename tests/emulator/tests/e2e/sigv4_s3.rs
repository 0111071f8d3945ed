//! The verifier on requests from the separate test signer: awkward keys, and what breaks a signature.

use crate::support::{self, enc, query_string, sign, Creds};
use s3x_emulator::sigv4::{
    self, canonical_query, canonical_uri, parse_authorization, Options, Request, UriEncoding,
};

struct Signed {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    payload: String,
}

fn creds() -> Creds {
    Creds {
        access_key_id: "S3XSEXAMPLE".into(),
        secret: "se/cr+et==".into(),
        session_token: Some("tok-en_123".into()),
        security_token: None,
    }
}

fn signed(method: &str, key: &str, query: &[(&str, &str)], extra: &[(&str, &str)]) -> Signed {
    let path = format!("/{}", enc(key, true));
    let query = query_string(query);
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let payload = "UNSIGNED-PAYLOAD".to_string();
    sign(
        method,
        &support::host(support::BUCKET),
        &path,
        &query,
        &mut headers,
        &payload,
        &creds(),
    );
    headers.push(("host".into(), support::host(support::BUCKET)));
    Signed {
        path,
        query,
        headers,
        payload,
    }
}

fn verify(method: &str, s: &Signed, secret: &str) -> Result<(), sigv4::Mismatch> {
    let auth_value = &s
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1;
    let auth = sigv4::parse_authorization(auth_value).unwrap();
    assert_eq!(auth.service, "s3express");
    let amz_date = &s.headers.iter().find(|(n, _)| n == "x-amz-date").unwrap().1;
    let req = Request {
        method,
        raw_path: &s.path,
        raw_query: &s.query,
        headers: &s.headers,
    };
    sigv4::verify(&req, &auth, secret, amz_date, &s.payload, Options::S3)
}

#[test]
fn awkward_keys_and_queries_verify() {
    let keys = [
        "plain",
        "a b+c",
        "100%/ü/日本",
        "dir//double//",
        "../not/normalised/./",
        "~tilde-_.",
    ];
    for key in keys {
        let s = signed(
            "PUT",
            key,
            &[("partNumber", "3"), ("uploadId", "a+b/c=")],
            &[("x-amz-meta-k", "  v  v ")],
        );
        assert!(verify("PUT", &s, "se/cr+et==").is_ok(), "key {key:?}");
    }
    let s = signed("GET", "", &[("session", "")], &[]);
    assert!(verify("GET", &s, "se/cr+et==").is_ok());
    let s = signed(
        "GET",
        "",
        &[("list-type", "2"), ("prefix", "a b/"), ("delimiter", "")],
        &[],
    );
    assert!(verify("GET", &s, "se/cr+et==").is_ok());
}

#[test]
fn tampering_breaks_the_signature() {
    let s = signed("GET", "key", &[("a", "1")], &[("x-amz-meta-m", "v")]);
    assert!(verify("GET", &s, "se/cr+et==").is_ok());
    assert!(verify("GET", &s, "wrong").is_err());
    assert!(verify("HEAD", &s, "se/cr+et==").is_err());

    let mut t = Signed {
        path: "/kez".into(),
        ..signed("GET", "key", &[("a", "1")], &[])
    };
    assert!(verify("GET", &t, "se/cr+et==").is_err());
    t.path = "/key".into();
    t.query = "a=2".into();
    assert!(verify("GET", &t, "se/cr+et==").is_err());

    let mut h = signed("GET", "key", &[], &[("x-amz-meta-m", "v")]);
    h.headers
        .iter_mut()
        .find(|(n, _)| n == "x-amz-meta-m")
        .unwrap()
        .1 = "w".into();
    let err = verify("GET", &h, "se/cr+et==").unwrap_err();
    assert!(err.canonical_request.contains("x-amz-meta-m:w"));

    let mut p = signed("GET", "key", &[], &[]);
    p.payload = sigv4::EMPTY_SHA256.into();
    assert!(verify("GET", &p, "se/cr+et==").is_err());

    // The same key sent unescaped (`=`) or escaped (`%3D`) canonicalises alike, as S3 does.
    let mut e = signed("GET", "a=b", &[], &[]);
    assert_eq!(e.path, "/a%3Db");
    e.path = "/a=b".into();
    assert!(verify("GET", &e, "se/cr+et==").is_ok());
}

#[test]
fn s3_paths_decode_once_and_encode_once() {
    let o = Options::S3;
    assert_eq!(canonical_uri("/a=b", o), "/a%3Db");
    assert_eq!(canonical_uri("/a%3Db", o), "/a%3Db");
    assert_eq!(canonical_uri("/a%2Bb%20c//d", o), "/a%2Bb%20c//d");
    assert_eq!(canonical_uri("/%25%2F", o), "/%25%2F");
    assert_eq!(canonical_uri("/../x/./", o), "/../x/./");
    assert_eq!(canonical_uri("", o), "/");
}

#[test]
fn normalization_and_double_encoding() {
    let o = Options {
        normalize_path: true,
        encoding: UriEncoding::Double,
    };
    assert_eq!(canonical_uri("/a/../b//c/.", o), "/b/c/");
    assert_eq!(canonical_uri("/x%3D", o), "/x%253D");
}

#[test]
fn query_is_sorted_and_reencoded() {
    assert_eq!(canonical_query("b=2&a=1&session"), "a=1&b=2&session=");
    assert_eq!(
        canonical_query("prefix=a%2Fb+c&list-type=2"),
        "list-type=2&prefix=a%2Fb%20c"
    );
    assert_eq!(canonical_query("k=%7e"), "k=~");
}

#[test]
fn authorization_parsing() {
    let a = parse_authorization(&format!(
        "AWS4-HMAC-SHA256 Credential=AK/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    ))
    .unwrap();
    assert_eq!(a.scope(), "20240101/us-west-2/s3express/aws4_request");
    assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
    assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=x").is_err());
    assert!(parse_authorization("Basic abc").is_err());
}
