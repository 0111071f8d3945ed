//! Region answers for general-purpose buckets: 301 PermanentRedirect and the bucket's region.

use crate::classify::Classified;
use crate::error::{Result, S3Error};
use crate::route::Op;
use crate::store::State;

/// The region a general-purpose request must be signed for: the bucket's, or for
/// GetBucketLocation (which any region's host answers) the host's. A regional host that is not
/// the bucket's gets 301 PermanentRedirect naming the bucket's region, as S3 answers; the global
/// `s3.amazonaws.com` host serves every region.
pub(crate) fn signing_region(state: &State, c: &Classified) -> Result<String> {
    let Some(host) = &c.general_purpose else {
        return Ok(c.region.clone());
    };
    let bucket_region = state
        .general_purpose_region(&c.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(&c.bucket))?;
    if c.op == Op::GetBucketLocation {
        return Ok(c.region.clone());
    }
    if !host.global && bucket_region != c.region {
        return Err(permanent_redirect(&c.bucket, &bucket_region, host.domain));
    }
    Ok(bucket_region)
}

/// 301 PermanentRedirect: the bucket is in `region`; send future requests to its endpoint.
fn permanent_redirect(bucket: &str, region: &str, domain: &str) -> S3Error {
    S3Error::new(
        301,
        "PermanentRedirect",
        "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
    )
    .with("Endpoint", format!("{bucket}.s3.{region}.{domain}"))
    .with("Bucket", bucket)
    .header("x-amz-bucket-region", region)
}
