//! Authorisation: what an authenticated client (or one of its sessions) may do to a bucket.

use std::sync::Arc;

use http::HeaderValue;
use percent_encoding::percent_decode_str;

use super::error::AuthError;
use super::file::{Access, Client};
use super::session::SessionGrant;
use crate::operation::{Mode, Operation};

/// Who a request comes from: an access-file client, directly (its own keys or Basic) or through
/// a session the proxy minted for it.
#[derive(Clone, Debug)]
pub struct Principal {
    pub(crate) client: Arc<Client>,
    pub(crate) session: Option<SessionGrant>,
}

impl Principal {
    /// The client itself (Basic or its own SigV4 keys).
    pub fn client(client: Arc<Client>) -> Self {
        Principal {
            client,
            session: None,
        }
    }

    /// The client's name, for the access log (`client=NAME`).
    pub fn name(&self) -> &str {
        self.client.name()
    }

    /// The access-file entry.
    pub fn entry(&self) -> &Arc<Client> {
        &self.client
    }

    /// The session the request was signed with, if it was.
    pub fn session(&self) -> Option<&SessionGrant> {
        self.session.as_ref()
    }

    /// Whether this principal may run `operation` on `bucket`. CopyObject and UploadPartCopy
    /// also need read access to the bucket of `copy_source` (the `x-amz-copy-source` header).
    /// A session adds its own limits: its one bucket, its mode, and no CreateSession.
    /// Operations that name no bucket (ListDirectoryBuckets, ListBuckets) are refused: the
    /// proxy's credentials would list every tenant's buckets.
    pub fn may(
        &self,
        operation: Operation,
        bucket: Option<&str>,
        copy_source: Option<&HeaderValue>,
    ) -> Result<(), AuthError> {
        let deny = AuthError::AccessDenied;
        let bucket = bucket.ok_or(deny("the operation names no bucket"))?;
        let needed = required_access(operation);
        if let Some(session) = &self.session {
            if operation == Operation::CreateSession {
                return Err(deny("a session cannot create sessions"));
            }
            if session.bucket() != bucket {
                return Err(deny("the session is for another bucket"));
            }
            if session.mode() == Mode::ReadOnly && needed == Access::ReadWrite {
                return Err(deny("the session is ReadOnly"));
            }
        }
        match self.client.access(bucket) {
            None => return Err(deny("no allow rule of the client matches the bucket")),
            Some(access) if access < needed => {
                return Err(deny("the client may only read the bucket"))
            }
            Some(_) => {}
        }
        if matches!(operation, Operation::CopyObject | Operation::UploadPartCopy) {
            let source = copy_source.ok_or(AuthError::InvalidCopySource)?;
            let source = copy_source_bucket(source)?;
            if self.client.access(&source).is_none() {
                return Err(deny("the client may not read the copy source bucket"));
            }
        }
        Ok(())
    }
}

/// The access level an operation needs.
///
/// `read-only` allows exactly the ReadOnly session operations (GetObject, HeadObject,
/// ListObjectsV2, GetObjectAttributes, ListParts, ListMultipartUploads), HeadBucket and
/// CreateSession (whose mode is checked on its own), and, for general-purpose buckets, the
/// reads of objects and their listings: ListObjects (v1), ListObjectVersions,
/// GetBucketLocation, GetObjectTagging, GetObjectRetention, GetObjectLegalHold,
/// GetObjectLockConfiguration, and SelectObjectContent (a POST, but IAM authorises it as
/// `s3:GetObject`). Not read-only: ACLs (they expose account ids and grantees), the bucket
/// policy, encryption and lifecycle configuration, the generic bucket-configuration
/// subresources (one variant for GET and PUT), RestoreObject (it writes a copy and costs),
/// and anything unknown.
pub fn required_access(operation: Operation) -> Access {
    use Operation::*;
    let read = operation.is_read_only()
        || matches!(
            operation,
            HeadBucket
                | CreateSession
                | ListObjects
                | ListObjectVersions
                | GetBucketLocation
                | GetObjectTagging
                | GetObjectRetention
                | GetObjectLegalHold
                | GetObjectLockConfiguration
                | SelectObjectContent
        );
    if read {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    }
}

/// The source bucket of `x-amz-copy-source`: `/bucket/key` or `bucket/key`, percent-encoded,
/// maybe with `?versionId=…` (split off before decoding, as S3 does). Access-point ARNs are
/// not understood, so they are refused.
pub fn copy_source_bucket(value: &HeaderValue) -> Result<String, AuthError> {
    let invalid = AuthError::InvalidCopySource;
    let raw = value.to_str().map_err(|_| invalid)?;
    let raw = raw.split_once('?').map_or(raw, |(path, _)| path);
    let decoded = percent_decode_str(raw).decode_utf8().map_err(|_| invalid)?;
    let path = decoded.strip_prefix('/').unwrap_or(&decoded);
    if path.starts_with("arn:") {
        return Err(AuthError::AccessDenied(
            "copies from access point ARNs are not supported",
        ));
    }
    match path.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(bucket.to_string()),
        _ => Err(invalid),
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
