//! Route: which bucket, which upstream host and region, and which S3 operation a request is.

use http::request::Parts;

use crate::names::{BucketName, NameError, Region, RegionResolver};
use crate::operation::{classify, classify_control, Operation, RequestShape};

/// Why a request could not be routed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The bucket name is not a valid directory bucket name (400 InvalidBucketName).
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The target host is not an S3 Express host (403: we are not an open proxy).
    #[error("{0} is not an S3 Express host")]
    NotS3Host(String),
    /// No region is known for the bucket's zone (400).
    #[error("no region is known for zone {0}; pass --zone-region {0}=REGION or --region")]
    UnknownRegion(String),
    /// The request names no host at all (400).
    #[error("the request has no Host header")]
    MissingHost,
    /// A CONNECT target that is not `host:port` (400).
    #[error("the CONNECT target must be host:port")]
    BadConnectTarget,
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
}

/// The routing decision for one request.
#[derive(Clone, Debug)]
pub struct Route {
    /// The S3 operation.
    pub operation: Operation,
    /// The directory bucket, when the request names one.
    pub bucket: Option<BucketName>,
    /// The region that signs the request.
    pub region: Region,
    /// The upstream host (Zonal or control plane), also the signed `Host`.
    pub host: String,
    /// The upstream path and query, still percent-encoded as the client sent them.
    pub path_and_query: String,
}

/// Routes a request head.
pub fn route(
    parts: &Parts,
    arrival: &Arrival,
    regions: &RegionResolver,
) -> Result<Route, RouteError> {
    let (host, explicit_target) = target_host(parts, arrival)?;
    let path = parts.uri.path();
    let query = parts.uri.query();
    if let Some(aws) = AwsHost::parse(&host) {
        return route_aws_host(parts, aws, host.clone(), path, query);
    }
    if host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn") {
        return Err(RouteError::NotS3Host(host));
    }
    // Endpoint mode: virtual-hosted (`bucket.anything`) or path-style (`/bucket/key`).
    let first_label = host.split('.').next().unwrap_or_default();
    if BucketName::looks_like_directory_bucket(first_label) {
        let bucket = BucketName::parse(first_label)?;
        return zonal_or_control(parts, bucket, path, query, regions);
    }
    let trimmed = path.trim_start_matches('/');
    let (segment, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if segment.is_empty() {
        if explicit_target {
            return Err(RouteError::NotS3Host(host));
        }
        return control_root(parts, query, regions);
    }
    if explicit_target && !BucketName::looks_like_directory_bucket(segment) {
        return Err(RouteError::NotS3Host(host));
    }
    let bucket = BucketName::parse(segment)?;
    let key_path = format!("/{rest}");
    zonal_or_control(parts, bucket, &key_path, query, regions)
}

