//! Errors: the one enum that gathers every stage's error, and the one place that says what a
//! client sees for each (status, S3 error code, a message without secrets).

use http::{Response, StatusCode};

use crate::admit::identity::{AuthError, HeadersNotSigned, Refusal};
use crate::admit::repeats::RepeatedHeader;
use crate::body::{BodyIdle, ClientBodyError, ProxyBody};
use crate::policy::PolicyError;
use crate::respond::error_response_with;
use crate::route::compat::CompatError;
use crate::route::RouteError;
use crate::send::listing::{ListingError, ListingFailed};
use crate::send::unknown_length::UploadError;
use crate::send::SendError;
use crate::session::create_session::CreateSessionError;
use crate::session::credentials::CredentialsUnavailable;
use crate::sign::budget::OverBudget;
use crate::sign::digest::DigestError;
use crate::sign::SignError;
use crate::upstream::UpstreamError;

/// The `Proxy-Authenticate` value of every 407.
const PROXY_AUTHENTICATE: &str = "Basic realm=\"s3x-proxy\"";

/// Everything that can stop a request before S3's own answer is relayed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request could not be routed (the client's fault, or not an S3 host).
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Policy refused the request.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The request could not be signed; nothing was sent.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The client's request body was broken.
    #[error(transparent)]
    ClientBody(#[from] ClientBodyError),
    /// `Content-MD5` is malformed, or a body kept in memory does not match it (a streamed body
    /// fails with the same error as its cause, see [`ProxyError::reply`]).
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The IAM credentials could not be loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialsUnavailable),
    /// No session could be had for the request (CreateSession failed).
    #[error(transparent)]
    Session(#[from] CreateSessionError),
    /// The data request itself got no answer from S3 that could be relayed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The proxy holds as many request bodies as `--max-buffered-bytes` allows (503 SlowDown).
    #[error(transparent)]
    Busy(#[from] OverBudget),
    /// With `--access-file`: the client is unknown, unauthenticated, or not allowed this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// With `--access-file`: a client's signature leaves `x-amz-*` headers out (403).
    #[error(transparent)]
    HeadersNotSigned(#[from] HeadersNotSigned),
    /// A listing the proxy refuses itself (a delimiter other than `/`, bad parameters, or
    /// one that would read too much of a directory to answer).
    #[error(transparent)]
    Listing(#[from] ListingError),
    /// S3 Express would refuse the request and no bridge applies (S3's own 400).
    #[error(transparent)]
    Compat(#[from] CompatError),
    /// A header the proxy decides on appears more than once (400 DuplicateHeaderName).
    #[error(transparent)]
    Repeated(#[from] RepeatedHeader),
    /// A fault of the proxy itself (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ListingFailed> for ProxyError {
    fn from(error: ListingFailed) -> Self {
        match error {
            ListingFailed::Refused(e) => e.into(),
            ListingFailed::Send(e) => e.into(),
            ListingFailed::Upstream(e) => e.into(),
            ListingFailed::Sign(e) => e.into(),
        }
    }
}

impl From<Refusal> for ProxyError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Auth(e) => e.into(),
            Refusal::Unsigned(e) => e.into(),
        }
    }
}

impl From<SendError> for ProxyError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Sign(e) => e.into(),
            SendError::Upstream(e) => e.into(),
            SendError::Session(e) => e.into(),
            SendError::Credentials(e) => e.into(),
        }
    }
}

impl From<UploadError> for ProxyError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::Busy(e) => e.into(),
            UploadError::ClientBody(e) => e.into(),
            UploadError::Sign(e) => e.into(),
            UploadError::Send(e) => e.into(),
            UploadError::Upstream(e) => e.into(),
        }
    }
}

/// What a client sees: status, S3 error code, and a message that is safe to show.
#[derive(Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// HTTP status.
    pub status: StatusCode,
    /// S3-style error code.
    pub code: String,
    /// A message without secrets or internal error chains.
    pub message: String,
}

