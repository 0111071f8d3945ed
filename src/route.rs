//! Route: which endpoint (rebuilt from validated parts), bucket and S3 operation a request is,
//! classified on exactly the path and query that will be signed and sent.

use http::request::Parts;

use crate::compat::{Bridge, Bridges};
use crate::endpoint::{zone_matches, AwsHost, BucketRegions, Endpoint, Flavor};
use crate::names::{BucketName, GeneralBucketName, NameError, Region, RegionResolver, ZoneId};
use crate::operation::{classify, classify_control, Operation, RequestShape};
use crate::uri::{path_and_query, Query};

/// Why a request could not be routed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A bucket or region name is not valid (400 InvalidBucketName / InvalidRequest).
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The target host is not an S3 host (403: we are not an open proxy).
    #[error("{0} is not an S3 host")]
    NotS3Host(String),
    /// General-purpose S3 is turned off (`--general-purpose false`).
    #[error("{0} is general-purpose S3, which this proxy is configured to refuse")]
    GeneralPurposeOff(String),
    /// No region is known for the bucket's zone (400).
    #[error("no region is known for zone {0}; pass --zone-region {0}=REGION or --region")]
    UnknownRegion(String),
    /// The request names no host at all (400).
    #[error("the request has no Host header")]
    MissingHost,
    /// A Host header, authority or CONNECT target that is not `host[:port]` (400).
    #[error("the host must be letters, digits, '.' and '-' (or a bracketed IPv6 address), with an optional numeric port")]
    BadHost,
    /// A CONNECT target without a port (400).
    #[error("the CONNECT target must be host:port")]
    BadConnectTarget,
    /// A request target that is neither a path nor empty: the asterisk form `*` (400).
    #[error("the request target must be a path starting with '/'")]
    BadTarget,
    /// Path-style on a Zonal host that names no bucket (400).
    #[error("a Zonal endpoint serves buckets: the path must start with /BUCKET")]
    NoBucketOnZonalHost,
    /// The query names the subresources of more than one operation (400).
    #[error(transparent)]
    MixedSubresources(#[from] crate::operation::MixedSubresources),
    /// The query names the `session` subresource on something other than CreateSession of a
    /// directory bucket (400).
    #[error("the session subresource is only valid on GET of a directory bucket (CreateSession)")]
    SessionSubresource,
}

/// Where a request came from: the client's address, and whether it arrived directly on a
/// listener (forward-proxy absolute form or endpoint mode) or inside an intercepted CONNECT
/// tunnel, whose target host is then the truth.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// The client's address.
    pub client: std::net::SocketAddr,
    /// The CONNECT target host (lowercase, without port) of the tunnel the request came through.
    pub tunnel: Option<std::sync::Arc<str>>,
    /// With `--access-file`: the client that opened the tunnel (its `Proxy-Authorization`).
    pub identity: Option<crate::identity::Principal>,
}

impl Arrival {
    /// A request straight on a listener.
    pub fn direct(client: std::net::SocketAddr) -> Self {
        Self {
            client,
            tunnel: None,
            identity: None,
        }
    }
}

/// What routing needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct RouteSettings {
    /// Zone → region: `--zone-region`, the built-in table, `--region`.
    pub regions: RegionResolver,
    /// Endpoint mode's FIPS / dual-stack choice (`--fips`, `--dualstack`).
    pub flavor: Flavor,
    /// Host names the proxy is reached by in endpoint mode: `BUCKET.NAME` is a virtual-hosted
    /// request for a general-purpose bucket (directory bucket labels are recognised anywhere).
    pub endpoint_hosts: Vec<String>,
    /// The region general-purpose requests go to when nothing else names one.
    pub general_region: Region,
    /// Whether general-purpose S3 is served (`--general-purpose`).
    pub general_purpose: bool,
}

/// The routing decision for one request.
#[derive(Clone, Debug)]
pub struct Route {
    /// The S3 operation.
    pub operation: Operation,
    /// Where it goes (and whose credentials and region sign it).
    pub endpoint: Endpoint,
    /// The directory bucket a session is needed for, if any.
    pub bucket: Option<BucketName>,
    /// The upstream path and query, in canonical form: exactly what is signed and sent.
    pub path_and_query: String,
    /// The client's query, decoded (presigned-URL parameters kept apart).
    pub query: Query,
    /// The legacy-tool bridges routing used (path-style on a Zonal host, a directory bucket
    /// on a general-purpose host).
    pub bridges: Bridges,
}

