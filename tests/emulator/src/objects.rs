//! Object operations: PutObject (and appends), GetObject/HeadObject, DeleteObject(s).

use std::time::SystemTime;

use http::{Response, StatusCode};

use crate::auth::Principal;
use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::ops::{Ctx, Received};
use crate::range::{parse_range, Range};
use crate::respond::{empty, xml_response};
use crate::sse;
use crate::store::{etag_of, Object, ObjectMeta};
use crate::xml::Writer;

/// Stored headers that come back on GetObject/HeadObject.
const STORED: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// The encryption a write (PutObject, CreateMultipartUpload, CopyObject) gives its object:
/// on a directory bucket the session's (headers may only repeat it) or, for an IAM-signed copy,
/// AES256 or the bucket's KMS key; on a general-purpose bucket what the headers say.
pub(crate) fn write_sse(ctx: &Ctx<'_>) -> Result<sse::Settings> {
    let req = sse::requested(ctx.head)?;
    if ctx.general_purpose {
        return Ok(sse::for_general_purpose(&req));
    }
    match ctx.principal {
        Principal::Session(s) => sse::for_session_write(&req, &s.sse),
        Principal::Iam(_) => sse::for_copy(&req, &ctx.state.bucket_encryption(ctx.bucket)),
    }
}

/// Headers of a write request that are stored with the object, and its encryption.
pub(crate) fn meta_from_request(ctx: &Ctx<'_>) -> Result<ObjectMeta> {
    let mut meta = ObjectMeta::default();
    for (n, v) in &ctx.head.headers {
        if n == "content-encoding" {
            let rest: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
                .collect();
            if !rest.is_empty() {
                meta.headers.push((n.clone(), rest.join(",")));
            }
        } else if STORED.contains(&n.as_str()) || n.starts_with("x-amz-meta-") {
            meta.headers.push((n.clone(), v.clone()));
        } else if n == "x-amz-storage-class" && ctx.general_purpose && v == "EXPRESS_ONEZONE" {
            // (Directory buckets refuse other classes before the body is read: `express`.)
            return Err(S3Error::new(
                400,
                "InvalidStorageClass",
                "The storage class you specified is not valid",
            ));
        } else if n == "x-amz-tagging" {
            return Err(S3Error::not_implemented("Object tagging"));
        }
    }
    meta.sse = write_sse(ctx)?;
    Ok(meta)
}

/// Appends a header (left out if it is not a valid name and value).
pub(crate) fn header(r: &mut Response<Body>, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::try_from(name),
        http::HeaderValue::from_str(value),
    ) {
        r.headers_mut().append(n, v);
    }
}

/// Checks If-Match / If-None-Match against the current ETag (None = no object).
pub(crate) fn preconditions(ctx: &Ctx<'_>, etag: Option<&str>, reading: bool) -> Result<()> {
    let failed = || {
        S3Error::new(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
        )
    };
    if let Some(m) = ctx.head.get("if-match") {
        match etag {
            None if !reading => return Err(S3Error::no_such_key(ctx.key)),
            Some(e) if m.trim() == "*" || m.split(',').any(|x| x.trim() == e) => {}
            _ => return Err(failed()),
        }
    }
    if let Some(m) = ctx.head.get("if-none-match") {
        let hit = etag.is_some_and(|e| m.trim() == "*" || m.split(',').any(|x| x.trim() == e));
        if hit && reading {
            return Err(S3Error::new(304, "NotModified", "Not Modified"));
        }
        if hit {
            return Err(failed());
        }
    }
    Ok(())
}

pub(crate) fn put_object(ctx: &Ctx<'_>, received: Received) -> Result<Response<Body>> {
    let mut meta = meta_from_request(ctx)?;
    meta.checksums = received.checksums;
    let offset = ctx.head.get("x-amz-write-offset-bytes");
    // The ETag of a plain PUT is computed before taking the store lock (bodies may be GiBs).
    let plain_etag = offset.is_none().then(|| etag_of(&received.data));
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    let existing = bucket.objects.get(ctx.key);
    preconditions(ctx, existing.map(|o| o.etag.as_str()), false)?;
    let (data, etag) = match (offset, plain_etag) {
        (None, Some(etag)) => (received.data, etag),
        (off, _) => {
            let current = existing.map_or(0, |o| o.data.len() as u64);
            if off.and_then(|o| o.parse::<u64>().ok()) != Some(current) {
                return Err(S3Error::new(
                    400,
                    "InvalidWriteOffset",
                    format!("The write offset must be the object size, {current}."),
                ));
            }
            let data: bytes::Bytes = match existing {
                Some(o) => {
                    meta = o.meta.clone();
                    meta.checksums.clear();
                    let mut joined = Vec::with_capacity(o.data.len() + received.data.len());
                    joined.extend_from_slice(&o.data);
                    joined.extend_from_slice(&received.data);
                    joined.into()
                }
                None => received.data,
            };
            let etag = etag_of(&data);
            (data, etag)
        }
    };
    let object = Object {
        etag,
        last_modified: SystemTime::now(),
        part_sizes: Vec::new(),
        data,
        meta,
    };
    let mut r = empty(StatusCode::OK);
    header(&mut r, "etag", &object.etag);
    for (n, v) in object
        .meta
        .checksums
        .iter()
        .chain(&object.meta.sse.headers(true))
    {
        header(&mut r, n, v);
    }
    if offset.is_some() {
        header(&mut r, "x-amz-object-size", &object.data.len().to_string());
    }
    bucket.objects.insert(ctx.key.to_string(), object);
    Ok(r)
}

