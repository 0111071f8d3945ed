//! A tenant's client for the access-file tests: requests to the proxy in endpoint mode
//! (path-style), signed with the tenant's keys by aws-sigv4 the way the SDKs sign S3 requests
//! (header or presigned; a plain, precomputed or chunk-signed payload), and sent on a fresh
//! connection. What a test changes after signing is what an attacker changes in transit.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::Method;

use crate::harness::{Harness, Reply};

/// A signed request as it leaves the client: method, target (origin form), headers, body.
#[derive(Clone, Debug)]
pub struct Signed {
    pub method: Method,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Signed {
    /// Sends it to the proxy as it is now.
    pub async fn send(&self, h: &Harness) -> Reply {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let host = h.proxy.to_string();
        h.send(
            self.method.clone(),
            &self.target,
            &host,
            &headers,
            self.body.clone(),
        )
        .await
    }

    /// The same request with one more header (not signed).
    pub fn with_header(&self, name: &str, value: &str) -> Signed {
        let mut changed = self.clone();
        changed.headers.push((name.into(), value.into()));
        changed
    }

    /// The same request with another body (what an attacker replays).
    pub fn with_body(&self, body: impl Into<Bytes>) -> Signed {
        let mut changed = self.clone();
        changed.body = body.into();
        if let Some(length) = changed
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            length.1 = changed.body.len().to_string();
        }
        changed
    }

    /// Sends it with its body in frames of `frame` bytes and no Content-Length (HTTP/1.1
    /// chunked), as a client streaming a body of unknown length does.
    pub async fn send_unknown_length(&self, h: &Harness, frame: usize) -> Reply {
        use std::convert::Infallible;
        let host = h.proxy.to_string();
        let frames: Vec<Result<hyper::body::Frame<Bytes>, Infallible>> = self
            .body
            .chunks(frame)
            .map(|c| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(&self.target)
            .header("host", &host);
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("content-length") {
                request = request.header(name, value);
            }
        }
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        crate::harness::send_on_new_connection(h.proxy, request.body(body).unwrap()).await
    }

