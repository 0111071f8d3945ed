//! Walking a directory's listing page by page through `send::Sender` (sessions and retries as
//! for any request), bounded per client request: from a cursor the proxy remembers, or from the
//! start to find a marker it does not.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Response};

use super::page::{self, Entry, Page};
use super::request::{ListingError, ListingFailed, Plan};
use super::ListingSettings;
use crate::body::ProxyBody;
use crate::respond::record::RequestRecord;
use crate::route::uri::encode_component;
use crate::send::{Head, OutBody, Sender, Signer};
use crate::sign::{Payload, SignError};
use crate::upstream::UpstreamError;

/// A listing page is read whole; S3's largest (1000 keys of 1024 bytes, URL-encoded) is
/// about 4 MiB.
const MAX_PAGE_BYTES: usize = 8 << 20;

/// Request headers that make no sense on the proxy's own listing requests (it reads the whole
/// answer as XML).
const NOT_PASSED: [HeaderName; 9] = [
    header::ACCEPT_ENCODING,
    header::EXPECT,
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
];

/// Where a v1 listing goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// S3's continuation token for the page to read (`None`: the first page).
    pub token: Option<String>,
    /// The page size the listing is read in (where pages end depends on it).
    pub size: u32,
    /// Skip that page's entries up to and including this one.
    pub after: Option<String>,
    /// Keep only entries greater than this: a marker that is not in the listing.
    pub floor: Option<String>,
}

impl Cursor {
    /// The start of a listing read in pages of `size`.
    pub fn start(size: u32) -> Self {
        Cursor {
            token: None,
            size,
            after: None,
            floor: None,
        }
    }
}

/// A page for the client and where the listing goes on after it.
#[derive(Debug)]
pub struct Walked {
    /// The entries, in the listing's order.
    pub entries: Vec<Entry>,
    /// `None` when the listing is done.
    pub next: Option<Cursor>,
}

/// Why a walk stopped short of a page for the client.
pub enum Stop {
    /// S3 refused a request: its answer goes to the client as it is.
    Refused(Response<ProxyBody>),
    /// Anything else.
    Failed(ListingFailed),
}

impl<E: Into<ListingFailed>> From<E> for Stop {
    fn from(error: E) -> Self {
        Stop::Failed(error.into())
    }
}

/// Reads the pages of one client request's listing.
pub struct Fetcher<'a> {
    sender: &'a Sender,
    signer: Signer,
    record: &'a mut RequestRecord,
    plan: &'a Plan,
    headers: HeaderMap,
    authority: String,
    /// The query of every page but `max-keys` and `continuation-token`.
    query: String,
    settings: &'a ListingSettings,
    /// Entries (keys and common prefixes) read so far.
    pub scanned: usize,
    /// Pages read so far.
    pub pages: usize,
    /// The request ids of the last page's answer (for the client's answer).
    pub ids: HeaderMap,
}

impl<'a> Fetcher<'a> {
    /// A fetcher for `plan`, to the host and with the headers of the client's request (its auth
    /// already stripped).
    pub fn new(
        sender: &'a Sender,
        signer: Signer,
        record: &'a mut RequestRecord,
        plan: &'a Plan,
        request: &http::request::Parts,
        settings: &'a ListingSettings,
    ) -> Self {
        let mut headers = request.headers.clone();
        for name in &NOT_PASSED {
            headers.remove(name);
        }
        let authority = request.uri.authority().map(|a| a.to_string());
        Fetcher {
            sender,
            signer,
            record,
            plan,
            headers,
            authority: authority.unwrap_or_default(),
            query: base_query(plan),
            settings,
            scanned: 0,
            pages: 0,
            ids: HeaderMap::new(),
        }
    }

