//! Which endpoint, bucket, key and S3 operation a request names, from its Host, path and query.

use crate::auth::Head;
use crate::error::{Result, S3Error};
use crate::hosts::{bucket_zone, zone_region, Endpoint};
use crate::route::{self, Op, Query};

/// A classified request.
pub(crate) struct Classified {
    pub op: Op,
    /// Empty when the request names no bucket.
    pub bucket: String,
    pub key: String,
    /// The region the endpoint (host) names.
    pub region: String,
    pub zonal: bool,
    /// Set for general-purpose endpoints.
    pub general_purpose: Option<GeneralPurposeHost>,
}

/// What a general-purpose host says beyond its region.
#[derive(Clone, Debug)]
pub(crate) struct GeneralPurposeHost {
    /// `s3.amazonaws.com`, which serves every region's buckets.
    pub global: bool,
    /// `amazonaws.com` or `amazonaws.com.cn`.
    pub domain: &'static str,
}

fn key_too_long(key: &str) -> Result<()> {
    if key.len() > 1024 {
        return Err(S3Error::new(400, "KeyTooLongError", "Your key is too long"));
    }
    Ok(())
}

/// Decodes a path part once, as UTF-8.
fn decode(raw: &str) -> Result<String> {
    String::from_utf8(crate::sigv4::percent_decode(raw)).map_err(|_| {
        S3Error::new(
            400,
            "InvalidURI",
            "The path is not valid UTF-8 once decoded.",
        )
    })
}

/// Classifies a request, or says why it cannot be served.
pub(crate) fn classify(endpoint: &Endpoint, head: &Head, query: &Query) -> Result<Classified> {
    let raw = head.raw_path.strip_prefix('/').unwrap_or(&head.raw_path);
    let decoded = decode(raw)?;
    match endpoint {
        Endpoint::Unknown(h) => Err(S3Error::invalid_request(format!(
            "{h:?} is not an S3 endpoint the emulator serves."
        ))),
        Endpoint::GeneralPurpose {
            bucket,
            region,
            global,
            domain,
        } => {
            // Virtual-hosted: the whole path is the key. Path-style: /BUCKET/KEY.
            let (bucket, key) = match bucket {
                Some(b) => (b.clone(), decoded),
                None => {
                    let (b, k) = raw.split_once('/').unwrap_or((raw, ""));
                    (decode(b)?, decode(k)?)
                }
            };
            key_too_long(&key)?;
            let op = if bucket.is_empty() {
                Op::NotImplemented("ListBuckets")
            } else {
                route::general_purpose_op(
                    &head.method,
                    !key.is_empty(),
                    query,
                    head.get("x-amz-copy-source").is_some(),
                    head.get("x-amz-write-offset-bytes").is_some(),
                )
            };
            Ok(Classified {
                op,
                bucket,
                key,
                region: region.clone(),
                zonal: false,
                general_purpose: Some(GeneralPurposeHost {
                    global: *global,
                    domain,
                }),
            })
        }
        // S3's documentation says only "Path-style requests are not supported"; its exact
        // answer was not found, so this is the closest S3 refusal: 400 InvalidRequest.
        Endpoint::ZonalPathStyle { .. } => Err(S3Error::invalid_request(
            "Path-style requests are not supported for directory buckets. Use the virtual-hosted-style endpoint BUCKET.s3express-ZONE.REGION.amazonaws.com.",
        )),
        Endpoint::Zonal { bucket, zone, region } => {
            if bucket_zone(bucket) != Some(zone.as_str()) {
                return Err(S3Error::new(
                    400,
                    "InvalidBucketName",
                    format!("Bucket {bucket} is not a directory bucket in zone {zone}."),
                )
                .with("BucketName", bucket.clone()));
            }
            if let Some(expected) = zone_region(zone).filter(|r| r != region) {
                return Err(S3Error::new(
                    400,
                    "IncorrectEndpoint",
                    format!("Zone {zone} is in {expected}, not {region}: this endpoint does not exist."),
                ));
            }
            key_too_long(&decoded)?;
            let copy = head.get("x-amz-copy-source").is_some();
            Ok(Classified {
                op: route::zonal_op(&head.method, !decoded.is_empty(), query, copy),
                bucket: bucket.clone(),
                key: decoded,
                region: region.clone(),
                zonal: true,
                general_purpose: None,
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
                general_purpose: None,
            })
        }
    }
}
