//! Listing XML: a ListObjectsV2 page read from S3 (keys URL-decoded), and the v1 or v2
//! `ListBucketResult` written for the client.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::request::Plan;
use crate::xml::{parse_tree, Element, XmlWriter};

/// What `encoding-type=url` leaves as it is: RFC 3986 unreserved characters and `/`, as S3 does.
const KEY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// One object of a listing: its key (decoded) and the rest of its `<Contents>`, kept as S3
/// wrote it (LastModified, ETag, checksums, Size, StorageClass, Owner, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// The key, decoded.
    pub key: String,
    /// The other children of `<Contents>`, in S3's order.
    pub rest: Vec<Element>,
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A common prefix (with a delimiter).
    Prefix(String),
    /// An object.
    Object(Object),
}

impl Entry {
    /// The key or common prefix (markers name either).
    pub fn name(&self) -> &str {
        match self {
            Entry::Prefix(p) => p,
            Entry::Object(o) => &o.key,
        }
    }
}

/// One ListObjectsV2 page from S3.
#[derive(Debug)]
pub struct Page {
    /// Its entries in the proxy's order for a page: common prefixes, then objects, each as S3
    /// listed them. Markers are found by position in this order.
    pub entries: Vec<Entry>,
    /// The token of the next page, when S3 said the listing is truncated.
    pub next_token: Option<String>,
}

/// Reads a ListObjectsV2 answer; keys are decoded when S3 URL-encoded them.
pub fn parse(xml: &str) -> Result<Page, &'static str> {
    let root = parse_tree(xml).map_err(|_| "the listing is not well-formed XML")?;
    if root.name != "ListBucketResult" {
        return Err("the listing is not a ListBucketResult");
    }
    let url = root.child_text("EncodingType") == Some("url");
    let decode = |text: &str| -> String {
        match url {
            true => percent_decode_str(&text.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned(),
            false => text.to_owned(),
        }
    };
    let mut prefixes = Vec::new();
    let mut objects = Vec::new();
    for child in &root.children {
        match child.name.as_str() {
            "CommonPrefixes" => {
                let prefix = child
                    .child_text("Prefix")
                    .ok_or("a prefix without a name")?;
                prefixes.push(Entry::Prefix(decode(prefix)));
            }
            "Contents" => {
                let key = child.child_text("Key").ok_or("an object without a key")?;
                let rest = child.children.iter().filter(|c| c.name != "Key");
                objects.push(Entry::Object(Object {
                    key: decode(key),
                    rest: rest.cloned().collect(),
                }));
            }
            _ => {}
        }
    }
    let truncated = root.child_text("IsTruncated") == Some("true");
    let next_token = match root.child_text("NextContinuationToken") {
        Some(token) if truncated && !token.is_empty() => Some(token.to_owned()),
        None | Some(_) if truncated => return Err("a truncated listing without a next token"),
        _ => None,
    };
    prefixes.extend(objects);
    Ok(Page {
        entries: prefixes,
        next_token,
    })
}

/// The last entry of a page (objects come after common prefixes): the v1 `NextMarker`.
pub fn last_name(entries: &[Entry]) -> Option<&str> {
    entries.last().map(Entry::name)
}

/// The continuation of a written page: a v1 `NextMarker`, or a v2 `NextContinuationToken`.
pub enum Next<'a> {
    /// The last page.
    None,
    /// v1: the page's last key or common prefix.
    Marker(&'a str),
    /// v2: S3's token.
    Token(&'a str),
}

/// Writes the client's `ListBucketResult` (v1 or v2, as the plan says).
pub fn write(plan: &Plan, entries: &[Entry], next: Next<'_>) -> Vec<u8> {
    let mut w = XmlWriter::document(256 + entries.len() * 256);
    let enc = |s: &str| encode(s, plan.url);
    w.s3_root("ListBucketResult", |w| {
        w.text("Name", &plan.bucket);
        w.text("Prefix", &enc(&plan.prefix));
        if plan.v1 {
            w.text("Marker", &enc(&plan.marker));
            if let Next::Marker(marker) = next {
                w.text("NextMarker", &enc(marker));
            }
        } else {
            if let Some(token) = &plan.token {
                w.text("ContinuationToken", token);
            }
            if let Next::Token(token) = next {
                w.text("NextContinuationToken", token);
            }
            w.text("KeyCount", &entries.len().to_string());
        }
        w.text("MaxKeys", &plan.max_keys.to_string());
        if plan.delimited {
            w.text("Delimiter", &enc("/"));
        }
        let truncated = !matches!(next, Next::None);
        w.text("IsTruncated", if truncated { "true" } else { "false" });
        if let Some(start_after) = &plan.start_after {
            w.text("StartAfter", &enc(start_after));
        }
        if plan.url {
            w.text("EncodingType", "url");
        }
        write_entries(w, entries, &enc);
    });
    w.finish()
}

fn write_entries(w: &mut XmlWriter, entries: &[Entry], enc: &dyn Fn(&str) -> String) {
    for entry in entries {
        if let Entry::Object(object) = entry {
            w.element("Contents", |w| {
                w.text("Key", &enc(&object.key));
                object.rest.iter().for_each(|e| w.tree(e));
            });
        }
    }
    for entry in entries {
        if let Entry::Prefix(prefix) = entry {
            w.element("CommonPrefixes", |w| w.text("Prefix", &enc(prefix)));
        }
    }
}

/// `s` as the client asked for it: URL-encoded with `encoding-type=url`.
fn encode(s: &str, url: bool) -> String {
    match url {
        true => utf8_percent_encode(s, KEY_ENCODE).to_string(),
        false => s.to_owned(),
    }
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
