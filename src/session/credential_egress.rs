//! Credential egress: the HTTP client of the AWS credential chain. IMDS, the container
//! credential endpoints (ECS, EKS Pod Identity) and the host of
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` are always reached directly, whatever `HTTP_PROXY`,
//! `HTTPS_PROXY` or `--upstream-proxy` say: those requests are plain HTTP and carry the
//! container's authorization token, and their answers are the proxy's IAM keys. Everything else
//! the chain calls (STS, SSO) goes out as aws-config's own default client sends it, through the
//! proxy the environment names (DESIGN §3.2, "Credential endpoints never go through the egress
//! proxy").

use std::net::IpAddr;
use std::sync::Arc;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

/// IMDS (IPv4 and IPv6) and the container credential endpoints (ECS; EKS Pod Identity, IPv4
/// and IPv6).
pub const CREDENTIAL_ENDPOINTS: &[&str] = &[
    "169.254.169.254",
    "fd00:ec2::254",
    "169.254.170.2",
    "169.254.170.23",
    "fd00:ec2::23",
];

/// A host the chain reaches directly.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    fn parse(host: &str) -> Host {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(bare.trim_end_matches('.').to_ascii_lowercase()),
        }
    }
}

/// The credential chain's HTTP client: two clients built as aws-config builds its default one
/// (rustls with aws-lc), one with proxying off for the credential endpoints, one with
/// `ProxyConfig::from_env` for the rest, and a connector that picks by the request's host.
#[derive(Clone, Debug)]
pub struct CredentialsHttpClient {
    direct: SharedHttpClient,
    proxied: SharedHttpClient,
    hosts: Arc<[Host]>,
}

impl CredentialsHttpClient {
    /// A client that reaches [`CREDENTIAL_ENDPOINTS`] and `extra_hosts` (the hosts of
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` and of an IMDS endpoint override) directly.
    pub fn new<S: AsRef<str>>(extra_hosts: impl IntoIterator<Item = S>) -> Self {
        let hosts = CREDENTIAL_ENDPOINTS
            .iter()
            .map(|h| Host::parse(h))
            .chain(extra_hosts.into_iter().map(|h| Host::parse(h.as_ref())))
            .collect();
        Self {
            direct: client(ProxyConfig::disabled),
            proxied: client(ProxyConfig::from_env),
            hosts,
        }
    }

    /// Whether a request to `uri` goes directly (never through a proxy).
    pub fn goes_direct(&self, uri: &str) -> bool {
        goes_direct(&self.hosts, uri)
    }
}

fn goes_direct(hosts: &[Host], uri: &str) -> bool {
    let Some(host) = uri
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(Host::parse))
    else {
        return false;
    };
    hosts.contains(&host)
}

/// An HTTPS client as aws-smithy-runtime's default (rustls, aws-lc), with `proxy` as its proxy
/// configuration; it caches a connector per connect and read timeout.
fn client(proxy: fn() -> ProxyConfig) -> SharedHttpClient {
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = Connector::builder().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(proxy()));
        builder.build()
    })
}

impl HttpClient for CredentialsHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ByHost {
            direct: self.direct.http_connector(settings, components),
            proxied: self.proxied.http_connector(settings, components),
            hosts: self.hosts.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.proxied.validate_base_client_config(components, cfg)
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.proxied.validate_final_config(components, cfg)
    }
}

/// Sends each request through the direct or the proxied connector, by its host.
#[derive(Debug)]
struct ByHost {
    direct: SharedHttpConnector,
    proxied: SharedHttpConnector,
    hosts: Arc<[Host]>,
}

impl HttpConnector for ByHost {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        match goes_direct(&self.hosts, request.uri()) {
            true => self.direct.call(request),
            false => self.proxied.call(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_endpoints_and_the_full_uri_host_go_direct_and_nothing_else() {
        let client = CredentialsHttpClient::new(["127.0.0.1", "creds.internal.example."]);
        for uri in [
            "http://169.254.169.254/latest/api/token",
            "http://[fd00:ec2::254]/latest/meta-data/iam/security-credentials/",
            "http://169.254.170.2/v2/credentials/abc",
            "http://169.254.170.23/v1/credentials",
            "http://[FD00:EC2::23]/v1/credentials",
            "http://127.0.0.1:8123/creds",
            "https://CREDS.internal.example/creds",
        ] {
            assert!(client.goes_direct(uri), "{uri}");
        }
        for uri in [
            "https://sts.us-east-1.amazonaws.com/",
            "https://portal.sso.eu-west-1.amazonaws.com/federation/credentials",
            "http://169.254.169.253/",
            "http://127.0.0.2/",
            "http://evil.creds.internal.example/",
            "not a uri",
        ] {
            assert!(!client.goes_direct(uri), "{uri}");
        }
    }
}
