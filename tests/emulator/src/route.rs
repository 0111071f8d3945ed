//! Which S3 operation a request is, from its method, path, query and headers.

/// The S3 operation, from method, key, query and headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    CreateSession,
    HeadBucket,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    GetObject,
    HeadObject,
    PutObject,
    CopyObject,
    RenameObject,
    DeleteObject,
    GetObjectAttributes,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListDirectoryBuckets,
    CreateBucket,
    DeleteBucket,
    /// ListObjects (v1), on general-purpose buckets only.
    ListObjects,
    /// `GET /?location`, on general-purpose buckets only (directory buckets answer
    /// `NotImplemented("GetBucketLocation")`).
    GetBucketLocation,
    /// Recognised but not supported by directory buckets (or by the emulator): 501.
    NotImplemented(&'static str),
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateSession => "CreateSession",
            Op::HeadBucket => "HeadBucket",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::DeleteObjects => "DeleteObjects",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::RenameObject => "RenameObject",
            Op::DeleteObject => "DeleteObject",
            Op::GetObjectAttributes => "GetObjectAttributes",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
            Op::ListDirectoryBuckets => "ListDirectoryBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::ListObjects => "ListObjects",
            Op::GetBucketLocation => "GetBucketLocation",
            Op::NotImplemented(n) => n,
        }
    }

    /// Operations a ReadOnly session may run.
    pub fn read_only(self) -> bool {
        matches!(
            self,
            Op::GetObject
                | Op::HeadObject
                | Op::ListObjectsV2
                | Op::GetObjectAttributes
                | Op::ListParts
                | Op::ListMultipartUploads
        )
    }

    /// Operations that must be signed with the IAM credentials on the Zonal endpoint.
    pub fn iam_only(self) -> bool {
        matches!(
            self,
            Op::CreateSession | Op::CopyObject | Op::UploadPartCopy
        )
    }
}

