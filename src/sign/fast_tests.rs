//! Sign: the fast path against aws-sigv4's `http_request::sign`, byte for byte, over generated
//! requests (property tests, a few hundred cases each).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;
use http::HeaderValue;
use proptest::prelude::*;

use super::canonical::Uncovered;
use super::fast;
use super::{
    sign_at, sign_with_aws_sigv4, strip_client_auth, Payload, Scope, SignError, Signed,
    SigningCredentials, TokenHeader,
};

const CASES: u32 = 400;
const SERVICES: &[&str] = &["s3express", "s3", "s3-outposts", "execute-api"];
/// 2024-03-01, a leap year's day after February 29.
pub(super) const DAY: u64 = 19_783;

/// Every header as `(name, value, sensitive)`, in the map's order.
pub(super) fn headers(parts: &Parts) -> Vec<(String, Vec<u8>, bool)> {
    parts
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec(), v.is_sensitive()))
        .collect()
}

/// One signing problem: the request and everything it is signed with.
#[derive(Clone, Debug)]
pub(super) struct Case {
    pub(super) parts: Parts,
    pub(super) credentials: Credentials,
    pub(super) token: TokenHeader,
    pub(super) region: String,
    pub(super) service: &'static str,
    pub(super) payload: Payload,
    pub(super) time: SystemTime,
}

impl Case {
    /// Signs with aws-sigv4 alone.
    pub(super) fn reference(&self) -> Result<Parts, SignError> {
        let mut parts = self.parts.clone();
        let identity: Identity = self.credentials.clone().into();
        sign_with_aws_sigv4(
            &mut parts,
            &identity,
            self.token,
            self.scope(),
            self.payload,
            self.time,
        )?;
        Ok(parts)
    }

    /// Signs on the fast path alone (with `credentials`, whose keys may be cached already).
    pub(super) fn fast(&self, credentials: &SigningCredentials) -> Result<Parts, Uncovered> {
        let mut parts = self.parts.clone();
        let request = fast::Request {
            credentials,
            token: self.token,
            scope: self.scope(),
            payload: self.payload,
            time: self.time,
        };
        fast::sign(&mut parts, &request)?;
        Ok(parts)
    }

    /// Signs through the entry point the proxy uses.
    pub(super) fn sign(&self) -> (Result<Signed, SignError>, Parts) {
        let mut parts = self.parts.clone();
        let credentials = SigningCredentials::new(self.credentials.clone());
        let signed = sign_at(
            &mut parts,
            &credentials,
            self.token,
            self.scope(),
            self.payload,
            self.time,
        );
        (signed, parts)
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            region: &self.region,
            service: self.service,
        }
    }
}

/// Asserts the fast path signs `case` exactly as aws-sigv4 does.
fn assert_same(case: &Case, credentials: &SigningCredentials) -> Result<(), TestCaseError> {
    let fast = case.fast(credentials);
    let fast = fast.map_err(|why| TestCaseError::fail(format!("not covered: {why:?}")))?;
    let reference = case
        .reference()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(headers(&fast), headers(&reference));
    Ok(())
}

/// A piece of a path segment or query component: plain, escaped (well or badly), or odd.
fn atom(path: bool) -> impl Strategy<Value = String> {
    let odd = if path {
        "[!$&'()*,;:=@\"{}\\[\\]|^]"
    } else {
        "[!$'()*,;:/?@=\\[\\]|^`{}]"
    };
    prop_oneof![
        6 => "[A-Za-z0-9._~-]{1,4}",
        3 => "%[0-9A-Fa-f]{2}",
        1 => Just("%".to_owned()),
        1 => Just("%G1".to_owned()),
        2 => Just("+".to_owned()),
        1 => Just("~".to_owned()),
        1 => Just("%C3%A9".to_owned()),
        1 => Just("%E2%82%AC".to_owned()),
        1 => Just("%FF".to_owned()),
        1 => Just("\u{e9}".to_owned()),
        2 => odd,
    ]
}

