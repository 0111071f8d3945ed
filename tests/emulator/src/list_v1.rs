//! ListObjects (v1) on general-purpose buckets: prefix, delimiter, marker, NextMarker.

use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::list::{common_params, encode_token, encoder, page, write_entries, Entry, Params};
use crate::ops::Ctx;
use crate::order::Order;
use crate::respond::xml_response;
use crate::xml::Writer;

/// Where a v1 listing resumes: after `marker`, and past every key a common prefix `marker`
/// rolls up (a NextMarker may be a common prefix).
fn resume(params: &mut Params, marker: &str) {
    if marker.is_empty() {
        return;
    }
    let rolled_up = params.delimiter.as_deref().is_some_and(|d| {
        marker
            .strip_prefix(params.prefix.as_str())
            .is_some_and(|rest| rest.ends_with(d) && rest.find(d) == Some(rest.len() - d.len()))
    });
    if rolled_up {
        params.token = Some(encode_token(&Entry::Prefix(marker.to_string())));
    } else {
        params.start_after = Some(marker.to_string());
    }
}

pub(crate) fn list_objects(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let (mut params, url) = common_params(ctx)?;
    let marker = ctx.query.get("marker").unwrap_or("").to_string();
    resume(&mut params, &marker);
    let enc = encoder(url);
    let buckets = ctx.state.buckets();
    let bucket = buckets
        .get(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    let page = page(&bucket.objects, &params, Order::Lexicographic)?;
    let mut w = Writer::new("ListBucketResult");
    w.elem("Name", ctx.bucket)
        .elem("Prefix", &enc(&params.prefix))
        .elem("Marker", &enc(&marker))
        .elem("MaxKeys", &params.max_keys.to_string());
    if let Some(d) = &params.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    w.elem("IsTruncated", &page.truncated.to_string());
    // As S3: NextMarker only with a delimiter (otherwise clients resume after the last key).
    if let (true, Some(_), Some(last)) = (page.truncated, &params.delimiter, page.entries.last()) {
        let next = match last {
            Entry::Object(k, _) => k.to_string(),
            Entry::Prefix(p) => p.clone(),
        };
        w.elem("NextMarker", &enc(&next));
    }
    if url {
        w.elem("EncodingType", "url");
    }
    write_entries(&mut w, &page, &enc, ctx.storage_class());
    Ok(xml_response(StatusCode::OK, w.finish("ListBucketResult")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_common_prefix_marker_skips_its_keys() {
        let mut p = Params {
            prefix: "a/".into(),
            delimiter: Some("/".into()),
            max_keys: 10,
            ..Params::default()
        };
        resume(&mut p, "a/b/");
        assert!(p.token.is_some() && p.start_after.is_none());
        let mut p = Params {
            delimiter: Some("/".into()),
            ..Params::default()
        };
        resume(&mut p, "a/b");
        assert_eq!(p.start_after.as_deref(), Some("a/b"));
        let mut p = Params::default();
        resume(&mut p, "a/");
        assert_eq!(p.start_after.as_deref(), Some("a/"));
    }
}
