//! Which endpoint, bucket, key and S3 operation a request names, from its Host, path and query.

use crate::auth::Head;
use crate::error::{Result, S3Error};
use crate::route::{self, Endpoint, Op, Query};

/// A classified request.
pub(crate) struct Classified {
    pub op: Op,
    pub bucket: String,
    pub key: String,
    pub region: String,
    pub zonal: bool,
}

/// Classifies a request, or says why it cannot be served.
pub(crate) fn classify(endpoint: &Endpoint, head: &Head, query: &Query) -> Result<Classified> {
    let raw = head.raw_path.strip_prefix('/').unwrap_or(&head.raw_path);
    let decoded = String::from_utf8(crate::sigv4::percent_decode(raw)).map_err(|_| {
        S3Error::new(
            400,
            "InvalidURI",
            "The path is not valid UTF-8 once decoded.",
        )
    })?;
    match endpoint {
        Endpoint::Unknown(h) => Err(S3Error::invalid_request(format!(
            "{h:?} is not an S3 Express Zonal or control-plane endpoint."
        ))),
        Endpoint::ZonalPathStyle { .. } => Err(S3Error::invalid_request(
            "Path-style requests are not supported on Zonal endpoints; use BUCKET.s3express-ZONE.REGION.amazonaws.com.",
        )),
        Endpoint::Zonal { bucket, zone, region } => {
            if route::bucket_zone(bucket) != Some(zone.as_str()) {
                return Err(S3Error::new(
                    400,
                    "InvalidBucketName",
                    format!("Bucket {bucket} is not a directory bucket in zone {zone}."),
                )
                .with("BucketName", bucket.clone()));
            }
            if let Some(expected) = route::zone_region(zone).filter(|r| r != region) {
                return Err(S3Error::new(
                    400,
                    "IncorrectEndpoint",
                    format!("Zone {zone} is in {expected}, not {region}: this endpoint does not exist."),
                ));
            }
            if decoded.len() > 1024 {
                return Err(S3Error::new(400, "KeyTooLongError", "Your key is too long"));
            }
            let copy = head.get("x-amz-copy-source").is_some();
            Ok(Classified {
                op: route::zonal_op(&head.method, !decoded.is_empty(), query, copy),
                bucket: bucket.clone(),
                key: decoded,
                region: region.clone(),
                zonal: true,
            })
        }
        Endpoint::Control { region } => {
            let bucket = decoded.trim_end_matches('/');
            if bucket.contains('/') {
                return Err(S3Error::invalid_request("The control plane takes /BUCKET paths only."));
            }
            let op = route::control_op(&head.method, (!bucket.is_empty()).then_some(bucket), query);
            Ok(Classified {
                op,
                bucket: bucket.to_string(),
                key: String::new(),
                region: region.clone(),
                zonal: false,
            })
        }
    }
}
