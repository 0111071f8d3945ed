//! S3 errors: status, code, message and extra elements, rendered as the S3 XML error document.

use http::StatusCode;

/// An S3 error response in the making.
#[derive(Clone, Debug)]
pub(crate) struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra elements of the error document (`Key`, `CanonicalRequest`, ...).
    pub extra: Vec<(String, String)>,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
    /// Rejected for bad or missing authentication (counted in `signature_failures`).
    pub auth_failure: bool,
}

pub(crate) type Result<T> = std::result::Result<T, S3Error>;

impl S3Error {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            // An invalid status (only an injected fault could name one) becomes a 500.
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
            auth_failure: false,
        }
    }

    /// Marks the error as an authentication failure.
    pub fn auth(mut self) -> S3Error {
        self.auth_failure = true;
        self
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> S3Error {
        self.extra.push((name.to_string(), value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.headers.push((name, value.into()));
        self
    }

    pub fn access_denied(message: impl Into<String>) -> S3Error {
        S3Error::new(403, "AccessDenied", message)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidRequest", message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidArgument", message)
    }

    pub fn malformed_xml(detail: impl std::fmt::Display) -> S3Error {
        S3Error::new(
            400,
            "MalformedXML",
            format!("The XML you provided was not well-formed or did not validate against our published schema: {detail}"),
        )
    }

    pub fn no_such_bucket(bucket: &str) -> S3Error {
        S3Error::new(404, "NoSuchBucket", "The specified bucket does not exist")
            .with("BucketName", bucket)
    }

    pub fn no_such_key(key: &str) -> S3Error {
        S3Error::new(404, "NoSuchKey", "The specified key does not exist.").with("Key", key)
    }

    pub fn no_such_upload(upload_id: &str) -> S3Error {
        S3Error::new(
            404,
            "NoSuchUpload",
            "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.",
        )
        .with("UploadId", upload_id)
    }

    pub fn not_implemented(op: &str) -> S3Error {
        S3Error::new(
            501,
            "NotImplemented",
            format!("{op} is not supported by directory buckets (or by this emulator)."),
        )
    }

    pub fn internal(message: impl Into<String>) -> S3Error {
        S3Error::new(500, "InternalError", message)
    }
}
