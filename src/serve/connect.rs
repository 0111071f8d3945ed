//! CONNECT: decide what a tunnel request gets: interception (a leaf our CA mints for an S3
//! host), a plain tunnel to a host `--allow-connect` names, or a refusal.

use std::time::Duration;

use http::Request;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::error::ProxyError;
use crate::policy::PolicyError;
use crate::route::endpoint::AwsHost;
use crate::route::names::host_matches;
use crate::route::{split_authority, RouteError};
use crate::serve::ca::CertificateAuthority;
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

/// One `--allow-connect` entry: `HOST`, `*.SUFFIX` or an IP address, with `:PORT` or `:*`
/// (443 when no port is given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    /// The host pattern (lowercase).
    pub host: String,
    /// The port, or `None` for any.
    pub port: Option<u16>,
}

impl AllowRule {
    /// Parses `HOST[:PORT|:*]`.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim().to_ascii_lowercase();
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, "*")) if !host.ends_with(':') => (host.to_owned(), None),
            Some((host, port)) if !host.ends_with(':') && !host.is_empty() => {
                let port = port.parse().map_err(|_| format!("{entry:?}: bad port"))?;
                (host.to_owned(), Some(port))
            }
            _ => (entry.clone(), Some(443)),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let plain = host.strip_prefix("*.").unwrap_or(&host);
        let valid = !plain.is_empty()
            && (plain.parse::<std::net::IpAddr>().is_ok()
                || plain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        if !valid {
            return Err(format!(
                "{entry:?}: expected HOST, *.SUFFIX or an IP, with :PORT or :*"
            ));
        }
        Ok(Self { host, port })
    }

    fn allows(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && host_matches(&self.host, host)
    }
}

/// The CONNECT settings.
pub struct ConnectPolicy {
    /// Whether general-purpose S3 hosts are intercepted too (`--general-purpose`).
    pub general_purpose: bool,
    /// What CONNECT may tunnel to without interception.
    pub allow: Vec<AllowRule>,
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
        if !self.allow.iter().any(|rule| rule.allows(&host, port)) {
            return Err(PolicyError::ConnectDenied(format!("{host}:{port}")).into());
        }
        let connect = dial_allowed(&host, port);
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

/// Connects to an allowed host. A name must not resolve to this machine or the link-local
/// range (the instance metadata service): a DNS answer cannot turn an allowed name into a
/// tunnel to 127.0.0.1 or 169.254.169.254. An address the operator named is dialed as named.
async fn dial_allowed(host: &str, port: u16) -> std::io::Result<TcpStream> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return TcpStream::connect((ip, port)).await;
    }
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses");
    for addr in tokio::net::lookup_host((host, port)).await? {
        if !is_public(addr.ip()) {
            last = std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{host} resolves to {}, which a tunnel may not reach",
                    addr.ip()
                ),
            );
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// False for loopback, link-local, unspecified, multicast and broadcast addresses (private
/// ranges stay reachable: VPC endpoints for STS live there).
fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        std::net::IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            let mapped = v6.to_ipv4_mapped().is_some_and(|v4| !is_public(v4.into()));
            !(v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || link_local || mapped)
        }
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

    fn allowed(patterns: &[&str], host: &str, port: u16) -> bool {
        patterns
            .iter()
            .map(|p| AllowRule::parse(p).unwrap())
            .any(|rule| rule.allows(host, port))
    }

    #[test]
    fn allow_connect_patterns_name_hosts_and_ports() {
        let patterns = ["sts.amazonaws.com", "*.example.com:8443", "10.0.0.5:*"];
        assert!(allowed(&patterns, "sts.amazonaws.com", 443));
        assert!(
            !allowed(&patterns, "sts.amazonaws.com", 22),
            "443 unless a port is named"
        );
        assert!(allowed(&patterns, "a.example.com", 8443));
        assert!(!allowed(&patterns, "a.example.com", 443));
        assert!(!allowed(&patterns, "example.com", 8443));
        assert!(!allowed(&patterns, "evil-example.com", 8443));
        assert!(!allowed(&patterns, "sts.amazonaws.com.evil", 443));
        assert!(allowed(&patterns, "10.0.0.5", 6379));
        for bad in ["sts.*.amazonaws.com", "host:port", "a b", ""] {
            assert!(AllowRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_never_tunnel_to_this_machine_or_the_metadata_service() {
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.5", "52.94.0.1", "2600:1f14::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_not_dialed() {
        let error = dial_allowed("localhost", 9).await.unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::PermissionDenied,
            "{error}"
        );
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
