use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use super::*;

fn r(line: &str) -> String {
    redact_str(line).into_owned()
}

const SIG: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a4";
const TOKEN: &str =
    "yO4MPT65j6QzSGEOrGCQflXx1zitR-XxO4fObHvZCYCf1vtx2ZSab4PUkGHWy2n75gKDsOkEXQNp8u3Ii2Rcoge2";

/// A JSON access line as the proxy writes it (`--log-format json`).
pub(super) const ACCESS_JSON: &str = r#"{"timestamp":"2026-11-29T15:54:57.957441Z","level":"INFO","message":"request","request_id":"3E46AE843675B294","client":"127.0.0.1:35478","method":"PUT","operation":"PutObject","bucket":"demo--usw2-az1--x-s3","key":"photos/2024/cat.jpg","status":200,"bytes_up":5000,"bytes_down":0,"total_ms":10.89,"upstream_ms":0.941,"session":"miss","target":"s3x_proxy::access","span":{"client.addr":"127.0.0.1:35478","name":"conn"},"spans":[{"client.addr":"127.0.0.1:35478","name":"conn"}]}
"#;

/// The same line in text format.
pub(super) const ACCESS_TEXT: &str = "2026-11-29T15:54:57.957441Z  INFO conn{client.addr=127.0.0.1:35478}: s3x_proxy::access: request request_id=3E46AE843675B294 client=127.0.0.1:35478 method=PUT operation=\"PutObject\" bucket=\"demo--usw2-az1--x-s3\" key=\"photos/2024/cat.jpg\" status=200 bytes_up=5000 bytes_down=0 total_ms=10.89 upstream_ms=0.941 session=\"miss\"\n";

#[test]
fn clean_lines_pass_through_without_a_copy() {
    for line in [
        ACCESS_JSON,
        ACCESS_TEXT,
        "",
        "x",
        "token",
        "tokens=3 signatures",
    ] {
        assert!(
            matches!(redact(line.as_bytes()), Cow::Borrowed(_)),
            "{line}"
        );
    }
}

#[test]
fn aws_sigv4_canonical_request_trace_in_text() {
    // What `aws_sigv4::http_request::sign` traces (1.6): header values it considers sensitive
    // are masked, x-amz-s3session-token is not.
    let line = format!(
        "2026-11-29T15:55:14.067384Z TRACE conn{{client.addr=127.0.0.1:56228}}:request{{id=1318B98897EF56F7 method=PUT operation=\"PutObject\"}}: aws_sigv4::http_request::sign: canonical_request=PUT\n/a\n\naccept:*/*\ncontent-length:5\nhost:demo--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20261129T155514Z\nx-amz-s3session-token:{TOKEN}\nx-amz-security-token:** redacted (length=12) **\n\naccept;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-s3session-token\nUNSIGNED-PAYLOAD\n"
    );
    let out = r(&line);
    assert!(!out.contains(TOKEN), "{out}");
    assert!(
        out.contains("\nx-amz-s3session-token:[redacted]\n"),
        "{out}"
    );
    assert!(
        out.contains("x-amz-security-token:** redacted (length=12) **"),
        "{out}"
    );
    assert!(
        out.contains("\naccept;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-s3session-token\nUNSIGNED-PAYLOAD\n"),
        "the signed headers line stays: {out}"
    );
    assert_eq!(out.len(), line.len() - TOKEN.len() + REDACTED.len());
}

#[test]
fn aws_sigv4_presigning_trace_in_json() {
    // Query signing puts the token into the canonical query string.
    let line = format!(
        r#"{{"timestamp":"2026-11-29T15:55:14.067384Z","level":"TRACE","canonical_request":"GET\n/k\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261129%2Fus-west-2%2Fs3express%2Faws4_request&X-Amz-Date=20261129T155514Z&X-Amz-Expires=300&X-Amz-Security-Token={TOKEN}%2F%2B%3D&X-Amz-SignedHeaders=host\nhost:b.example\n\nhost\nUNSIGNED-PAYLOAD","string_to_sign":"AWS4-HMAC-SHA256\n20261129T155514Z\n20261129/us-west-2/s3express/aws4_request\n{SIG}","message":"calculated signing parameters","target":"aws_sigv4::http_request::sign"}}"#
    );
    let out = r(&line);
    assert!(!out.contains(TOKEN), "{out}");
    assert!(!out.contains("ASIAEXAMPLE"), "{out}");
    assert!(
        out.contains("&X-Amz-Security-Token=[redacted]&X-Amz-SignedHeaders=host\\n"),
        "{out}"
    );
    assert!(
        out.contains("&X-Amz-Credential=[redacted]&X-Amz-Date="),
        "{out}"
    );
    // The string to sign ends with a hash of the canonical request: not a secret.
    assert!(out.contains(&format!("aws4_request\\n{SIG}\"")), "{out}");
}

