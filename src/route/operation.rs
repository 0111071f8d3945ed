//! Classifies a request into an S3 operation, and says which credentials that operation needs.

use http::{HeaderMap, Method};

use crate::route::uri::Query;

/// Session modes of `CreateSession`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Reads only: GetObject, HeadObject, ListObjectsV2 (and ListObjects, which the proxy
    /// translates to it), GetObjectAttributes, ListParts, ListMultipartUploads.
    ReadOnly,
    /// Everything the policy allows.
    ReadWrite,
}

impl Mode {
    /// The header value and metric label (`ReadOnly`, `ReadWrite`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadOnly => "ReadOnly",
            Mode::ReadWrite => "ReadWrite",
        }
    }
}

/// Which credentials sign an operation upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A session of at least this mode, token in `x-amz-s3session-token`.
    Session(Mode),
    /// The IAM credentials themselves (copies, HeadBucket, control plane).
    Iam,
    /// Answered by the proxy itself: the client's own CreateSession (placeholder or minted
    /// credentials) and GetBucketLocation (the zone's region).
    AnswerLocally,
}

impl Auth {
    /// A session is only ever used on a Zonal endpoint; anything else signs with IAM.
    pub fn filter_zonal(self, endpoint: &crate::route::endpoint::Endpoint) -> Auth {
        match self {
            Auth::Session(_) if !endpoint.is_zonal() => Auth::Iam,
            other => other,
        }
    }
}

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// An S3 operation the proxy knows by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Operation {
            $(#[allow(missing_docs)] $name,)*
        }
        impl Operation {
            /// The S3 operation name, used as the `operation` metric label.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name),)* }
            }
        }
    };
}

operations!(
    GetObject,
    PutObject,
    HeadObject,
    DeleteObject,
    DeleteObjects,
    ListObjectsV2,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    GetObjectAttributes,
    CopyObject,
    RenameObject,
    HeadBucket,
    CreateSession,
    GetBucketLocation,
    ListDirectoryBuckets,
    CreateBucket,
    DeleteBucket,
    GetBucketPolicy,
    PutBucketPolicy,
    DeleteBucketPolicy,
    GetBucketEncryption,
    PutBucketEncryption,
    DeleteBucketEncryption,
    GetBucketLifecycleConfiguration,
    PutBucketLifecycleConfiguration,
    DeleteBucketLifecycle,
    // ListObjects (v1): translated to ListObjectsV2 on directory buckets (`listing`).
    ListObjects,
    // Operations directory buckets do not support: the proxy answers 501 itself.
    ListObjectVersions,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    GetObjectAcl,
    PutObjectAcl,
    GetObjectLockConfiguration,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
    RestoreObject,
    SelectObjectContent,
    BucketCors,
    BucketWebsite,
    BucketVersioning,
    BucketReplication,
    BucketAcl,
    BucketTagging,
    Unknown,
);

impl Operation {
    /// True for operations a ReadOnly session may run.
    pub fn is_read_only(self) -> bool {
        use Operation::*;
        matches!(
            self,
            GetObject
                | HeadObject
                | ListObjectsV2
                | ListObjects
                | GetObjectAttributes
                | ListParts
                | ListMultipartUploads
        )
    }

    /// True for operations that directory buckets do not support (the proxy answers 501).
    pub fn is_unsupported(self) -> bool {
        use Operation::*;
        matches!(
            self,
            ListObjectVersions
                | GetObjectTagging
                | PutObjectTagging
                | DeleteObjectTagging
                | GetObjectAcl
                | PutObjectAcl
                | GetObjectLockConfiguration
                | GetObjectRetention
                | PutObjectRetention
                | GetObjectLegalHold
                | PutObjectLegalHold
                | RestoreObject
                | SelectObjectContent
                | BucketCors
                | BucketWebsite
                | BucketVersioning
                | BucketReplication
                | BucketAcl
                | BucketTagging
        )
    }

    /// True for operations served by the control-plane endpoint (`s3express-control`).
    pub fn is_control_plane(self) -> bool {
        use Operation::*;
        matches!(
            self,
            ListDirectoryBuckets
                | CreateBucket
                | DeleteBucket
                | GetBucketPolicy
                | PutBucketPolicy
                | DeleteBucketPolicy
                | GetBucketEncryption
                | PutBucketEncryption
                | DeleteBucketEncryption
                | GetBucketLifecycleConfiguration
                | PutBucketLifecycleConfiguration
                | DeleteBucketLifecycle
        )
    }

