//! Test helpers: a SigV4 signer separate from the emulator's verifier, and an h1/h2 HTTPS client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};

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

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One HTTPS connection to the emulator for one host name (used as SNI).
pub struct Client {
    sender: Sender,
    pub host: String,
    pub h2: bool,
    /// The region and service requests are signed for.
    pub region: String,
    pub service: String,
}

/// A TLS connection to `addr` that trusts only `ca_pem`, offering one ALPN protocol.
pub async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
    host: &str,
    alpn: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from(host.to_string()).map_err(std::io::Error::other)?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The region and SigV4 service a host name implies: the label before `amazonaws.com` when it
/// is a region, else `us-east-1` (the global `s3.amazonaws.com`).
pub fn scope_of(host: &str) -> (String, String) {
    let host = host.split(':').next().unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    let service = if labels.iter().any(|l| l.starts_with("s3express")) {
        "s3express"
    } else {
        "s3"
    };
    let region = labels
        .iter()
        .position(|l| *l == "amazonaws")
        .and_then(|i| i.checked_sub(1))
        .map(|i| labels[i])
        .filter(|l| l.matches('-').count() >= 2)
        .unwrap_or("us-east-1");
    (region.to_string(), service.to_string())
}

/// A response, body collected.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// Text of the first `<tag>` in the body.
    pub fn xml(&self, tag: &str) -> Option<String> {
        let t = self.text();
        let start = t.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = t[start..].find(&format!("</{tag}>"))? + start;
        Some(t[start..end].to_string())
    }
}

impl Client {
    pub async fn connect(emu: &s3x_emulator::Emulator, host: &str, h2: bool) -> Client {
        Client::connect_to(emu.addr(), &emu.ca_pem(), host, h2)
            .await
            .unwrap()
    }

    /// Connects to `addr` trusting only `ca_pem`, with `host` as SNI; signs for the region and
    /// service the host names (change `region` and `service` to sign otherwise).
    pub async fn connect_to(
        addr: SocketAddr,
        ca_pem: &str,
        host: &str,
        h2: bool,
    ) -> std::io::Result<Client> {
        let alpn: &[u8] = if h2 { b"h2" } else { b"http/1.1" };
        let tls = tls_connect(addr, ca_pem, host, alpn).await?;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        let io = TokioIo::new(tls);
        let sender = if h2 {
            let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Sender::H2(s)
        } else {
            let (s, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Sender::H1(s)
        };
        let (region, service) = scope_of(host);
        Ok(Client {
            sender,
            host: host.to_string(),
            h2,
            region,
            service,
        })
    }

    /// Sends `method` to the encoded `path?query` with the given headers (already signed, or not).
    pub async fn raw(
        &mut self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Resp {
        let uri = if self.h2 {
            format!("https://{}{path_and_query}", self.host)
        } else {
            path_and_query.to_string()
        };
        let mut b = http::Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        if !self.h2 {
            b = b.header("host", &self.host);
        }
        for (n, v) in headers {
            b = b.header(n.as_str(), v.as_str());
        }
        let req = b.body(Full::new(body)).unwrap();
        let resp = match &mut self.sender {
            Sender::H1(s) => s.send_request(req).await.unwrap(),
            Sender::H2(s) => s.send_request(req).await.unwrap(),
        };
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Signs and sends. `key` is the decoded key ("" for the bucket), `query` decoded pairs,
    /// `payload` the x-amz-content-sha256 value (None = the body's SHA-256).
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &mut self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        mut headers: Vec<(String, String)>,
        body: impl Into<Bytes>,
        creds: &Creds,
        payload: Option<&str>,
    ) -> Resp {
        let body = body.into();
        let path = format!("/{}", enc(key, true));
        let q = query_string(query);
        let hash = payload.map_or_else(|| sha256_hex(&body), str::to_string);
        let scope = (self.region.as_str(), self.service.as_str());
        sign_for(
            method,
            &self.host,
            &path,
            &q,
            &mut headers,
            &hash,
            creds,
            scope,
        );
        let target = if q.is_empty() {
            path
        } else {
            format!("{path}?{q}")
        };
        self.raw(method, &target, &headers, body).await
    }

    /// CreateSession with the IAM credentials; returns the session credentials.
    pub async fn create_session(&mut self, mode: Option<&str>) -> Result<Creds, Resp> {
        let headers = mode
            .map(|m| vec![("x-amz-create-session-mode".to_string(), m.to_string())])
            .unwrap_or_default();
        self.create_session_with(headers).await.map(|(c, _)| c)
    }

    /// CreateSession with extra headers; returns the session credentials and the answer.
    pub async fn create_session_with(
        &mut self,
        headers: Vec<(String, String)>,
    ) -> Result<(Creds, Resp), Resp> {
        let r = self
            .send(
                "GET",
                "",
                &[("session", "")],
                headers,
                Bytes::new(),
                &iam(),
                None,
            )
            .await;
        if r.status != StatusCode::OK {
            return Err(r);
        }
        let creds = Creds {
            access_key_id: r.xml("AccessKeyId").unwrap(),
            secret: r.xml("SecretAccessKey").unwrap(),
            session_token: Some(r.xml("SessionToken").unwrap()),
            security_token: None,
        };
        Ok((creds, r))
    }
}