#[test]
fn authorization_keeps_its_scope_and_loses_its_signature() {
    let value = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-s3session-token, Signature={SIG}"
    );
    let expected = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-s3session-token, Signature=[redacted]";
    for (line, want) in [
        (
            format!("authorization: {value}\r\n"),
            format!("authorization: {expected}\r\n"),
        ),
        (
            format!("Authorization:{value}"),
            format!("Authorization:{expected}"),
        ),
        (
            format!("auth=\"{value}\" next=1"),
            format!("auth=\"{expected}\" next=1"),
        ),
        (
            format!(r#"{{"authorization":"{value}","status":403}}"#),
            format!(r#"{{"authorization":"{expected}","status":403}}"#),
        ),
    ] {
        assert_eq!(r(&line), want);
    }
}

#[test]
fn debug_of_a_header_map_and_a_request() {
    let mut req = http::Request::builder()
        .method("GET")
        .uri(format!(
            "https://b.example/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDCLIENT%2F20240101%2Fus-west-2%2Fs3express%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&x-amz-security-token=clienttoken%2Fabc&X-Amz-Signature={SIG}"
        ))
        .header("host", "b.example")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature={SIG}"),
        )
        .header("x-amz-security-token", "IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=")
        .header("X-Amz-S3session-Token", TOKEN)
        .header("proxy-authorization", "Basic dXNlcjpwYXNzd29yZA==")
        .body(())
        .unwrap();
    let mut marked = http::HeaderValue::from_static("Bearer abc.def.ghi");
    marked.set_sensitive(true);
    req.headers_mut().insert("x-other-authorization", marked);
    let out = r(&format!("{req:?}"));
    for secret in [
        SIG,
        "clienttoken",
        "AKIDCLIENT%2F",
        "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
        TOKEN,
        "dXNlcjpwYXNzd29yZA",
    ] {
        assert!(!out.contains(secret), "{secret} in {out}");
    }
    for kept in [
        "X-Amz-Expires=300&",
        "\"host\": \"b.example\"",
        "\"x-amz-security-token\": \"[redacted]\"",
        "\"x-amz-s3session-token\": \"[redacted]\"",
        "\"proxy-authorization\": \"Basic [redacted]\"",
        "\"x-other-authorization\": Sensitive",
        "Credential=AKIDCLIENT/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature=[redacted]\"",
    ] {
        assert!(out.contains(kept), "{kept} not in {out}");
    }
}

#[test]
fn debug_tuples_and_options() {
    let headers = vec![("host", "b.example"), ("x-amz-s3session-token", TOKEN)];
    let out = r(&format!("headers: {headers:?}"));
    assert_eq!(
        out,
        r#"headers: [("host", "b.example"), ("x-amz-s3session-token", "[redacted]")]"#
    );
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Creds {
        access_key_id: &'static str,
        secret_access_key: &'static str,
        session_token: Option<&'static str>,
        expiry: Option<u64>,
    }
    let c = Creds {
        access_key_id: "ASIAEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token: Some(TOKEN),
        expiry: None,
    };
    let out = r(&format!("{c:?}"));
    assert_eq!(
        out,
        r#"Creds { access_key_id: "ASIAEXAMPLE", secret_access_key: "[redacted]", session_token: Some("[redacted]"), expiry: None }"#
    );
    let out = r(&format!("{c:#?}"));
    assert!(!out.contains("wJalr") && !out.contains(TOKEN), "{out}");
}

#[test]
fn xml_credentials() {
    let xml = format!(
        "<CreateSessionResult><Credentials><SessionToken>{TOKEN}</SessionToken><SecretAccessKey>aB3+/xyz0123456789ABCDEFGHIJKLMNOPQRSTU=</SecretAccessKey><AccessKeyId>S3XSG3IZIEUZTYN7L2LK</AccessKeyId></Credentials></CreateSessionResult>"
    );
    assert_eq!(
        r(&xml),
        "<CreateSessionResult><Credentials><SessionToken>[redacted]</SessionToken><SecretAccessKey>[redacted]</SecretAccessKey><AccessKeyId>S3XSG3IZIEUZTYN7L2LK</AccessKeyId></Credentials></CreateSessionResult>"
    );
    // IMDS and container credential JSON.
    let json = r#"{ "Code" : "Success", "AccessKeyId" : "ASIAEXAMPLE", "SecretAccessKey" : "wJalrXUtnFEMI/K7MDENG", "Token" : "IQoJb3JpZ2lu", "Expiration" : "2026-11-29T21:00:00Z" }"#;
    assert_eq!(
        r(json),
        r#"{ "Code" : "Success", "AccessKeyId" : "ASIAEXAMPLE", "SecretAccessKey" : "[redacted]", "Token" : "[redacted]", "Expiration" : "2026-11-29T21:00:00Z" }"#
    );
}

