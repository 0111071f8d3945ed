//! Route: which endpoint (rebuilt from validated parts), bucket and S3 operation a request is,
//! classified on exactly the path and query that will be signed and sent.

pub(crate) mod compat;
pub mod endpoint;
pub mod names;
pub mod operation;
pub mod uri;

use http::request::Parts;

use crate::route::compat::{Bridge, Bridges};
use crate::route::endpoint::{zone_matches, AwsHost, BucketRegions, Endpoint, Flavor};
use crate::route::names::{
    BucketName, GeneralBucketName, NameError, Region, RegionResolver, ZoneId,
};
use crate::route::operation::{classify, subresource, Operation, RequestShape, Resource};
use crate::route::uri::{path_and_query, Query};

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
    MixedSubresources(#[from] crate::route::operation::MixedSubresources),
    /// The query names the `session` subresource on something other than CreateSession of a
    /// directory bucket (400).
    #[error("the session subresource is only valid on GET of a directory bucket (CreateSession)")]
    SessionSubresource,
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
    /// The bucket name, of either kind, for logs and metrics.
    pub fn bucket_name(&self) -> Option<String> {
        match &self.endpoint {
            Endpoint::General { bucket, .. } => bucket.as_ref().map(|b| b.to_string()),
            _ => self.bucket.as_ref().map(|b| b.to_string()),
        }
    }
}

