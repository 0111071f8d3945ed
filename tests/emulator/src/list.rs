//! ListObjectsV2 and the paging both listings share: prefix, delimiter, max-keys, tokens.

use std::collections::BTreeMap;

use base64::Engine;
use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::ops::Ctx;
use crate::order::{ordered, Order};
use crate::respond::xml_response;
use crate::store::Object;
use crate::xml::Writer;

/// The request's listing parameters.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: usize,
    pub start_after: Option<String>,
    pub token: Option<String>,
}

/// One listed item.
#[derive(Debug)]
pub(crate) enum Entry<'a> {
    Object(&'a str, &'a Object),
    Prefix(String),
}

/// One page of results.
#[derive(Debug)]
pub(crate) struct Page<'a> {
    pub entries: Vec<Entry<'a>>,
    pub truncated: bool,
    pub next_token: Option<String>,
}

/// The continuation token that resumes a listing after `entry`.
pub(crate) fn encode_token(entry: &Entry<'_>) -> String {
    let raw = match entry {
        Entry::Object(k, _) => format!("k{k}"),
        Entry::Prefix(p) => format!("p{p}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// (marker, whether the marker is a common prefix whose keys must all be skipped)
fn decode_token(token: &str) -> Option<(String, bool)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let mut chars = raw.chars();
    match chars.next()? {
        'k' => Some((chars.as_str().to_string(), false)),
        'p' => Some((chars.as_str().to_string(), true)),
        _ => None,
    }
}

/// Computes one page over the bucket's keys, in `order`.
pub(crate) fn page<'a>(
    objects: &'a BTreeMap<String, Object>,
    p: &Params,
    order: Order,
) -> Result<Page<'a>> {
    let (marker, skip_prefix) = match (&p.token, &p.start_after) {
        (Some(t), _) => decode_token(t).ok_or_else(|| {
            S3Error::invalid_argument("The continuation token provided is incorrect")
        })?,
        (None, Some(s)) => (s.clone(), false),
        (None, None) => (String::new(), false),
    };
    let mut entries: Vec<Entry<'a>> = Vec::new();
    for (key, object) in ordered(objects, &p.prefix, &marker, order) {
        if entries.len() > p.max_keys {
            break;
        }
        if skip_prefix && key.starts_with(&marker) {
            continue;
        }
        let rest = &key[p.prefix.len()..];
        match p
            .delimiter
            .as_deref()
            .and_then(|d| rest.find(d).map(|i| i + d.len()))
        {
            Some(end) => {
                let cp = key[..p.prefix.len() + end].to_string();
                if !matches!(entries.last(), Some(Entry::Prefix(last)) if *last == cp) {
                    entries.push(Entry::Prefix(cp));
                }
            }
            None => entries.push(Entry::Object(key, object)),
        }
    }
    let truncated = entries.len() > p.max_keys && p.max_keys > 0;
    entries.truncate(p.max_keys);
    let next_token = truncated.then(|| encode_token(entries.last().expect("max_keys > 0")));
    Ok(Page {
        entries,
        truncated,
        next_token,
    })
}

/// The parameters ListObjects and ListObjectsV2 share: prefix, delimiter (empty means none;
/// what directory buckets refuse is refused earlier, see `express`), max-keys (at most 1000)
/// and whether keys are URL-encoded.
pub(crate) fn common_params(ctx: &Ctx<'_>) -> Result<(Params, bool)> {
    let q = ctx.query;
    let url = match q.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => {
            return Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
            ))
        }
    };
    let delimiter = q
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let max_keys = match q.get("max-keys") {
        None => 1000,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| S3Error::invalid_argument("max-keys must be a non-negative integer"))?
            .min(1000),
    };
    let params = Params {
        prefix: q.get("prefix").unwrap_or("").to_string(),
        delimiter,
        max_keys,
        ..Params::default()
    };
    Ok((params, url))
}

