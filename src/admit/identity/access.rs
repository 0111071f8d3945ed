//! Authorisation: what an authenticated client (or one of its sessions) may do to a bucket.

use std::sync::Arc;

use http::HeaderValue;

use super::error::AuthError;
use super::file::{Access, Client};
use super::session::SessionGrant;
use crate::admit::copy_source::CopySourceError;
use crate::route::operation::{Mode, Operation};

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
    /// need a `copy_source` (the `x-amz-copy-source` header), and any request that carries one
    /// needs read access to its bucket: S3 reads it with the proxy's credentials whatever the
    /// proxy took the operation for. A session adds its own limits: its one bucket, its mode, and no CreateSession.
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
        let copies = matches!(operation, Operation::CopyObject | Operation::UploadPartCopy);
        match copy_source {
            None if copies => Err(AuthError::InvalidCopySource),
            None => Ok(()),
            Some(source) => match self.client.access(&copy_source_bucket(source)?) {
                None => Err(deny("the client may not read the copy source bucket")),
                Some(_) => Ok(()),
            },
        }
    }

    /// Whether this principal may name `source` (`x-amz-rename-source`) on a request to
    /// `bucket`: RenameObject moves an object within its bucket, so the source must be there.
    pub fn may_rename_from(
        &self,
        bucket: Option<&str>,
        source: &HeaderValue,
    ) -> Result<(), AuthError> {
        match bucket == Some(copy_source_bucket(source)?.as_str()) {
            true => Ok(()),
            false => Err(AuthError::AccessDenied(
                "the rename source is in another bucket",
            )),
        }
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

/// The bucket S3 reads for a copy (or rename) source header: see `copy_source` for how S3
/// reads it and what the proxy refuses. Access-point ARNs are refused (403): the bucket behind
/// one is not known here.
pub fn copy_source_bucket(value: &HeaderValue) -> Result<String, AuthError> {
    let raw = value.to_str().map_err(|_| AuthError::InvalidCopySource)?;
    match crate::admit::copy_source::parse(raw) {
        Ok(source) => Ok(source.bucket),
        Err(CopySourceError::AccessPoint) => Err(AuthError::AccessDenied(
            "copies from access point ARNs are not supported",
        )),
        Err(CopySourceError::Invalid(_)) => Err(AuthError::InvalidCopySource),
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