fn component(path: bool) -> impl Strategy<Value = String> {
    prop::collection::vec(atom(path), 0..5).prop_map(|atoms| atoms.concat())
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(component(true), 1..5).prop_map(|segments| {
        let mut path = String::new();
        for segment in segments {
            path.push('/');
            path.push_str(&segment);
        }
        path
    })
}

fn query() -> impl Strategy<Value = Option<String>> {
    let key = prop_oneof![
        2 => prop::sample::select(vec!["x-id", "prefix", "list-type", "uploads", "partNumber", "X-Amz-Meta", "X-Amz-Signature"])
            .prop_map(str::to_owned),
        3 => component(false),
    ];
    let pair = (
        key,
        prop::option::of(component(false)),
        prop::bool::weighted(0.1),
    );
    prop::option::of(prop::collection::vec(pair, 0..6)).prop_map(|pairs| {
        pairs.map(|pairs| {
            let mut query = String::new();
            for (i, (key, value, extra_amp)) in pairs.into_iter().enumerate() {
                if i > 0 || extra_amp {
                    query.push('&');
                }
                query.push_str(&key);
                if let Some(value) = value {
                    query.push('=');
                    query.push_str(&value);
                }
            }
            query
        })
    })
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "x-amz-meta-a", "X-Amz-Meta-A", "Content-Type", "content-length", "Range",
            "user-agent", "User-Agent", "x-amzn-trace-id", "Expect", "transfer-encoding",
            "authorization", "x-amz-date", "X-Amz-Content-Sha256", "x-amz-security-token",
            "x-amz-s3session-token", "Accept", "If-None-Match", "x-amz-checksum-crc32", "Host",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z][a-zA-Z0-9-]{0,15}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[ \t!-~]{0,20}",
        1 => "( {0,3}[a-z]{1,3}){1,4} {0,3}",
    ]
}

fn credentials() -> impl Strategy<Value = Credentials> {
    let token = prop_oneof!["[A-Za-z0-9/+=]{1,60}", "[ A-Za-z0-9/+=]{1,30}",];
    (
        "[A-Z0-9]{4,20}",
        "[A-Za-z0-9/+]{1,40}",
        prop::option::of(token),
    )
        .prop_map(|(id, secret, token)| Credentials::new(id, secret, token, None, "test"))
}

fn time() -> impl Strategy<Value = SystemTime> {
    let last_day = 2_932_896u64; // 9999-12-31
    let seconds = prop_oneof![
        0..last_day * 86_400 + 86_400,
        (0..=last_day, prop::sample::select(vec![0u64, 1, 86_399]))
            .prop_map(|(day, s)| day * 86_400 + s),
    ];
    (seconds, 0u32..1_000_000_000).prop_map(|(s, nanos)| UNIX_EPOCH + Duration::new(s, nanos))
}

fn payload() -> impl Strategy<Value = Payload> {
    prop::sample::select(vec![
        Payload::Unsigned,
        Payload::StreamingUnsignedTrailer,
        Payload::SignedChunks,
        Payload::Empty,
    ])
}

fn token_header() -> impl Strategy<Value = TokenHeader> {
    prop::sample::select(vec![TokenHeader::S3Session, TokenHeader::SecurityToken])
}

/// The head as a client could send it, aimed at `host`; `None` when `http` refuses it.
pub(super) fn build_parts(
    method: &str,
    host: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
) -> Option<Parts> {
    let uri = match query {
        Some(q) => format!("https://{host}{path}?{q}"),
        None => format!("https://{host}{path}"),
    };
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let (mut parts, ()) = builder.body(()).ok()?.into_parts();
    parts
        .headers
        .insert(http::header::HOST, HeaderValue::from_str(host).ok()?);
    Some(parts)
}

