//! CreateSession: the call that turns IAM credentials into S3 Express session credentials,
//! and reading S3's answers to it.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_smithy_types::date_time::{DateTime, Format};
use http::{HeaderValue, Request, StatusCode};

use crate::body::{empty, ProxyBody};
use crate::route::endpoint::Endpoint;
use crate::route::operation::Mode;
use crate::session::credentials::IamCredentials;
use crate::sign::{
    set_target, sign_parts, Payload, Scope, SignError, SigningCredentials, TokenHeader,
};
use crate::upstream::rejection::iam_credentials_rejected;
use crate::upstream::{read_answer, Upstream, UpstreamError};
use crate::xml;

/// SSE headers a CreateSession carries over from the user's request (and that key the cache).
pub const SSE_HEADERS: &[&str] = &[
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
];

/// Why CreateSession gave no session. Cloneable: a failure is cached briefly and every request
/// that asks meanwhile gets the same answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CreateSessionError {
    /// S3 refused CreateSession; relayed to the client with S3's own status and code.
    #[error("CreateSession failed with {status} {code}")]
    S3 {
        /// S3's status.
        status: StatusCode,
        /// S3's error code.
        code: String,
        /// S3's message.
        message: String,
    },
    /// The IAM credentials could not be loaded.
    #[error("no IAM credentials")]
    Credentials,
    /// The CreateSession request could not be signed; nothing was sent.
    #[error("CreateSession could not be signed: {0}")]
    Sign(#[from] SignError),
    /// S3 answered 200 with something that is not a usable CreateSessionResult.
    #[error("unreadable CreateSession response: {0}")]
    BadResponse(String),
    /// The call never got an answer.
    #[error(transparent)]
    Upstream(std::sync::Arc<UpstreamError>),
}

impl From<UpstreamError> for CreateSessionError {
    fn from(error: UpstreamError) -> Self {
        CreateSessionError::Upstream(std::sync::Arc::new(error))
    }
}

impl CreateSessionError {
    /// How long this failure stays the answer for callers that arrive after it: S3's refusals
    /// of the request itself (NoSuchBucket, AccessDenied) for 5 s; a transient failure
    /// (throttling, a server error, an unreachable S3) not at all: it answers the callers that
    /// were waiting on that call, and the next caller asks again, so one 500 does not fail a
    /// second's worth of requests.
    pub fn cache_for(&self) -> std::time::Duration {
        match self {
            CreateSessionError::S3 { status, .. } if status.is_client_error() => {
                std::time::Duration::from_secs(5)
            }
            _ => std::time::Duration::ZERO,
        }
    }
}

/// What a session is cached under: everything that identifies the upstream it is valid for
/// (the bucket's Zonal endpoint: bucket, zone, region, FIPS, dual-stack), the mode, and the
/// SSE settings it was created with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// The Zonal endpoint (always [`Endpoint::Zonal`]).
    pub endpoint: Endpoint,
    /// The session mode.
    pub mode: Mode,
    /// SSE headers (name, value) from the request, in [`SSE_HEADERS`] order.
    pub sse: Vec<(&'static str, String)>,
}

impl SessionKey {
    /// The key for a Zonal `endpoint` and `mode`, taking SSE settings from the request headers.
    pub fn new(endpoint: Endpoint, mode: Mode, headers: &http::HeaderMap) -> Self {
        let sse = SSE_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some((*name, value.to_owned()))
            })
            .collect();
        Self {
            endpoint,
            mode,
            sse,
        }
    }

    /// The bucket, for logs.
    pub fn bucket(&self) -> String {
        match &self.endpoint {
            Endpoint::Zonal { bucket, .. } => bucket.to_string(),
            other => other.host(),
        }
    }
}

/// Calls CreateSession (`GET /?session`, signed with the IAM credentials) and returns the
/// session credentials and how long they last.
pub(crate) async fn create_session(
    upstream: &dyn Upstream,
    iam: &IamCredentials,
    key: &SessionKey,
) -> Result<(Credentials, Duration), CreateSessionError> {
    let loaded = iam
        .get_loaded()
        .await
        .map_err(|_| CreateSessionError::Credentials)?;
    match call(upstream, key, &loaded.signing).await {
        // S3 no longer takes these IAM credentials (rotated keys, an expired token): load
        // them again and try once more.
        Err(CreateSessionError::S3 { code, .. }) if iam_credentials_rejected(&code) => {
            tracing::info!(
                code,
                "S3 rejected the IAM credentials for CreateSession; reloading"
            );
            iam.invalidate(loaded.generation);
            let fresh = iam
                .get_loaded()
                .await
                .map_err(|_| CreateSessionError::Credentials)?;
            call(upstream, key, &fresh.signing).await
        }
        result => result,
    }
}

