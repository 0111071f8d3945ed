//! What the client asked to list (`Plan`), read from its query, and the refusals the proxy
//! answers itself.

use crate::route::endpoint::Endpoint;
use crate::route::operation::Operation;
use crate::route::uri::Query;
use crate::route::Route;
use crate::send::SendError;
use crate::sign::SignError;
use crate::upstream::UpstreamError;

/// S3's largest page.
pub const MAX_KEYS: u32 = 1000;

/// A listing request the proxy refuses itself (400); nothing was sent upstream.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// A `delimiter` other than `/` (an empty one means none).
    #[error("This bucket does not support a delimiter other than /. Specify / or no delimiter and try again.")]
    Delimiter,
    /// `max-keys` that is not a non-negative integer.
    #[error("Provided max-keys not an integer or within integer range")]
    MaxKeys,
    /// An `encoding-type` other than `url`.
    #[error("Invalid Encoding Method specified in Request")]
    EncodingType,
    /// Answering would mean reading more of the listing than the proxy allows for one page.
    #[error("s3x-proxy read {read} entries ({pages} pages) of this listing without reaching what the request asks for, and stops there (a marker it does not remember, or a prefix few keys match; directory buckets list in no fixed order and cannot start after a key). List again from the start, or with a prefix that ends in /.")]
    TooLong {
        /// Keys and common prefixes read.
        read: usize,
        /// S3 pages read.
        pages: usize,
    },
}

/// Why a listing the proxy serves got no answer for the client (S3's own refusals are relayed
/// as they are); `error` maps each to what the client sees.
#[derive(Debug, thiserror::Error)]
pub enum ListingFailed {
    /// Refused by the proxy (400).
    #[error(transparent)]
    Refused(#[from] ListingError),
    /// A page could not be had from S3.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A page S3 sent could not be read.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A page request could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// A listing on a directory bucket that the proxy serves itself: every ListObjects (v1), and a
/// ListObjectsV2 whose prefix does not end in `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The bucket's name.
    pub(super) bucket: String,
    /// ListObjects (v1) rather than ListObjectsV2.
    pub(super) v1: bool,
    /// The client's prefix.
    pub(super) prefix: String,
    /// Whether `/` is the delimiter (the only one directory buckets take).
    pub(super) delimited: bool,
    /// `max-keys`, at most [`MAX_KEYS`].
    pub(super) max_keys: u32,
    /// Whether the client asked for `encoding-type=url`.
    pub(super) url: bool,
    /// v1: `marker` (empty: from the start).
    pub(super) marker: String,
    /// v2: `continuation-token`, passed up as the client sent it.
    pub(super) token: Option<String>,
    /// v2: `start-after`, passed up as the client sent it.
    pub(super) start_after: Option<String>,
    /// `fetch-owner` to ask for (v1 answers carry the owner, as S3's do).
    pub(super) fetch_owner: Option<String>,
}

impl Plan {
    /// The plan for a routed request, `None` when the proxy relays it as it is (anything but a
    /// listing of a directory bucket, or a ListObjectsV2 that needs no bridge). A `delimiter`
    /// other than `/` is refused here, before any session or upstream request.
    pub fn of(route: &Route) -> Result<Option<Plan>, ListingError> {
        let v1 = match route.operation {
            Operation::ListObjects => true,
            Operation::ListObjectsV2 => false,
            _ => return Ok(None),
        };
        let Endpoint::Zonal { bucket, .. } = &route.endpoint else {
            return Ok(None);
        };
        let q = &route.query;
        let delimited = match q.value("delimiter").unwrap_or_default() {
            "" => false,
            "/" => true,
            _ => return Err(ListingError::Delimiter),
        };
        let prefix = q.value("prefix").unwrap_or_default().to_owned();
        if !v1 && !filters(&prefix) {
            return Ok(None);
        }
        Ok(Some(Plan {
            bucket: bucket.to_string(),
            v1,
            prefix,
            delimited,
            max_keys: max_keys(q)?,
            url: url_encoding(q)?,
            marker: q.value("marker").unwrap_or_default().to_owned(),
            token: (!v1)
                .then(|| q.value("continuation-token").map(str::to_owned))
                .flatten(),
            start_after: (!v1)
                .then(|| q.value("start-after").map(str::to_owned))
                .flatten(),
            fetch_owner: match v1 {
                true => Some("true".into()),
                false => q.value("fetch-owner").map(str::to_owned),
            },
        }))
    }

    /// Whether the prefix does not end in `/`, so its directory is listed and filtered.
    pub(super) fn filters(&self) -> bool {
        filters(&self.prefix)
    }

