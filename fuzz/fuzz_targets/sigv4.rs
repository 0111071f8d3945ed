//! The SigV4 verifier (`AccessControl::verify_sigv4`, with `--access-file`): a request the
//! fuzzer describes is signed by aws-sigv4 with a tenant's key (header or presigned) and must
//! verify; then the fuzzer's edits are made to it in transit, and if the edited request still
//! verifies it must be the same request as the proxy reads it: the same method, the same
//! canonical path, the same query parameters once decoded, the same Host and the same value for
//! every `x-amz-*` header. No input panics, and no error shows the secret.
//!
//! Input (text lines):
//! ```text
//! flags: p = presign, b = a hashed body, c = chunk-signed
//! METHOD TARGET                       (origin form: /path?query)
//! name: value                         (headers of the signed request, any number)
//! --
//! edits, one a line:  m METHOD | p PATH | q+ PAIR | q- N | q~ N PAIR | h+ NAME: VALUE |
//!                     h= NAME: VALUE | h- NAME
//! ```
#![no_main]

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use s3x_proxy::admit::identity::{AccessControl, AccessList, Refusal, SessionKey};
use s3x_proxy::route::uri::{canonical_path, Query, PRESIGN_PARAMS};

const HOST: &str = "data--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";
const SECRET: &str = "writer-secret-0123456789";
const FILE: &str = r#"
[[client]]
name = "writer"
access_key_id = "AKIDWRITER"
secret_access_key = "writer-secret-0123456789"
allow = [{ bucket = "data--usw2-az1--x-s3", access = "read-write" }]
"#;

/// Headers the signer sets itself, which the request must not bring.
const SIGNERS: [&str; 6] = [
    "authorization",
    "host",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "x-amz-s3session-token",
];

fn time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Signs `method target` with `headers` as a client would; `None` when aws-sigv4 cannot.
fn signed(
    flags: &str,
    method: &Method,
    target: &str,
    headers: &[(String, String)],
) -> Option<Parts> {
    let presign = flags.contains('p');
    let url = format!("https://{HOST}{target}");
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    if presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(600));
    } else {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity: Identity = Credentials::new("AKIDWRITER", SECRET, None, None, "fuzz").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(time())
        .settings(settings)
        .build()
        .ok()?
        .into();
    let body = match (presign, flags.contains('b'), flags.contains('c')) {
        (true, _, _) => SignableBody::UnsignedPayload,
        (false, true, _) => SignableBody::Bytes(b"fuzz"),
        (false, false, true) => {
            SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into())
        }
        _ => SignableBody::UnsignedPayload,
    };
    let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let signable = SignableRequest::new(method.as_str(), &url, pairs, body).ok()?;
    let (instructions, _) = sign(signable, &params).ok()?.into_parts();
    let mut builder = http::Request::builder().method(method.clone()).uri(&url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(()).ok()?;
    instructions.apply_to_request_http1x(&mut request);
    let (mut parts, ()) = request.into_parts();
    parts
        .headers
        .insert(http::header::HOST, HeaderValue::from_static(HOST));
    parts.uri = parts.uri.path_and_query()?.as_str().parse().ok()?;
    Some(parts)
}

/// The query's parameters as the proxy reads them (decoded, sorted, `k` the same as `k=`).
fn parameters(parts: &Parts) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Query::parse(parts.uri.query())
        .canonical()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    pairs.sort();
    pairs
}

/// The `x-amz-*` headers and Host, but `x-amz-content-sha256`, which [`payload`] reads.
fn amz_headers(parts: &Parts) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut out: Vec<(String, Vec<Vec<u8>>)> = parts
        .headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-amz-") || *n == http::header::HOST)
        .filter(|n| n.as_str() != "x-amz-content-sha256")
        .map(|n| {
            let values = parts
                .headers
                .get_all(n)
                .iter()
                .map(|v| v.as_bytes().to_vec());
            (n.as_str().to_owned(), values.collect())
        })
        .collect();
    out.sort();
    out
}

/// What the body is said to be: `x-amz-content-sha256`, `UNSIGNED-PAYLOAD` when absent.
fn payload(parts: &Parts) -> Vec<u8> {
    let value = parts.headers.get("x-amz-content-sha256");
    value.map_or(b"UNSIGNED-PAYLOAD".to_vec(), |v| v.as_bytes().to_vec())
}

