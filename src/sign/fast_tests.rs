//! Sign: the fast path against aws-sigv4's `http_request::sign`, byte for byte, over generated
//! requests (property tests, a few hundred cases each), and each way the fast path leaves a
//! request to aws-sigv4.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;
use http::HeaderValue;
use proptest::prelude::*;

use super::fast::{self, Uncovered};
use super::{
    sign_at, sign_with_aws_sigv4, strip_client_auth, Payload, Scope, SignError, Signed,
    SigningCredentials, TokenHeader,
};

const CASES: u32 = 400;
const SERVICES: &[&str] = &["s3express", "s3", "s3-outposts", "execute-api"];
/// 2024-03-01, a leap year's day after February 29.
const DAY: u64 = 19_783;

/// Every header as `(name, value, sensitive)`, in the map's order.
fn headers(parts: &Parts) -> Vec<(String, Vec<u8>, bool)> {
    parts
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec(), v.is_sensitive()))
        .collect()
}

/// One signing problem: the request and everything it is signed with.
#[derive(Clone, Debug)]
struct Case {
    parts: Parts,
    credentials: Credentials,
    token: TokenHeader,
    region: String,
    service: &'static str,
    payload: Payload,
    time: SystemTime,
}

impl Case {
    /// Signs with aws-sigv4 alone.
    fn reference(&self) -> Result<Parts, SignError> {
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
    fn fast(&self, credentials: &SigningCredentials) -> Result<Parts, Uncovered> {
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
    fn sign(&self) -> (Result<Signed, SignError>, Parts) {
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
fn build_parts(
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
            let target = crate::uri::path_and_query(
                parts.uri.path(),
                &crate::uri::Query::parse(parts.uri.query()),
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

/// A GetObject as the proxy sends it, signed with session credentials at `time`.
fn get_case(time: SystemTime) -> Case {
    let host = "demo--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";
    let headers = [
        ("user-agent".to_owned(), "aws-cli/2".to_owned()),
        ("range".to_owned(), "bytes=0-9".to_owned()),
    ];
    let parts = build_parts("GET", host, "/dir/k%20ey", Some("x-id=GetObject"), &headers).unwrap();
    Case {
        parts,
        credentials: Credentials::new("ASIAEXAMPLE", "secret", Some("tok".into()), None, "t"),
        token: TokenHeader::S3Session,
        region: "us-west-2".to_owned(),
        service: "s3express",
        payload: Payload::Unsigned,
        time,
    }
}

fn at(day: u64, seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(day * 86_400 + seconds)
}

/// Signs `case` through the entry point; asserts it fell back for `why` and gave what
/// aws-sigv4 gives.
fn assert_falls_back(case: &Case, why: Uncovered) {
    let (signed, parts) = case.sign();
    let signed = signed.unwrap();
    assert_eq!(signed, Signed::Fallback(why));
    assert_eq!(headers(&parts), headers(&case.reference().unwrap()));
}

#[test]
fn one_key_signs_across_a_day_and_the_next_at_midnight() {
    let case = get_case(at(DAY, 0));
    let credentials = SigningCredentials::new(case.credentials.clone());
    for time in [
        at(DAY - 1, 86_399),
        at(DAY, 0),
        at(DAY, 1),
        at(DAY, 86_399),
        at(DAY + 1, 0),
        at(DAY - 1, 86_399),
    ] {
        let case = Case {
            time,
            ..case.clone()
        };
        let fast = case.fast(&credentials).unwrap();
        assert_eq!(headers(&fast), headers(&case.reference().unwrap()));
    }
    let auth = |day, s| {
        let fast = Case {
            time: at(day, s),
            ..case.clone()
        }
        .fast(&credentials)
        .unwrap();
        fast.headers["authorization"].to_str().unwrap().to_owned()
    };
    assert!(auth(DAY, 86_399).contains("/20240301/us-west-2/s3express/aws4_request"));
    assert!(auth(DAY + 1, 0).contains("/20240302/us-west-2/s3express/aws4_request"));
}

#[test]
fn a_uri_that_is_not_absolute_https_goes_to_aws_sigv4() {
    let mut case = get_case(at(DAY, 5));
    case.parts.uri = "http://h.example/k".parse().unwrap();
    assert_falls_back(&case, Uncovered::Uri);
    case.parts.uri = "/k?x-id=GetObject".parse().unwrap();
    assert_falls_back(&case, Uncovered::Uri);
}

#[test]
fn a_head_without_host_goes_to_aws_sigv4() {
    let mut case = get_case(at(DAY, 5));
    case.parts.headers.remove(http::header::HOST);
    assert_falls_back(&case, Uncovered::NoHost);
}

#[test]
fn a_value_that_is_not_visible_ascii_goes_to_aws_sigv4_which_refuses_it() {
    let mut case = get_case(at(DAY, 5));
    case.parts.headers.insert(
        "x-amz-meta-name",
        HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
    );
    let credentials = SigningCredentials::new(case.credentials.clone());
    assert_eq!(case.fast(&credentials).unwrap_err(), Uncovered::HeaderValue);
    assert!(matches!(case.sign().0, Err(SignError::NonAsciiHeader(_))));
}

#[test]
fn many_headers_go_to_aws_sigv4() {
    let mut case = get_case(at(DAY, 5));
    for n in 0..60 {
        case.parts.headers.insert(
            http::HeaderName::from_bytes(format!("x-amz-meta-{n}").as_bytes()).unwrap(),
            HeaderValue::from_static("v"),
        );
    }
    assert_falls_back(&case, Uncovered::TooManyHeaders);
}

#[test]
fn a_presigned_query_goes_to_aws_sigv4() {
    let mut case = get_case(at(DAY, 5));
    case.parts.uri = "https://h.example/k?x-id=GetObject&X-Amz-Signature=abc"
        .parse()
        .unwrap();
    assert_falls_back(&case, Uncovered::Presigned);
    case.parts.uri = "https://h.example/k?x%2Damz%2dcredential=a"
        .parse()
        .unwrap();
    assert_falls_back(&case, Uncovered::Presigned);
}

#[test]
fn times_outside_1970_to_9999_go_to_aws_sigv4() {
    let case = get_case(UNIX_EPOCH - Duration::from_secs(1));
    assert_falls_back(&case, Uncovered::Time);
    let case = get_case(at(2_932_897, 0));
    let credentials = SigningCredentials::new(case.credentials.clone());
    assert_eq!(case.fast(&credentials).unwrap_err(), Uncovered::Time);
}

#[test]
fn credentials_that_cannot_go_in_a_header_go_to_aws_sigv4_which_refuses_them() {
    let mut case = get_case(at(DAY, 5));
    case.credentials = Credentials::new("ASIA", "s", Some("bad\ntoken".into()), None, "t");
    let credentials = SigningCredentials::new(case.credentials.clone());
    assert_eq!(case.fast(&credentials).unwrap_err(), Uncovered::Credentials);
    assert!(matches!(case.sign().0, Err(SignError::Unsignable(_))));
    case.credentials = Credentials::new("AS\u{1}IA", "s", None, None, "t");
    let credentials = SigningCredentials::new(case.credentials.clone());
    assert_eq!(case.fast(&credentials).unwrap_err(), Uncovered::Credentials);
    assert!(matches!(case.sign().0, Err(SignError::Unsignable(_))));
}

#[test]
fn the_empty_body_hash_and_the_security_token_match_aws_sigv4() {
    let mut case = get_case(at(DAY, 5));
    case.payload = Payload::Empty;
    case.token = TokenHeader::SecurityToken;
    let (signed, parts) = case.sign();
    assert_eq!(signed.unwrap(), Signed::Fast);
    assert_eq!(headers(&parts), headers(&case.reference().unwrap()));
    assert_eq!(
        parts.headers["x-amz-content-sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(parts.headers["x-amz-security-token"], "tok");
    assert!(parts.headers["x-amz-security-token"].is_sensitive());
}