    /// The prefix S3 is asked for: the client's up to and including its last `/`.
    pub(super) fn directory(&self) -> &str {
        match self.prefix.rfind('/') {
            Some(i) => &self.prefix[..=i],
            None => "",
        }
    }

    /// Whether a key or common prefix of the directory belongs in the client's answer.
    pub(super) fn keeps(&self, name: &str) -> bool {
        name.starts_with(&self.prefix)
    }
}

fn filters(prefix: &str) -> bool {
    !prefix.is_empty() && !prefix.ends_with('/')
}

fn max_keys(q: &Query) -> Result<u32, ListingError> {
    match q.value("max-keys") {
        None => Ok(MAX_KEYS),
        Some(text) => text
            .parse::<u64>()
            .map(|n| n.min(u64::from(MAX_KEYS)) as u32)
            .map_err(|_| ListingError::MaxKeys),
    }
}

fn url_encoding(q: &Query) -> Result<bool, ListingError> {
    match q.value("encoding-type") {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("url") => Ok(true),
        Some(_) => Err(ListingError::EncodingType),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::route::endpoint::Flavor;
    use crate::route::names::{BucketName, Region};

    /// A routed request to a directory bucket's Zonal endpoint.
    pub(in crate::send::listing) fn route(operation: Operation, query: &str) -> Route {
        let bucket = BucketName::parse("demo--usw2-az1--x-s3").unwrap();
        Route {
            operation,
            endpoint: Endpoint::Zonal {
                bucket: bucket.clone(),
                region: Region::parse("us-west-2").unwrap(),
                flavor: Flavor::default(),
            },
            bucket: Some(bucket),
            path_and_query: String::new(),
            query: Query::parse(Some(query)),
            bridges: Default::default(),
        }
    }

    fn plan(operation: Operation, query: &str) -> Result<Option<Plan>, ListingError> {
        Plan::of(&route(operation, query))
    }

    #[test]
    fn a_v1_listing_is_always_served_and_reads_its_parameters() {
        let p = plan(
            Operation::ListObjects,
            "prefix=photos%2F20&marker=photos%2F2006%2Fa+b&max-keys=5000&delimiter=%2F&encoding-type=url",
        )
        .unwrap()
        .unwrap();
        assert!(p.v1 && p.delimited && p.url && p.filters());
        assert_eq!(
            (p.prefix.as_str(), p.directory(), p.marker.as_str()),
            ("photos/20", "photos/", "photos/2006/a b")
        );
        assert_eq!(p.max_keys, 1000);
        assert_eq!(p.fetch_owner.as_deref(), Some("true"));
        let p = plan(Operation::ListObjects, "").unwrap().unwrap();
        assert!(!p.filters() && !p.delimited && p.directory().is_empty());
        let p = plan(Operation::ListObjects, "prefix=top&delimiter=")
            .unwrap()
            .unwrap();
        assert_eq!((p.directory(), p.delimited), ("", false));
        assert!(p.keeps("top-level") && !p.keeps("tip"));
    }

    #[test]
    fn a_v2_listing_is_served_only_for_a_prefix_not_ending_in_a_slash() {
        assert_eq!(plan(Operation::ListObjectsV2, "list-type=2").unwrap(), None);
        assert_eq!(
            plan(Operation::ListObjectsV2, "list-type=2&prefix=a%2F").unwrap(),
            None
        );
        let p = plan(
            Operation::ListObjectsV2,
            "list-type=2&prefix=a%2Fb&continuation-token=T%2B1&start-after=a%2Fb1",
        )
        .unwrap()
        .unwrap();
        assert!(!p.v1 && p.filters());
        assert_eq!(p.token.as_deref(), Some("T+1"));
        assert_eq!(p.start_after.as_deref(), Some("a/b1"));
        assert_eq!(p.fetch_owner, None);
        assert_eq!(plan(Operation::GetObject, "prefix=a").unwrap(), None);
    }

    #[test]
    fn what_s3_express_refuses_is_refused_before_anything_is_sent() {
        for (op, q) in [
            (Operation::ListObjects, "delimiter=-"),
            (Operation::ListObjectsV2, "list-type=2&delimiter=%2F%2F"),
            (
                Operation::ListObjectsV2,
                "list-type=2&prefix=a%2F&delimiter=a",
            ),
        ] {
            let e = plan(op, q).unwrap_err();
            assert!(matches!(e, ListingError::Delimiter), "{q}");
        }
        for q in ["max-keys=-1", "max-keys=ten", "max-keys="] {
            assert!(matches!(
                plan(Operation::ListObjects, q),
                Err(ListingError::MaxKeys)
            ));
        }
        assert!(matches!(
            plan(Operation::ListObjects, "encoding-type=base64"),
            Err(ListingError::EncodingType)
        ));
    }
}