fn object_headers(r: &mut Response<Body>, o: &Object, storage_class: &str) {
    header(r, "etag", &o.etag);
    header(r, "last-modified", &crate::time::http_date(o.last_modified));
    header(r, "accept-ranges", "bytes");
    // S3 leaves STANDARD out.
    if storage_class != "STANDARD" {
        header(r, "x-amz-storage-class", storage_class);
    }
    if !o.meta.headers.iter().any(|(n, _)| n == "content-type") {
        header(r, "content-type", "binary/octet-stream");
    }
    for (n, v) in o.meta.headers.iter().chain(&o.meta.sse.headers(false)) {
        header(r, n, v);
    }
}

/// A copy of the object the request names, or NoSuchBucket / NoSuchKey.
pub(crate) fn stored_object(ctx: &Ctx<'_>) -> Result<Object> {
    let buckets = ctx.state.buckets();
    let bucket = buckets
        .get(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    bucket
        .objects
        .get(ctx.key)
        .cloned()
        .ok_or_else(|| S3Error::no_such_key(ctx.key))
}

pub(crate) fn get_object(ctx: &Ctx<'_>, head_only: bool) -> Result<Response<Body>> {
    let object = stored_object(ctx)?;
    preconditions(ctx, Some(&object.etag), true)?;
    let len = object.data.len() as u64;
    let part = ctx.query.get("partNumber");
    let range = match (part, ctx.head.get("range")) {
        (Some(_), Some(_)) => {
            return Err(S3Error::invalid_request(
                "Cannot specify both Range header and partNumber query parameter.",
            ))
        }
        (Some(p), None) => {
            let sizes = if object.part_sizes.is_empty() {
                vec![len]
            } else {
                object.part_sizes.clone()
            };
            let n: usize = p
                .parse()
                .ok()
                .filter(|n| (1..=sizes.len()).contains(n))
                .ok_or_else(|| {
                    S3Error::new(
                        416,
                        "InvalidPartNumber",
                        "The requested partnumber is not satisfiable",
                    )
                })?;
            let start: u64 = sizes[..n - 1].iter().sum();
            if sizes[n - 1] == 0 {
                Range::Full
            } else {
                Range::Partial(start, start + sizes[n - 1] - 1)
            }
        }
        (None, Some(h)) => parse_range(h, len),
        (None, None) => Range::Full,
    };
    let (status, start, end) = match range {
        Range::Full => (StatusCode::OK, 0, len),
        Range::Partial(a, b) => (StatusCode::PARTIAL_CONTENT, a, b + 1),
        Range::Unsatisfiable => {
            return Err(S3Error::new(
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
            )
            .with("RangeRequested", ctx.head.get("range").unwrap_or(""))
            .with("ActualObjectSize", len.to_string())
            .header("content-range", format!("bytes */{len}")))
        }
    };
    let slice = object.data.slice(start as usize..end as usize);
    let body = if head_only {
        Body::empty()
    } else {
        let (rate, reset) = {
            let mut f = ctx.state.faults();
            (f.slow_body, f.take_reset(ctx.req))
        };
        let body = Body::streamed(slice, rate);
        match reset {
            Some(after) => body.reset_after(after, ctx.conn.clone()),
            None => body,
        }
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    object_headers(&mut r, &object, ctx.storage_class());
    header(&mut r, "content-length", &(end - start).to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        header(
            &mut r,
            "content-range",
            &format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    if part.is_some() {
        header(
            &mut r,
            "x-amz-mp-parts-count",
            &object.part_sizes.len().max(1).to_string(),
        );
    }
    let checksum_mode = ctx
        .head
        .get("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"));
    if checksum_mode && status == StatusCode::OK && !object.meta.checksums.is_empty() {
        for (n, v) in &object.meta.checksums {
            header(&mut r, n, v);
        }
        let kind = if object.meta.checksums.iter().any(|(_, v)| v.contains('-')) {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        };
        header(&mut r, "x-amz-checksum-type", kind);
    }
    for (param, name) in [
        ("response-content-type", "content-type"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
        ("response-content-language", "content-language"),
        ("response-cache-control", "cache-control"),
        ("response-expires", "expires"),
    ] {
        if let Some(v) = ctx.query.get(param) {
            r.headers_mut().remove(name);
            header(&mut r, name, v);
        }
    }
    Ok(r)
}

pub(crate) fn delete_object(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    bucket.objects.remove(ctx.key);
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(crate) fn delete_objects(ctx: &Ctx<'_>, body: &[u8]) -> Result<Response<Body>> {
    let doc = std::str::from_utf8(body).map_err(S3Error::malformed_xml)?;
    let root = crate::xml::parse(doc).map_err(S3Error::malformed_xml)?;
    if root.name != "Delete" {
        return Err(S3Error::malformed_xml("the root element must be Delete"));
    }
    let quiet = root.child_text("Quiet").is_some_and(|q| q.trim() == "true");
    let keys: Vec<String> = root
        .all("Object")
        .map(|o| {
            o.child_text("Key")
                .map(str::to_string)
                .ok_or_else(|| S3Error::malformed_xml("Object without Key"))
        })
        .collect::<Result<_>>()?;
    if keys.is_empty() || keys.len() > 1000 {
        return Err(S3Error::malformed_xml(
            "between 1 and 1000 objects must be named",
        ));
    }
    let mut w = Writer::new("DeleteResult");
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    for key in keys {
        bucket.objects.remove(&key);
        if !quiet {
            w.open("Deleted").elem("Key", &key).close("Deleted");
        }
    }
    Ok(xml_response(StatusCode::OK, w.finish("DeleteResult")))
}
