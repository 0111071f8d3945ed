//! Authorisation: which credentials, session modes and bucket policies allow each operation.

use crate::auth::Principal;
use crate::error::{Result, S3Error};
use crate::route::Op;
use crate::store::{Mode, Policy, State};

/// Where a request goes, for authorisation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Control,
    Directory(&'a str),
    GeneralPurpose(&'a str),
}

fn denied_by_policy(bucket: &str) -> S3Error {
    S3Error::access_denied(format!("The bucket policy of {bucket} denies access."))
}

/// Checks that these credentials may run `op` where the request goes.
pub(crate) fn authorize(
    state: &State,
    op: Op,
    principal: &Principal,
    target: Target<'_>,
) -> Result<()> {
    let bucket = match target {
        Target::Control => {
            return match principal {
                Principal::Iam(_) => Ok(()),
                Principal::Session(_) => Err(S3Error::access_denied(
                    "Control-plane operations must be signed with IAM credentials.",
                )
                .auth()),
            }
        }
        Target::GeneralPurpose(bucket) => {
            return match principal {
                Principal::Iam(_) if state.policy(bucket) == Policy::Deny => {
                    Err(denied_by_policy(bucket))
                }
                Principal::Iam(_) => Ok(()),
                Principal::Session(_) => Err(S3Error::access_denied(
                    "General-purpose buckets take IAM credentials, not sessions.",
                )
                .auth()),
            };
        }
        Target::Directory(bucket) => bucket,
    };
    let policy = state.policy(bucket);
    match principal {
        Principal::Iam(_) if op.iam_only() || op == Op::HeadBucket => match policy {
            Policy::Deny => Err(denied_by_policy(bucket)),
            Policy::ReadOnly if matches!(op, Op::CopyObject | Op::UploadPartCopy) => {
                Err(S3Error::access_denied(format!(
                    "The bucket policy of {bucket} allows only read-only access."
                )))
            }
            _ => Ok(()),
        },
        Principal::Iam(_) => Err(S3Error::access_denied(format!(
            "{} on a directory bucket must be signed with session credentials from CreateSession.",
            op.name()
        ))
        .auth()),
        Principal::Session(_) if op.iam_only() => Err(S3Error::access_denied(format!(
            "{} must be signed with IAM credentials, not session credentials.",
            op.name()
        ))
        .auth()),
        Principal::Session(s) if s.bucket != bucket => Err(S3Error::access_denied(format!(
            "The session was created for bucket {}, not {bucket}.",
            s.bucket
        ))
        .auth()),
        Principal::Session(s)
            if s.mode == Mode::ReadOnly && !op.read_only() && op != Op::HeadBucket =>
        {
            Err(S3Error::access_denied(format!(
                "A ReadOnly session may not run {}.",
                op.name()
            )))
        }
        Principal::Session(_) => Ok(()),
    }
}
