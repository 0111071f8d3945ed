//! Which credentials an access key id (and token) stands for: IAM or a session.

use std::time::{Duration, SystemTime};

use crate::auth::{Head, Principal};
use crate::error::{Result, S3Error};
use crate::route::Op;
use crate::store::State;

fn expired_token() -> S3Error {
    S3Error::new(400, "ExpiredToken", "The provided token has expired.")
}

pub(crate) fn invalid_token() -> S3Error {
    S3Error::new(
        400,
        "InvalidToken",
        "The provided token is malformed or otherwise invalid.",
    )
}

/// Finds the credentials behind an access key id (and session token).
pub(crate) fn resolve(
    state: &State,
    head: &Head,
    akid: &str,
    op: Op,
    now: SystemTime,
    general_purpose: bool,
) -> Result<Principal> {
    let token = head.get("x-amz-s3session-token");
    if op == Op::CreateSession && token.is_some() {
        return Err(S3Error::invalid_request(
            "CreateSession must be signed with IAM credentials and must not carry x-amz-s3session-token.",
        ));
    }
    if let Some(token) = token {
        let session = state
            .sessions()
            .get(token)
            .cloned()
            .ok_or_else(invalid_token)?;
        if session.access_key_id != akid {
            return Err(S3Error::new(
                403,
                "InvalidAccessKeyId",
                "The access key id does not belong to the session token.",
            )
            .auth());
        }
        if now >= session.expires {
            return Err(expired_token());
        }
        if head.get("x-amz-security-token").is_some() {
            return Err(S3Error::invalid_request(
                "x-amz-security-token must not be sent with session credentials.",
            )
            .auth());
        }
        return Ok(Principal::Session(session));
    }
    if akid == state.config.access_key_id {
        let sent = head.get("x-amz-security-token");
        if sent != state.config.iam_session_token.as_deref() {
            return Err(S3Error::new(
                403,
                "InvalidToken",
                "The security token included in the request is missing or invalid.",
            )
            .auth());
        }
        return Ok(Principal::Iam);
    }
    // General-purpose S3 knows nothing of directory-bucket sessions.
    if !general_purpose && state.sessions().values().any(|s| s.access_key_id == akid) {
        return Err(S3Error::access_denied(
            "Session credentials must be used with x-amz-s3session-token.",
        )
        .auth());
    }
    Err(S3Error::new(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    )
    .auth())
}

/// Injected ExpiredToken / InvalidToken faults, which also spoil the session used.
pub(crate) fn injected_token_faults(state: &State, head: &Head) -> Result<()> {
    let token = head.get("x-amz-s3session-token").unwrap_or_default();
    let (expired, invalid) = {
        let mut f = state.faults();
        let expired = f.take_expired();
        (expired, !expired && f.take_invalid())
    };
    if expired {
        if let Some(s) = state.sessions().get_mut(token) {
            s.expires = SystemTime::now() - Duration::from_secs(1);
        }
        return Err(expired_token());
    }
    if invalid {
        state.sessions().remove(token);
        return Err(invalid_token());
    }
    Ok(())
}