impl Route {
    /// This route, noting that `bridge` made it.
    fn bridged(mut self, bridge: Bridge) -> Route {
        self.bridges.add(bridge);
        self
    }

    /// The bucket name, of either kind, for logs and metrics.
    pub fn bucket_name(&self) -> Option<String> {
        match &self.endpoint {
            Endpoint::General { bucket, .. } => bucket.as_ref().map(|b| b.to_string()),
            _ => self.bucket.as_ref().map(|b| b.to_string()),
        }
    }
}

/// Routes a request head.
pub fn route(
    parts: &Parts,
    arrival: &Arrival,
    settings: &RouteSettings,
    learned: &BucketRegions,
) -> Result<Route, RouteError> {
    let (host, explicit) = target_host(parts, arrival)?;
    let query = Query::parse(parts.uri.query());
    crate::operation::subresource(&query)?;
    let path = parts.uri.path();
    // `*` names no resource; taken as a key it became `https://HOST%2A` upstream.
    if !path.is_empty() && !path.starts_with('/') {
        return Err(RouteError::BadTarget);
    }
    let route = match AwsHost::parse(&host) {
        Some(aws) => route_aws(parts, aws, path, query, settings)?,
        None if explicit
            || host.ends_with(".amazonaws.com")
            || host.ends_with(".amazonaws.com.cn") =>
        {
            return Err(RouteError::NotS3Host(host));
        }
        None => route_endpoint_mode(parts, &host, path, query, settings)?,
    };
    // CreateSession is answered locally only for a directory bucket; on a general-purpose
    // bucket it would be IAM-signed and sent, which §3.1 of the design forbids.
    let local_create_session =
        route.operation == Operation::CreateSession && route.endpoint.is_zonal();
    if route.query.names_session() && !local_create_session {
        return Err(RouteError::SessionSubresource);
    }
    // A general-purpose bucket's region, once S3 said it, beats the host's and the default.
    let mut route = route;
    let known = route.endpoint.general_bucket().and_then(|b| learned.get(b));
    if let Some(moved) = known.and_then(|region| route.endpoint.in_region(region)) {
        route.endpoint = moved;
    }
    if !settings.general_purpose && matches!(route.endpoint, Endpoint::General { .. }) {
        return Err(RouteError::GeneralPurposeOff(host));
    }
    Ok(route)
}

/// The host a request targets, validated, lowercased and without port, and whether the client
/// named it explicitly as a proxy target (absolute form or CONNECT) rather than as its endpoint.
fn target_host(parts: &Parts, arrival: &Arrival) -> Result<(String, bool), RouteError> {
    if let Some(host) = &arrival.tunnel {
        return Ok((host.to_string(), true));
    }
    if let Some(authority) = parts.uri.authority() {
        // Absolute form (HTTP/1.1 through HTTP_PROXY) or an h2 `:authority`.
        let (host, _) = split_authority(authority.as_str())?;
        let absolute = parts.uri.scheme().is_some() && parts.version < http::Version::HTTP_2;
        return Ok((host, absolute));
    }
    let header = parts
        .headers
        .get(http::header::HOST)
        .ok_or(RouteError::MissingHost)?;
    let (host, _) = split_authority(header.to_str().map_err(|_| RouteError::BadHost)?)?;
    Ok((host, false))
}

/// Splits and validates `host[:port]`: the host is letters, digits, `.` and `-`, or a bracketed
/// IPv6 literal; the port is digits. Returns the host lowercased, without a trailing dot.
pub fn split_authority(authority: &str) -> Result<(String, Option<u16>), RouteError> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']').ok_or(RouteError::BadHost)?;
            inside
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| RouteError::BadHost)?;
            // Only `:port` may follow the literal (`[::1]@evil` is not `[::1]`).
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(RouteError::BadHost)?),
            };
            (&authority[..inside.len() + 2], port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| RouteError::BadHost)?)
        }
        Some(_) => return Err(RouteError::BadHost),
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    let valid =
        host.starts_with('[') || (!host.is_empty() && host.len() <= 253 && host.bytes().all(plain));
    if !valid {
        return Err(RouteError::BadHost);
    }
    Ok((host.trim_end_matches('.').to_ascii_lowercase(), port))
}

