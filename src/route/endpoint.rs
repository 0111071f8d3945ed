//! Endpoints: the S3 endpoints the proxy sends to (Zonal, S3 Express control plane, general
//! purpose), built from validated parts only, and the parsing of the AWS host names clients use.

use std::fmt;

use crate::route::names::{BucketName, GeneralBucketName, NameError, Region, ZoneId};

/// FIPS and dual-stack endpoint variants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flavor {
    /// `-fips` endpoints.
    pub fips: bool,
    /// `.dualstack` endpoints (IPv4 and IPv6).
    pub dualstack: bool,
}

impl Flavor {
    fn dualstack_label(self) -> &'static str {
        if self.dualstack {
            ".dualstack"
        } else {
            ""
        }
    }
}

/// Where a request is sent: every part validated, the host name rebuilt from them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A directory bucket's Zonal endpoint (`BUCKET.s3express-ZONE.REGION.amazonaws.com`).
    Zonal {
        /// The bucket (its name carries the zone).
        bucket: BucketName,
        /// The zone's region.
        region: Region,
        /// FIPS / dual-stack.
        flavor: Flavor,
    },
    /// The S3 Express control plane (`s3express-control.REGION.amazonaws.com`, path-style).
    Control {
        /// The region.
        region: Region,
        /// FIPS / dual-stack.
        flavor: Flavor,
    },
    /// General-purpose S3 (`BUCKET.s3.REGION.amazonaws.com`, or path-style on
    /// `s3.REGION.amazonaws.com` for names with dots and for requests without a bucket).
    General {
        /// The bucket, if the request names one.
        bucket: Option<GeneralBucketName>,
        /// The region the request is sent to and signed for.
        region: Region,
        /// FIPS / dual-stack.
        flavor: Flavor,
    },
}

impl Endpoint {
    /// The host name, rebuilt from the validated parts (never client text).
    pub fn host(&self) -> String {
        match self {
            Endpoint::Zonal {
                bucket,
                region,
                flavor,
            } => {
                let fips = if flavor.fips { "-fips" } else { "" };
                let (zone, ds, suffix) =
                    (bucket.zone(), flavor.dualstack_label(), region.dns_suffix());
                format!("{bucket}.s3express{fips}-{zone}{ds}.{region}.{suffix}")
            }
            Endpoint::Control { region, flavor } => {
                let fips = if flavor.fips { "-fips" } else { "" };
                let (ds, suffix) = (flavor.dualstack_label(), region.dns_suffix());
                format!("s3express-control{fips}{ds}.{region}.{suffix}")
            }
            Endpoint::General {
                bucket,
                region,
                flavor,
            } => {
                let service = if flavor.fips { "s3-fips" } else { "s3" };
                let (ds, suffix) = (flavor.dualstack_label(), region.dns_suffix());
                match bucket.as_ref().filter(|b| b.virtual_hostable()) {
                    Some(bucket) => format!("{bucket}.{service}{ds}.{region}.{suffix}"),
                    None => format!("{service}{ds}.{region}.{suffix}"),
                }
            }
        }
    }

    /// The path prefix the bucket needs on this endpoint (`/BUCKET` when path-style).
    pub fn path_prefix(&self) -> Option<String> {
        match self {
            Endpoint::General {
                bucket: Some(bucket),
                ..
            } if !bucket.virtual_hostable() => Some(format!("/{bucket}")),
            _ => None,
        }
    }

    /// The region the request is signed for.
    pub fn region(&self) -> &Region {
        match self {
            Endpoint::Zonal { region, .. }
            | Endpoint::Control { region, .. }
            | Endpoint::General { region, .. } => region,
        }
    }

    /// The SigV4 service name.
    pub fn service(&self) -> &'static str {
        match self {
            Endpoint::General { .. } => "s3",
            _ => "s3express",
        }
    }

    /// True for a directory bucket's Zonal endpoint.
    pub fn is_zonal(&self) -> bool {
        matches!(self, Endpoint::Zonal { .. })
    }

    /// The same general-purpose endpoint in another region (S3 said the bucket lives there);
    /// `None` for S3 Express endpoints, whose region the zone decides.
    pub fn in_region(&self, region: Region) -> Option<Endpoint> {
        match self {
            Endpoint::General { bucket, flavor, .. } => Some(Endpoint::General {
                bucket: bucket.clone(),
                region,
                flavor: *flavor,
            }),
            _ => None,
        }
    }

    /// The general-purpose bucket, if this is one's endpoint.
    pub fn general_bucket(&self) -> Option<&GeneralBucketName> {
        match self {
            Endpoint::General { bucket, .. } => bucket.as_ref(),
            _ => None,
        }
    }
}

/// The regions S3 said general-purpose buckets live in (`x-amz-bucket-region`), so later
/// requests go straight there. Bounded; an entry lasts a day.
#[derive(Clone, Debug)]
pub struct BucketRegions(moka::sync::Cache<GeneralBucketName, Region>);

impl Default for BucketRegions {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(24 * 3600))
                .build(),
        )
    }
}

impl BucketRegions {
    /// The learned region of `bucket`.
    pub fn get(&self, bucket: &GeneralBucketName) -> Option<Region> {
        self.0.get(bucket)
    }