    /// True for the operations S3 takes IAM-signed on a Zonal endpoint (besides CreateSession,
    /// which the proxy itself sends).
    pub fn may_use_iam_on_zonal(self) -> bool {
        matches!(
            self,
            Operation::CopyObject | Operation::UploadPartCopy | Operation::HeadBucket
        )
    }

    /// Which credentials sign this operation upstream (`per-request` session mode).
    pub fn auth(self) -> Auth {
        use Operation::*;
        match self {
            // The client's own CreateSession, and GetBucketLocation (from the zone's region).
            CreateSession | GetBucketLocation => Auth::AnswerLocally,
            // Copies read a source the session cannot vouch for: S3 wants the IAM identity.
            CopyObject | UploadPartCopy => Auth::Iam,
            // The docs say IAM; some SDKs use the session. We follow the docs (DESIGN.md).
            HeadBucket => Auth::Iam,
            op if op.is_control_plane() => Auth::Iam,
            op if op.is_read_only() => Auth::Session(Mode::ReadOnly),
            _ => Auth::Session(Mode::ReadWrite),
        }
    }
}

/// What a request's path names, as routing found it on the host it addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// An object key in a bucket.
    Object,
    /// A bucket, or a general-purpose host's root (ListBuckets).
    Bucket,
    /// A bucket on the control-plane host (`/BUCKET`): a control-plane operation, or
    /// GetBucketLocation.
    ControlBucket,
    /// The control plane's root (`/`): ListDirectoryBuckets.
    ControlRoot,
}

/// The facts about a request that decide its operation.
pub struct RequestShape<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// What the path names.
    pub resource: Resource,
    /// The query, decoded.
    pub query: &'a Query,
    /// The one subresource the query names, as [`subresource`] found it.
    pub subresource: Option<&'static str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

/// Classifies a request: the one place a request's operation is decided (routing calls it
/// once, with what it found; every later stage reads `Route::operation`).
pub fn classify(shape: &RequestShape<'_>) -> Operation {
    match shape.resource {
        Resource::Object => classify_object(shape),
        Resource::Bucket => classify_bucket(shape),
        Resource::ControlBucket => match classify_bucket(shape) {
            op if op.is_control_plane() || op == Operation::GetBucketLocation => op,
            _ => Operation::Unknown,
        },
        Resource::ControlRoot if *shape.method == Method::GET => Operation::ListDirectoryBuckets,
        Resource::ControlRoot => Operation::Unknown,
    }
}

fn classify_object(shape: &RequestShape<'_>) -> Operation {
    use Operation::*;
    let q = shape.query;
    let copy = shape.headers.contains_key("x-amz-copy-source");
    // The plain operations below are what a method means with no subresource; a subresource
    // the table does not know (`torrent`, `ACL` in another case) makes the request Unknown.
    let plain = || shape.subresource.is_none();
    match *shape.method {
        Method::GET if q.has("uploadId") => ListParts,
        Method::GET if q.has("attributes") => GetObjectAttributes,
        Method::GET if q.has("tagging") => GetObjectTagging,
        Method::GET if q.has("acl") => GetObjectAcl,
        Method::GET if q.has("retention") => GetObjectRetention,
        Method::GET if q.has("legal-hold") => GetObjectLegalHold,
        Method::GET if plain() => GetObject,
        Method::HEAD if plain() => HeadObject,
        Method::PUT if q.has("partNumber") && q.has("uploadId") && copy => UploadPartCopy,
        Method::PUT if q.has("partNumber") && q.has("uploadId") => UploadPart,
        Method::PUT if q.has("renameObject") => RenameObject,
        Method::PUT if q.has("tagging") => PutObjectTagging,
        Method::PUT if q.has("acl") => PutObjectAcl,
        Method::PUT if q.has("retention") => PutObjectRetention,
        Method::PUT if q.has("legal-hold") => PutObjectLegalHold,
        Method::PUT if copy && plain() => CopyObject,
        Method::PUT if plain() => PutObject,
        Method::POST if q.has("uploads") => CreateMultipartUpload,
        Method::POST if q.has("uploadId") => CompleteMultipartUpload,
        Method::POST if q.has("restore") => RestoreObject,
        Method::POST if q.has("select") => SelectObjectContent,
        Method::DELETE if q.has("uploadId") => AbortMultipartUpload,
        Method::DELETE if q.has("tagging") => DeleteObjectTagging,
        Method::DELETE if plain() => DeleteObject,
        _ => Unknown,
    }
}