/// Decoded query parameters, in order.
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Query {
        let decode = |s: &str| {
            String::from_utf8_lossy(&crate::sigv4::percent_decode(&s.replace('+', " ")))
                .into_owned()
        };
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Bucket subresources a directory bucket's Zonal endpoint does not serve.
const BUCKET_SUBRESOURCES: [&str; 14] = [
    "acl",
    "accelerate",
    "cors",
    "encryption",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "policy",
    "replication",
    "tagging",
    "versioning",
    "website",
    "ownershipControls",
];

/// Classifies a Zonal request (virtual-hosted: the whole path is the key).
pub(crate) fn zonal_op(method: &str, has_key: bool, q: &Query, copy_source: bool) -> Op {
    let unsupported_object = [
        ("tagging", "ObjectTagging"),
        ("acl", "ObjectAcl"),
        ("retention", "ObjectRetention"),
        ("legal-hold", "ObjectLegalHold"),
        ("restore", "RestoreObject"),
        ("select", "SelectObjectContent"),
        ("torrent", "GetObjectTorrent"),
    ];
    if has_key {
        if let Some((_, n)) = unsupported_object.iter().find(|(p, _)| q.has(p)) {
            return Op::NotImplemented(n);
        }
        return match method {
            "GET" if q.has("uploadId") => Op::ListParts,
            "GET" if q.has("attributes") => Op::GetObjectAttributes,
            "GET" => Op::GetObject,
            "HEAD" => Op::HeadObject,
            "PUT" if q.has("partNumber") && q.has("uploadId") && copy_source => Op::UploadPartCopy,
            "PUT" if q.has("partNumber") && q.has("uploadId") => Op::UploadPart,
            "PUT" if q.has("renameObject") => Op::RenameObject,
            "PUT" if copy_source => Op::CopyObject,
            "PUT" => Op::PutObject,
            "POST" if q.has("uploads") => Op::CreateMultipartUpload,
            "POST" if q.has("uploadId") => Op::CompleteMultipartUpload,
            "DELETE" if q.has("uploadId") => Op::AbortMultipartUpload,
            "DELETE" => Op::DeleteObject,
            _ => Op::NotImplemented("Unknown"),
        };
    }
    match method {
        "GET" if q.has("session") => Op::CreateSession,
        "GET" if q.get("list-type") == Some("2") => Op::ListObjectsV2,
        "GET" if q.has("uploads") => Op::ListMultipartUploads,
        "GET" if q.has("versions") => Op::NotImplemented("ListObjectVersions"),
        "GET" if q.has("location") => Op::NotImplemented("GetBucketLocation"),
        "GET" if BUCKET_SUBRESOURCES.iter().any(|r| q.has(r)) => Op::NotImplemented("Unknown"),
        "GET" => Op::NotImplemented("ListObjects"),
        "HEAD" => Op::HeadBucket,
        "POST" if q.has("delete") => Op::DeleteObjects,
        _ => Op::NotImplemented("Unknown"),
    }
}

/// Classifies a general-purpose request (`has_key`: the path names a key past the bucket).
pub(crate) fn general_purpose_op(
    method: &str,
    has_key: bool,
    q: &Query,
    copy_source: bool,
    append: bool,
) -> Op {
    if has_key {
        return match zonal_op(method, true, q, copy_source) {
            Op::RenameObject => Op::NotImplemented("RenameObject"),
            Op::PutObject if append => Op::NotImplemented("AppendObject"),
            op => op,
        };
    }
    match method {
        "GET" if q.has("location") => Op::GetBucketLocation,
        "GET" if q.has("session") => Op::NotImplemented("CreateSession"),
        "GET" if q.get("list-type") == Some("2") => Op::ListObjectsV2,
        "GET" if q.has("uploads") => Op::ListMultipartUploads,
        "GET" if q.has("versions") => Op::NotImplemented("ListObjectVersions"),
        "GET" if BUCKET_SUBRESOURCES.iter().any(|r| q.has(r)) => Op::NotImplemented("Unknown"),
        "GET" => Op::ListObjects,
        "HEAD" => Op::HeadBucket,
        "POST" if q.has("delete") => Op::DeleteObjects,
        _ => Op::NotImplemented("Unknown"),
    }
}

/// Classifies a control-plane request (path-style: `/` or `/BUCKET`).
pub(crate) fn control_op(method: &str, bucket: Option<&str>, q: &Query) -> Op {
    match (method, bucket) {
        ("GET", None) => Op::ListDirectoryBuckets,
        // Where botocore sends GetBucketLocation for a directory bucket.
        ("GET", Some(_)) if q.has("location") => Op::NotImplemented("GetBucketLocation"),
        (_, Some(_)) if !q.0.is_empty() => Op::NotImplemented("Unknown"),
        ("PUT", Some(_)) => Op::CreateBucket,
        ("DELETE", Some(_)) => Op::DeleteBucket,
        _ => Op::NotImplemented("Unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations() {
        let q = |s: &str| Query::parse(s);
        assert_eq!(
            zonal_op("GET", false, &q("session"), false),
            Op::CreateSession
        );
        assert_eq!(
            zonal_op("GET", false, &q("list-type=2&prefix=a"), false),
            Op::ListObjectsV2
        );
        assert_eq!(
            zonal_op("GET", false, &q(""), false),
            Op::NotImplemented("ListObjects")
        );
        assert_eq!(
            zonal_op("PUT", true, &q("partNumber=1&uploadId=u"), true),
            Op::UploadPartCopy
        );
        assert_eq!(zonal_op("PUT", true, &q(""), true), Op::CopyObject);
        assert_eq!(
            zonal_op("GET", false, &q("location"), false),
            Op::NotImplemented("GetBucketLocation")
        );
        assert_eq!(
            control_op("GET", Some("b--usw2-az1--x-s3"), &q("location")),
            Op::NotImplemented("GetBucketLocation")
        );
        assert_eq!(
            zonal_op("GET", true, &q("tagging"), false),
            Op::NotImplemented("ObjectTagging")
        );
        assert_eq!(q("a=b+c%2B").get("a"), Some("b c+"));
        let gp =
            |m: &str, key: bool, query: &str| general_purpose_op(m, key, &q(query), false, false);
        assert_eq!(gp("GET", false, ""), Op::ListObjects);
        assert_eq!(gp("GET", false, "location"), Op::GetBucketLocation);
        assert_eq!(gp("GET", false, "list-type=2"), Op::ListObjectsV2);
        assert_eq!(gp("HEAD", false, ""), Op::HeadBucket);
        assert_eq!(
            gp("PUT", true, "renameObject"),
            Op::NotImplemented("RenameObject")
        );
        assert_eq!(
            general_purpose_op("PUT", true, &q(""), false, true),
            Op::NotImplemented("AppendObject")
        );
        assert_eq!(
            gp("GET", false, "session"),
            Op::NotImplemented("CreateSession")
        );
    }
}
