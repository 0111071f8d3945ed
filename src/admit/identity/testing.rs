//! Test helpers: an access file, a fixed clock, and requests signed by aws-sigv4 the way the
//! Rust SDK signs S3 requests, turned into the request head the proxy receives.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::request::Parts;

/// Two clients: a writer (one bucket read-write, a zone read-only, `gp-*` read-write) and a
/// reader (the zone read-only).
pub const FILE: &str = r#"
[[client]]
name = "writer"
access_key_id = "AKIDWRITER"
secret_access_key = "writer-secret-0123456789"
allow = [
  { bucket = "data--usw2-az1--x-s3", access = "read-write" },
  { bucket = "*--usw2-az1--x-s3", access = "read-only" },
  { bucket = "gp-*", access = "read-write" },
]

[[client]]
name = "reader"
access_key_id = "AKIDREADER"
secret_access_key = "reader-secret-0123456789"
allow = [{ bucket = "*--usw2-az1--x-s3", access = "read-only" }]
"#;

pub const WRITER_SECRET: &str = "writer-secret-0123456789";
pub const READER_SECRET: &str = "reader-secret-0123456789";
pub const DATA: &str = "data--usw2-az1--x-s3";
pub const HOST: &str = "data--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";

/// 2023-11-14T22:13:20Z.
pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Who signs, where, when, and how.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
    /// A session token, sent as `x-amz-s3session-token` (service `s3express`) or
    /// `x-amz-security-token`.
    pub token: Option<&'a str>,
    pub service: &'a str,
    pub region: &'a str,
    pub time: SystemTime,
    /// Presign, valid for this long.
    pub presign: Option<Duration>,
    /// Keep the absolute URI and send no Host header (an h2 request's `:authority`).
    pub h2: bool,
}

impl<'a> Signer<'a> {
    pub fn new(key_id: &'a str, secret: &'a str) -> Self {
        Signer {
            key_id,
            secret,
            token: None,
            service: "s3express",
            region: "us-west-2",
            time: t0(),
            presign: None,
            h2: false,
        }
    }

    /// Signs `method url` (absolute) with `headers`, as an SDK would, and returns the head the
    /// proxy receives: origin-form target and a Host header (or, for h2, the absolute URI).
    pub fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
    ) -> Parts {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if self.service == "s3express" {
            settings.session_token_name_override = Some("x-amz-s3session-token");
        }
        match self.presign {
            Some(expires) => {
                settings.signature_location = SignatureLocation::QueryParams;
                settings.expires_in = Some(expires);
            }
            None => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
        }
        let identity: Identity = Credentials::new(
            self.key_id,
            self.secret,
            self.token.map(str::to_string),
            None,
            "test",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(method, url, headers.iter().copied(), body).unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        let (mut parts, ()) = request.into_parts();
        if !self.h2 {
            let authority = parts.uri.authority().unwrap().as_str().to_string();
            parts
                .headers
                .insert(http::header::HOST, authority.parse().unwrap());
            parts.uri = parts
                .uri
                .path_and_query()
                .unwrap()
                .as_str()
                .parse()
                .unwrap();
        }
        parts
    }
}

/// A request head from raw bytes (`request-line CRLF headers CRLF CRLF`), as hyper would give
/// it: the target verbatim, header values without surrounding whitespace, in order.
pub fn parse_head(raw: &str) -> Parts {
    let head = raw.split("\r\n\r\n").next().unwrap();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap();
    let target = request_line.next().unwrap();
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        builder = builder.header(name, value.trim());
    }
    builder.body(()).unwrap().into_parts().0
}

impl super::AccessControl {
    /// `verify_sigv4`, for tests about who a request is: its principal, or why it has none
    /// (unsigned `x-amz-*` headers as `AccessDenied`).
    pub fn verify_principal(
        &self,
        parts: &Parts,
        now: SystemTime,
    ) -> Result<super::Principal, super::AuthError> {
        match self.verify_sigv4(parts, now) {
            Ok(admission) => Ok(admission.principal),
            Err(super::Refusal::Auth(e)) => Err(e),
            Err(super::Refusal::Unsigned(_)) => Err(super::AuthError::AccessDenied(
                "There were headers present in the request which were not signed",
            )),
        }
    }
}