fn any_case() -> impl Strategy<Value = Case> {
    let head = (
        prop_oneof!["GET", "PUT", "HEAD", "POST", "DELETE", "[A-Z]{1,8}"],
        "[a-z0-9-]{1,12}(\\.[a-z0-9-]{1,12}){0,3}",
        path(),
        query(),
        prop::collection::vec((header_name(), header_value()), 0..12),
    );
    let signing = (
        credentials(),
        token_header(),
        "[a-z]{2}(-[a-z]{2,9}){1,2}-[0-9]",
        prop::sample::select(SERVICES.to_vec()),
        payload(),
        time(),
    );
    (head, signing).prop_filter_map(
        "http refused the head",
        |(
            (method, host, path, query, headers),
            (credentials, token, region, service, payload, time),
        )| {
            let parts = build_parts(&method, &host, &path, query.as_deref(), &headers)?;
            Some(Case {
                parts,
                credentials,
                token,
                region,
                service,
                payload,
                time,
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any head the fast path takes, it signs as aws-sigv4 does; it leaves only presigned
    /// queries to aws-sigv4 here.
    #[test]
    fn the_fast_path_signs_as_aws_sigv4_does(case in any_case()) {
        let credentials = SigningCredentials::new(case.credentials.clone());
        match case.fast(&credentials) {
            Ok(_) => assert_same(&case, &credentials)?,
            Err(why) => prop_assert_eq!(why, Uncovered::Presigned),
        }
        let (signed, parts) = case.sign();
        prop_assert!(signed.is_ok());
        prop_assert_eq!(headers(&parts), headers(&case.reference().unwrap()));
    }
}

/// A head as the proxy sends it: a client's path and query written in canonical form
/// (`uri::path_and_query`), aimed at a Zonal host, client auth and hop-by-hop headers stripped.
fn proxy_case() -> impl Strategy<Value = Case> {
    let head = (
        prop_oneof!["GET", "PUT", "HEAD", "POST", "DELETE"],
        path(),
        query(),
        prop::collection::vec((header_name(), header_value()), 0..12),
    );
    let signing = (credentials(), token_header(), payload(), time());
    (head, signing).prop_filter_map(
        "http refused the head",
        |((method, path, query, headers), (credentials, token, payload, time))| {
            let host = "demo--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";
            let mut parts =
                build_parts(&method, "client.example", &path, query.as_deref(), &headers)?;
            let target = crate::route::uri::path_and_query(
                parts.uri.path(),
                &crate::route::uri::Query::parse(parts.uri.query()),
            );
            let _ = strip_client_auth(&mut parts);
            super::set_target(&mut parts, host, &target).ok()?;
            Some(Case {
                parts,
                credentials,
                token,
                region: "us-west-2".to_owned(),
                service: "s3express",
                payload,
                time,
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Every head the proxy itself shapes goes the fast way, and signs as aws-sigv4 does.
    #[test]
    fn the_proxy_s_own_requests_take_the_fast_path(case in proxy_case()) {
        let credentials = SigningCredentials::new(case.credentials.clone());
        assert_same(&case, &credentials)?;
        prop_assert_eq!(case.sign().0.ok(), Some(Signed::Fast));
    }
}

#[test]
fn every_ascii_byte_in_a_query_is_encoded_as_aws_sigv4_encodes_it() {
    let mut value = String::new();
    for b in 0u8..0x80 {
        value.push_str(&format!("%{b:02X}"));
    }
    let query = format!("all={value}&{}", value.replace("%3D", ""));
    let parts = build_parts("GET", "h.example", "/k", Some(&query), &[]).unwrap();
    let case = Case {
        parts,
        credentials: Credentials::new("AKID", "secret", None, None, "t"),
        token: TokenHeader::SecurityToken,
        region: "us-west-2".to_owned(),
        service: "s3",
        payload: Payload::Unsigned,
        time: UNIX_EPOCH + Duration::from_secs(DAY * 86_400),
    };
    let credentials = SigningCredentials::new(case.credentials.clone());
    assert_same(&case, &credentials).unwrap();
}
