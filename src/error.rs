//! Errors of every stage, and the one place that turns them into S3-style XML responses.

use http::{header, Response, StatusCode};

use crate::body::{full, ProxyBody};
use crate::forward::UpstreamError;
use crate::route::RouteError;
use crate::session::SessionError;
use crate::xml::error_body;

/// Everything that can stop a request before S3's own answer is relayed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request could not be routed (the client's fault).
    #[error(transparent)]
    Route(#[from] RouteError),
    /// Policy refused the request.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The request itself is malformed in a way we cannot sign or forward.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A session could not be had.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Sending the request upstream failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Refusals by policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// `--session-mode read-only` forbids writes.
    #[error("this proxy runs with --session-mode read-only and refuses {0}")]
    ReadOnly(&'static str),
    /// Directory buckets do not support this operation.
    #[error("{0} is not supported on directory buckets")]
    Unsupported(&'static str),
    /// A CONNECT target that is neither S3 Express nor allowed by --allow-connect.
    #[error("CONNECT to {0} is not allowed: s3x-proxy only intercepts S3 Express hosts (see --allow-connect)")]
    ConnectDenied(String),
    /// A CONNECT target that is not `host:port`.
    #[error("the CONNECT target must be host:port")]
    BadConnectTarget,
}

/// Malformed requests (400).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A header value we would have to sign is not visible ASCII.
    #[error("header {0} has a value that is not ASCII; it cannot be signed")]
    NonAsciiHeader(String),
    /// The aws-chunked body framing is broken.
    #[error("the aws-chunked request body is malformed")]
    BadChunkedBody,
    /// The request could not be signed.
    #[error("the request could not be signed")]
    Unsignable,
    /// A body of unknown length that is too large to hold and cannot be split into parts.
    #[error("this request needs a Content-Length header")]
    MissingContentLength,
    /// The client's request body could not be read.
    #[error("the request body could not be read")]
    BodyRead,
}

/// What a client sees: status, S3 error code, and a message that is safe to show.
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
        let (status, code, message): (StatusCode, &str, String) = match self {
            ProxyError::Route(RouteError::InvalidName(e)) => {
                (StatusCode::BAD_REQUEST, "InvalidBucketName", e.to_string())
            }
            ProxyError::Route(RouteError::NotS3Host(_)) => {
                (StatusCode::FORBIDDEN, "AccessDenied", self.to_string())
            }
            ProxyError::Route(e) => (StatusCode::BAD_REQUEST, "InvalidRequest", e.to_string()),
            ProxyError::Policy(e @ PolicyError::Unsupported(_)) => {
                (StatusCode::NOT_IMPLEMENTED, "NotImplemented", e.to_string())
            }
            ProxyError::Policy(e @ PolicyError::BadConnectTarget) => {
                (StatusCode::BAD_REQUEST, "InvalidRequest", e.to_string())
            }
            ProxyError::Policy(e) => (StatusCode::FORBIDDEN, "AccessDenied", e.to_string()),
            ProxyError::Request(e @ RequestError::MissingContentLength) => (
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                e.to_string(),
            ),
            ProxyError::Request(e @ RequestError::BadChunkedBody) => {
                (StatusCode::BAD_REQUEST, "IncompleteBody", e.to_string())
            }
            ProxyError::Request(e) => (StatusCode::BAD_REQUEST, "InvalidArgument", e.to_string()),
            ProxyError::Session(SessionError::S3 {
                status,
                code,
                message,
            }) => (*status, code.as_str(), message.clone()),
            ProxyError::Session(SessionError::Credentials) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "the proxy could not load AWS credentials".into(),
            ),
            ProxyError::Session(SessionError::BadResponse(_)) => (
                StatusCode::BAD_GATEWAY,
                "BadGateway",
                "CreateSession returned a response the proxy could not read".into(),
            ),
            ProxyError::Session(SessionError::Upstream(e)) | ProxyError::Upstream(e) => {
                upstream_reply(e)
            }
        };
        ErrorReply {
            status,
            code: code.to_owned(),
            message,
        }
    }

    /// Turns this error into the S3-style XML response the client receives.
    pub fn into_response(self, request_id: &str, head_only: bool) -> Response<ProxyBody> {
        let reply = self.reply();
        error_response(
            reply.status,
            &reply.code,
            &reply.message,
            request_id,
            head_only,
        )
    }
}

fn upstream_reply(e: &UpstreamError) -> (StatusCode, &'static str, String) {
    match e {
        UpstreamError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "GatewayTimeout",
            "S3 did not answer in time".into(),
        ),
        UpstreamError::Connect(_) => (
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            "the proxy could not connect to S3".into(),
        ),
        UpstreamError::Request(_) => (
            StatusCode::BAD_GATEWAY,
            "BadGateway",
            "the connection to S3 failed".into(),
        ),
    }
}

/// Builds an S3-style XML error response (no body for HEAD, as S3 does).
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
    head_only: bool,
) -> Response<ProxyBody> {
    let body = error_body(code, message, request_id);
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml")
        .header("x-amz-request-id", request_id);
    builder = builder.header(header::CONTENT_LENGTH, body.len());
    let body = if head_only {
        crate::body::empty()
    } else {
        full(body)
    };
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(crate::body::empty()))
}
