//! Listing on directory buckets, for tools that predate them (DESIGN §3.2): ListObjects (v1)
//! translated to ListObjectsV2, a prefix that does not end in `/` served by listing its
//! directory and keeping what starts with it, and a delimiter other than `/` refused locally.
//!
//! v1 clients page with `NextMarker` (always given on a truncated page: the page's last key or
//! common prefix) or with the last key. A directory bucket cannot start a listing after a key,
//! so the proxy remembers which S3 continuation token follows which marker (`Cursor`, in a
//! bounded cache). A marker it does not remember is found by listing again from the start
//! (`walk`), bounded by [`ListingSettings::scan_limit`].

mod page;
mod request;
mod walk;

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{header, Response, StatusCode};

pub use request::{ListingError, ListingFailed, Plan};

use crate::body::{full, ProxyBody};
use crate::respond::record::RequestRecord;
use crate::route::compat::Bridge;
use crate::send::{Sender, Signer};
use page::{Entry, Next};
use walk::{Cursor, Fetcher, Stop, Walked};

/// Bounds of the listing bridges.
#[derive(Clone, Debug)]
pub struct ListingSettings {
    /// Most keys and common prefixes one client request may read from S3 (to find a marker the
    /// proxy does not remember, or past pages a prefix filters empty); past it, 400.
    pub scan_limit: usize,
    /// Most S3 pages one client request may read (small `max-keys` make many pages).
    pub page_limit: usize,
    /// How many v1 markers are remembered.
    pub markers: u64,
    /// How long a v1 marker is remembered.
    pub marker_ttl: Duration,
}

impl Default for ListingSettings {
    fn default() -> Self {
        Self {
            scan_limit: 100_000,
            page_limit: 1_000,
            markers: 4_096,
            marker_ttl: Duration::from_secs(600),
        }
    }
}

/// Which v1 listing a marker belongs to.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct MarkerKey {
    bucket: String,
    prefix: String,
    delimited: bool,
    marker: String,
}

/// The listing bridges: the v1 markers remembered, and the bounds.
pub struct Listings {
    settings: ListingSettings,
    markers: moka::sync::Cache<MarkerKey, Arc<Cursor>>,
}

impl Listings {
    /// Listings with these bounds.
    pub fn new(settings: ListingSettings) -> Self {
        let markers = moka::sync::Cache::builder()
            .max_capacity(settings.markers)
            .time_to_live(settings.marker_ttl)
            .build();
        Self { settings, markers }
    }