    /// Reads one page of `size` entries at `token`, within the bounds of one client request.
    pub async fn fetch(&mut self, token: Option<&str>, size: u32) -> Result<Page, Stop> {
        if self.scanned >= self.settings.scan_limit || self.pages >= self.settings.page_limit {
            tracing::info!(
                scanned = self.scanned,
                pages = self.pages,
                "listing: gave up; answering 400"
            );
            return Err(ListingError::TooLong {
                read: self.scanned,
                pages: self.pages,
            }
            .into());
        }
        let head = self.head(token, size)?;
        let signer = self.sender.current(&self.signer).await;
        let empty = OutBody::Kept(Bytes::new());
        let response = self
            .sender
            .send(&head, empty, Payload::Unsigned, signer, self.record)
            .await?;
        if !response.status().is_success() {
            return Err(Stop::Refused(response));
        }
        let (parts, body) = response.into_parts();
        let bytes = crate::body::collect_limited(body, MAX_PAGE_BYTES)
            .await
            .map_err(UpstreamError::Answer)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad_page("not UTF-8"))?;
        let page = page::parse(text).map_err(bad_page)?;
        self.pages += 1;
        self.scanned += page.entries.len();
        self.ids = request_ids(&parts.headers);
        Ok(page)
    }

    fn head(&self, token: Option<&str>, size: u32) -> Result<Head, SignError> {
        let mut query = format!("{}&max-keys={size}", self.query);
        if let Some(token) = token {
            query.push_str("&continuation-token=");
            query.push_str(&encode_component(token));
        }
        let uri = format!("https://{}/?{query}", self.authority)
            .parse()
            .map_err(|_| SignError::Unsignable("the listing URI is not valid"))?;
        Ok(Head {
            method: Method::GET,
            uri,
            headers: self.headers.clone(),
        })
    }

    /// The client's page from `cursor` on: the first page that has entries for it (pages that
    /// have none are skipped), or the listing's end. `first` is the cursor's page if it was
    /// read already. `None` when the entry the cursor resumes after is no longer in its page.
    pub async fn walk(
        &mut self,
        cursor: Cursor,
        mut first: Option<Page>,
        max: usize,
    ) -> Result<Option<Walked>, Stop> {
        let Cursor {
            mut token,
            size,
            mut after,
            floor,
        } = cursor;
        loop {
            let page = match first.take() {
                Some(page) => page,
                None => self.fetch(token.as_deref(), size).await?,
            };
            let mut entries = page.entries;
            if let Some(after) = after.take() {
                let Some(i) = entries.iter().position(|e| e.name() == after) else {
                    return Ok(None);
                };
                entries.drain(..=i);
            }
            entries.retain(|e| self.keeps(e, floor.as_deref()));
            if entries.is_empty() && page.next_token.is_some() {
                token = page.next_token;
                continue;
            }
            let here = Cursor {
                token,
                size,
                after: None,
                floor,
            };
            return Ok(Some(cut(entries, max, here, page.next_token)));
        }
    }

    /// The client's page after a marker the proxy does not remember: the listing is read from
    /// the start to find it; what follows it in the listing's order, or, when it is not in the
    /// listing, the entries greater than it.
    pub async fn search(&mut self, marker: &str, size: u32, max: usize) -> Result<Walked, Stop> {
        let mut token: Option<String> = None;
        let mut greater = Vec::new();
        let mut resume: Option<Cursor> = None;
        loop {
            let page = self.fetch(token.as_deref(), size).await?;
            if page.entries.iter().any(|e| e.name() == marker) {
                let at = Cursor {
                    token,
                    size,
                    after: Some(marker.to_owned()),
                    floor: None,
                };
                let walked = self.walk(at, Some(page), max).await?;
                return Ok(walked.expect("the marker is in the page"));
            }
            if resume.is_none() {
                resume = self.collect(&page, marker, &mut greater, max, &token, size);
            }
            match page.next_token {
                Some(next) => token = Some(next),
                None => {
                    return Ok(Walked {
                        entries: greater,
                        next: resume,
                    })
                }
            }
        }
    }

    /// Adds this page's entries greater than `marker` to `greater` (up to `max`); once one more
    /// is seen than fits, returns where the answer goes on.
    fn collect(
        &self,
        page: &Page,
        marker: &str,
        greater: &mut Vec<Entry>,
        max: usize,
        token: &Option<String>,
        size: u32,
    ) -> Option<Cursor> {
        let mut taken_here = false;
        for entry in page.entries.iter().filter(|e| self.keeps(e, Some(marker))) {
            if greater.len() == max {
                let after = taken_here.then(|| greater.last().map(|e| e.name().to_owned()));
                return Some(Cursor {
                    token: token.clone(),
                    size,
                    after: after.flatten(),
                    floor: Some(marker.to_owned()),
                });
            }
            greater.push(entry.clone());
            taken_here = true;
        }
        None
    }

    fn keeps(&self, entry: &Entry, floor: Option<&str>) -> bool {
        self.plan.keeps(entry.name()) && floor.is_none_or(|f| entry.name() > f)
    }
}

