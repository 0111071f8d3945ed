//! CopyObject and RenameObject, and `x-amz-copy-source` parsing (also used by UploadPartCopy).

use std::time::SystemTime;

use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::objects::{header, meta_from_request, preconditions};
use crate::ops::Ctx;
use crate::respond::{empty, xml_response};
use crate::store::Object;
use crate::xml::Writer;

/// Parses `x-amz-copy-source` as S3 does: `[/]BUCKET/KEY[?versionId=ID]`, URL-encoded. A `?` in
/// the value as sent starts the version (a `?` in a key comes as `%3F`); one leading `/` is
/// dropped before decoding (`%2FBUCKET/KEY` names an empty bucket); the rest is decoded whole
/// and split at its first `/` (`BUCKET%2FKEY`, as JetS3t sends it, is BUCKET and KEY); nothing
/// is normalised (`b/../x/k` is key `../x/k` of bucket `b`). Access-point ARNs are refused:
/// directory buckets take none.
pub(crate) fn parse_copy_source(value: &str) -> Result<(String, String)> {
    let invalid = || {
        S3Error::invalid_argument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
    };
    let path = value.split_once('?').map_or(value, |(p, _)| p);
    let path = path.strip_prefix('/').unwrap_or(path);
    let decoded = String::from_utf8(crate::sigv4::percent_decode(path))
        .map_err(|_| S3Error::invalid_argument("Copy Source is not valid UTF-8 once decoded"))?;
    if decoded.starts_with("arn:") {
        return Err(S3Error::invalid_argument(
            "Access points are not supported by directory buckets",
        ));
    }
    match decoded.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_string(), k.to_string())),
        _ => Err(invalid()),
    }
}

/// The source object of a copy.
pub(crate) fn copy_source(ctx: &Ctx<'_>) -> Result<Object> {
    let (b, k) = parse_copy_source(ctx.head.get("x-amz-copy-source").unwrap_or(""))?;
    let buckets = ctx.state.buckets();
    let bucket = buckets.get(&b).ok_or_else(|| S3Error::no_such_bucket(&b))?;
    if bucket.policy == crate::Policy::Deny {
        return Err(S3Error::access_denied(format!(
            "The bucket policy of {b} denies access."
        )));
    }
    let object = bucket
        .objects
        .get(&k)
        .cloned()
        .ok_or_else(|| S3Error::no_such_key(&k))?;
    if let Some(m) = ctx.head.get("x-amz-copy-source-if-match") {
        if m.trim() != object.etag {
            return Err(S3Error::new(
                412,
                "PreconditionFailed",
                "x-amz-copy-source-if-match did not hold",
            ));
        }
    }
    Ok(object)
}

pub(crate) fn copy_object(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let source = copy_source(ctx)?;
    let replace = ctx
        .head
        .get("x-amz-metadata-directive")
        .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let requested = meta_from_request(ctx)?;
    let mut meta = if replace {
        requested.clone()
    } else {
        source.meta.clone()
    };
    meta.sse = requested.sse;
    let object = Object {
        last_modified: SystemTime::now(),
        meta,
        ..source
    };
    let mut w = Writer::new("CopyObjectResult");
    w.elem("ETag", &object.etag).elem(
        "LastModified",
        &crate::time::iso8601_millis(object.last_modified),
    );
    let mut r = xml_response(StatusCode::OK, w.finish("CopyObjectResult"));
    for (n, v) in object.meta.sse.headers(true) {
        header(&mut r, &n, &v);
    }
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    bucket.objects.insert(ctx.key.to_string(), object);
    Ok(r)
}

pub(crate) fn rename_object(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let raw = ctx
        .head
        .get("x-amz-rename-source")
        .ok_or_else(|| S3Error::invalid_request("x-amz-rename-source is required"))?;
    let decoded = String::from_utf8(crate::sigv4::percent_decode(raw))
        .map_err(|_| S3Error::invalid_argument("bad rename source"))?;
    let trimmed = decoded.strip_prefix('/').unwrap_or(&decoded);
    let source = trimmed
        .strip_prefix(&format!("{}/", ctx.bucket))
        .unwrap_or(trimmed)
        .to_string();
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    preconditions(
        ctx,
        bucket.objects.get(ctx.key).map(|o| o.etag.as_str()),
        false,
    )?;
    let object = bucket
        .objects
        .remove(&source)
        .ok_or_else(|| S3Error::no_such_key(&source))?;
    bucket.objects.insert(ctx.key.to_string(), object);
    Ok(empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources() {
        assert_eq!(
            parse_copy_source("/b--usw2-az1--x-s3/a%20b%2Bc?versionId=null").unwrap(),
            ("b--usw2-az1--x-s3".into(), "a b+c".into())
        );
        assert_eq!(
            parse_copy_source("b/k//x").unwrap(),
            ("b".into(), "k//x".into())
        );
        assert!(parse_copy_source("/only-bucket").is_err());
        // Decoded whole, then split: an encoded separator separates.
        assert_eq!(
            parse_copy_source("b%2Fdir%2Fk").unwrap(),
            ("b".into(), "dir/k".into())
        );
        // Only a slash as sent is dropped: an encoded one leaves an empty bucket.
        assert!(parse_copy_source("%2Fb/k").is_err());
        assert!(parse_copy_source("//b/k").is_err());
        // No normalisation: the key is what it says.
        assert_eq!(
            parse_copy_source("/b/../x/k").unwrap(),
            ("b".into(), "../x/k".into())
        );
        assert_eq!(
            parse_copy_source("/b/k%3Fv?versionId=1").unwrap(),
            ("b".into(), "k?v".into())
        );
        assert!(parse_copy_source("arn:aws:s3:us-west-2:1:accesspoint/a/object/k").is_err());
    }
}
