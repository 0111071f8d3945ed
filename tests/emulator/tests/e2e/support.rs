//! Test helpers: names, credentials and a SigV4 signer separate from the emulator's verifier.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub use crate::client::{tls_connect, Client, Resp};

pub const REGION: &str = "us-west-2";
pub const BUCKET: &str = "demo--usw2-az1--x-s3";
pub const OTHER: &str = "other--usw2-az1--x-s3";

pub fn host(bucket: &str) -> String {
    format!("{bucket}.s3express-usw2-az1.{REGION}.amazonaws.com")
}

/// Credentials to sign with; `session_token` goes in `x-amz-s3session-token`, `security_token`
/// (temporary IAM credentials) in `x-amz-security-token`.
#[derive(Clone, Debug, Default)]
pub struct Creds {
    pub access_key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
    pub security_token: Option<String>,
}

pub fn iam() -> Creds {
    let c = s3x_emulator::Config::default();
    Creds {
        access_key_id: c.access_key_id,
        secret: c.secret_access_key,
        ..Creds::default()
    }
}

/// RFC 3986 unreserved characters stay, everything else is %XX (and `/` when asked).
pub fn enc(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b'/' if keep_slash => "/".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn amz_now(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Adds x-amz-date, x-amz-content-sha256, the session token and Authorization (signing every
/// header given) for the directory buckets' region and service. `path` and `query` must already
/// be encoded as they go on the wire.
pub fn sign(
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    headers: &mut Vec<(String, String)>,
    payload: &str,
    creds: &Creds,
) {
    let scope = (REGION, "s3express");
    sign_for(method, host, path, query, headers, payload, creds, scope);
}

/// [`sign`] for a chosen (region, service).
#[allow(clippy::too_many_arguments)]
pub fn sign_for(
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    headers: &mut Vec<(String, String)>,
    payload: &str,
    creds: &Creds,
    (region, service): (&str, &str),
) {
    let date = amz_now(SystemTime::now());
    headers.push(("host".into(), host.into()));
    headers.push(("x-amz-date".into(), date.clone()));
    headers.push(("x-amz-content-sha256".into(), payload.into()));
    if let Some(t) = &creds.session_token {
        headers.push(("x-amz-s3session-token".into(), t.clone()));
    }
    if let Some(t) = &creds.security_token {
        headers.push(("x-amz-security-token".into(), t.clone()));
    }
    // Values are trimmed and runs of spaces collapse to one.
    let tidy = |v: &str| {
        v.split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_lowercase(), tidy(v)))
        .collect();
    sorted.sort();
    let names: Vec<&str> = sorted.iter().map(|(n, _)| n.as_str()).collect();
    let canonical_headers: String = sorted.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let creq = format!(
        "{method}\n{path}\n{query}\n{canonical_headers}\n{}\n{payload}",
        names.join(";")
    );
    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{}", creds.secret).as_bytes(), &date[..8]);
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex::encode(hmac(&key, &sts));
    headers.retain(|(n, _)| n != "host");
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            creds.access_key_id,
            names.join(";")
        ),
    ));
}

/// Builds the wire query string (sorted, encoded) from decoded pairs.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut q: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k, false), enc(v, false)))
        .collect();
    q.sort();
    q.join("&")
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The `x-amz-checksum-crc32` header for a body (DeleteObjects must carry a checksum).
pub fn crc32_header(body: &[u8]) -> (String, String) {
    use base64::Engine;
    let crc = crc32fast::hash(body).to_be_bytes();
    (
        "x-amz-checksum-crc32".to_string(),
        base64::engine::general_purpose::STANDARD.encode(crc),
    )
}