/// `entries` (from the page `here` points at) cut to `max`; where the listing goes on.
fn cut(mut entries: Vec<Entry>, max: usize, here: Cursor, next_token: Option<String>) -> Walked {
    if entries.len() > max {
        entries.truncate(max);
        let after = page::last_name(&entries).map(str::to_owned);
        let next = Cursor { after, ..here };
        return Walked {
            entries,
            next: Some(next),
        };
    }
    let next = next_token.map(|token| Cursor {
        token: Some(token),
        after: None,
        ..here
    });
    Walked { entries, next }
}

/// The query every page shares: the directory, the delimiter, URL-encoded keys (whatever the
/// client asked; they are decoded), and what the client passed on.
fn base_query(plan: &Plan) -> String {
    let mut query = String::from("list-type=2&encoding-type=url");
    let mut add = |name: &str, value: &str| {
        query.push('&');
        query.push_str(name);
        query.push('=');
        query.push_str(&encode_component(value));
    };
    if !plan.directory().is_empty() {
        add("prefix", plan.directory());
    }
    if plan.delimited {
        add("delimiter", "/");
    }
    if let Some(fetch_owner) = &plan.fetch_owner {
        add("fetch-owner", fetch_owner);
    }
    if let Some(start_after) = &plan.start_after {
        add("start-after", start_after);
    }
    query
}

fn request_ids(headers: &HeaderMap) -> HeaderMap {
    let mut ids = HeaderMap::new();
    for name in ["x-amz-request-id", "x-amz-id-2"] {
        if let Some(value) = headers.get(name) {
            ids.insert(name, value.clone());
        }
    }
    ids
}

fn bad_page(what: &'static str) -> ListingFailed {
    ListingFailed::Upstream(UpstreamError::Answer(what.into()))
}

#[cfg(test)]
mod tests {
    use super::super::page::Object;
    use super::*;

    fn entries(names: &[&str]) -> Vec<Entry> {
        names
            .iter()
            .map(|n| match n.strip_suffix('/') {
                Some(_) => Entry::Prefix(n.to_string()),
                None => Entry::Object(Object {
                    key: n.to_string(),
                    rest: Vec::new(),
                }),
            })
            .collect()
    }

    #[test]
    fn a_page_cut_short_goes_on_after_its_last_entry_in_the_same_page() {
        let here = Cursor {
            token: Some("T1".into()),
            size: 1000,
            after: None,
            floor: Some("m".into()),
        };
        let walked = cut(
            entries(&["x/", "y", "z"]),
            2,
            here.clone(),
            Some("T2".into()),
        );
        assert_eq!(walked.entries.len(), 2);
        let next = walked.next.unwrap();
        assert_eq!(
            (
                next.token.as_deref(),
                next.after.as_deref(),
                next.floor.as_deref()
            ),
            (Some("T1"), Some("y"), Some("m"))
        );
        let whole = cut(entries(&["x/", "y"]), 2, here.clone(), Some("T2".into()));
        let next = whole.next.unwrap();
        assert_eq!((next.token.as_deref(), next.after), (Some("T2"), None));
        assert!(cut(entries(&["y"]), 2, here, None).next.is_none());
    }

    #[test]
    fn pages_ask_for_the_directory_and_url_encoded_keys_never_start_after() {
        let query = "prefix=a%20b%2Fc+d&delimiter=%2F&marker=x";
        let route = super::super::request::tests::route(
            crate::route::operation::Operation::ListObjects,
            query,
        );
        let plan = Plan::of(&route).unwrap().unwrap();
        assert_eq!(
            base_query(&plan),
            "list-type=2&encoding-type=url&prefix=a%20b%2F&delimiter=%2F&fetch-owner=true"
        );
    }
}