/// Routes a request head, in one pass: the host and the query are read once, the addressing
/// (virtual host, path-style, control plane, a bridge) decides what the path names, and the
/// operation is classified once from that. `tunnel` is the CONNECT target host (lowercase,
/// without port) of the tunnel the request came through, if any: then it is the truth.
pub fn route(
    parts: &Parts,
    tunnel: Option<&str>,
    settings: &RouteSettings,
    learned: &BucketRegions,
) -> Result<Route, RouteError> {
    let (host, explicit) = target_host(parts, tunnel)?;
    let query = Query::parse(parts.uri.query());
    let subresource = subresource(&query)?;
    let path = parts.uri.path();
    // `*` names no resource; taken as a key it became `https://HOST%2A` upstream.
    if !path.is_empty() && !path.starts_with('/') {
        return Err(RouteError::BadTarget);
    }
    let target = match AwsHost::parse(&host) {
        Some(aws) => address_aws(aws, path, settings)?,
        None if explicit
            || host.ends_with(".amazonaws.com")
            || host.ends_with(".amazonaws.com.cn") =>
        {
            return Err(RouteError::NotS3Host(host));
        }
        None => address_endpoint_mode(&host, path, settings)?,
    };
    let operation = classify(&RequestShape {
        method: &parts.method,
        resource: target.resource(),
        query: &query,
        subresource,
        headers: &parts.headers,
    });
    let mut route = target.into_route(operation, query, &settings.regions)?;
    // CreateSession is answered locally only for a directory bucket; on a general-purpose
    // bucket it would be IAM-signed and sent, which §3.1 of the design forbids.
    let local_create_session =
        route.operation == Operation::CreateSession && route.endpoint.is_zonal();
    if route.query.names_session() && !local_create_session {
        return Err(RouteError::SessionSubresource);
    }
    // A general-purpose bucket's region, once S3 said it, beats the host's and the default.
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
fn target_host(parts: &Parts, tunnel: Option<&str>) -> Result<(String, bool), RouteError> {
    if let Some(host) = tunnel {
        return Ok((host.to_owned(), true));
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

/// Where a request's host and path point, before its operation is known.
enum Target<'a> {
    /// A directory bucket.
    Directory(Directory<'a>),
    /// A general-purpose bucket, `key_path` relative to it.
    General {
        bucket: GeneralBucketName,
        key_path: &'a str,
        region: Region,
        flavor: Flavor,
    },
    /// A general-purpose regional host's root `/` (ListBuckets).
    GeneralRoot { region: Region, flavor: Flavor },
    /// The control-plane host's `/` or `/BUCKET`, or endpoint mode's `/`.
    Control {
        bucket: Option<BucketName>,
        region: Region,
        flavor: Flavor,
    },
}

impl Target<'_> {
    /// What the path names, for classification.
    fn resource(&self) -> Resource {
        let named = |key_path: &str| match key_path.len() > 1 {
            true => Resource::Object,
            false => Resource::Bucket,
        };
        match self {
            Target::Directory(directory) => named(directory.key_path),
            Target::General { key_path, .. } => named(key_path),
            Target::GeneralRoot { .. } => Resource::Bucket,
            Target::Control {
                bucket: Some(_), ..
            } => Resource::ControlBucket,
            Target::Control { bucket: None, .. } => Resource::ControlRoot,
        }
    }

    /// The route, once the operation is known.
    fn into_route(
        self,
        operation: Operation,
        query: Query,
        regions: &RegionResolver,
    ) -> Result<Route, RouteError> {
        let (endpoint, bucket, path) = match self {
            Target::Directory(directory) => return directory.into_route(operation, query, regions),
            Target::Control {
                bucket: Some(bucket),
                region,
                flavor,
            } if operation == Operation::GetBucketLocation => {
                // botocore asks the control plane `GET /BUCKET?location`; it is answered from
                // the bucket's zone like the Zonal host's `GET /?location`.
                let directory = Directory::new(bucket, "/", Some(region), flavor);
                return directory.into_route(operation, query, regions);
            }
            Target::Control {
                bucket,
                region,
                flavor,
            } => {
                let path = bucket.as_ref().map_or("/".to_owned(), |b| format!("/{b}"));
                (Endpoint::Control { region, flavor }, bucket, path)
            }
            Target::General {
                bucket,
                key_path,
                region,
                flavor,
            } => {
                let endpoint = Endpoint::General {
                    bucket: Some(bucket),
                    region,
                    flavor,
                };
                let path = match endpoint.path_prefix() {
                    Some(prefix) => format!("{prefix}{key_path}"),
                    None => key_path.to_owned(),
                };
                (endpoint, None, path)
            }
            Target::GeneralRoot { region, flavor } => {
                let endpoint = Endpoint::General {
                    bucket: None,
                    region,
                    flavor,
                };
                (endpoint, None, "/".to_owned())
            }
        };
        Ok(Route {
            operation,
            endpoint,
            bucket,
            path_and_query: path_and_query(&path, &query),
            query,
            bridges: Bridges::default(),
        })
    }
}

/// A directory bucket as addressed: the key path in it (`/` for the bucket itself), the region
/// the client's host named (forward mode), and the bridges the addressing took.
struct Directory<'a> {
    bucket: BucketName,
    key_path: &'a str,
    host_region: Option<Region>,
    flavor: Flavor,
    bridges: Bridges,
}

impl<'a> Directory<'a> {
    fn new(
        bucket: BucketName,
        key_path: &'a str,
        host_region: Option<Region>,
        flavor: Flavor,
    ) -> Self {
        Self {
            bucket,
            key_path,
            host_region,
            flavor,
            bridges: Bridges::default(),
        }
    }

    /// This addressing, noting that `bridge` made it.
    fn bridged(mut self, bridge: Bridge) -> Self {
        self.bridges.add(bridge);
        self
    }

    /// Its Zonal endpoint, or the control plane for control-plane operations; the zone decides
    /// the region.
    fn into_route(
        self,
        operation: Operation,
        query: Query,
        regions: &RegionResolver,
    ) -> Result<Route, RouteError> {
        let Directory {
            bucket,
            key_path,
            host_region,
            flavor,
            bridges,
        } = self;
        let region = zone_region(regions, &bucket.zone(), host_region)?;
        let (endpoint, path_and_query) = if operation.is_control_plane() {
            let path = format!("/{bucket}");
            let endpoint = Endpoint::Control { region, flavor };
            (endpoint, path_and_query(&path, &query))
        } else {
            let endpoint = Endpoint::Zonal {
                bucket: bucket.clone(),
                region,
                flavor,
            };
            (endpoint, path_and_query(key_path, &query))
        };
        Ok(Route {
            operation,
            endpoint,
            bucket: Some(bucket),
            path_and_query,
            query,
            bridges,
        })
    }
}

/// A request to an AWS host: forward mode (absolute form or a tunnel).
fn address_aws<'a>(
    aws: AwsHost<'_>,
    path: &'a str,
    settings: &RouteSettings,
) -> Result<Target<'a>, RouteError> {
    let directory = match aws {
        AwsHost::Zonal {
            bucket,
            zone,
            region,
            flavor,
        } => {
            let bucket = BucketName::parse(bucket)?;
            zone_matches(&bucket, zone)?;
            let host_region = Region::parse(region)?;
            Directory::new(bucket, path, Some(host_region), flavor)
        }
        AwsHost::ZonalPathStyle {
            zone,
            region,
            flavor,
        } => {
            // S3 Express serves Zonal hosts virtual-hosted only: `/BUCKET/KEY` goes to the
            // bucket's own virtual host, once the bucket is known to live in the host's zone.
            let (segment, key_path) = split_bucket(path);
            if segment.is_empty() {
                return Err(RouteError::NoBucketOnZonalHost);
            }
            let bucket = BucketName::parse(segment)?;
            zone_matches(&bucket, zone)?;
            let region = Some(Region::parse(region)?);
            Directory::new(bucket, key_path, region, flavor).bridged(Bridge::PathStyle)
        }
        AwsHost::Control { region, flavor } => {
            let region = Region::parse(region)?;
            let bucket = match split_bucket(path).0 {
                "" => None,
                name => Some(BucketName::parse(name)?),
            };
            return Ok(Target::Control {
                bucket,
                region,
                flavor,
            });
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
            Directory::new(bucket, path, region, flavor).bridged(Bridge::GpHost)
        }
        AwsHost::General {
            bucket: Some(bucket),
            region,
            flavor,
        } => {
            let bucket = GeneralBucketName::parse(bucket)?;
            return Ok(Target::General {
                bucket,
                key_path: path,
                region: Region::parse(region)?,
                flavor,
            });
        }
        AwsHost::General {
            bucket: None,
            region,
            flavor,
        } => {
            let region = Region::parse(region)?;
            return path_style(path, Some(region), flavor, settings);
        }
    };
    Ok(Target::Directory(directory))
}

