//! Policy: which operations this proxy will forward, and with which session mode.

use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::{DateTime, Format};
use http::Method;

use crate::route::endpoint::Endpoint;
use crate::route::operation::{Auth, Mode, Operation};
use crate::route::uri::Query;
use crate::route::Route;

/// Refusals by policy (403, or 501 for what directory buckets do not support).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `--session-mode read-only` forbids writes.
    #[error("this proxy runs with --session-mode read-only and refuses {0}")]
    ReadOnly(&'static str),
    /// Directory buckets do not support this operation.
    #[error("{0} is not supported on directory buckets")]
    Unsupported(&'static str),
    /// A CONNECT target that is neither S3 nor allowed by --allow-connect.
    #[error(
        "CONNECT to {0} is not allowed: s3x-proxy only intercepts S3 hosts (see --allow-connect)"
    )]
    ConnectDenied(String),
    /// A presigned URL past its `X-Amz-Date` + `X-Amz-Expires`.
    #[error("Request has expired")]
    Expired,
    /// A request that would send IAM credentials to a Zonal host for an operation that must
    /// not carry them there (never reached by routing; a guard).
    #[error("{0} is never signed with IAM credentials for a Zonal endpoint")]
    IamToZonal(&'static str),
}

/// `--session-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SessionMode {
    /// ReadOnly sessions for read-only operations, ReadWrite for the rest.
    PerRequest,
    /// ReadWrite sessions for everything.
    ReadWrite,
    /// ReadOnly sessions only; the proxy itself refuses writes with 403.
    ReadOnly,
}

/// Decides how a routed request is signed, or refuses it.
pub fn authorize(route: &Route, method: &Method, mode: SessionMode) -> Result<Auth, PolicyError> {
    let operation = route.operation;
    if let Endpoint::General { .. } = route.endpoint {
        // General-purpose S3: IAM credentials for everything; read-only mode allows reads.
        let read = matches!(*method, Method::GET | Method::HEAD);
        if mode == SessionMode::ReadOnly && !read {
            return Err(PolicyError::ReadOnly(operation.name()));
        }
        return Ok(Auth::Iam);
    }
    let auth = authorize_directory(operation, mode)?;
    if auth == Auth::Iam && route.endpoint.is_zonal() && !operation.may_use_iam_on_zonal() {
        return Err(PolicyError::IamToZonal(operation.name()));
    }
    Ok(auth)
}

/// Refuses a presigned URL whose own expiry (`X-Amz-Date` + `X-Amz-Expires`) has passed: the
/// proxy re-signs every request, so it must keep the limit the URL's signer set.
pub fn presigned_fresh(query: &Query, now: SystemTime) -> Result<(), PolicyError> {
    let (Some(date), Some(expires)) = (
        query.presigned("x-amz-date"),
        query.presigned("x-amz-expires"),
    ) else {
        return Ok(());
    };
    let signed = basic_iso8601(date).ok_or(PolicyError::Expired)?;
    let expires = expires.parse::<u64>().map_err(|_| PolicyError::Expired)?;
    match signed.checked_add(Duration::from_secs(expires)) {
        Some(deadline) if now <= deadline => Ok(()),
        _ => Err(PolicyError::Expired),
    }
}

/// `20240101T000000Z` as a time.
fn basic_iso8601(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<&str> {
        let part = text.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then_some(part)
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let extended = format!(
        "{}-{}-{}T{}:{}:{}Z",
        digits(0..4)?,
        digits(4..6)?,
        digits(6..8)?,
        digits(9..11)?,
        digits(11..13)?,
        digits(13..15)?
    );
    let parsed = DateTime::from_str(&extended, Format::DateTime).ok()?;
    SystemTime::try_from(parsed).ok()
}

/// Directory buckets: 501 for what they lack, the session mode, and read-only refusals.
fn authorize_directory(operation: Operation, mode: SessionMode) -> Result<Auth, PolicyError> {
    if operation.is_unsupported() {
        return Err(PolicyError::Unsupported(operation.name()));
    }
    let auth = operation.auth();
    match (mode, auth) {
        (SessionMode::ReadWrite, Auth::Session(_)) => Ok(Auth::Session(Mode::ReadWrite)),
        (SessionMode::ReadOnly, Auth::Session(Mode::ReadWrite)) => {
            Err(PolicyError::ReadOnly(operation.name()))
        }
        (SessionMode::ReadOnly, Auth::Iam) if !is_read_only_iam(operation) => {
            Err(PolicyError::ReadOnly(operation.name()))
        }
        _ => Ok(auth),
    }
}

/// IAM-signed operations that change nothing.
fn is_read_only_iam(operation: Operation) -> bool {
    use Operation::*;
    matches!(
        operation,
        HeadBucket
            | ListDirectoryBuckets
            | GetBucketPolicy
            | GetBucketEncryption
            | GetBucketLifecycleConfiguration
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    #[test]
    fn a_presigned_url_keeps_its_own_expiry() {
        let signed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200); // 2024-01-01
        let query = Query::parse(Some(
            "X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&x-id=GetObject",
        ));
        assert!(presigned_fresh(&query, signed + Duration::from_secs(60)).is_ok());
        assert!(matches!(
            presigned_fresh(&query, signed + Duration::from_secs(61)),
            Err(PolicyError::Expired)
        ));
        let broken = Query::parse(Some("X-Amz-Date=yesterday&X-Amz-Expires=60"));
        assert!(presigned_fresh(&broken, signed).is_err());
        assert!(presigned_fresh(&Query::parse(Some("x-id=GetObject")), signed).is_ok());
    }

    #[test]
    fn modes_pick_sessions_and_refuse_what_they_must() {
        use SessionMode::*;
        assert_eq!(
            authorize_directory(GetObject, PerRequest).unwrap(),
            Auth::Session(Mode::ReadOnly)
        );
        assert_eq!(
            authorize_directory(GetObject, ReadWrite).unwrap(),
            Auth::Session(Mode::ReadWrite)
        );
        assert_eq!(
            authorize_directory(PutObject, PerRequest).unwrap(),
            Auth::Session(Mode::ReadWrite)
        );
        assert!(matches!(
            authorize_directory(PutObject, ReadOnly),
            Err(PolicyError::ReadOnly(_))
        ));
        assert!(matches!(
            authorize_directory(CopyObject, ReadOnly),
            Err(PolicyError::ReadOnly(_))
        ));
        assert!(matches!(
            authorize_directory(Unknown, ReadOnly),
            Err(PolicyError::ReadOnly(_))
        ));
        assert_eq!(
            authorize_directory(HeadBucket, ReadOnly).unwrap(),
            Auth::Iam
        );
        assert_eq!(
            authorize_directory(ListObjectsV2, ReadOnly).unwrap(),
            Auth::Session(Mode::ReadOnly)
        );
        assert_eq!(
            authorize_directory(ListObjects, PerRequest).unwrap(),
            Auth::Session(Mode::ReadOnly)
        );
        assert_eq!(
            authorize_directory(ListObjects, ReadOnly).unwrap(),
            Auth::Session(Mode::ReadOnly)
        );
        assert!(matches!(
            authorize_directory(ListObjectVersions, PerRequest),
            Err(PolicyError::Unsupported("ListObjectVersions"))
        ));
        assert_eq!(
            authorize_directory(CreateSession, ReadOnly).unwrap(),
            Auth::AnswerLocally
        );
    }
}