/// The host a request targets, lowercased and without port, and whether the client named it
/// explicitly as a proxy target (absolute form or CONNECT) rather than as its endpoint.
fn target_host(parts: &Parts, arrival: &Arrival) -> Result<(String, bool), RouteError> {
    if let Some(host) = &arrival.tunnel {
        return Ok((normalize_host(host), true));
    }
    if let Some(host) = parts.uri.host() {
        // Absolute form (HTTP/1.1 through HTTP_PROXY) or an h2 `:authority`.
        let absolute = parts.uri.scheme().is_some() && parts.version < http::Version::HTTP_2;
        return Ok((normalize_host(host), absolute));
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(RouteError::MissingHost)?;
    let without_port = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    Ok((normalize_host(without_port), false))
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn path_and_query(path: &str, query: Option<&str>) -> String {
    let path = if path.is_empty() { "/" } else { path };
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

fn route_aws_host(
    parts: &Parts,
    aws: AwsHost<'_>,
    host: String,
    path: &str,
    query: Option<&str>,
) -> Result<Route, RouteError> {
    let region = Region::parse(aws.region)?;
    match aws.bucket {
        Some(bucket) => {
            let bucket = BucketName::parse(bucket)?;
            let operation = classify(&RequestShape {
                method: &parts.method,
                has_key: path.len() > 1,
                query,
                headers: &parts.headers,
            });
            Ok(Route {
                operation,
                bucket: Some(bucket),
                region,
                host,
                path_and_query: path_and_query(path, query),
            })
        }
        None => {
            let trimmed = path.trim_start_matches('/');
            let segment = trimmed.split('/').next().unwrap_or_default();
            let bucket = if segment.is_empty() {
                None
            } else {
                Some(BucketName::parse(segment)?)
            };
            let operation = classify_control(&parts.method, bucket.is_some(), query);
            Ok(Route {
                operation,
                bucket,
                region,
                host,
                path_and_query: path_and_query(path, query),
            })
        }
    }
}

fn zonal_or_control(
    parts: &Parts,
    bucket: BucketName,
    key_path: &str,
    query: Option<&str>,
    regions: &RegionResolver,
) -> Result<Route, RouteError> {
    let zone = bucket.zone();
    let region = regions
        .region_for(&zone)
        .ok_or_else(|| RouteError::UnknownRegion(zone.to_string()))?;
    let operation = classify(&RequestShape {
        method: &parts.method,
        has_key: key_path.len() > 1,
        query,
        headers: &parts.headers,
    });
    let (host, path) = if operation.is_control_plane() {
        let host = format!("s3express-control.{region}.{}", region.dns_suffix());
        (host, format!("/{bucket}"))
    } else {
        let host = format!("{bucket}.s3express-{zone}.{region}.{}", region.dns_suffix());
        (host, key_path.to_owned())
    };
    Ok(Route {
        operation,
        bucket: Some(bucket),
        region,
        host,
        path_and_query: path_and_query(&path, query),
    })
}

fn control_root(
    parts: &Parts,
    query: Option<&str>,
    regions: &RegionResolver,
) -> Result<Route, RouteError> {
    let region = regions.fallback().cloned().ok_or_else(|| {
        RouteError::UnknownRegion("(none: ListDirectoryBuckets needs --region)".into())
    })?;
    Ok(Route {
        operation: classify_control(&parts.method, false, query),
        bucket: None,
        host: format!("s3express-control.{region}.{}", region.dns_suffix()),
        region,
        path_and_query: path_and_query("/", query),
    })
}

/// An AWS S3 Express host name, split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct AwsHost<'a> {
    /// The bucket label of a Zonal host; `None` for the control plane.
    pub bucket: Option<&'a str>,
    /// The zone id of a Zonal host.
    pub zone: Option<&'a str>,
    /// The region label.
    pub region: &'a str,
}

impl<'a> AwsHost<'a> {
    /// Parses `BUCKET.s3express[-fips]-ZONE[.dualstack].REGION.amazonaws.com[.cn]` and
    /// `s3express-control[-fips][.dualstack].REGION.amazonaws.com[.cn]`.
    pub fn parse(host: &'a str) -> Option<Self> {
        let rest = host
            .strip_suffix(".amazonaws.com")
            .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
        let mut labels: Vec<&str> = rest.split('.').collect();
        let region = labels.pop()?;
        if labels.last() == Some(&"dualstack") {
            labels.pop();
        }
        match labels.as_slice() {
            [service] if matches!(*service, "s3express-control" | "s3express-control-fips") => {
                Some(Self {
                    bucket: None,
                    zone: None,
                    region,
                })
            }
            [bucket, service] => {
                let zone = service.strip_prefix("s3express-")?;
                let zone = zone.strip_prefix("fips-").unwrap_or(zone);
                Some(Self {
                    bucket: Some(bucket),
                    zone: Some(zone),
                    region,
                })
            }
            _ => None,
        }
    }

    /// True when `host` (lowercase, without port) is an S3 Express host this proxy intercepts.
    pub fn is_s3_express(host: &str) -> bool {
        AwsHost::<'_>::parse(host).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::Operation::*;

    fn parts(method: &str, uri: &str, host: Option<&str>) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn listener() -> Arrival {
        Arrival {
            client: "127.0.0.1:1".parse().unwrap(),
            tunnel: None,
        }
    }

    fn resolver() -> RegionResolver {
        RegionResolver::new(
            Default::default(),
            Some(Region::parse("us-west-2").unwrap()),
        )
    }

    #[test]
    fn aws_hosts_parse_in_all_variants() {
        let h =
            AwsHost::parse("b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com").unwrap();
        assert_eq!(
            (h.bucket, h.zone, h.region),
            (Some("b--usw2-az1--x-s3"), Some("usw2-az1"), "us-west-2")
        );
        let h = AwsHost::parse(
            "b--use1-az4--x-s3.s3express-fips-use1-az4.dualstack.us-east-1.amazonaws.com",
        )
        .unwrap();
        assert_eq!((h.zone, h.region), (Some("use1-az4"), "us-east-1"));
        let h = AwsHost::parse("s3express-control.cn-north-1.amazonaws.com.cn").unwrap();
        assert_eq!((h.bucket, h.region), (None, "cn-north-1"));
        assert!(AwsHost::parse("s3.us-west-2.amazonaws.com").is_none());
        assert!(AwsHost::parse("sts.amazonaws.com").is_none());
        assert!(AwsHost::parse("example.com").is_none());
    }

    #[test]
    fn forward_mode_takes_the_clients_host_as_truth() {
        let uri = "http://b--usw2-az1--x-s3.s3express-usw2-az1.eu-west-1.amazonaws.com/dir/key?x-id=GetObject";
        let r = route(&parts("GET", uri, None), &listener(), &resolver()).unwrap();
        assert_eq!(r.operation, GetObject);
        assert_eq!(r.region.as_str(), "eu-west-1");
        assert_eq!(
            r.host,
            "b--usw2-az1--x-s3.s3express-usw2-az1.eu-west-1.amazonaws.com"
        );
        assert_eq!(r.path_and_query, "/dir/key?x-id=GetObject");
    }

    #[test]
    fn endpoint_mode_path_style_and_virtual_host() {
        let r = route(
            &parts("PUT", "/b--use1-az4--x-s3/a/b%20c", Some("127.0.0.1:8080")),
            &listener(),
            &resolver(),
        )
        .unwrap();
        assert_eq!(r.operation, PutObject);
        assert_eq!(
            r.host,
            "b--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com"
        );
        assert_eq!(r.path_and_query, "/a/b%20c");
        let r = route(
            &parts(
                "GET",
                "/?list-type=2",
                Some("b--use1-az4--x-s3.localhost:8080"),
            ),
            &listener(),
            &resolver(),
        )
        .unwrap();
        assert_eq!(
            (r.operation, r.path_and_query.as_str()),
            (ListObjectsV2, "/?list-type=2")
        );
        let r = route(
            &parts("GET", "/b--use1-az4--x-s3?session", Some("127.0.0.1")),
            &listener(),
            &resolver(),
        )
        .unwrap();
        assert_eq!(
            (r.operation, r.path_and_query.as_str()),
            (CreateSession, "/?session")
        );
    }

    #[test]
    fn control_plane_operations_go_to_the_control_host() {
        let r = route(
            &parts("PUT", "/b--use1-az4--x-s3", Some("127.0.0.1")),
            &listener(),
            &resolver(),
        )
        .unwrap();
        assert_eq!(
            (r.operation, r.host.as_str()),
            (CreateBucket, "s3express-control.us-east-1.amazonaws.com")
        );
        assert_eq!(r.path_and_query, "/b--use1-az4--x-s3");
        let r = route(
            &parts("GET", "/", Some("127.0.0.1")),
            &listener(),
            &resolver(),
        )
        .unwrap();
        assert_eq!(
            (r.operation, r.host.as_str()),
            (
                ListDirectoryBuckets,
                "s3express-control.us-west-2.amazonaws.com"
            )
        );
    }

    #[test]
    fn bad_names_and_foreign_hosts_are_refused() {
        let bad = "http://Bad_Name--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com/k";
        assert!(matches!(
            route(&parts("GET", bad, None), &listener(), &resolver()),
            Err(RouteError::InvalidName(_))
        ));
        let foreign = "http://example.com/index.html";
        assert!(matches!(
            route(&parts("GET", foreign, None), &listener(), &resolver()),
            Err(RouteError::NotS3Host(_))
        ));
        let gp = "http://s3.us-west-2.amazonaws.com/bucket/key";
        assert!(matches!(
            route(&parts("GET", gp, None), &listener(), &resolver()),
            Err(RouteError::NotS3Host(_))
        ));
        let path_style_gp = parts("GET", "/general-purpose-bucket/key", Some("127.0.0.1"));
        assert!(matches!(
            route(&path_style_gp, &listener(), &resolver()),
            Err(RouteError::InvalidName(_))
        ));
    }

    #[test]
    fn tunnel_requests_route_by_the_connect_host() {
        let arrival = Arrival {
            tunnel: Some("b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com".into()),
            ..listener()
        };
        let r = route(&parts("HEAD", "/k", None), &arrival, &resolver()).unwrap();
        assert_eq!(r.operation, HeadObject);
    }
}
