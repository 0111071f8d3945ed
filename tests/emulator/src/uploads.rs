//! ListParts and ListMultipartUploads: the parts of an upload, the uploads of a bucket.

use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::multipart::with_upload;
use crate::ops::Ctx;
use crate::respond::xml_response;
use crate::store::{Bucket, Part, Upload};
use crate::xml::Writer;

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
        .elem("StorageClass", ctx.storage_class());
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
            .elem("StorageClass", ctx.storage_class())
            .close("Upload");
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListMultipartUploadsResult"),
    ))
}
