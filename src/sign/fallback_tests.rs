//! Sign: each way the fast path leaves a request to aws-sigv4, the day's key at midnight, and
//! the fast path's trace line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use http::HeaderValue;

use super::canonical::Uncovered;
use super::fast_tests::{build_parts, headers, Case, DAY};
use super::{Payload, SignError, Signed, SigningCredentials, TokenHeader};

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

#[test]
fn the_fast_path_traces_its_canonical_request_without_the_token() {
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let mut case = get_case(at(DAY, 5));
    case.credentials = Credentials::new("ASIA", "s", Some("tok-SECRET".into()), None, "t");
    let (signed, _) = tracing::subscriber::with_default(subscriber, || case.sign());
    assert_eq!(signed.unwrap(), Signed::Fast);
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("signed on the fast path"), "{log}");
    assert!(log.contains("GET\n/dir/k%20ey\nx-id=GetObject\n"), "{log}");
    assert!(log.contains("x-amz-s3session-token:[redacted]"), "{log}");
    assert!(log.contains("range:bytes=0-9"), "{log}");
    assert!(!log.contains("tok-SECRET"), "{log}");

    let creq = b"GET\n/k:x\n\nhost:h\nx-amz-security-token:T1\ncookie:C1\nx-amz-server-side-encryption-customer-key:K1\nx-amz-meta-a:1\n\nhost\nUNSIGNED-PAYLOAD";
    let shown = super::canonical::ForLog(creq).to_string();
    for secret in ["T1", "C1", "K1"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("/k:x\n") && shown.contains("x-amz-meta-a:1"),
        "{shown}"
    );
}