#[test]
fn key_value_pairs_and_json_keys() {
    for (line, want) in [
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\naws_session_token=FwoGZXIvYXdzEXAMPLE\n",
            "aws_secret_access_key = [redacted]\naws_session_token=[redacted]\n",
        ),
        (
            "AWS_SECRET_ACCESS_KEY=wJalr AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY=[redacted] AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
        ),
        (
            r#"{"x-amz-s3session-token":"abc/def+=","x-amz-date":"20240101T000000Z"}"#,
            r#"{"x-amz-s3session-token":"[redacted]","x-amz-date":"20240101T000000Z"}"#,
        ),
        (
            r#"{"fields":{"message":"h {\"X-Amz-Security-Token\": \"abc\"}"}}"#,
            r#"{"fields":{"message":"h {\"X-Amz-Security-Token\": \"[redacted]\"}"}}"#,
        ),
        ("secret: hunter2hunter2", "secret: [redacted]"),
        (
            "x-amz-server-side-encryption-customer-key: MDEyMzQ1Njc4OWFi\nx-amz-server-side-encryption-customer-key-md5: abc",
            "x-amz-server-side-encryption-customer-key: [redacted]\nx-amz-server-side-encryption-customer-key-md5: abc",
        ),
    ] {
        assert_eq!(r(line), want);
    }
}

#[test]
fn aws_chunked_signatures() {
    let line = format!("10000;chunk-signature={SIG}\r\nx-amz-trailer-signature:{SIG}\r\n");
    assert_eq!(
        r(&line),
        "10000;chunk-signature=[redacted]\r\nx-amz-trailer-signature:[redacted]\r\n"
    );
}

#[test]
fn basic_and_bearer_credentials_anywhere() {
    for (line, want) in [
        (
            "proxy refused: Basic dXNlcjpwYXNz from 10.0.0.1",
            "proxy refused: Basic [redacted] from 10.0.0.1",
        ),
        (
            "got Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "got Bearer [redacted]",
        ),
        (
            "authorization=Basic Zm9vOmJhcg==",
            "authorization=Basic [redacted]",
        ),
        (
            "authorization: Zm9vOmJhcg== rest",
            "authorization: [redacted]",
        ),
        (
            "authorization: Custom a1b2c3 rest",
            "authorization: [redacted] rest",
        ),
        (
            "Authorization: AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
            "Authorization: AWS [redacted]",
        ),
    ] {
        assert_eq!(r(line), want);
    }
    for clean in [
        "basic authentication is not supported",
        "HTTP Basic Auth",
        "authorization header missing",
    ] {
        assert_eq!(r(clean), clean);
    }
}

#[test]
fn ansi_colours_between_name_and_value() {
    let line = "\x1b[3mx_amz_security_token\x1b[0m\x1b[2m=\x1b[0mIQoJb3JpZ2lu \x1b[3mstatus\x1b[0m\x1b[2m=\x1b[0m200";
    assert_eq!(
        r(line),
        "\x1b[3mx_amz_security_token\x1b[0m\x1b[2m=\x1b[0m[redacted] \x1b[3mstatus\x1b[0m\x1b[2m=\x1b[0m200"
    );
}

#[test]
fn names_that_are_not_secrets_stay_readable() {
    for clean in [
        "GET /b?list-type=2&continuation-token=1ueGcxLPRx1Tr&max-keys=10",
        r#"{"NextToken":"abc","ContinuationToken":"def","next_token":"ghi"}"#,
        "TRACE aws_config::imds::client::token: loaded token",
        "signing with Credentials { access_key_id: \"AKID\", secret_access_key: \"** redacted **\" }",
        "SignedHeaders=host;x-amz-date;x-amz-s3session-token\nUNSIGNED-PAYLOAD",
        "session_token: None",
        "error=SignatureDoesNotMatch: The request signature we calculated does not match",
        "ExpiredToken: The provided token has expired.",
        "x-amz-security-token=[redacted] Signature=[redacted]",
        "signature_schemes: [ECDSA_NISTP384_SHA384]",
        r#"excluded_headers: Some(["authorization", "user-agent"]), x: ["x-amz-security-token", "host"]"#,
    ] {
        assert_eq!(r(clean), clean);
    }
}

