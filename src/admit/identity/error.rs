//! The errors of client identification and authorisation. The status and S3 code a client sees
//! for each are decided with every other error's, in `error.rs`.

/// Why a request is refused. `Display` is the client-safe message (S3's own wording where S3
/// has one); [`AuthError::detail`] says more, for the log line only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `Proxy-Authorization` is missing or wrong: 407 with `Proxy-Authenticate`. The client
    /// cannot tell the cases apart; the log can.
    #[error("Proxy authentication required")]
    ProxyAuth(ProxyAuthFailure),
    /// An endpoint-mode request with no signature at all (403 AccessDenied).
    #[error("Access Denied")]
    Anonymous,
    /// The `Authorization` header, or a presigned URL's parameters, cannot be read (400
    /// AuthorizationHeaderMalformed / AuthorizationQueryParametersError).
    #[error("The authorization information is malformed")]
    Malformed {
        /// True for a presigned URL, false for the `Authorization` header.
        query: bool,
        /// What was wrong, for the log.
        reason: &'static str,
    },
    /// Signature Version 2 (`Authorization: AWS …`, `?AWSAccessKeyId=…&Signature=…`), SigV4a,
    /// or another scheme (400 InvalidRequest).
    #[error("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")]
    UnsupportedSignature,
    /// A header-signed request without `x-amz-content-sha256` (400 InvalidRequest).
    #[error("Missing required header for this request: x-amz-content-sha256")]
    MissingContentSha256,
    /// `x-amz-content-sha256` is none of S3's markers and not a SHA-256 (400 InvalidArgument).
    #[error("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")]
    InvalidContentSha256,
    /// The access key id is not in the access file (403).
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId,
    /// The signature is not the one the client's key makes (403).
    #[error("The request signature we calculated does not match the signature you provided. Check your key and signing method.")]
    SignatureDoesNotMatch(&'static str),
    /// `X-Amz-Date` is more than 15 minutes away from the proxy's clock (403).
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,
    /// A presigned URL past its `X-Amz-Expires` (403 AccessDenied).
    #[error("Request has expired")]
    RequestExpired,
    /// A presigned URL dated more than 15 minutes ahead (403 AccessDenied).
    #[error("Request is not valid yet")]
    RequestNotYetValid,
    /// A session token the proxy did not mint, for a client the file no longer has or has
    /// changed, or not matching the session key id (400 InvalidToken).
    #[error("The provided token is malformed or otherwise invalid.")]
    InvalidToken(&'static str),
    /// A session past its 5 minutes (400 ExpiredToken).
    #[error("The provided token has expired.")]
    ExpiredToken,
    /// The client may not do this (403 AccessDenied).
    #[error("Access Denied")]
    AccessDenied(&'static str),
    /// `x-amz-copy-source` cannot be read (400 InvalidArgument).
    #[error("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")]
    InvalidCopySource,
    /// `x-amz-create-session-mode` is neither `ReadOnly` nor `ReadWrite` (400 InvalidArgument).
    #[error("The session mode must be ReadOnly or ReadWrite.")]
    InvalidSessionMode,
}

/// Why `Proxy-Authorization` failed. All map to the same 407; only the log tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAuthFailure {
    /// No `Proxy-Authorization` header.
    Missing,
    /// Not `Basic base64(id:secret)`: another scheme, bad base64, no `:`, not UTF-8.
    Malformed,
    /// The access key id is not in the access file.
    UnknownKey,
    /// The key id is known, the secret is not its secret.
    WrongSecret,
}

impl AuthError {
    /// What exactly went wrong, for the log line (never for the client). Holds no secret.
    pub fn detail(&self) -> &'static str {
        use AuthError::*;
        match self {
            ProxyAuth(ProxyAuthFailure::Missing) => "no Proxy-Authorization header",
            ProxyAuth(ProxyAuthFailure::Malformed) => "Proxy-Authorization is not Basic id:secret",
            ProxyAuth(ProxyAuthFailure::UnknownKey) => {
                "Proxy-Authorization names an unknown key id"
            }
            ProxyAuth(ProxyAuthFailure::WrongSecret) => "Proxy-Authorization has the wrong secret",
            Anonymous => "the request carries no signature",
            Malformed { reason, .. } => reason,
            UnsupportedSignature => "not AWS4-HMAC-SHA256 (SigV2, SigV4a or another scheme)",
            MissingContentSha256 => "no x-amz-content-sha256 header",
            InvalidAccessKeyId => "unknown access key id",
            SignatureDoesNotMatch(reason) => reason,
            RequestTimeTooSkewed => "X-Amz-Date is more than 15 minutes from now",
            RequestExpired => "the presigned URL has expired",
            RequestNotYetValid => "the presigned URL is dated in the future",
            InvalidToken(reason) => reason,
            ExpiredToken => "the session has expired",
            AccessDenied(reason) => reason,
            InvalidCopySource => {
                "the copy or rename source is not /bucket/key with a valid bucket and a plain key"
            }
            InvalidSessionMode => "x-amz-create-session-mode is not ReadOnly or ReadWrite",
            InvalidContentSha256 => "x-amz-content-sha256 is neither a marker nor a SHA-256",
        }
    }
}

/// `x-amz-*` headers a SigV4-signed request carries outside its SignedHeaders: 403
/// AccessDenied, as S3 answers, naming them in `<HeadersNotSigned>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("There were headers present in the request which were not signed")]
pub struct HeadersNotSigned {
    /// The header names, sorted, comma-separated (as S3 lists them).
    pub names: String,
}

/// Why a request's own SigV4 signature does not admit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Unknown key, bad signature, stale, malformed, not allowed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A valid signature that leaves `x-amz-*` headers out.
    #[error(transparent)]
    Unsigned(#[from] HeadersNotSigned),
}

/// The access file could not be read or is not valid. The message names the file and, when
/// it can, the line; it never quotes a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct AccessFileError {
    /// The file's path (or a name for text that came from elsewhere).
    pub origin: String,
    /// The 1-based line the problem is on, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}