/// A request to an AWS host: forward mode (absolute form or a tunnel).
fn route_aws(
    parts: &Parts,
    aws: AwsHost<'_>,
    path: &str,
    query: Query,
    settings: &RouteSettings,
) -> Result<Route, RouteError> {
    match aws {
        AwsHost::Zonal {
            bucket,
            zone,
            region,
            flavor,
        } => {
            let bucket = BucketName::parse(bucket)?;
            zone_matches(&bucket, zone)?;
            let host_region = Region::parse(region)?;
            directory(
                parts,
                bucket,
                path,
                query,
                Some(host_region),
                flavor,
                settings,
            )
        }
        AwsHost::ZonalPathStyle {
            zone,
            region,
            flavor,
        } => {
            // S3 Express serves Zonal hosts virtual-hosted only: `/BUCKET/KEY` goes to the
            // bucket's own virtual host, once the bucket is known to live in the host's zone.
            let (segment, rest) = first_segment(path);
            if segment.is_empty() {
                return Err(RouteError::NoBucketOnZonalHost);
            }
            let bucket = BucketName::parse(segment)?;
            zone_matches(&bucket, zone)?;
            let region = Some(Region::parse(region)?);
            let key_path = format!("/{rest}");
            let route = directory(parts, bucket, &key_path, query, region, flavor, settings)?;
            Ok(route.bridged(Bridge::PathStyle))
        }
        AwsHost::Control { region, flavor } => {
            let region = Region::parse(region)?;
            let (segment, _) = first_segment(path);
            let bucket = match segment {
                "" => None,
                name => Some(BucketName::parse(name)?),
            };
            let operation = classify_control(&parts.method, bucket.is_some(), &query);
            if let (Operation::GetBucketLocation, Some(bucket)) = (operation, bucket.clone()) {
                // botocore asks the control plane `GET /BUCKET?location`; it is answered from
                // the bucket's zone like the Zonal host's `GET /?location`.
                return directory(parts, bucket, "/", query, Some(region), flavor, settings);
            }
            let path = bucket.as_ref().map_or("/".to_owned(), |b| format!("/{b}"));
            Ok(Route {
                operation,
                endpoint: Endpoint::Control { region, flavor },
                bucket,
                path_and_query: path_and_query(&path, &query),
                query,
                bridges: Bridges::default(),
            })
        }
        AwsHost::General {
            bucket: Some(bucket),
            region,
            flavor,
        } if BucketName::looks_like_directory_bucket(bucket) => {
            // The `--x-s3` suffix is reserved for directory buckets: an old client with no
            // endpoint configured addresses one on a general-purpose host.
            let bucket = BucketName::parse(bucket)?;
            let region = Some(Region::parse(region)?);
            let route = directory(parts, bucket, path, query, region, flavor, settings)?;
            Ok(route.bridged(Bridge::GpHost))
        }
        AwsHost::General {
            bucket: Some(bucket),
            region,
            flavor,
        } => {
            let bucket = GeneralBucketName::parse(bucket)?;
            general(parts, bucket, path, query, Region::parse(region)?, flavor)
        }
        AwsHost::General {
            bucket: None,
            region,
            flavor,
        } => {
            let region = Region::parse(region)?;
            path_style(parts, path, query, Some(region), flavor, settings)
        }
    }
}

/// Endpoint mode: the request's Host is the proxy; the bucket is in the first label of a
/// virtual host, or in the first path segment.
fn route_endpoint_mode(
    parts: &Parts,
    host: &str,
    path: &str,
    query: Query,
    settings: &RouteSettings,
) -> Result<Route, RouteError> {
    let flavor = settings.flavor;
    let (label, base) = host.split_once('.').unwrap_or((host, ""));
    if BucketName::looks_like_directory_bucket(label) {
        let bucket = BucketName::parse(label)?;
        return directory(parts, bucket, path, query, None, flavor, settings);
    }
    if !base.is_empty() && settings.endpoint_hosts.iter().any(|h| h == base) {
        let bucket = GeneralBucketName::parse(label)?;
        return general(
            parts,
            bucket,
            path,
            query,
            settings.general_region.clone(),
            flavor,
        );
    }
    path_style(parts, path, query, None, flavor, settings)
}

