//! Properties of `AccessControl::verify_sigv4` over arbitrary requests: whatever method, path,
//! query (escapes, `+`, repeated and valueless keys) and headers a client signs with
//! aws-sigv4, header or presigned, the request verifies; and any single change made after
//! signing (the method, the path, the query, a signed header's value, an added `x-amz-*`
//! header) is refused: a presigned URL or a signed request does exactly what its signer signed.

use std::time::Duration;

use aws_sigv4::http_request::SignableBody;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method};
use proptest::prelude::*;

use super::testing::{t0, Signer, HOST, WRITER_SECRET};
use super::*;

/// One request as a client builds it before signing.
#[derive(Clone, Debug)]
struct Request {
    method: Method,
    path: String,
    query: Vec<(String, Option<String>)>,
    headers: Vec<(String, String)>,
    body: Body,
    presign: bool,
}

#[derive(Clone, Debug)]
enum Body {
    Unsigned,
    Bytes(Vec<u8>),
    Streaming,
}

/// One change made in transit.
#[derive(Clone, Debug)]
enum Change {
    Method(Method),
    /// Appends this to the path's last segment.
    Path(String),
    /// Adds this parameter (a new key, or a new value of a present one).
    AddParam(String, String),
    /// Drops the parameter at this index (of the ones present).
    DropParam(usize),
    /// Gives the parameter at this index (of those with a value) this other value.
    SetParam(usize, String),
    /// Gives the signed header at this index (of the signed ones) this other value.
    SetHeader(usize, String),
    /// Adds this unsigned x-amz-* header.
    AddAmzHeader(String),
}

/// Characters of a path segment or query component, and escapes (some of them of characters
/// that need none, some of unicode).
fn component() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9._~-]{1,4}",
        Just("%20".to_owned()),
        Just("%2F".to_owned()),
        Just("%2B".to_owned()),
        Just("%25".to_owned()),
        Just("%41".to_owned()),
        Just("%C3%A9".to_owned()),
        Just("+".to_owned()),
        Just("!".to_owned()),
        Just("'".to_owned()),
        Just("*".to_owned()),
        Just("(".to_owned()),
    ];
    prop::collection::vec(piece, 1..4).prop_map(|p| p.concat())
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::PUT),
        Just(Method::POST),
        Just(Method::DELETE),
        Just(Method::HEAD),
    ]
}

fn query_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("uploads".to_owned()),
        Just("partNumber".to_owned()),
        Just("x-id".to_owned()),
        Just("list-type".to_owned()),
        Just("prefix".to_owned()),
        "[a-z]{1,6}",
        component(),
    ]
}

fn amz_header() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x-amz-acl".to_owned()),
        Just("x-amz-copy-source".to_owned()),
        Just("x-amz-tagging".to_owned()),
        Just("x-amz-storage-class".to_owned()),
        Just("x-amz-write-offset-bytes".to_owned()),
        "x-amz-meta-[a-z0-9]{1,8}",
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        amz_header(),
        Just("range".to_owned()),
        Just("content-type".to_owned()),
        Just("if-match".to_owned()),
        Just("cache-control".to_owned()),
        "x-[a-z]{1,8}",
    ]
}

/// Visible ASCII, inner blanks allowed, none at either end (hyper strips those).
fn header_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,20}[!-~])?"
}

fn request() -> impl Strategy<Value = Request> {
    let body = prop_oneof![
        Just(Body::Unsigned),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
        Just(Body::Streaming),
    ];
    (
        method(),
        prop::collection::vec(component(), 1..4),
        prop::collection::vec((query_key(), prop::option::of(component())), 0..5),
        prop::collection::vec((header_name(), header_value()), 0..5),
        body,
        any::<bool>(),
    )
        .prop_map(|(method, segments, query, headers, body, presign)| {
            let mut seen = std::collections::HashSet::new();
            let headers = headers
                .into_iter()
                .filter(|(name, _)| seen.insert(name.clone()))
                .collect();
            Request {
                method,
                path: format!("/{}", segments.join("/")),
                query,
                headers,
                body: if presign { Body::Unsigned } else { body },
                presign,
            }
        })
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        method().prop_map(Change::Method),
        "[a-z0-9]{1,3}".prop_map(Change::Path),
        (query_key(), "[a-z0-9]{1,4}").prop_map(|(k, v)| Change::AddParam(k, v)),
        any::<usize>().prop_map(Change::DropParam),
        (any::<usize>(), "[a-z0-9]{1,4}").prop_map(|(i, v)| Change::SetParam(i, v)),
        (any::<usize>(), "[a-z0-9]{1,4}").prop_map(|(i, v)| Change::SetHeader(i, v)),
        amz_header().prop_map(Change::AddAmzHeader),
    ]
}

fn query_string(pairs: &[(String, Option<String>)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn target(path: &str, query: &[(String, Option<String>)]) -> String {
    match query.is_empty() {
        true => path.to_owned(),
        false => format!("{path}?{}", query_string(query)),
    }
}

fn sign(request: &Request) -> Parts {
    let signer = Signer {
        presign: request.presign.then_some(Duration::from_secs(600)),
        service: "s3",
        ..Signer::new("AKIDWRITER", WRITER_SECRET)
    };
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let url = format!("https://{HOST}{}", target(&request.path, &request.query));
    let body = match &request.body {
        Body::Unsigned => SignableBody::UnsignedPayload,
        Body::Bytes(bytes) => SignableBody::Bytes(bytes),
        Body::Streaming => {
            SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_owned())
        }
    };
    signer.sign(request.method.as_str(), &url, &headers, body)
}

/// The query of a signed request as sent: the client's pairs, then the presigned ones.
fn sent_query(parts: &Parts) -> Vec<(String, Option<String>)> {
    let query = parts.uri.query().unwrap_or_default();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (p.to_owned(), None),
        })
        .collect()
}