#[test]
fn redaction_is_idempotent() {
    let line = format!(
        "authorization: AWS4-HMAC-SHA256 Credential=A/b, SignedHeaders=host, Signature={SIG} x-amz-s3session-token:{TOKEN} <SessionToken>{TOKEN}</SessionToken> Basic dXNlcjpwYXNz"
    );
    let once = r(&line);
    assert_eq!(r(&once), once);
    assert_eq!(once.matches(REDACTED).count(), 4, "{once}");
}

#[test]
fn invalid_utf8_is_still_redacted() {
    let mut line = b"\xff\xfe x-amz-s3session-token:".to_vec();
    line.extend_from_slice(TOKEN.as_bytes());
    line.extend_from_slice(b"\n\xff");
    let out = redact(&line).into_owned();
    assert_eq!(out, b"\xff\xfe x-amz-s3session-token:[redacted]\n\xff");
}

#[test]
fn the_portable_searcher_finds_what_the_simd_one_does() {
    let line = format!(
        "Authorization: Basic x token=1 <SessionToken>{TOKEN}</SessionToken> X-Amz-Credential=a Signature={SIG} secret=2 customer-key: 3 bearer z"
    )
    .to_ascii_lowercase();
    let found = |n: &Needles| {
        let mut all = Vec::new();
        n.each(line.as_bytes(), |needle, at| all.push((needle, at)));
        all
    };
    let automaton = found(&Needles::automaton());
    assert_eq!(automaton.len(), 10, "{automaton:?}");
    assert_eq!(found(&SEARCH), automaton);
    assert!(Needles::automaton().any(line.as_bytes()));
    assert!(!Needles::automaton().any(ACCESS_JSON.as_bytes()));
}

