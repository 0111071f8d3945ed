//! An h1/h2 HTTPS client for the emulator that trusts only its CA and signs with the test signer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::support::{enc, iam, query_string, sha256_hex, sign_for, Creds};

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
fn scope_of(host: &str) -> (String, String) {
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
        self.try_raw(method, path_and_query, headers, body)
            .await
            .unwrap()
    }

    /// [`Client::raw`], with what was received before a failure: the status and headers, and
    /// the body bytes that arrived, or the error.
    pub async fn try_raw(
        &mut self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Resp, (Option<Resp>, String)> {
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
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
        }
        .map_err(|e| (None, e.to_string()))?;
        let (parts, mut body) = resp.into_parts();
        let mut got = Vec::new();
        let mut failure = None;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => got.extend_from_slice(f.data_ref().map_or(&[][..], |d| &d[..])),
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let resp = Resp {
            status: parts.status,
            headers: parts.headers,
            body: got.into(),
        };
        match failure {
            None => Ok(resp),
            Some(e) => Err((Some(resp), e)),
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
