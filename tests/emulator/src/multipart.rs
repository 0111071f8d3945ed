//! Multipart uploads. An upload belongs to its bucket, not to the credentials that started it:
//! sessions rotate mid-upload and UploadPartCopy is IAM-signed.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::{Response, StatusCode};

use crate::body::Body;
use crate::copy::copy_source;
use crate::error::{Result, S3Error};
use crate::objects::meta_from_request;
use crate::ops::{empty, xml_response, Ctx, Received};
use crate::store::{etag_of, multipart_etag, random_token, Bucket, Object, Part, Upload};
use crate::xml::Writer;

const MAX_PART_NUMBER: u32 = 10_000;

fn with_upload<T>(ctx: &Ctx<'_>, f: impl FnOnce(&mut Upload) -> Result<T>) -> Result<T> {
    let upload_id = ctx.query.get("uploadId").unwrap_or("");
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    match bucket.uploads.get_mut(upload_id) {
        Some(u) if u.key == ctx.key => f(u),
        _ => Err(S3Error::no_such_upload(upload_id)),
    }
}

fn part_number(ctx: &Ctx<'_>) -> Result<u32> {
    ctx.query
        .get("partNumber")
        .and_then(|p| p.parse().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

pub(crate) fn create(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let mut meta = meta_from_request(ctx)?;
    if let Some(a) = ctx.head.get("x-amz-checksum-algorithm") {
        meta.headers
            .push(("x-amz-checksum-algorithm".into(), a.to_string()));
    }
    let upload_id = random_token(48);
    let upload = Upload {
        key: ctx.key.to_string(),
        initiated: SystemTime::now(),
        meta,
        parts: BTreeMap::new(),
    };
    let sse = upload.meta.sse.clone();
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    bucket.uploads.insert(upload_id.clone(), upload);
    let mut w = Writer::new("InitiateMultipartUploadResult");
    w.elem("Bucket", ctx.bucket)
        .elem("Key", ctx.key)
        .elem("UploadId", &upload_id);
    let mut r = xml_response(StatusCode::OK, w.finish("InitiateMultipartUploadResult"));
    for (n, v) in sse {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(n), v.parse()) {
            r.headers_mut().insert(n, v);
        }
    }
    Ok(r)
}

pub(crate) fn upload_part(ctx: &Ctx<'_>, received: Received) -> Result<Response<Body>> {
    let n = part_number(ctx)?;
    let part = Part {
        etag: etag_of(&received.data),
        data: received.data,
        last_modified: SystemTime::now(),
        checksums: received.checksums,
    };
    let mut r = empty(StatusCode::OK);
    r.headers_mut().insert(
        "etag",
        part.etag.parse().map_err(|_| S3Error::internal("etag"))?,
    );
    for (name, v) in &part.checksums {
        if let (Ok(name), Ok(v)) = (http::HeaderName::try_from(name.as_str()), v.parse()) {
            r.headers_mut().insert(name, v);
        }
    }
    // S3 answers UploadPart with the upload's encryption headers, as it does CreateMultipartUpload
    // (s3cmd, for one, reads them to know the part's ETag is no MD5 under SSE-KMS).
    let sse = with_upload(ctx, |u| {
        u.parts.insert(n, part);
        Ok(u.meta.sse.clone())
    })?;
    for (name, v) in sse {
        if let (Ok(name), Ok(v)) = (http::HeaderName::try_from(name), v.parse()) {
            r.headers_mut().insert(name, v);
        }
    }
    Ok(r)
}

pub(crate) fn upload_part_copy(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let n = part_number(ctx)?;
    let source = copy_source(ctx)?;
    let len = source.data.len() as u64;
    let data = match ctx.head.get("x-amz-copy-source-range") {
        None => source.data.clone(),
        Some(h) => {
            let (a, b) = copy_range(h, len).ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy (object size {len})"
                ))
            })?;
            source.data.slice(a as usize..b as usize + 1)
        }
    };
    let part = Part {
        etag: etag_of(&data),
        data,
        last_modified: SystemTime::now(),
        checksums: Vec::new(),
    };
    let mut w = Writer::new("CopyPartResult");
    w.elem("ETag", &part.etag).elem(
        "LastModified",
        &crate::time::iso8601_millis(part.last_modified),
    );
    with_upload(ctx, |u| {
        u.parts.insert(n, part);
        Ok(())
    })?;
    Ok(xml_response(StatusCode::OK, w.finish("CopyPartResult")))
}