    /// The value of a header it carries.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the body is declared in the signature.
pub enum Payload<'a> {
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// The SHA-256 of these bytes, which are also the body.
    Hashed(&'a [u8]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: these bytes in chunks of this size, each signed.
    Chunked(&'a [u8], usize),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: the same, with this trailer (name, value)
    /// and its signature.
    ChunkedTrailer(&'a [u8], usize, (&'a str, &'a str)),
}

/// A tenant's keys, and how it signs.
#[derive(Clone, Copy)]
pub struct Tenant<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    /// Presign, valid for this long (the payload is then `UNSIGNED-PAYLOAD`).
    pub presign: Option<Duration>,
}

impl<'a> Tenant<'a> {
    pub fn new((key, secret): (&'a str, &'a str)) -> Self {
        Tenant {
            key,
            secret,
            presign: None,
        }
    }

    pub fn presigning(self, lifetime: Duration) -> Self {
        Tenant {
            presign: Some(lifetime),
            ..self
        }
    }

    fn identity(&self) -> Identity {
        Credentials::new(self.key, self.secret, None, None, "tenant").into()
    }

    /// Signs `method /path_and_query` (path-style: `/BUCKET/KEY?…`) for the proxy at `h`,
    /// service `s3`, region us-west-2, now.
    pub fn sign(
        &self,
        h: &Harness,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Signed {
        let host = h.proxy.to_string();
        self.sign_for(&host, method, path_and_query, headers, payload)
    }

    /// The same for a request whose Host is `host` (a bucket's virtual host, say).
    pub fn sign_for(
        &self,
        host: &str,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Signed {
        let time = SystemTime::now();
        let mut headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let (body, signable) = match &payload {
            Payload::Unsigned => (Bytes::new(), SignableBody::UnsignedPayload),
            Payload::Hashed(bytes) => (Bytes::copy_from_slice(bytes), SignableBody::Bytes(bytes)),
            Payload::Chunked(data, size) | Payload::ChunkedTrailer(data, size, _) => {
                let trailer = matches!(payload, Payload::ChunkedTrailer(..));
                let framed = framed_len(data.len(), *size, trailer_of(&payload));
                headers.push(("content-encoding".into(), "aws-chunked".into()));
                headers.push((
                    "x-amz-decoded-content-length".into(),
                    data.len().to_string(),
                ));
                headers.push(("content-length".into(), framed.to_string()));
                if let Payload::ChunkedTrailer(_, _, (name, _)) = &payload {
                    headers.push(("x-amz-trailer".into(), (*name).to_owned()));
                }
                let marker = if trailer {
                    SignableBody::StreamingSignedPayloadTrailer
                } else {
                    SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into())
                };
                (Bytes::new(), marker)
            }
        };
        let url = format!("http://{host}{path_and_query}");
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        match self.presign {
            Some(lifetime) => {
                settings.signature_location = SignatureLocation::QueryParams;
                settings.expires_in = Some(lifetime);
            }
            None => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
        }
        let identity = self.identity();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-west-2")
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            &url,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            signable,
        )
        .unwrap();
        let (instructions, signature) = sign(signable, &params).unwrap().into_parts();
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .body(())
            .unwrap();
        instructions.apply_to_request_http1x(&mut request);
        for (name, value) in request.headers() {
            headers.push((name.to_string(), value.to_str().unwrap().to_owned()));
        }
        let target = request.uri().path_and_query().unwrap().to_string();
        let body = match payload {
            Payload::Chunked(data, size) | Payload::ChunkedTrailer(data, size, _) => {
                let trailer = trailer_of(&payload);
                self.chunks(data, size, trailer, &signature, time)
            }
            _ => body,
        };
        Signed {
            method,
            target,
            headers,
            body,
        }
    }

    /// The aws-chunked body of `data` in chunks of `size`, each chunk signed (chained from
    /// `seed`), the final empty chunk too, then the trailer and its signature if any.
    fn chunks(
        &self,
        data: &[u8],
        size: usize,
        trailer: Option<(&str, &str)>,
        seed: &str,
        time: SystemTime,
    ) -> Bytes {
        let identity = self.identity();
        let params = v4::SigningParams::<()>::builder()
            .identity(&identity)
            .region("us-west-2")
            .name("s3")
            .time(time)
            .settings(())
            .build()
            .unwrap();
        let mut out = Vec::new();
        let mut previous = seed.to_owned();
        for chunk in data.chunks(size).chain([&[][..]]) {
            let bytes = Bytes::copy_from_slice(chunk);
            let signature = v4::sign_chunk(&bytes, &previous, &params)
                .unwrap()
                .into_parts()
                .1;
            out.extend_from_slice(
                format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
            );
            if !chunk.is_empty() {
                out.extend_from_slice(chunk);
                out.extend_from_slice(b"\r\n");
            }
            previous = signature;
        }
        if let Some((name, value)) = trailer {
            let mut headers = aws_smithy_runtime_api::http::Headers::new();
            headers.insert(name.to_owned(), value.to_owned());
            let signature = v4::sign_trailer(&headers, &previous, &params)
                .unwrap()
                .into_parts()
                .1;
            out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
            out.extend_from_slice(format!("x-amz-trailer-signature:{signature}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Bytes::from(out)
    }
}

fn trailer_of<'a>(payload: &Payload<'a>) -> Option<(&'a str, &'a str)> {
    match payload {
        Payload::ChunkedTrailer(_, _, trailer) => Some(*trailer),
        _ => None,
    }
}

/// The length of `len` bytes framed in signed chunks of `size` (see [`Tenant::chunks`]).
fn framed_len(len: usize, size: usize, trailer: Option<(&str, &str)>) -> usize {
    let signed = |n: usize| format!("{n:x}").len() + ";chunk-signature=".len() + 64 + 2;
    let mut total = 0;
    let mut left = len;
    while left > 0 {
        let n = left.min(size);
        total += signed(n) + n + 2;
        left -= n;
    }
    total += signed(0);
    if let Some((name, value)) = trailer {
        total += name.len() + 1 + value.len() + 2;
        total += "x-amz-trailer-signature:".len() + 64 + 2;
    }
    total + 2
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