/// `s` as listed: URL-encoded when `encoding-type=url` was asked for.
pub(crate) fn encoder(url: bool) -> impl Fn(&str) -> String {
    move |s: &str| {
        if url {
            crate::sigv4::uri_encode(s.as_bytes(), true)
        } else {
            s.to_string()
        }
    }
}

/// The `Contents` and `CommonPrefixes` elements of a page.
pub(crate) fn write_entries(
    w: &mut Writer,
    page: &Page<'_>,
    enc: &dyn Fn(&str) -> String,
    storage_class: &str,
) {
    for e in &page.entries {
        if let Entry::Object(key, o) = e {
            w.open("Contents")
                .elem("Key", &enc(key))
                .elem(
                    "LastModified",
                    &crate::time::iso8601_millis(o.last_modified),
                )
                .elem("ETag", &o.etag)
                .elem("Size", &o.data.len().to_string())
                .elem("StorageClass", storage_class);
            for (n, _) in &o.meta.checksums {
                w.elem(
                    "ChecksumAlgorithm",
                    &n.trim_start_matches("x-amz-checksum-").to_uppercase(),
                );
            }
            w.close("Contents");
        }
    }
    for e in &page.entries {
        if let Entry::Prefix(p) = e {
            w.open("CommonPrefixes")
                .elem("Prefix", &enc(p))
                .close("CommonPrefixes");
        }
    }
}