impl ProxyError {
    /// The status, code and public message for this error.
    pub fn reply(&self) -> ErrorReply {
        if let Some(reply) = self.request_body_reply() {
            return reply;
        }
        let (status, code, message): (StatusCode, &str, String) = match self {
            ProxyError::Route(e) => route_reply(e),
            ProxyError::Policy(e @ PolicyError::Unsupported(_)) => {
                (StatusCode::NOT_IMPLEMENTED, "NotImplemented", e.to_string())
            }
            ProxyError::Policy(e) => (StatusCode::FORBIDDEN, "AccessDenied", e.to_string()),
            ProxyError::Sign(e) => (StatusCode::BAD_REQUEST, "InvalidArgument", e.to_string()),
            ProxyError::ClientBody(e @ ClientBodyError::LengthRequired) => (
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                e.to_string(),
            ),
            ProxyError::ClientBody(e) => (StatusCode::BAD_REQUEST, "IncompleteBody", e.to_string()),
            ProxyError::Digest(e) => digest_reply(e),
            ProxyError::Credentials(_) => credentials_reply(),
            ProxyError::Session(e) => return session_reply(e),
            ProxyError::Upstream(e) => upstream_reply(e),
            ProxyError::Auth(e) => auth_reply(e),
            ProxyError::HeadersNotSigned(e) => {
                (StatusCode::FORBIDDEN, "AccessDenied", e.to_string())
            }
            ProxyError::Listing(e) => (StatusCode::BAD_REQUEST, listing_code(e), e.to_string()),
            ProxyError::Busy(e) => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown", e.to_string()),
            ProxyError::Compat(e @ CompatError::StorageClass) => (
                StatusCode::BAD_REQUEST,
                "InvalidStorageClass",
                e.to_string(),
            ),
            ProxyError::Repeated(e) => (
                StatusCode::BAD_REQUEST,
                "DuplicateHeaderName",
                e.to_string(),
            ),
            ProxyError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "the proxy failed to handle the request; see its log".into(),
            ),
        };
        ErrorReply {
            status,
            code: code.to_owned(),
            message,
        }
    }

    /// The client's fault, not S3's, whether the proxy was reading the request body or sending
    /// it to S3 when it showed: the body stalled ([`BodyIdle`], S3's 400 RequestTimeout), it
    /// does not match its `Content-MD5` or signed SHA-256 ([`DigestError`], S3's 400 BadDigest
    /// or XAmzContentSHA256Mismatch), or a chunk signature is wrong ([`AuthError`], S3's 403
    /// SignatureDoesNotMatch).
    fn request_body_reply(&self) -> Option<ErrorReply> {
        let (status, code, message) = if let Some(digest) = self.request_body_cause() {
            digest_reply(digest)
        } else if let Some(auth) = self.request_body_cause::<AuthError>() {
            auth_reply(auth)
        } else if self.request_body_cause::<BodyIdle>().is_some() {
            (
                StatusCode::BAD_REQUEST,
                "RequestTimeout",
                "the request body stalled for longer than the idle timeout".into(),
            )
        } else {
            return None;
        };
        Some(ErrorReply {
            status,
            code: code.to_owned(),
            message,
        })
    }

    /// The first error of type `T` in the cause chain of a request body's failure.
    fn request_body_cause<T: std::error::Error + 'static>(&self) -> Option<&T> {
        let cause: &(dyn std::error::Error + 'static) = match self {
            ProxyError::ClientBody(ClientBodyError::Read(e)) => e.as_ref(),
            ProxyError::Upstream(UpstreamError::Request(e)) => e.as_ref(),
            _ => return None,
        };
        std::iter::successors(Some(cause), |e| e.source()).find_map(|e| e.downcast_ref::<T>())
    }

    /// The elements S3 adds to some errors, after `<Message>`: the headers that were not
    /// signed, the two SHA-256s that differ (neither is a secret: the client sent the body).
    pub fn details(&self) -> Vec<(&'static str, String)> {
        let digest = match self {
            ProxyError::HeadersNotSigned(e) => return vec![("HeadersNotSigned", e.names.clone())],
            ProxyError::Digest(e) => Some(e),
            _ => self.request_body_cause(),
        };
        match digest {
            Some(DigestError::Sha256Mismatch {
                expected,
                calculated,
            }) => vec![
                ("ClientComputedContentSHA256", expected.clone()),
                ("S3ComputedContentSHA256", calculated.clone()),
            ],
            _ => Vec::new(),
        }
    }

    /// Turns this error into the S3-style XML response the client receives (a 407 with
    /// `Proxy-Authenticate`).
    pub fn into_response(self, request_id: &str, head_only: bool) -> Response<ProxyBody> {
        let reply = self.reply();
        let mut response = error_response_with(
            reply.status,
            (&reply.code, &reply.message),
            &self.details(),
            request_id,
            head_only,
        );
        if let ProxyError::Auth(AuthError::ProxyAuth(_)) = &self {
            response.headers_mut().insert(
                http::header::PROXY_AUTHENTICATE,
                http::HeaderValue::from_static(PROXY_AUTHENTICATE),
            );
        }
        response
    }
}