    /// Answers a listing `Plan::of` chose, reading S3 through `sender` with `signer`, for the
    /// client request `parts` (pointed at the Zonal host, its auth stripped). S3's refusals are
    /// relayed as they are.
    pub async fn serve(
        &self,
        plan: Plan,
        sender: &Sender,
        parts: &Parts,
        signer: Signer,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, ListingFailed> {
        if plan.v1 {
            record.bridges.add(Bridge::ListV1);
        }
        if plan.filters() {
            record.bridges.add(Bridge::Prefix);
        }
        let mut fetcher = Fetcher::new(sender, signer, record, &plan, parts, &self.settings);
        let body = match plan.v1 {
            true => self.v1(&plan, &mut fetcher).await,
            false => v2(&plan, &mut fetcher).await,
        };
        match body {
            Ok(body) => Ok(answer(body, &fetcher.ids)),
            Err(Stop::Refused(response)) => Ok(response),
            Err(Stop::Failed(error)) => Err(error),
        }
    }

    /// A v1 page: from the cursor remembered for the marker, or found by listing again.
    async fn v1(&self, plan: &Plan, fetcher: &mut Fetcher<'_>) -> Result<Vec<u8>, Stop> {
        let max = plan.max_keys as usize;
        if max == 0 {
            fetcher.fetch(None, 0).await?;
            return Ok(page::write(plan, &[], Next::None));
        }
        let key = |marker: &str| MarkerKey {
            bucket: plan.bucket.clone(),
            prefix: plan.prefix.clone(),
            delimited: plan.delimited,
            marker: marker.to_owned(),
        };
        let remembered = match plan.marker.as_str() {
            "" => Some(Arc::new(Cursor::start(plan.max_keys))),
            marker => self.markers.get(&key(marker)),
        };
        let walked = match remembered {
            Some(cursor) => fetcher.walk(Cursor::clone(&cursor), None, max).await?,
            None => None,
        };
        let walked = match walked {
            Some(walked) => walked,
            None => search(plan, fetcher, max).await?,
        };
        let Some(next) = walked.next.clone() else {
            return Ok(page::write(plan, &walked.entries, Next::None));
        };
        let next = Arc::new(next);
        for name in markers(&walked) {
            self.markers.insert(key(name), next.clone());
        }
        let marker = page::last_name(&walked.entries).unwrap_or_default();
        Ok(page::write(plan, &walked.entries, Next::Marker(marker)))
    }
}

/// Finds a marker the proxy does not remember by listing again from the start (logged: it
/// costs up to [`ListingSettings::scan_limit`] entries read).
async fn search(plan: &Plan, fetcher: &mut Fetcher<'_>, max: usize) -> Result<Walked, Stop> {
    let walked = fetcher.search(&plan.marker, plan.max_keys, max).await?;
    tracing::info!(
        scanned = fetcher.scanned,
        pages = fetcher.pages,
        "ListObjects: a marker this proxy did not remember, found by listing again from the start"
    );
    Ok(walked)
}

/// The markers a client may resume after this page with: `NextMarker` (its last entry), its
/// last key, and its last common prefix.
fn markers(walked: &Walked) -> impl Iterator<Item = &str> {
    let last_key = walked.entries.iter().rev().find_map(|e| match e {
        Entry::Object(o) => Some(o.key.as_str()),
        Entry::Prefix(_) => None,
    });
    let last_prefix = walked.entries.iter().rev().find_map(|e| match e {
        Entry::Prefix(p) => Some(p.as_str()),
        Entry::Object(_) => None,
    });
    last_key.into_iter().chain(last_prefix)
}

/// A v2 page with a prefix that does not end in `/`: S3's pages of its directory, filtered,
/// skipping those with nothing for the client; S3's tokens pass through both ways.
async fn v2(plan: &Plan, fetcher: &mut Fetcher<'_>) -> Result<Vec<u8>, Stop> {
    let mut token = plan.token.clone();
    loop {
        let page = fetcher.fetch(token.as_deref(), plan.max_keys).await?;
        let mut entries = page.entries;
        entries.retain(|e| plan.keeps(e.name()));
        let next = page.next_token.filter(|_| plan.max_keys > 0);
        match next {
            Some(next) if entries.is_empty() => token = Some(next),
            Some(next) => return Ok(page::write(plan, &entries, Next::Token(&next))),
            None => return Ok(page::write(plan, &entries, Next::None)),
        }
    }
}

/// The client's answer, with the ids of S3's last answer.
fn answer(body: Vec<u8>, ids: &http::HeaderMap) -> Response<ProxyBody> {
    let length = body.len();
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    headers.insert(header::CONTENT_LENGTH, length.into());
    for (name, value) in ids {
        headers.insert(name, value.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::page::Object;
    use super::*;

    fn object(key: &str) -> Entry {
        Entry::Object(Object {
            key: key.into(),
            rest: Vec::new(),
        })
    }

    #[test]
    fn a_page_is_remembered_under_its_next_marker_its_last_key_and_its_last_prefix() {
        let walked = Walked {
            entries: vec![
                Entry::Prefix("a/".into()),
                Entry::Prefix("c/".into()),
                object("b"),
                object("d"),
            ],
            next: Some(Cursor::start(4)),
        };
        assert_eq!(page::last_name(&walked.entries), Some("d"));
        assert_eq!(markers(&walked).collect::<Vec<_>>(), ["d", "c/"]);
        let prefixes_only = Walked {
            entries: vec![Entry::Prefix("a/".into())],
            next: None,
        };
        assert_eq!(markers(&prefixes_only).collect::<Vec<_>>(), ["a/"]);
    }
}
