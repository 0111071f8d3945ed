//! Egress settings: the egress proxy's URL (`--upstream-proxy`, `HTTPS_PROXY`) and `NO_PROXY`,
//! parsed once at start-up, and which hosts go through the proxy. `egress` dials.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use percent_encoding::percent_decode_str;

use crate::logging::redact::REDACTED;

/// An egress proxy, parsed from `http://[USER[:PASS]@]HOST[:PORT]` (`https://` for TLS to the
/// proxy). `Debug` and `Display` redact the userinfo.
#[derive(Clone, PartialEq, Eq)]
pub struct EgressProxy {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Basic base64(user:pass)`, from the percent-decoded userinfo.
    pub(crate) authorization: Option<String>,
}

impl EgressProxy {
    /// Parses a proxy URL. A URL without a scheme is `http://`; the port defaults to 80 (443 for
    /// `https://`). The error never contains the URL, which may carry a password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let (tls, rest) = match url.split_once("://") {
            None => (false, url),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (false, rest),
                "https" => (true, rest),
                s if s.len() <= 10 && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    return Err(format!(
                        "{s}:// egress proxies are not supported; use an http:// or https:// proxy"
                    ))
                }
                _ => return Err("the URL's scheme is not http:// or https://".into()),
            },
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let (host, port) = split_host_port(host_port)?;
        let default_port = if tls { 443 } else { 80 };
        Ok(Self {
            tls,
            host,
            port: port.unwrap_or(default_port),
            authorization: userinfo.filter(|u| !u.is_empty()).map(basic_authorization),
        })
    }

    /// True when the proxy carries credentials (sent as `Proxy-Authorization: Basic`).
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    /// True when the proxy is `addr`, a listener of this machine: the same port on a loopback
    /// address or `localhost`, or on `addr`'s own address. (`eval "$(s3x-proxy env)"` in the
    /// shell that then starts the proxy would make it its own egress proxy.)
    pub fn is_listener(&self, addr: SocketAddr) -> bool {
        if addr.port() == 0 || addr.port() != self.port {
            return false;
        }
        match self.host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip.is_unspecified() || ip == addr.ip(),
            Err(_) => self.host == "localhost" || self.host.ends_with(".localhost"),
        }
    }
}

/// `HOST[:PORT]` or `[IPV6][:PORT]`, the host lowercase and checked.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("the URL's IPv6 address has no closing ']'")?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| "the URL's IPv6 address is not valid")?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("junk after the URL's IPv6 address")?,
            ),
        };
        (v6.to_owned(), port)
    } else {
        match s.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (s.to_owned(), None),
        }
    };
    let named = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_';
    if host.is_empty() || !(host.contains(':') || host.bytes().all(named)) {
        return Err("the URL has no valid host".into());
    }
    let port = port
        .map(|p| p.parse::<u16>().ok().filter(|p| *p != 0))
        .map(|p| p.ok_or("the URL's port is not a number from 1 to 65535"))
        .transpose()?;
    Ok((host.to_ascii_lowercase(), port))
}

fn basic_authorization(userinfo: &str) -> String {
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut plain: Vec<u8> = percent_decode_str(user).collect();
    plain.push(b':');
    plain.extend(percent_decode_str(pass));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(plain)
    )
}

impl fmt::Display for EgressProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        let auth = if self.has_credentials() {
            format!("{REDACTED}@")
        } else {
            String::new()
        };
        match self.host.contains(':') {
            true => write!(f, "{scheme}://{auth}[{}]:{}", self.host, self.port),
            false => write!(f, "{scheme}://{auth}{}:{}", self.host, self.port),
        }
    }
}

impl fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EgressProxy")
            .field(&format_args!("{self}"))
            .finish()
    }
}