    /// Learns `bucket`'s region.
    pub fn learn(&self, bucket: &GeneralBucketName, region: Region) {
        tracing::debug!(%bucket, %region, "learned the bucket's region");
        self.0.insert(bucket.clone(), region);
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host())
    }
}

/// An AWS S3 host name as a client wrote it, split into its parts (not yet validated
/// against each other: see `route`).
#[derive(Debug, PartialEq, Eq)]
pub enum AwsHost<'a> {
    /// `BUCKET.s3express[-fips]-ZONE[.dualstack].REGION.amazonaws.com[.cn]`.
    Zonal {
        /// The bucket label.
        bucket: &'a str,
        /// The zone label.
        zone: &'a str,
        /// The region label.
        region: &'a str,
        /// FIPS / dual-stack.
        flavor: Flavor,
    },
    /// `s3express[-fips]-ZONE[.dualstack].REGION.amazonaws.com[.cn]` with no bucket label:
    /// path-style on a Zonal host, which S3 Express does not serve (old botocore with
    /// `--endpoint-url` and libs3 send it; `route` rewrites it to the bucket's virtual host).
    ZonalPathStyle {
        /// The zone label.
        zone: &'a str,
        /// The region label.
        region: &'a str,
        /// FIPS / dual-stack.
        flavor: Flavor,
    },
    /// `s3express-control[-fips][.dualstack].REGION.amazonaws.com[.cn]`.
    Control {
        /// The region label.
        region: &'a str,
        /// FIPS / dual-stack.
        flavor: Flavor,
    },
    /// `[BUCKET.]s3[-fips][.dualstack].REGION.amazonaws.com[.cn]`, or `[BUCKET.]s3.amazonaws.com`.
    General {
        /// The bucket labels (a name with dots spans several), if any.
        bucket: Option<&'a str>,
        /// The region label (`us-east-1` for the global host).
        region: &'a str,
        /// FIPS / dual-stack.
        flavor: Flavor,
    },
}

impl<'a> AwsHost<'a> {
    /// Parses a lowercase host name without port; `None` when it is not an S3 host.
    pub fn parse(host: &'a str) -> Option<Self> {
        let rest = host
            .strip_suffix(".amazonaws.com")
            .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
        if let Some(bucket) = rest.strip_suffix(".s3").or((rest == "s3").then_some("")) {
            let bucket = (!bucket.is_empty()).then_some(bucket);
            return Some(AwsHost::General {
                bucket,
                region: "us-east-1",
                flavor: Flavor::default(),
            });
        }
        let (rest, region) = rest.rsplit_once('.').map_or(("", rest), |(r, g)| (r, g));
        let (rest, dualstack) = match rest.strip_suffix("dualstack") {
            Some(r) if r.is_empty() || r.ends_with('.') => (r.trim_end_matches('.'), true),
            _ => (rest, false),
        };
        let (head, service) = rest.rsplit_once('.').map_or(("", rest), |(h, s)| (h, s));
        let bucket = (!head.is_empty()).then_some(head);
        let general = match service {
            "s3" => Some(false),
            "s3-fips" => Some(true),
            _ => None,
        };
        if let Some(fips) = general {
            let flavor = Flavor { fips, dualstack };
            return Some(AwsHost::General {
                bucket,
                region,
                flavor,
            });
        }
        let control = match service {
            "s3express-control" => Some(false),
            "s3express-control-fips" => Some(true),
            _ => None,
        };
        if let (Some(fips), None) = (control, bucket) {
            let flavor = Flavor { fips, dualstack };
            return Some(AwsHost::Control { region, flavor });
        }
        let zone = service.strip_prefix("s3express-")?;
        let (zone, fips) = match zone.strip_prefix("fips-") {
            Some(zone) => (zone, true),
            None => (zone, false),
        };
        let flavor = Flavor { fips, dualstack };
        let Some(bucket) = bucket else {
            return Some(AwsHost::ZonalPathStyle {
                zone,
                region,
                flavor,
            });
        };
        let bucket = (!bucket.contains('.')).then_some(bucket)?;
        Some(AwsHost::Zonal {
            bucket,
            zone,
            region,
            flavor,
        })
    }

    /// True when `host` (lowercase, without port) is an S3 host (directory or general purpose).
    pub fn is_s3(host: &str) -> bool {
        AwsHost::parse(host).is_some()
    }

    /// True when `host` serves S3 Express requests: a Zonal or control-plane host, path-style
    /// on a Zonal host, or a general-purpose host whose bucket label is a directory bucket's
    /// (the `--x-s3` suffix is reserved for them; `route` sends such requests to their Zonal
    /// endpoint, with or without `--general-purpose`).
    pub fn is_s3_express(host: &str) -> bool {
        match AwsHost::parse(host) {
            Some(AwsHost::General { bucket, .. }) => {
                bucket.is_some_and(BucketName::looks_like_directory_bucket)
            }
            Some(_) => true,
            None => false,
        }
    }
}

/// Checks that a zone in a host name is the bucket's own.
pub fn zone_matches(bucket: &BucketName, zone: &str) -> Result<(), NameError> {
    match ZoneId::parse(zone) {
        Some(z) if z == bucket.zone() => Ok(()),
        _ => Err(NameError::ZoneMismatch),
    }
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