/// Endpoint mode: the request's Host is the proxy; the bucket is in the first label of a
/// virtual host, or in the first path segment.
fn address_endpoint_mode<'a>(
    host: &str,
    path: &'a str,
    settings: &RouteSettings,
) -> Result<Target<'a>, RouteError> {
    let flavor = settings.flavor;
    let (label, base) = host.split_once('.').unwrap_or((host, ""));
    if BucketName::looks_like_directory_bucket(label) {
        let bucket = BucketName::parse(label)?;
        return Ok(Target::Directory(Directory::new(
            bucket, path, None, flavor,
        )));
    }
    if !base.is_empty() && settings.endpoint_hosts.iter().any(|h| h == base) {
        let bucket = GeneralBucketName::parse(label)?;
        return Ok(Target::General {
            bucket,
            key_path: path,
            region: settings.general_region.clone(),
            flavor,
        });
    }
    path_style(path, None, flavor, settings)
}

/// Path-style: `/BUCKET/KEY` on the proxy or on a general-purpose regional host; `/` alone is
/// the control plane's ListDirectoryBuckets (endpoint mode) or ListBuckets (an S3 host).
fn path_style<'a>(
    path: &'a str,
    host_region: Option<Region>,
    flavor: Flavor,
    settings: &RouteSettings,
) -> Result<Target<'a>, RouteError> {
    let (segment, key_path) = split_bucket(path);
    if segment.is_empty() {
        return match host_region {
            Some(region) => Ok(Target::GeneralRoot { region, flavor }),
            None => control_root(settings),
        };
    }
    if BucketName::looks_like_directory_bucket(segment) {
        let bucket = BucketName::parse(segment)?;
        let directory = match host_region {
            Some(region) => {
                Directory::new(bucket, key_path, Some(region), flavor).bridged(Bridge::GpHost)
            }
            // `/BUCKET//KEY` (the JS SDK v3 with an IP endpoint) is `/BUCKET/KEY`: a directory
            // bucket's namespace is hierarchical and has no empty directory names.
            None => {
                let after_slash = key_path.strip_prefix('/');
                let key_path = after_slash
                    .filter(|k| k.starts_with('/'))
                    .unwrap_or(key_path);
                Directory::new(bucket, key_path, None, flavor)
            }
        };
        return Ok(Target::Directory(directory));
    }
    let bucket = GeneralBucketName::parse(segment)?;
    let region = host_region.unwrap_or_else(|| settings.general_region.clone());
    Ok(Target::General {
        bucket,
        key_path,
        region,
        flavor,
    })
}

/// Endpoint mode's `/`: the control plane (ListDirectoryBuckets), in `--region`.
fn control_root<'a>(settings: &RouteSettings) -> Result<Target<'a>, RouteError> {
    let region = settings.regions.fallback().cloned().ok_or_else(|| {
        RouteError::UnknownRegion("(none: ListDirectoryBuckets needs --region)".into())
    })?;
    Ok(Target::Control {
        bucket: None,
        region,
        flavor: settings.flavor,
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

/// The first path segment, and the path after it (`/b/k/x` → `b`, `/k/x`; `/b` → `b`, `/`).
fn split_bucket(path: &str) -> (&str, &str) {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    match trimmed.find('/') {
        Some(at) => trimmed.split_at(at),
        None => (trimmed, "/"),
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
