//! GetObjectAttributes (`GET /KEY?attributes` with `x-amz-object-attributes`).

use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::objects::header;
use crate::ops::Ctx;
use crate::respond::xml_response;
use crate::xml::Writer;

pub(crate) fn get_object_attributes(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let wanted: Vec<String> = ctx
        .head
        .get("x-amz-object-attributes")
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    const KNOWN: [&str; 5] = [
        "ETag",
        "Checksum",
        "ObjectParts",
        "StorageClass",
        "ObjectSize",
    ];
    if wanted.is_empty() || wanted.iter().any(|a| !KNOWN.contains(&a.as_str())) {
        return Err(S3Error::invalid_argument("x-amz-object-attributes must list ETag, Checksum, ObjectParts, StorageClass or ObjectSize"));
    }
    let object = crate::objects::stored_object(ctx)?;
    let has = |a: &str| wanted.iter().any(|w| w == a);
    let mut w = Writer::new("GetObjectAttributesResponse");
    if has("ETag") {
        w.elem("ETag", object.etag.trim_matches('"'));
    }
    if has("Checksum") && !object.meta.checksums.is_empty() {
        w.open("Checksum");
        for (n, v) in &object.meta.checksums {
            let algo = n.trim_start_matches("x-amz-checksum-").to_uppercase();
            w.elem(&format!("Checksum{algo}"), v);
        }
        w.close("Checksum");
    }
    if has("ObjectParts") && !object.part_sizes.is_empty() {
        w.open("ObjectParts")
            .elem("TotalPartsCount", &object.part_sizes.len().to_string())
            .close("ObjectParts");
    }
    if has("StorageClass") {
        w.elem("StorageClass", ctx.storage_class());
    }
    if has("ObjectSize") {
        w.elem("ObjectSize", &object.data.len().to_string());
    }
    let mut r = xml_response(StatusCode::OK, w.finish("GetObjectAttributesResponse"));
    header(
        &mut r,
        "last-modified",
        &crate::time::http_date(object.last_modified),
    );
    Ok(r)
}
