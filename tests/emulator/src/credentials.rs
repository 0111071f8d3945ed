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
    if let Some(principal) = resolve_iam(state, head, akid)? {
        return Ok(principal);
    }
    // General-purpose S3 knows nothing of directory-bucket sessions.
    if !general_purpose && state.sessions().values().any(|s| s.access_key_id == akid) {
        return Err(S3Error::access_denied(
            "Session credentials must be used with x-amz-s3session-token.",
        )
        .auth());
    }
    Err(invalid_access_key_id())
}

/// The IAM credentials the emulator accepts now, and those it accepted before.
#[derive(Debug)]
pub(crate) struct IamKeys {
    pub current: IamKey,
    /// Rotated out, oldest first.
    pub retired: Vec<IamKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IamKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `x-amz-security-token` of temporary credentials.
    pub token: Option<String>,
}

impl IamKeys {
    /// Makes `key` the accepted one; the previous one is retired.
    pub fn rotate(&mut self, key: IamKey) {
        let old = std::mem::replace(&mut self.current, key);
        if old != self.current {
            self.retired.push(old);
        }
    }

    /// An access key id that is or was an IAM one.
    pub fn knows(&self, akid: &str) -> bool {
        self.current.access_key_id == akid || self.retired.iter().any(|k| k.access_key_id == akid)
    }
}

fn iam_expired(state: &State) -> S3Error {
    state.counters().iam_expired_token += 1;
    expired_token()
}

/// The IAM principal for `akid`, None when `akid` was never an IAM key id. A rotated-out key
/// of temporary credentials, or the current key with a retired token, gets 400 ExpiredToken; a
/// rotated-out long-term key 403 InvalidAccessKeyId; a missing or unknown token 403
/// InvalidToken.
fn resolve_iam(state: &State, head: &Head, akid: &str) -> Result<Option<Principal>> {
    let sent = head.get("x-amz-security-token");
    let keys = state.iam();
    if keys.current.access_key_id == akid {
        if sent == keys.current.token.as_deref() {
            return Ok(Some(Principal::Iam(keys.current.secret_access_key.clone())));
        }
        let stale =
            sent.is_some_and(|t| keys.retired.iter().any(|k| k.token.as_deref() == Some(t)));
        drop(keys);
        if stale {
            return Err(iam_expired(state));
        }
        return Err(S3Error::new(
            403,
            "InvalidToken",
            "The security token included in the request is missing or invalid.",
        )
        .auth());
    }
    let retired = keys
        .retired
        .iter()
        .rev()
        .find(|k| k.access_key_id == akid)
        .cloned();
    drop(keys);
    match retired {
        None => Ok(None),
        Some(k) if k.token.is_some() => Err(iam_expired(state)),
        Some(_) => Err(invalid_access_key_id()),
    }
}

fn invalid_access_key_id() -> S3Error {
    S3Error::new(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    )
    .auth()
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