/// A URL as text, its userinfo (`user:pass@`) replaced by `[redacted]`, for `Debug` of
/// unparsed flag values.
pub fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}{REDACTED}{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// `NO_PROXY`: the hosts that bypass the egress proxy. Entries are separated by commas or
/// whitespace: `*` (everything), a domain (`example.com`, `.example.com` and `*.example.com`
/// all match the domain and its subdomains), an IP address or a CIDR block (matching hosts
/// written as addresses), each with an optional `:PORT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy(Vec<NoProxyRule>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct NoProxyRule {
    pattern: Pattern,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    All,
    Domain(String),
    Net(IpAddr, u8),
}

impl NoProxy {
    /// Parses a `NO_PROXY` list; entries that are none of the above are ignored.
    pub fn parse(list: &str) -> Self {
        Self(
            list.split(|c: char| c == ',' || c.is_whitespace())
                .filter_map(NoProxyRule::parse)
                .collect(),
        )
    }

    /// How many entries were understood.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `host:port` bypasses the egress proxy.
    pub fn covers(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = host.parse::<IpAddr>().ok();
        self.0.iter().any(|rule| {
            rule.port.is_none_or(|p| p == port)
                && match &rule.pattern {
                    Pattern::All => true,
                    Pattern::Domain(d) => {
                        host == d
                            || host
                                .strip_suffix(d.as_str())
                                .is_some_and(|h| h.ends_with('.'))
                    }
                    Pattern::Net(net, bits) => ip.is_some_and(|ip| in_network(ip, *net, *bits)),
                }
        })
    }
}

impl NoProxyRule {
    fn parse(entry: &str) -> Option<Self> {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            return None;
        }
        if entry == "*" {
            let (pattern, port) = (Pattern::All, None);
            return Some(Self { pattern, port });
        }
        if let Some(rule) = Self::network(&entry) {
            return Some(rule);
        }
        let (name, port) = match entry.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().ok()?)),
            None => (entry.as_str(), None),
        };
        let name = name
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.');
        if name.is_empty() || name.contains(['*', '/', '[', ']']) {
            return None;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            let bits = max_bits(ip);
            let pattern = Pattern::Net(ip, bits);
            return Some(Self { pattern, port });
        }
        let pattern = Pattern::Domain(name.to_owned());
        Some(Self { pattern, port })
    }

    /// `IP`, `IP/BITS`, `[IPV6]` or `[IPV6]:PORT` (a bare IPv6 address has no port).
    fn network(entry: &str) -> Option<Self> {
        let (addr, port) = match entry.strip_prefix('[') {
            Some(rest) => {
                let (v6, after) = rest.split_once(']')?;
                let port = match after {
                    "" => None,
                    p => Some(p.strip_prefix(':')?.parse::<u16>().ok()?),
                };
                (v6, port)
            }
            None => (entry, None),
        };
        let (ip, bits) = match addr.split_once('/') {
            Some((ip, bits)) => (ip.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?)),
            None => (addr.parse::<IpAddr>().ok()?, None),
        };
        let bits = bits.unwrap_or(max_bits(ip));
        (bits <= max_bits(ip)).then_some(Self {
            pattern: Pattern::Net(ip, bits),
            port,
        })
    }
}

fn max_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= 128 || (ip >> shift) == (net >> shift)
}

/// Where upstream connections go: an egress proxy, except for the hosts `NO_PROXY` covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Egress {
    /// The egress proxy.
    pub proxy: EgressProxy,
    /// Hosts that bypass it.
    pub no_proxy: NoProxy,
    /// Where the proxy came from (`--upstream-proxy`, `HTTPS_PROXY`, `https_proxy`), for the
    /// start-up log line.
    pub source: &'static str,
}

impl Egress {
    /// The egress proxy for `host:port`, unless `NO_PROXY` covers it.
    pub fn proxy_for(&self, host: &str, port: u16) -> Option<&EgressProxy> {
        (!self.no_proxy.covers(host, port)).then_some(&self.proxy)
    }
}

#[cfg(test)]
#[path = "egress_proxy_tests.rs"]
mod tests;