/// Captures what a subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Signs like the proxy does (session credentials, x-amz-s3session-token) and presigns with
/// temporary IAM credentials, with aws-sigv4 tracing at full volume into `writer`.
fn sign_with_aws_sigv4_tracing(json: bool) -> String {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    let capture = Capture::default();
    let sink = capture.clone();
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(Redacting(move || sink.clone()));
    let dispatch: tracing::Dispatch = if json {
        builder.json().flatten_event(true).finish().into()
    } else {
        builder.finish().into()
    };
    tracing::dispatcher::with_default(&dispatch, || {
        // As the proxy signs: session credentials, the token in x-amz-s3session-token.
        let host = "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";
        let mut request = http::Request::builder()
            .method("PUT")
            .uri(format!("https://{host}/k"))
            .header("host", host)
            .header("authorization", format!("AWS4-HMAC-SHA256 Credential=AKIDCLIENTFAKE/20240101/us-west-2/s3express/aws4_request, SignedHeaders=host, Signature={SIG}"))
            .body(())
            .unwrap();
        tracing::trace!(headers = ?request.headers(), "before signing");
        request.headers_mut().remove("authorization");
        let session = Credentials::new(
            "S3XSSESSIONKEYID",
            "session/secret/EXAMPLE",
            Some(format!("{TOKEN}session")),
            None,
            "s3express-session",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        settings.session_token_name_override = Some("x-amz-s3session-token");
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&session)
            .region("us-west-2")
            .name("s3express")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        let signable = SignableRequest::new(
            "PUT",
            request.uri().to_string(),
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut request);
        tracing::trace!(request = ?request, "signed");

        let iam = Credentials::new(
            "ASIAIAMKEYID",
            "iam/secret/EXAMPLE",
            Some(format!("{TOKEN}iam")),
            None,
            "env",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(std::time::Duration::from_secs(300));
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&iam)
            .region("us-west-2")
            .name("s3express")
            .time(std::time::SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new(
            "GET",
            "https://b.example/k",
            [("host", "b.example")].into_iter(),
            SignableBody::UnsignedPayload,
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let query: Vec<_> = instructions
            .params()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tracing::debug!(uri = %format!("https://b.example/k?{}", query.join("&")), "presigned");
    });
    capture.text()
}

#[test]
fn real_aws_sigv4_trace_output_is_redacted_in_both_formats() {
    for json in [false, true] {
        let out = sign_with_aws_sigv4_tracing(json);
        assert!(
            out.contains("aws_sigv4::http_request::sign") && out.contains("canonical_request"),
            "aws-sigv4 traced: {out}"
        );
        assert!(out.contains("x-amz-s3session-token:[redacted]"), "{out}");
        assert!(out.contains("X-Amz-Security-Token=[redacted]"), "{out}");
        assert!(out.contains("Signature=[redacted]"), "{out}");
        for secret in [TOKEN, "session/secret/EXAMPLE", "iam/secret/EXAMPLE", SIG] {
            assert!(
                !out.contains(secret),
                "{secret} leaked (json: {json}):\n{out}"
            );
        }
        // No 64-hex signature after any "signature" name.
        let lower = out.to_ascii_lowercase();
        for (at, _) in lower.match_indices("signature") {
            let rest = &lower[at + 9..];
            let value = rest.trim_start_matches(['=', ':', '"', ' ', '\\']);
            let hex = value.bytes().take_while(u8::is_ascii_hexdigit).count();
            assert!(
                hex < 16,
                "a signature leaked: {}",
                &out[at..(at + 90).min(out.len())]
            );
        }
    }
}

/// Cost per line, in release builds:
/// `cargo test --release --lib redact::tests::cost_per_line -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn cost_per_line() {
    fn per_line(n: u32, mut f: impl FnMut() -> usize) -> f64 {
        let start = std::time::Instant::now();
        let mut total = 0;
        for _ in 0..n {
            total += f();
        }
        assert!(total > 0);
        start.elapsed().as_nanos() as f64 / f64::from(n)
    }
    let with_secret = format!(
        "2026-11-29T15:55:14Z TRACE aws_sigv4::http_request::sign: canonical_request=PUT\n/a\n\nhost:b.example\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20261129T155514Z\nx-amz-s3session-token:{TOKEN}\n\nhost;x-amz-content-sha256;x-amz-date;x-amz-s3session-token\nUNSIGNED-PAYLOAD\n"
    );
    let hyper = "2026-11-29T15:54:57.954231Z TRACE conn{client.addr=127.0.0.1:35478}:request{id=3E46AE843675B294 method=PUT operation=\"PutObject\"}: hyper_util::client::legacy::pool: checkout dropped for (\"https\", demo--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com)\n";
    for (name, line) in [
        ("json access line", ACCESS_JSON),
        ("text access line", ACCESS_TEXT),
        ("hyper trace line", hyper),
        ("canonical request with a token", with_secret.as_str()),
    ] {
        let ns = per_line(1_000_000, || {
            std::hint::black_box(redact(std::hint::black_box(line.as_bytes()))).len()
        });
        println!("redact, {name} ({} bytes): {ns:.0} ns", line.len());
    }
    // In place: the access event formatted by tracing-subscriber, with and without the redactor.
    #[derive(Clone)]
    struct Null;
    impl std::io::Write for Null {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            std::hint::black_box(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    for json in [false, true] {
        let mut costs = Vec::new();
        for redacting in [false, true] {
            let builder = tracing_subscriber::fmt().with_ansi(false);
            let dispatch: tracing::Dispatch = match (json, redacting) {
                (false, false) => builder.with_writer(|| Null).finish().into(),
                (false, true) => builder.with_writer(Redacting(|| Null)).finish().into(),
                (true, false) => builder
                    .with_writer(|| Null)
                    .json()
                    .flatten_event(true)
                    .finish()
                    .into(),
                (true, true) => builder
                    .with_writer(Redacting(|| Null))
                    .json()
                    .flatten_event(true)
                    .finish()
                    .into(),
            };
            costs.push(tracing::dispatcher::with_default(&dispatch, || {
                let span = tracing::info_span!("conn", client.addr = "127.0.0.1:35478");
                let _entered = span.enter();
                per_line(300_000, || {
                    tracing::info!(target: "s3x_proxy::access", request_id = "3E46AE843675B294", client = "127.0.0.1:35478", method = "PUT", operation = "PutObject", bucket = "demo--usw2-az1--x-s3", key = "photos/2024/cat.jpg", status = 200, bytes_up = 5000, bytes_down = 0, total_ms = 10.89, upstream_ms = 0.941, session = "miss", "request");
                    1
                })
            }));
        }
        println!(
            "access event, {}: {:.0} ns formatted, {:.0} ns formatted and redacted",
            if json { "json" } else { "text" },
            costs[0],
            costs[1]
        );
    }
}
