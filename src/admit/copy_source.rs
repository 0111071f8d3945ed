//! Copy sources: `x-amz-copy-source` (CopyObject, UploadPartCopy) and `x-amz-rename-source`
//! (RenameObject) read exactly as S3 reads them, so that the bucket the proxy authorises is the
//! bucket S3 will read.
//!
//! S3 takes `[/]BUCKET/KEY[?versionId=ID]`, percent-encoded: a `?` in the value as sent starts
//! the version (a `?` in a key is `%3F`), one leading `/` is dropped before decoding (so
//! `%2FBUCKET/KEY` names an empty bucket, as S3 answers 400), and the decoded text is split at
//! its first `/` (so `BUCKET%2FKEY`, which JetS3t sends, is `BUCKET` and `KEY`). S3 does not
//! normalise the path: `shared/../bob/src` is key `../bob/src` of bucket `shared`. The proxy
//! goes further where a reading could differ and refuses rather than guess:
//! - the bucket must be a valid bucket name (general-purpose or directory), so no spelling
//!   (escapes, a `%2F` inside the bucket, a second leading slash) leaves a bucket that splitting
//!   before or after decoding would read differently;
//! - the key may hold no `.` or `..` segment, so no server that did normalise paths could
//!   climb into another bucket (S3 itself refuses such segments in request paths);
//! - access-point and Outposts ARNs (`arn:…`) are refused: the bucket behind one is not known
//!   here (and directory buckets do not take them).

use percent_encoding::percent_decode_str;

use crate::route::names::{BucketName, GeneralBucketName};

/// A copy source as S3 reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySource {
    /// The bucket S3 reads.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// `?versionId=`, decoded.
    pub version_id: Option<String>,
}

/// Why a copy source is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CopySourceError {
    /// Not `[/]BUCKET/KEY[?versionId=ID]` with a valid bucket and a plain key (400
    /// InvalidArgument); the reason is for the log.
    #[error("the copy source is not /bucket/key: {0}")]
    Invalid(&'static str),
    /// An access-point or Outposts ARN: the proxy cannot tell which bucket it reads.
    #[error("copies through access point ARNs are not supported")]
    AccessPoint,
}

/// The longest key S3 stores (bytes, decoded).
const MAX_KEY: usize = 1024;

/// Parses a copy (or rename) source header value.
pub fn parse(raw: &str) -> Result<CopySource, CopySourceError> {
    use CopySourceError::Invalid;
    if !raw.is_ascii() {
        return Err(Invalid("not URL-encoded"));
    }
    let (path, version) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(version_id(query)?)),
        None => (raw, None),
    };
    let path = path.strip_prefix('/').unwrap_or(path);
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| Invalid("not UTF-8 once decoded"))?;
    if decoded
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("arn:"))
    {
        return Err(CopySourceError::AccessPoint);
    }
    let (bucket, key) = decoded
        .split_once('/')
        .ok_or(Invalid("no key after the bucket"))?;
    let valid_bucket =
        GeneralBucketName::parse(bucket).is_ok() || BucketName::parse(bucket).is_ok();
    if !valid_bucket {
        return Err(Invalid("not a bucket name"));
    }
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Invalid("the key is empty or too long"));
    }
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(Invalid("the key has a '.' or '..' segment"));
    }
    Ok(CopySource {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version,
    })
}

/// The version after `?`: exactly `versionId=ID`, ID not empty.
fn version_id(query: &str) -> Result<String, CopySourceError> {
    use CopySourceError::Invalid;
    let id = query
        .strip_prefix("versionId=")
        .filter(|id| !id.is_empty())
        .ok_or(Invalid("only ?versionId=ID may follow the key"))?;
    percent_decode_str(id)
        .decode_utf8()
        .map(|id| id.into_owned())
        .map_err(|_| Invalid("the version id is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "shared--usw2-az1--x-s3";

    fn ok(raw: &str) -> (String, String, Option<String>) {
        let s = parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        (s.bucket, s.key, s.version_id)
    }

    #[test]
    fn the_forms_clients_send_read_as_s3_reads_them() {
        let plain = |b: &str, k: &str| (b.to_owned(), k.to_owned(), None);
        assert_eq!(ok(&format!("/{DIR}/src")), plain(DIR, "src"));
        assert_eq!(ok(&format!("{DIR}/src")), plain(DIR, "src"));
        // JetS3t encodes the separator too; S3 decodes before it splits.
        assert_eq!(ok(&format!("{DIR}%2Fdir%2Fsrc")), plain(DIR, "dir/src"));
        assert_eq!(ok("/gp-data/a%20b%2Bc/%C3%A9"), plain("gp-data", "a b+c/é"));
        assert_eq!(ok("/gp-data/k%3Fv"), plain("gp-data", "k?v"));
        assert_eq!(ok("/gp-data/a//b"), plain("gp-data", "a//b"));
        assert_eq!(ok("/gp-data//b"), plain("gp-data", "/b"));
        assert_eq!(
            ok("/gp-data/...x/.hidden"),
            plain("gp-data", "...x/.hidden")
        );
        assert_eq!(
            ok("/gp-data/k?versionId=3%2Fx"),
            ("gp-data".into(), "k".into(), Some("3/x".into()))
        );
    }

    #[test]
    fn what_could_read_another_bucket_is_refused() {
        for raw in [
            "",
            "/",
            "//bob-data/src",
            "%2Fbob-data/src",
            "/%2Fbob-data/src",
            "/gp-data",
            "/gp-data/",
            "/Bob-Data/src",
            "/bob data/src",
            "/gp-data%3F/src",
            "/gp-data?versionId=1/src",
            &format!("/{DIR}/../bob-data/src"),
            &format!("/{DIR}/a/./b"),
            &format!("/{DIR}/%2E%2E/bob-data/src"),
            &format!("/{DIR}/.."),
            "/gp-data/k?versionid=1",
            "/gp-data/k?versionId=",
            "/gp-data/k?x=1",
            "/gp-data/%FF",
            "/gp-data/\u{e9}",
        ] {
            assert!(
                matches!(parse(raw), Err(CopySourceError::Invalid(_))),
                "{raw:?}: {:?}",
                parse(raw)
            );
        }
        let long = format!("/gp-data/{}", "k".repeat(MAX_KEY + 1));
        assert!(parse(&long).is_err());
        for arn in [
            "arn:aws:s3:us-west-2:123456789012:accesspoint/ap/object/k",
            "/arn%3Aaws%3As3%3Aus-west-2%3A1%3Aaccesspoint%2Fap%2Fobject%2Fk",
            "ARN:aws:s3-outposts:us-west-2:1:outpost/o/object/k",
        ] {
            assert_eq!(parse(arn), Err(CopySourceError::AccessPoint), "{arn}");
        }
    }
}