fn is_presign_param(key: &str) -> bool {
    key.to_ascii_lowercase().starts_with("x-amz-")
}

/// The signed header names of a request as sent.
fn signed_headers(parts: &Parts) -> Vec<String> {
    let list = match parts.headers.get("authorization") {
        Some(auth) => {
            let auth = auth.to_str().unwrap();
            let at = auth.find("SignedHeaders=").unwrap() + "SignedHeaders=".len();
            auth[at..].split(',').next().unwrap().to_owned()
        }
        None => sent_query(parts)
            .into_iter()
            .find(|(k, _)| k == "X-Amz-SignedHeaders")
            .and_then(|(_, v)| v)
            .unwrap()
            .replace("%3B", ";"),
    };
    list.split(';').map(str::to_owned).collect()
}

/// Applies `change`; `None` when it does not apply to this request (nothing to drop, the
/// same method, an x-amz-* header it already signed).
fn apply(parts: &Parts, change: &Change) -> Option<Parts> {
    let mut changed = parts.clone();
    let path = parts.uri.path().to_owned();
    let query = sent_query(parts);
    let (client, presign): (Vec<_>, Vec<_>) = query
        .iter()
        .cloned()
        .partition(|(k, _)| !is_presign_param(k));
    let retarget = |changed: &mut Parts, path: &str, client: &[(String, Option<String>)]| {
        let all: Vec<_> = client.iter().cloned().chain(presign.clone()).collect();
        changed.uri = target(path, &all).parse().unwrap();
    };
    match change {
        Change::Method(m) if *m != parts.method => changed.method = m.clone(),
        Change::Method(_) => return None,
        Change::Path(extra) => retarget(&mut changed, &format!("{path}{extra}"), &client),
        Change::AddParam(k, v) => {
            let mut client = client.clone();
            client.push((k.clone(), Some(v.clone())));
            retarget(&mut changed, &path, &client);
        }
        Change::DropParam(i) if !client.is_empty() => {
            let mut client = client.clone();
            client.remove(i % client.len());
            retarget(&mut changed, &path, &client);
        }
        Change::SetParam(i, v) => {
            let with_value: Vec<usize> = (0..client.len())
                .filter(|&j| client[j].1.as_deref().is_some_and(|old| old != v))
                .collect();
            let j = *with_value.get(i % with_value.len().max(1))?;
            let mut client = client.clone();
            client[j].1 = Some(v.clone());
            retarget(&mut changed, &path, &client);
        }
        Change::SetHeader(i, v) => {
            let names = signed_headers(parts);
            let name = &names[i % names.len()];
            let old = parts
                .headers
                .get(name.as_str())
                .map(|h| h.to_str().unwrap());
            if old == Some(v.as_str()) || (old.is_none() && name != "host") {
                return None;
            }
            changed.headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Change::AddAmzHeader(name) if parts.headers.contains_key(name.as_str()) => return None,
        Change::AddAmzHeader(name) => {
            changed.headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("added-in-transit"),
            );
        }
        Change::DropParam(_) => return None,
    }
    Some(changed)
}

fn control() -> AccessControl {
    AccessControl::new(
        AccessList::parse(testing::FILE, "t").unwrap(),
        SessionKey::random(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn what_aws_sigv4_signs_verifies(request in request()) {
        let parts = sign(&request);
        let admitted = control().verify_sigv4(&parts, t0());
        prop_assert!(admitted.is_ok(), "{:?}\n{:?}", admitted.err(), parts);
        let admitted = admitted.unwrap();
        prop_assert_eq!(admitted.principal.name(), "writer");
        let expected = match request.body {
            Body::Bytes(_) => "Sha256",
            Body::Streaming => "Chunks",
            Body::Unsigned => "None",
        };
        let check = format!("{:?}", admitted.body);
        prop_assert!(check.starts_with(expected), "{check}");
    }

    #[test]
    fn any_single_change_after_signing_is_refused(request in request(), change in change()) {
        let parts = sign(&request);
        let Some(changed) = apply(&parts, &change) else {
            return Ok(());
        };
        let refusal = control().verify_sigv4(&changed, t0());
        let refusal = match refusal {
            Ok(_) => return Err(TestCaseError::fail(format!(
                "{change:?} was accepted\n{:?}\n{:?}", parts, changed
            ))),
            Err(refusal) => refusal,
        };
        match (&change, refusal) {
            (Change::AddAmzHeader(name), Refusal::Unsigned(unsigned)) => {
                prop_assert_eq!(&unsigned.names, name);
            }
            (Change::AddAmzHeader(_), other) => {
                return Err(TestCaseError::fail(format!("{other:?}")));
            }
            // A changed date moves the signature's time: stale, or not its scope's day.
            (Change::SetHeader(..), Refusal::Auth(_)) => {}
            (_, Refusal::Auth(AuthError::SignatureDoesNotMatch(_))) => {}
            (_, other) => return Err(TestCaseError::fail(format!("{change:?}: {other:?}"))),
        }
    }
}
