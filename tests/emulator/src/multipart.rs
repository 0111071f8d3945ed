//! Multipart uploads, which belong to their bucket rather than to the credentials that started them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use http::{Response, StatusCode};

use crate::body::Body;
use crate::checksum::{algorithm, UploadChecksum};
use crate::copy::copy_source;
use crate::error::{Result, S3Error};
use crate::objects::{header, meta_from_request, write_sse};
use crate::ops::{Ctx, Received};
use crate::respond::{empty, xml_response};
use crate::sse;
use crate::store::{etag_of, multipart_etag, random_token, Object, Part, Upload};
use crate::xml::Writer;

const MAX_PART_NUMBER: u32 = 10_000;

/// Runs `f` on the upload the request names (NoSuchUpload when there is none for its key).
pub(crate) fn with_upload<T>(ctx: &Ctx<'_>, f: impl FnOnce(&mut Upload) -> Result<T>) -> Result<T> {
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
    let meta = meta_from_request(ctx)?;
    let checksum = UploadChecksum::from_request(ctx.head)?;
    let upload_id = random_token(48);
    let upload = Upload {
        key: ctx.key.to_string(),
        initiated: SystemTime::now(),
        meta,
        checksum,
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
    for (n, v) in sse.headers(true) {
        header(&mut r, &n, &v);
    }
    if let Some(c) = checksum {
        header(&mut r, "x-amz-checksum-algorithm", &algorithm(c.name));
        header(&mut r, "x-amz-checksum-type", c.type_name());
    }
    Ok(r)
}

/// Adds the upload's checksum to a part that was sent without it.
fn with_upload_checksum(u: &Upload, part: &mut Part) {
    if let Some(c) = u.checksum {
        if !part.checksums.iter().any(|(n, _)| n == c.name) {
            let value = c.part_value(&part.data, &[]);
            part.checksums.push(value);
        }
    }
}

pub(crate) fn upload_part(ctx: &Ctx<'_>, received: Received) -> Result<Response<Body>> {
    let n = part_number(ctx)?;
    let mut part = Part {
        etag: etag_of(&received.data),
        data: received.data,
        last_modified: SystemTime::now(),
        checksums: received.checksums,
    };
    let mut r = empty(StatusCode::OK);
    header(&mut r, "etag", &part.etag);
    let sse = with_upload(ctx, |u| {
        with_upload_checksum(u, &mut part);
        for (name, v) in &part.checksums {
            header(&mut r, name, v);
        }
        u.parts.insert(n, part);
        Ok(u.meta.sse.clone())
    })?;
    for (name, v) in sse.headers(false) {
        header(&mut r, &name, &v);
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
    let mut part = Part {
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
    // Explicit SSE headers must be what the upload was created with.
    let explicit = if sse::requested(ctx.head)?.is_empty() {
        None
    } else {
        Some(write_sse(ctx)?.sse)
    };
    let sse = with_upload(ctx, |u| {
        if explicit.as_ref().is_some_and(|e| *e != u.meta.sse.sse) {
            return Err(S3Error::invalid_argument(
                "The server-side encryption of UploadPartCopy must match its multipart upload's.",
            ));
        }
        with_upload_checksum(u, &mut part);
        u.parts.insert(n, part);
        Ok(u.meta.sse.clone())
    })?;
    let mut r = xml_response(StatusCode::OK, w.finish("CopyPartResult"));
    for (name, v) in sse.headers(false) {
        header(&mut r, &name, &v);
    }
    Ok(r)
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
    if let Some(c) = upload.checksum {
        let values: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.checksums.iter().find(|(n, _)| n == c.name))
            .map(|(_, v)| v.as_str())
            .collect();
        let value = c.object_value(&values, &data);
        if let Some(claimed) = ctx.head.get(c.name).filter(|v| *v != value) {
            return Err(S3Error::new(
                400,
                "BadDigest",
                format!(
                    "The {} you specified for the object did not match the calculated checksum.",
                    algorithm(c.name)
                ),
            )
            .with("ClientComputedChecksum", claimed)
            .with("S3ComputedChecksum", value));
        }
        meta.checksums = vec![(c.name.to_string(), value)];
    }
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
        &format!(
            "https://{}{}",
            ctx.head.get("host").unwrap_or(""),
            ctx.head.raw_path
        ),
    )
    .elem("Bucket", ctx.bucket)
    .elem("Key", ctx.key)
    .elem("ETag", &object.etag);
    if let (Some(c), Some((_, v))) = (upload.checksum, object.meta.checksums.first()) {
        w.elem(&format!("Checksum{}", algorithm(c.name)), v)
            .elem("ChecksumType", c.type_name());
    }
    let mut buckets = ctx.state.buckets();
    let bucket = buckets
        .get_mut(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    bucket
        .uploads
        .remove(ctx.query.get("uploadId").unwrap_or(""));
    let object_checksum = object.meta.checksums.first().cloned();
    bucket.objects.insert(ctx.key.to_string(), object);
    let mut r = xml_response(StatusCode::OK, w.finish("CompleteMultipartUploadResult"));
    for (name, v) in upload.meta.sse.headers(false) {
        header(&mut r, &name, &v);
    }
    if let (Some(c), Some((n, v))) = (upload.checksum, object_checksum) {
        header(&mut r, &n, &v);
        header(&mut r, "x-amz-checksum-type", c.type_name());
    }
    Ok(r)
}

pub(crate) fn abort(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    with_upload(ctx, |_| Ok(()))?;
    let mut buckets = ctx.state.buckets();
    if let Some(b) = buckets.get_mut(ctx.bucket) {
        b.uploads.remove(ctx.query.get("uploadId").unwrap_or(""));
    }
    Ok(empty(StatusCode::NO_CONTENT))
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