/// Path-style: `/BUCKET/KEY` on the proxy or on a general-purpose regional host; `/` alone is
/// the control plane's ListDirectoryBuckets (endpoint mode) or ListBuckets (an S3 host).
fn path_style(
    parts: &Parts,
    path: &str,
    query: Query,
    host_region: Option<Region>,
    flavor: Flavor,
    settings: &RouteSettings,
) -> Result<Route, RouteError> {
    let (segment, rest) = first_segment(path);
    if segment.is_empty() {
        return match host_region {
            Some(region) => {
                let operation = classify(&shape(parts, false, &query));
                let endpoint = Endpoint::General {
                    bucket: None,
                    region,
                    flavor,
                };
                Ok(root_route(operation, endpoint, query))
            }
            None => control_root(parts, query, settings),
        };
    }
    if BucketName::looks_like_directory_bucket(segment) {
        let bucket = BucketName::parse(segment)?;
        // `/BUCKET//KEY` (the JS SDK v3 with an IP endpoint) is `/BUCKET/KEY`: a directory
        // bucket's namespace is hierarchical and has no empty directory names.
        let key = rest
            .strip_prefix('/')
            .filter(|_| host_region.is_none())
            .unwrap_or(rest);
        let key_path = format!("/{key}");
        let on_general_host = host_region.is_some();
        let route = directory(
            parts,
            bucket,
            &key_path,
            query,
            host_region,
            flavor,
            settings,
        )?;
        return Ok(match on_general_host {
            true => route.bridged(Bridge::GpHost),
            false => route,
        });
    }
    let bucket = GeneralBucketName::parse(segment)?;
    let region = host_region.unwrap_or_else(|| settings.general_region.clone());
    general(parts, bucket, &format!("/{rest}"), query, region, flavor)
}

/// A directory bucket: its Zonal endpoint, or the control plane for control-plane operations.
fn directory(
    parts: &Parts,
    bucket: BucketName,
    key_path: &str,
    query: Query,
    host_region: Option<Region>,
    flavor: Flavor,
    settings: &RouteSettings,
) -> Result<Route, RouteError> {
    let zone = bucket.zone();
    let region = zone_region(&settings.regions, &zone, host_region)?;
    let operation = classify(&shape(parts, key_path.len() > 1, &query));
    let (endpoint, path) = if operation.is_control_plane() {
        (Endpoint::Control { region, flavor }, format!("/{bucket}"))
    } else {
        let endpoint = Endpoint::Zonal {
            bucket: bucket.clone(),
            region,
            flavor,
        };
        (endpoint, key_path.to_owned())
    };
    Ok(Route {
        operation,
        endpoint,
        bucket: Some(bucket),
        path_and_query: path_and_query(&path, &query),
        query,
        bridges: Bridges::default(),
    })
}

/// The zone decides the region: `--zone-region`, the built-in table, then the region the
/// client's host named (forward mode), then `--region`.
fn zone_region(
    regions: &RegionResolver,
    zone: &ZoneId,
    host_region: Option<Region>,
) -> Result<Region, RouteError> {
    regions
        .known_region(zone)
        .or(host_region)
        .or_else(|| regions.fallback().cloned())
        .ok_or_else(|| RouteError::UnknownRegion(zone.to_string()))
}

/// A general-purpose bucket request, `key_path` relative to the bucket.
fn general(
    parts: &Parts,
    bucket: GeneralBucketName,
    key_path: &str,
    query: Query,
    region: Region,
    flavor: Flavor,
) -> Result<Route, RouteError> {
    let operation = classify(&shape(parts, key_path.len() > 1, &query));
    let endpoint = Endpoint::General {
        bucket: Some(bucket),
        region,
        flavor,
    };
    let path = match endpoint.path_prefix() {
        Some(prefix) => format!("{prefix}{key_path}"),
        None => key_path.to_owned(),
    };
    Ok(Route {
        operation,
        endpoint,
        bucket: None,
        path_and_query: path_and_query(&path, &query),
        query,
        bridges: Bridges::default(),
    })
}

fn control_root(
    parts: &Parts,
    query: Query,
    settings: &RouteSettings,
) -> Result<Route, RouteError> {
    let region = settings.regions.fallback().cloned().ok_or_else(|| {
        RouteError::UnknownRegion("(none: ListDirectoryBuckets needs --region)".into())
    })?;
    let operation = classify_control(&parts.method, false, &query);
    let endpoint = Endpoint::Control {
        region,
        flavor: settings.flavor,
    };
    Ok(root_route(operation, endpoint, query))
}

fn root_route(operation: Operation, endpoint: Endpoint, query: Query) -> Route {
    Route {
        operation,
        endpoint,
        bucket: None,
        path_and_query: path_and_query("/", &query),
        query,
        bridges: Bridges::default(),
    }
}

fn shape<'a>(parts: &'a Parts, has_key: bool, query: &'a Query) -> RequestShape<'a> {
    RequestShape {
        method: &parts.method,
        has_key,
        query,
        headers: &parts.headers,
    }
}

/// The first path segment and the rest after its slash (`/b/k/x` → `b`, `k/x`).
fn first_segment(path: &str) -> (&str, &str) {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