fn classify_bucket(shape: &RequestShape<'_>) -> Operation {
    use Operation::*;
    let q = shape.query;
    let sub = |name| q.has(name);
    match *shape.method {
        Method::GET if q.names_session() => CreateSession,
        Method::GET if sub("location") => GetBucketLocation,
        Method::GET if q.value("list-type") == Some("2") => ListObjectsV2,
        Method::GET if sub("uploads") => ListMultipartUploads,
        Method::GET if sub("versions") => ListObjectVersions,
        Method::GET if sub("policy") => GetBucketPolicy,
        Method::GET if sub("encryption") => GetBucketEncryption,
        Method::GET if sub("lifecycle") => GetBucketLifecycleConfiguration,
        Method::GET if sub("object-lock") => GetObjectLockConfiguration,
        Method::PUT if sub("policy") => PutBucketPolicy,
        Method::PUT if sub("encryption") => PutBucketEncryption,
        Method::PUT if sub("lifecycle") => PutBucketLifecycleConfiguration,
        Method::DELETE if sub("policy") => DeleteBucketPolicy,
        Method::DELETE if sub("encryption") => DeleteBucketEncryption,
        Method::DELETE if sub("lifecycle") => DeleteBucketLifecycle,
        _ if sub("cors") => BucketCors,
        _ if sub("website") => BucketWebsite,
        _ if sub("versioning") => BucketVersioning,
        _ if sub("replication") => BucketReplication,
        _ if sub("acl") => BucketAcl,
        _ if sub("tagging") => BucketTagging,
        Method::POST if sub("delete") => DeleteObjects,
        Method::HEAD if shape.subresource.is_none() => HeadBucket,
        Method::PUT if q.is_empty() => CreateBucket,
        Method::DELETE if q.is_empty() => DeleteBucket,
        // A plain GET on a bucket is ListObjects (v1); directory buckets only have v2.
        Method::GET if !has_unknown_subresource(q) => ListObjects,
        _ => Unknown,
    }
}

/// The query keys that select an S3 operation (subresources), of buckets and of objects. Other
/// keys only modify one (`versionId`, `partNumber`, `prefix`, `select-type`, `response-*`,
/// `x-id`, …). Compared without regard to case: a spelling S3 might read as a subresource is
/// one.
pub const SUBRESOURCES: &[&str] = &[
    "abac",
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "list-type",
    "location",
    "logging",
    "metadataConfiguration",
    "metadataInventoryTable",
    "metadataJournalTable",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "renameObject",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
];

/// A query that names more than one operation's subresource (`list-type=2&policy`,
/// `uploadId=1&acl`), or one twice: the proxy would classify it as one operation while S3 may
/// run another, so it is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the query names the subresources {0} and {1}; a request may name only one")]
pub struct MixedSubresources(pub &'static str, pub &'static str);

/// The one operation-selecting subresource the query names (see [`SUBRESOURCES`]), if any.
pub fn subresource(q: &Query) -> Result<Option<&'static str>, MixedSubresources> {
    let mut found = None;
    for key in q.keys() {
        let Some(name) = SUBRESOURCES.iter().find(|s| s.eq_ignore_ascii_case(key)) else {
            continue;
        };
        match found {
            None => found = Some(*name),
            Some(first) => return Err(MixedSubresources(first, name)),
        }
    }
    Ok(found)
}

/// ListObjects takes these parameters; anything else names a subresource we do not know.
fn has_unknown_subresource(q: &Query) -> bool {
    const LIST_PARAMS: &[&str] = &[
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "encoding-type",
        "x-id",
    ];
    q.keys().any(|k| !LIST_PARAMS.contains(&k))
}

#[cfg(test)]
#[path = "operation_tests.rs"]
mod tests;