pub(crate) fn list_objects_v2(ctx: &Ctx<'_>) -> Result<Response<Body>> {
    let q = ctx.query;
    let (mut params, url) = common_params(ctx)?;
    params.start_after = q
        .get("start-after")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    params.token = q.get("continuation-token").map(str::to_string);
    let enc = encoder(url);
    let buckets = ctx.state.buckets();
    let bucket = buckets
        .get(ctx.bucket)
        .ok_or_else(|| S3Error::no_such_bucket(ctx.bucket))?;
    let order = if ctx.general_purpose {
        Order::Lexicographic
    } else {
        Order::DirectoryWalk
    };
    let page = page(&bucket.objects, &params, order)?;
    let mut w = Writer::new("ListBucketResult");
    w.elem("Name", ctx.bucket)
        .elem("Prefix", &enc(&params.prefix))
        .elem("MaxKeys", &params.max_keys.to_string())
        .elem("KeyCount", &page.entries.len().to_string())
        .elem("IsTruncated", &page.truncated.to_string());
    if let Some(d) = &params.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    if let Some(t) = &params.token {
        w.elem("ContinuationToken", t);
    }
    if let Some(t) = &page.next_token {
        w.elem("NextContinuationToken", t);
    }
    if let Some(s) = &params.start_after {
        w.elem("StartAfter", &enc(s));
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
    use crate::store::ObjectMeta;

    fn objects(keys: &[&str]) -> BTreeMap<String, Object> {
        keys.iter()
            .map(|k| {
                let o = Object {
                    data: bytes::Bytes::from_static(b"x"),
                    etag: "\"e\"".into(),
                    last_modified: std::time::SystemTime::now(),
                    meta: ObjectMeta::default(),
                    part_sizes: Vec::new(),
                };
                (k.to_string(), o)
            })
            .collect()
    }

    fn names(p: &Page<'_>) -> Vec<String> {
        p.entries
            .iter()
            .map(|e| match e {
                Entry::Object(k, _) => k.to_string(),
                Entry::Prefix(p) => format!("P:{p}"),
            })
            .collect()
    }

    fn page_sorted<'a>(objs: &'a BTreeMap<String, Object>, p: &Params) -> Result<Page<'a>> {
        page(objs, p, Order::Lexicographic)
    }

    /// Every entry of a listing, page by page.
    fn walk(objs: &BTreeMap<String, Object>, mut p: Params, order: Order) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let pg = page(objs, &p, order).unwrap();
            assert!(pg.entries.len() <= p.max_keys);
            seen.extend(names(&pg));
            match pg.next_token {
                Some(t) => p.token = Some(t),
                None => return seen,
            }
        }
    }

    #[test]
    fn directory_walk_pages_cover_every_entry_once_unsorted() {
        let keys = [
            "a/1", "a/2", "a/b/3", "a/b/4", "b", "c/x", "c/y", "d", "e+ g%", "e//f", "f/g/h", "z",
        ];
        let objs = objects(&keys);
        for (prefix, delimiter, expected) in [
            (
                "",
                None,
                keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            ),
            (
                "",
                Some("/"),
                ["P:a/", "b", "P:c/", "d", "e+ g%", "P:e/", "P:f/", "z"]
                    .map(String::from)
                    .to_vec(),
            ),
            (
                "a/",
                Some("/"),
                ["a/1", "a/2", "P:a/b/"].map(String::from).to_vec(),
            ),
        ] {
            let whole = walk(&objs, params(prefix, delimiter, 1000), Order::DirectoryWalk);
            let mut sorted = whole.clone();
            sorted.sort_by_key(|n| n.trim_start_matches("P:").to_string());
            assert_eq!(sorted, expected, "{prefix:?} {delimiter:?}");
            for max in 1..5 {
                let paged = walk(&objs, params(prefix, delimiter, max), Order::DirectoryWalk);
                assert_eq!(paged, whole, "max-keys {max}");
            }
        }
        let whole = walk(&objs, params("", None, 1000), Order::DirectoryWalk);
        assert_ne!(whole, keys, "a directory bucket does not list in key order");
    }

    fn params(prefix: &str, delimiter: Option<&str>, max_keys: usize) -> Params {
        Params {
            prefix: prefix.into(),
            delimiter: delimiter.map(str::to_string),
            max_keys,
            ..Params::default()
        }
    }

    #[test]
    fn delimiter_groups_common_prefixes() {
        let objs = objects(&["a/1", "a/2", "a/b/3", "b", "c/x", "d"]);
        let p = page_sorted(&objs, &params("", Some("/"), 1000)).unwrap();
        assert_eq!(names(&p), ["P:a/", "b", "P:c/", "d"]);
        assert!(!p.truncated);
        let p = page_sorted(&objs, &params("a/", Some("/"), 1000)).unwrap();
        assert_eq!(names(&p), ["a/1", "a/2", "P:a/b/"]);
        let p = page_sorted(&objs, &params("a", None, 1000)).unwrap();
        assert_eq!(names(&p), ["a/1", "a/2", "a/b/3"]);
    }

    #[test]
    fn pagination_walks_every_entry_once() {
        let objs = objects(&[
            "a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d", "e//f", "e+ g%",
        ]);
        for max in 1..5 {
            let mut seen = Vec::new();
            let mut p = params("", Some("/"), max);
            loop {
                let pg = page(&objs, &p, Order::Lexicographic).unwrap();
                assert!(pg.entries.len() <= max);
                seen.extend(names(&pg));
                match pg.next_token {
                    Some(t) => p.token = Some(t),
                    None => break,
                }
            }
            assert_eq!(
                seen,
                ["P:a/", "b", "P:c/", "d", "e+ g%", "P:e/"],
                "max-keys {max}"
            );
        }
    }

    #[test]
    fn start_after_and_bad_tokens() {
        let objs = objects(&["a", "b", "c"]);
        let mut p = params("", None, 1000);
        p.start_after = Some("a".into());
        assert_eq!(
            names(&page(&objs, &p, Order::Lexicographic).unwrap()),
            ["b", "c"]
        );
        p.token = Some("!!!".into());
        assert!(page(&objs, &p, Order::Lexicographic).is_err());
        let p0 = page_sorted(&objs, &params("", None, 0)).unwrap();
        assert!(p0.entries.is_empty() && !p0.truncated);
    }

    #[test]
    fn url_encoding_of_keys() {
        let enc = |s: &str| crate::sigv4::uri_encode(s.as_bytes(), true);
        assert_eq!(enc("a b+c%/ü//x"), "a%20b%2Bc%25/%C3%BC//x");
    }
}
