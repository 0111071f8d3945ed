//! Bucket-level operations: CreateSession, HeadBucket, ListDirectoryBuckets, Create/DeleteBucket.

use std::time::SystemTime;

use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::ops::Ctx;
use crate::respond::{empty, xml_response};
use crate::store::{self, Mode, Session};
use crate::xml::Writer;

/// GetBucketLocation (`GET /?location`): the region, empty for us-east-1 as S3 answers.
pub(crate) fn get_bucket_location(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let region = ctx
        .state
        .general_purpose_region(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    let ns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
    let doc = if region == "us-east-1" {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint {ns}/>")
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint {ns}>{}</LocationConstraint>",
            crate::xml::escape(&region)
        )
    };
    Ok(xml_response(StatusCode::OK, doc))
}

/// HeadBucket: 200 with the bucket's region.
pub(crate) fn head_bucket(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let mut r = empty(StatusCode::OK);
    let region = ctx
        .region
        .parse()
        .map_err(|_| S3Error::internal("region"))?;
    r.headers_mut().insert("x-amz-bucket-region", region);
    Ok(r)
}

pub(crate) fn create_session(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let read_only_policy = ctx.state.policy(ctx.bucket) == crate::Policy::ReadOnly;
    let mode = match ctx.head.get("x-amz-create-session-mode") {
        None if read_only_policy => Mode::ReadOnly,
        None => Mode::ReadWrite,
        Some("ReadOnly") => Mode::ReadOnly,
        Some("ReadWrite") if read_only_policy => {
            return Err(S3Error::access_denied(format!(
                "The bucket policy of {} does not allow ReadWrite sessions.",
                ctx.bucket
            )))
        }
        Some("ReadWrite") => Mode::ReadWrite,
        Some(other) => {
            return Err(S3Error::invalid_argument(format!(
                "x-amz-create-session-mode must be ReadOnly or ReadWrite, not {other:?}."
            )))
        }
    };
    let requested = crate::sse::requested(ctx.head)?;
    let sse = crate::sse::for_session(&requested, &ctx.state.bucket_encryption(ctx.bucket))?;
    use base64::Engine;
    let token = store::random_token(96);
    let session = Session {
        access_key_id: format!("S3XS{}", store::random_upper(16)),
        secret_access_key: base64::engine::general_purpose::STANDARD
            .encode(store::random_bytes(30)),
        bucket: ctx.bucket.to_string(),
        mode,
        expires: SystemTime::now() + ctx.state.config.session_lifetime,
        sse: sse.clone(),
    };
    let mut w = Writer::new("CreateSessionResult");
    w.open("Credentials")
        .elem("SessionToken", &token)
        .elem("SecretAccessKey", &session.secret_access_key)
        .elem("AccessKeyId", &session.access_key_id)
        .elem("Expiration", &crate::time::iso8601(session.expires))
        .close("Credentials");
    ctx.state.sessions().insert(token, session);
    {
        let mut c = ctx.state.counters();
        match mode {
            Mode::ReadOnly => c.create_session_read_only += 1,
            Mode::ReadWrite => c.create_session_read_write += 1,
        }
    }
    let mut r = xml_response(StatusCode::OK, w.finish("CreateSessionResult"));
    for (n, v) in sse.headers(true) {
        crate::objects::header(&mut r, &n, &v);
    }
    Ok(r)
}

pub(crate) fn list_directory_buckets(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let mut w = Writer::new("ListAllMyDirectoryBucketsResult");
    w.open("Buckets");
    for (name, b) in ctx.state.buckets().iter() {
        let zone = crate::hosts::bucket_zone(name).unwrap_or("");
        let region = crate::hosts::zone_region(zone).unwrap_or(ctx.region);
        if region != ctx.region || b.general_purpose_region.is_some() {
            continue;
        }
        w.open("Bucket")
            .elem("Name", name)
            .elem("CreationDate", &crate::time::iso8601_millis(b.created))
            .elem("BucketRegion", region)
            .close("Bucket");
    }
    w.close("Buckets");
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListAllMyDirectoryBucketsResult"),
    ))
}

pub(crate) fn create_bucket(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let name = ctx.bucket;
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let zone = crate::hosts::bucket_zone(name);
    if !(3..=63).contains(&name.len()) || !valid_chars || zone.is_none() || name.starts_with("xn--")
    {
        return Err(S3Error::new(
            400,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        )
        .with("BucketName", name));
    }
    if let Some(r) = zone
        .and_then(crate::hosts::zone_region)
        .filter(|r| *r != ctx.region)
    {
        return Err(S3Error::new(
            400,
            "InvalidBucketName",
            format!("The zone of {name} is in {r}, not {}.", ctx.region),
        ));
    }
    let mut buckets = ctx.state.buckets();
    if buckets.contains_key(name) {
        return Err(S3Error::new(
            409,
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
        .with("BucketName", name));
    }
    buckets.insert(name.to_string(), store::Bucket::new());
    let mut r = empty(StatusCode::OK);
    r.headers_mut().insert(
        "location",
        format!("/{name}")
            .parse()
            .map_err(|_| S3Error::internal("location"))?,
    );
    Ok(r)
}

pub(crate) fn delete_bucket(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let mut buckets = ctx.state.buckets();
    let b = buckets
        .get(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    if !b.objects.is_empty() || !b.uploads.is_empty() {
        return Err(S3Error::new(
            409,
            "BucketNotEmpty",
            "The bucket you tried to delete is not empty",
        )
        .with("BucketName", ctx.bucket));
    }
    buckets.remove(ctx.bucket);
    Ok(empty(StatusCode::NO_CONTENT))
}
