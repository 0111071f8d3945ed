//! What S3 refuses before reading a body: directory buckets' limits on headers and listing
//! parameters (Content-MD5, storage classes, prefixes, delimiters, start-after), and
//! DeleteObjects without a checksum.

use crate::auth::Head;
use crate::checksum;
use crate::classify::Classified;
use crate::error::{Result, S3Error};
use crate::route::{Op, Query};

/// The refusals S3 makes from the request head alone, once the request is authenticated and
/// before its body is read (so nothing of a refused upload is stored).
pub(crate) fn refuse_before_body(c: &Classified, head: &Head, query: &Query) -> Result<()> {
    if c.zonal {
        directory_bucket(c.op, head, query)?;
    }
    if c.op == Op::DeleteObjects && !carries_checksum(head) {
        return Err(S3Error::invalid_request(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    Ok(())
}

/// What a directory bucket's Zonal endpoint refuses that a general-purpose bucket takes.
fn directory_bucket(op: Op, head: &Head, query: &Query) -> Result<()> {
    if head.get("content-md5").is_some() {
        // As S3 Express answers (seen in apache/iceberg#11021 and Alluxio's S3 client notes).
        return Err(S3Error::new(
            501,
            "NotImplemented",
            "This bucket does not support Content Md5 header.",
        ));
    }
    match op {
        Op::PutObject | Op::CreateMultipartUpload | Op::CopyObject => storage_class(head),
        Op::ListObjectsV2 => listing(query),
        _ => Ok(()),
    }
}

/// Directory buckets hold only `EXPRESS_ONEZONE` objects.
fn storage_class(head: &Head) -> Result<()> {
    match head.get("x-amz-storage-class") {
        Some(class) if class != "EXPRESS_ONEZONE" => Err(S3Error::new(
            400,
            "InvalidStorageClass",
            "The storage class you specified is not valid",
        )),
        _ => Ok(()),
    }
}

/// ListObjectsV2 on a directory bucket: a prefix must end in `/`, `/` is the only delimiter,
/// and `start-after` is not supported. Empty values count as absent.
fn listing(query: &Query) -> Result<()> {
    if query
        .get("prefix")
        .is_some_and(|p| !p.is_empty() && !p.ends_with('/'))
    {
        // S3's words (aws-s3-transfer-manager-rs#112, eclipse-store#224).
        return Err(S3Error::invalid_request(
            "This bucket does not support a prefix that does not end in a delimiter. Specify a prefix path ending with a delimiter and try again.",
        ));
    }
    if query
        .get("delimiter")
        .is_some_and(|d| !d.is_empty() && d != "/")
    {
        // S3's exact words were not found; these follow its prefix message.
        return Err(S3Error::invalid_request(
            "This bucket does not support a delimiter other than /. Specify / as the delimiter and try again.",
        ));
    }
    if let Some(after) = query.get("start-after").filter(|s| !s.is_empty()) {
        // S3's exact answer was not found (its documentation says only "not supported for
        // directory buckets"); this follows how S3 refuses start-after on ListObjects v1.
        return Err(S3Error::invalid_argument(
            "StartAfter is not supported for directory buckets.",
        )
        .with("ArgumentName", "start-after")
        .with("ArgumentValue", after));
    }
    Ok(())
}

/// The request carries a checksum of its body: `Content-MD5`, an `x-amz-checksum-*` header, or
/// an `x-amz-checksum-*` trailer announced in `x-amz-trailer`.
fn carries_checksum(head: &Head) -> bool {
    let is_checksum = |name: &str| checksum::HEADERS.contains(&name);
    head.get("content-md5").is_some()
        || head.headers.iter().any(|(n, _)| is_checksum(n))
        || head.get("x-amz-trailer").is_some_and(|t| {
            t.split(',')
                .any(|n| is_checksum(&n.trim().to_ascii_lowercase()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> Head {
        Head {
            method: "POST".into(),
            raw_path: "/".into(),
            raw_query: "delete".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn checksums_a_delete_may_carry() {
        assert!(!carries_checksum(&head(&[("content-length", "10")])));
        assert!(!carries_checksum(&head(&[(
            "x-amz-sdk-checksum-algorithm",
            "CRC32"
        )])));
        assert!(carries_checksum(&head(&[("content-md5", "x")])));
        assert!(carries_checksum(&head(&[(
            "x-amz-checksum-crc64nvme",
            "x"
        )])));
        assert!(carries_checksum(&head(&[(
            "x-amz-trailer",
            "X-Amz-Checksum-Crc32"
        )])));
    }

    #[test]
    fn listing_parameters() {
        let q = |s: &str| listing(&Query::parse(s)).map_err(|e| e.code);
        assert_eq!(q("list-type=2&prefix=a/&delimiter=%2F"), Ok(()));
        assert_eq!(q("list-type=2&prefix=&delimiter=&start-after="), Ok(()));
        assert_eq!(q("list-type=2&prefix=a"), Err("InvalidRequest"));
        assert_eq!(q("list-type=2&delimiter=-"), Err("InvalidRequest"));
        assert_eq!(q("list-type=2&start-after=a"), Err("InvalidArgument"));
    }
}