/// One CreateSession call signed with `iam`.
async fn call(
    upstream: &dyn Upstream,
    key: &SessionKey,
    iam: &SigningCredentials,
) -> Result<(Credentials, Duration), CreateSessionError> {
    let (mut parts, ()) = Request::new(()).into_parts();
    set_target(&mut parts, &key.endpoint.host(), "/?session")?;
    parts.headers.insert(
        "x-amz-create-session-mode",
        HeaderValue::from_static(key.mode.as_str()),
    );
    for (name, value) in &key.sse {
        if let Ok(value) = HeaderValue::from_str(value) {
            parts.headers.insert(*name, value);
        }
    }
    sign_parts(
        &mut parts,
        iam,
        TokenHeader::SecurityToken,
        Scope {
            region: key.endpoint.region().as_str(),
            service: key.endpoint.service(),
        },
        Payload::Empty,
    )?;
    let request: Request<ProxyBody> = Request::from_parts(parts, empty());
    let response = upstream.send(request).await?;
    let status = response.status();
    let date = response
        .headers()
        .get(http::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| DateTime::from_str(d, Format::HttpDate).ok());
    let body = read_answer(response.into_body()).await?;
    let text = String::from_utf8_lossy(&body);
    if status != StatusCode::OK {
        return Err(s3_error(status, &text));
    }
    let parsed = xml::parse_create_session(&text)
        .map_err(|e| CreateSessionError::BadResponse(e.to_string()))?;
    let lifetime = session_lifetime(&parsed.expiration, date)?;
    let session = Credentials::new(
        parsed.access_key_id,
        parsed.secret_access_key,
        Some(parsed.session_token),
        None,
        "s3express-session",
    );
    Ok((session, lifetime))
}

/// An S3 error answer, keeping S3's status and code.
pub fn s3_error(status: StatusCode, body: &str) -> CreateSessionError {
    match xml::parse_error(body) {
        Ok(e) => CreateSessionError::S3 {
            status,
            code: e.code,
            message: e.message,
        },
        Err(_) => CreateSessionError::S3 {
            status,
            code: status
                .canonical_reason()
                .unwrap_or("Error")
                .replace(' ', ""),
            message: "CreateSession failed".into(),
        },
    }
}

/// How long a session lives, measured against S3's own clock (`Date`) when it sent one, so a
/// skewed local clock does not shorten or stretch sessions.
fn session_lifetime(
    expiration: &str,
    date: Option<DateTime>,
) -> Result<Duration, CreateSessionError> {
    let expires = DateTime::from_str(expiration, Format::DateTime)
        .ok()
        .and_then(|d| SystemTime::try_from(d).ok())
        .ok_or_else(|| CreateSessionError::BadResponse("bad Expiration".into()))?;
    let now = date
        .and_then(|d| SystemTime::try_from(d).ok())
        .unwrap_or_else(SystemTime::now);
    let lifetime = expires
        .duration_since(now)
        .map_err(|_| CreateSessionError::BadResponse("session already expired".into()))?;
    // S3 sessions last 5 minutes; a longer claim is not trusted beyond an hour.
    Ok(lifetime.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_is_measured_against_the_servers_date() {
        let date = DateTime::from_str("Mon, 29 Jan 2024 18:48:01 GMT", Format::HttpDate).unwrap();
        let lifetime = session_lifetime("2024-01-29T18:53:01Z", Some(date)).unwrap();
        assert_eq!(lifetime, Duration::from_secs(300));
        assert!(session_lifetime("2024-01-29T18:40:00Z", Some(date)).is_err());
        assert!(session_lifetime("not a date", Some(date)).is_err());
    }

    #[test]
    fn error_bodies_keep_s3s_code() {
        let body = "<Error><Code>AccessDenied</Code><Message>no</Message></Error>";
        match s3_error(StatusCode::FORBIDDEN, body) {
            CreateSessionError::S3 { status, code, .. } => {
                assert_eq!(
                    (status, code.as_str()),
                    (StatusCode::FORBIDDEN, "AccessDenied")
                )
            }
            other => panic!("{other:?}"),
        }
        match s3_error(StatusCode::SERVICE_UNAVAILABLE, "") {
            CreateSessionError::S3 { code, .. } => assert_eq!(code, "ServiceUnavailable"),
            other => panic!("{other:?}"),
        }
    }
}