/// `bytes=first-last` within an object of `len` bytes (both offsets required).
fn copy_range(h: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = h.trim().strip_prefix("bytes=")?.split_once('-')?;
    let (a, b) = (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?);
    (a <= b && b < len).then_some((a, b))
}

fn invalid_part(n: u32) -> S3Error {
    S3Error::new(
        400,
        "InvalidPart",
        format!("One or more of the specified parts could not be found (part {n}). The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."),
    )
}

pub(crate) fn complete(ctx: &Ctx<'_>, body: &[u8]) -> Result<Response<Body>> {
    let doc = std::str::from_utf8(body).map_err(S3Error::malformed_xml)?;
    let root = crate::xml::parse(doc).map_err(S3Error::malformed_xml)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml(
            "the root element must be CompleteMultipartUpload",
        ));
    }
    let mut listed: Vec<(u32, String)> = Vec::new();
    for p in root.all("Part") {
        let n = p
            .child_text("PartNumber")
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| S3Error::malformed_xml("Part without a valid PartNumber"))?;
        let etag = p.child_text("ETag").unwrap_or("").trim().to_string();
        listed.push((n, etag));
    }
    if listed.is_empty() {
        return Err(S3Error::malformed_xml("no parts listed"));
    }
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(S3Error::new(
            400,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    let min = ctx.state.config.min_part_size;
    let upload = with_upload(ctx, |u| {
        for (i, (n, etag)) in listed.iter().enumerate() {
            let part = u.parts.get(n).ok_or_else(|| invalid_part(*n))?;
            let bare = |s: &str| s.trim_matches('"').to_string();
            if !etag.is_empty() && bare(etag) != bare(&part.etag) {
                return Err(invalid_part(*n));
            }
            if i + 1 < listed.len() && (part.data.len() as u64) < min {
                return Err(S3Error::new(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                )
                .with("PartNumber", n.to_string())
                .with("MinSizeAllowed", min.to_string()));
            }
        }
        Ok(u.clone())
    })?;
    let parts: Vec<&Part> = listed.iter().map(|(n, _)| &upload.parts[n]).collect();
    let total: usize = parts.iter().map(|p| p.data.len()).sum();
    let mut data = Vec::with_capacity(total);
    for p in &parts {
        data.extend_from_slice(&p.data);
    }
    let etags: Vec<&str> = parts.iter().map(|p| p.etag.as_str()).collect();
    let mut meta = upload.meta.clone();
    meta.headers
        .retain(|(n, _)| n != "x-amz-checksum-algorithm");
    let object = Object {
        data: data.into(),
        etag: multipart_etag(&etags),
        last_modified: SystemTime::now(),
        meta,
        part_sizes: parts.iter().map(|p| p.data.len() as u64).collect(),
    };
    let mut w = Writer::new("CompleteMultipartUploadResult");
    w.elem(
        "Location",
        &format!("https://{}/{}", ctx.head.get("host").unwrap_or(""), ctx.key),
    )
    .elem("Bucket", ctx.bucket)
    .elem("Key", ctx.key)
    .elem("ETag", &object.etag);
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    bucket
        .uploads
        .remove(ctx.query.get("uploadId").unwrap_or(""));
    bucket.objects.insert(ctx.key.to_string(), object);
    Ok(xml_response(
        StatusCode::OK,
        w.finish("CompleteMultipartUploadResult"),
    ))
}

pub(crate) fn abort(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    with_upload(ctx, |_| Ok(()))?;
    let mut buckets = ctx.state.buckets();
    if let Some(b) = buckets.get_mut(ctx.bucket) {
        b.uploads.remove(ctx.query.get("uploadId").unwrap_or(""));
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

fn max_param(ctx: &Ctx<'_>, name: &str) -> Result<usize> {
    match ctx.query.get(name) {
        None => Ok(1000),
        Some(v) => v.parse::<usize>().map(|n| n.min(1000)).map_err(|_| {
            S3Error::invalid_argument(format!("{name} must be a non-negative integer"))
        }),
    }
}

pub(crate) fn list_parts(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let max = max_param(ctx, "max-parts")?;
    let marker: u32 = ctx
        .query
        .get("part-number-marker")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let upload_id = ctx.query.get("uploadId").unwrap_or("").to_string();
    let upload = with_upload(ctx, |u| Ok(u.clone()))?;
    let remaining: Vec<(&u32, &Part)> = upload.parts.range(marker + 1..).collect();
    let page = &remaining[..remaining.len().min(max)];
    let truncated = remaining.len() > page.len();
    let mut w = Writer::new("ListPartsResult");
    w.elem("Bucket", ctx.bucket)
        .elem("Key", ctx.key)
        .elem("UploadId", &upload_id)
        .elem("PartNumberMarker", &marker.to_string())
        .elem(
            "NextPartNumberMarker",
            &page.last().map_or(marker, |(n, _)| **n).to_string(),
        )
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", &truncated.to_string())
        .elem("StorageClass", "EXPRESS_ONEZONE");
    for (n, p) in page {
        w.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem(
                "LastModified",
                &crate::time::iso8601_millis(p.last_modified),
            )
            .elem("ETag", &p.etag)
            .elem("Size", &p.data.len().to_string());
        for (name, v) in &p.checksums {
            let algo = name.trim_start_matches("x-amz-checksum-").to_uppercase();
            w.elem(&format!("Checksum{algo}"), v);
        }
        w.close("Part");
    }
    Ok(xml_response(StatusCode::OK, w.finish("ListPartsResult")))
}

pub(crate) fn list_uploads(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let max = max_param(ctx, "max-uploads")?;
    let prefix = ctx.query.get("prefix").unwrap_or("");
    let key_marker = ctx.query.get("key-marker").unwrap_or("");
    let id_marker = ctx.query.get("upload-id-marker").unwrap_or("");
    let buckets = ctx.state.buckets();
    let bucket: &Bucket = buckets
        .get(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    let after_marker = |k: &str, id: &str| {
        key_marker.is_empty()
            || k > key_marker
            || (k == key_marker && !id_marker.is_empty() && id > id_marker)
    };
    let mut all: Vec<(&String, &String, &Upload)> = bucket
        .uploads
        .iter()
        .map(|(id, u)| (&u.key, id, u))
        .filter(|(k, id, _)| k.starts_with(prefix) && after_marker(k, id))
        .collect();
    all.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let truncated = all.len() > max;
    all.truncate(max);
    let mut w = Writer::new("ListMultipartUploadsResult");
    w.elem("Bucket", ctx.bucket)
        .elem("KeyMarker", key_marker)
        .elem("UploadIdMarker", id_marker)
        .elem("NextKeyMarker", all.last().map_or("", |u| u.0))
        .elem("NextUploadIdMarker", all.last().map_or("", |u| u.1))
        .elem("Prefix", prefix)
        .elem("MaxUploads", &max.to_string())
        .elem("IsTruncated", &truncated.to_string());
    for (key, id, u) in all {
        w.open("Upload")
            .elem("Key", key)
            .elem("UploadId", id)
            .elem("Initiated", &crate::time::iso8601_millis(u.initiated))
            .elem("StorageClass", "EXPRESS_ONEZONE")
            .close("Upload");
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListMultipartUploadsResult"),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_ranges() {
        assert_eq!(super::copy_range("bytes=0-9", 10), Some((0, 9)));
        assert_eq!(super::copy_range("bytes=0-10", 10), None);
        assert_eq!(super::copy_range("bytes=5-", 10), None);
        assert_eq!(super::copy_range("bytes=-5", 10), None);
        assert_eq!(super::copy_range("bytes=6-5", 10), None);
    }
}