fn route_reply(e: &RouteError) -> (StatusCode, &'static str, String) {
    match e {
        RouteError::InvalidName(_) => (StatusCode::BAD_REQUEST, "InvalidBucketName", e.to_string()),
        RouteError::NotS3Host(_) | RouteError::GeneralPurposeOff(_) => {
            (StatusCode::FORBIDDEN, "AccessDenied", e.to_string())
        }
        _ => (StatusCode::BAD_REQUEST, "InvalidRequest", e.to_string()),
    }
}

/// A client that is unknown, unauthenticated, or not allowed this: S3's own codes where S3 has
/// one; a 407 (with [`PROXY_AUTHENTICATE`]) when `Proxy-Authorization` fails.
fn auth_reply(e: &AuthError) -> (StatusCode, &'static str, String) {
    use AuthError::*;
    let (status, code) = match e {
        ProxyAuth(_) => (
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "ProxyAuthenticationRequired",
        ),
        Malformed { query: false, .. } => (StatusCode::BAD_REQUEST, "AuthorizationHeaderMalformed"),
        Malformed { query: true, .. } => {
            (StatusCode::BAD_REQUEST, "AuthorizationQueryParametersError")
        }
        UnsupportedSignature | MissingContentSha256 => (StatusCode::BAD_REQUEST, "InvalidRequest"),
        InvalidToken(_) => (StatusCode::BAD_REQUEST, "InvalidToken"),
        ExpiredToken => (StatusCode::BAD_REQUEST, "ExpiredToken"),
        InvalidCopySource | InvalidSessionMode | InvalidContentSha256 => {
            (StatusCode::BAD_REQUEST, "InvalidArgument")
        }
        InvalidAccessKeyId => (StatusCode::FORBIDDEN, "InvalidAccessKeyId"),
        SignatureDoesNotMatch(_) => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
        RequestTimeTooSkewed => (StatusCode::FORBIDDEN, "RequestTimeTooSkewed"),
        Anonymous | RequestExpired | RequestNotYetValid | AccessDenied(_) => {
            (StatusCode::FORBIDDEN, "AccessDenied")
        }
    };
    (status, code, e.to_string())
}

/// S3's answers to a `Content-MD5` it cannot take.
fn digest_reply(e: &DigestError) -> (StatusCode, &'static str, String) {
    let (code, message) = match e {
        DigestError::Invalid => (
            "InvalidDigest",
            "The Content-MD5 you specified was invalid.",
        ),
        DigestError::Mismatch { .. } => (
            "BadDigest",
            "The Content-MD5 you specified did not match what we received.",
        ),
        DigestError::Sha256Mismatch { .. } => (
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ),
    };
    (StatusCode::BAD_REQUEST, code, message.into())
}

fn credentials_reply() -> (StatusCode, &'static str, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "the proxy could not load AWS credentials".into(),
    )
}

fn session_reply(e: &CreateSessionError) -> ErrorReply {
    let (status, code, message) = match e {
        CreateSessionError::S3 {
            status,
            code,
            message,
        } => (*status, code.as_str(), message.clone()),
        CreateSessionError::Credentials => credentials_reply(),
        CreateSessionError::Sign(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the proxy could not sign CreateSession".into(),
        ),
        CreateSessionError::BadResponse(_) => (
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            "CreateSession returned a response the proxy could not read".into(),
        ),
        CreateSessionError::Upstream(e) => {
            let (status, code, message) = upstream_reply(e);
            (status, code, format!("CreateSession: {message}"))
        }
    };
    ErrorReply {
        status,
        code: code.to_owned(),
        message,
    }
}

fn upstream_reply(e: &UpstreamError) -> (StatusCode, &'static str, String) {
    match e {
        UpstreamError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "GatewayTimeout",
            "S3 did not answer in time".into(),
        ),
        UpstreamError::Connect { host, .. } => (
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            format!("the proxy could not connect to S3 at {host}: {}", e.cause()),
        ),
        UpstreamError::Request(_) => (
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            "the connection to S3 failed".into(),
        ),
        UpstreamError::Answer(_) => (
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            "S3's answer could not be read".into(),
        ),
    }
}

/// The S3 code of a listing the proxy refuses itself.
fn listing_code(error: &ListingError) -> &'static str {
    match error {
        ListingError::Delimiter | ListingError::TooLong { .. } => "InvalidRequest",
        ListingError::MaxKeys | ListingError::EncodingType => "InvalidArgument",
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
