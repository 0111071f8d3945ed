//! CONNECT: decide what a tunnel request gets: interception (a leaf our CA mints for an S3
//! host), a plain tunnel to a host `--allow-connect` names, or a refusal.

use std::time::Duration;

use http::Request;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::ca::CertificateAuthority;
use crate::endpoint::AwsHost;
use crate::error::ProxyError;
use crate::names::host_matches;
use crate::policy::PolicyError;
use crate::route::{split_authority, RouteError};
use crate::upstream::UpstreamError;

/// What a CONNECT opens.
pub enum Tunnel {
    /// TLS terminated with a leaf for `host`; the requests inside go through the pipeline.
    Intercept {
        /// The CONNECT host (lowercase, without port).
        host: String,
        /// Serves the leaf.
        acceptor: TlsAcceptor,
    },
    /// Bytes copied both ways to an allowed host, uninspected.
    Plain(TcpStream),
}

/// The CONNECT settings.
pub struct ConnectPolicy {
    /// Whether general-purpose S3 hosts are intercepted too (`--general-purpose`).
    pub general_purpose: bool,
    /// Hosts CONNECT may tunnel to without interception (`*.suffix` allowed).
    pub allow: Vec<String>,
    /// Deadline for opening such a tunnel's upstream connection.
    pub connect_timeout: Duration,
}

impl ConnectPolicy {
    /// Decides, mints or dials what `request` (a CONNECT) asks for.
    pub async fn open<B>(
        &self,
        request: &Request<B>,
        ca: &CertificateAuthority,
    ) -> Result<Tunnel, ProxyError> {
        let (host, port) = connect_target(request)?;
        let intercept = match self.general_purpose {
            true => AwsHost::is_s3(&host),
            false => AwsHost::is_s3_express(&host),
        };
        if intercept {
            let config = ca
                .server_config_for(&host)
                .map_err(|e| ProxyError::Internal(format!("minting a leaf for {host}: {e}")))?;
            let acceptor = TlsAcceptor::from(config);
            return Ok(Tunnel::Intercept { host, acceptor });
        }
        if !self
            .allow
            .iter()
            .any(|pattern| host_matches(pattern, &host))
        {
            return Err(PolicyError::ConnectDenied(host).into());
        }
        let connect = TcpStream::connect((host.as_str(), port));
        let connected = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
        connected.map(Tunnel::Plain).map_err(|error| {
            let host = format!("{host}:{port}");
            UpstreamError::Connect {
                host,
                source: error.into(),
            }
            .into()
        })
    }
}

/// The CONNECT target as (lowercase host, brackets of an IPv6 literal removed, port), checked
/// as every host is (see `route::split_authority`). HTTP/1.0 CONNECTs without a Host header
/// carry the target in the request line, which is all we read.
fn connect_target<B>(request: &Request<B>) -> Result<(String, u16), RouteError> {
    let authority = request
        .uri()
        .authority()
        .ok_or(RouteError::BadConnectTarget)?;
    let (host, port) = split_authority(authority.as_str())?;
    let port = port.ok_or(RouteError::BadConnectTarget)?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str], host: &str) -> bool {
        patterns.iter().any(|p| host_matches(p, host))
    }

    #[test]
    fn allow_connect_patterns() {
        let patterns = ["sts.amazonaws.com", "*.example.com"];
        assert!(allowed(&patterns, "sts.amazonaws.com"));
        assert!(allowed(&patterns, "a.example.com"));
        assert!(!allowed(&patterns, "example.com"));
        assert!(!allowed(&patterns, "evil-example.com"));
        assert!(!allowed(&patterns, "sts.amazonaws.com.evil"));
    }

    #[test]
    fn connect_targets_need_a_port_and_a_plain_host() {
        let target = |uri: &str| {
            let request = Request::connect(uri).body(()).unwrap();
            connect_target(&request).ok()
        };
        assert_eq!(
            target("Example.COM.:443"),
            Some(("example.com".into(), 443))
        );
        assert_eq!(target("[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(target("example.com"), None);
        assert_eq!(target("a_b.example.com:443"), None);
    }
}