/// The query pairs of a target as sent, split on `&` (empty ones dropped).
fn raw_pairs(parts: &Parts) -> Vec<String> {
    let query = parts.uri.query().unwrap_or_default();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

fn retarget(parts: &mut Parts, path: &str, pairs: &[String]) -> Option<()> {
    let target = match pairs.is_empty() {
        true => path.to_owned(),
        false => format!("{path}?{}", pairs.join("&")),
    };
    parts.uri = target.parse().ok()?;
    Some(())
}

fn header(line: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = line.split_once(':')?;
    Some((
        HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
        HeaderValue::from_str(value.trim()).ok()?,
    ))
}

/// Makes one edit; `None` when it cannot be made.
fn edit(parts: &mut Parts, line: &str) -> Option<()> {
    let (op, arg) = line.split_once(' ').unwrap_or((line, ""));
    let path = parts.uri.path().to_owned();
    let mut pairs = raw_pairs(parts);
    let index = |s: &str, len: usize| s.parse::<usize>().ok().filter(|_| len > 0).map(|n| n % len);
    match op {
        "m" => parts.method = Method::from_bytes(arg.as_bytes()).ok()?,
        "p" => retarget(parts, arg, &pairs)?,
        "q+" => {
            pairs.push(arg.to_owned());
            retarget(parts, &path, &pairs)?
        }
        "q-" => {
            let at = index(arg, pairs.len())?;
            pairs.remove(at);
            retarget(parts, &path, &pairs)?
        }
        "q~" => {
            let (n, pair) = arg.split_once(' ')?;
            let at = index(n, pairs.len())?;
            pairs[at] = pair.to_owned();
            retarget(parts, &path, &pairs)?
        }
        "h+" => {
            let (name, value) = header(arg)?;
            parts.headers.append(name, value);
        }
        "h=" => {
            let (name, value) = header(arg)?;
            parts.headers.insert(name, value);
        }
        "h-" => {
            parts
                .headers
                .remove(HeaderName::from_bytes(arg.trim().as_bytes()).ok()?);
        }
        _ => return None,
    }
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (signed_part, edits) = text.split_once("\n--\n").unwrap_or((text, ""));
    let mut lines = signed_part.lines();
    let (Some(flags), Some(request_line)) = (lines.next(), lines.next()) else {
        return;
    };
    let Some((method, target)) = request_line.split_once(' ') else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(uri) = target.parse::<http::Uri>() else {
        return;
    };
    if !target.starts_with('/') {
        return;
    }
    // A query that names presigned-URL parameters itself is not one a client signs.
    let query = Query::parse(uri.query());
    if PRESIGN_PARAMS.iter().any(|p| query.presigned(p).is_some()) {
        return;
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = header(line) else {
            return;
        };
        let value = value.to_str().map(str::to_owned);
        let (Ok(value), false) = (value, SIGNERS.contains(&name.as_str())) else {
            return;
        };
        headers.push((name.as_str().to_owned(), value));
    }
    let Some(original) = signed(flags, &method, target, &headers) else {
        return;
    };
    let access = AccessControl::new(
        AccessList::parse(FILE, "fuzz").unwrap(),
        SessionKey::random(),
    );
    match access.verify_sigv4(&original, time()) {
        Ok(admission) => assert_eq!(admission.principal.name(), "writer"),
        // aws-sigv4 leaves these out of a presigned URL's signature (and S3 refuses them).
        Err(Refusal::Unsigned(u))
            if flags.contains('p')
                && u.names
                    .split(", ")
                    .all(|n| n == "x-amz-checksum-mode" || n == "x-amz-user-agent") => {}
        Err(e) => panic!("what aws-sigv4 signed does not verify: {e:?}\n{original:?}"),
    }

    let mut changed = original.clone();
    for line in edits.lines() {
        if edit(&mut changed, line).is_none() {
            return;
        }
    }
    match access.verify_sigv4(&changed, time()) {
        Ok(_) => {
            assert_eq!(changed.method, original.method, "{changed:?}");
            assert_eq!(
                canonical_path(changed.uri.path()),
                canonical_path(original.uri.path()),
                "{changed:?}"
            );
            assert_eq!(parameters(&changed), parameters(&original), "{changed:?}");
            assert_eq!(amz_headers(&changed), amz_headers(&original), "{changed:?}");
            assert_eq!(payload(&changed), payload(&original), "{changed:?}");
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }
});
