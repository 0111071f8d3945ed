//! Building responses: XML documents, empty answers and S3 error documents.

use http::{Response, StatusCode};

use crate::body::Body;
use crate::error::S3Error;
use crate::store::State;
use crate::xml;

/// An XML response.
pub(crate) fn xml_response(status: StatusCode, doc: String) -> Response<Body> {
    let mut r = Response::new(Body::full(doc));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/xml".parse().expect("static"));
    r
}

/// An empty response with a status.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// The S3 error document for `e` (no body for HEAD and 304), counted in the counters.
pub(crate) fn error_response(
    state: &State,
    e: S3Error,
    request_id: &str,
    is_head: bool,
) -> Response<Body> {
    {
        let mut c = state.counters();
        *c.errors_by_code.entry(e.code.to_string()).or_default() += 1;
        c.signature_failures += u64::from(e.auth_failure);
        match e.code {
            "AccessDenied" => c.access_denied += 1,
            "ExpiredToken" => c.expired_token += 1,
            "InvalidToken" => c.invalid_token += 1,
            "InvalidAccessKeyId" => c.invalid_access_key_id += 1,
            "SlowDown" => c.slow_down += 1,
            "PermanentRedirect" => c.permanent_redirects += 1,
            "AuthorizationHeaderMalformed" if e.extra.iter().any(|(n, _)| n == "Region") => {
                c.wrong_region += 1
            }
            _ => {}
        }
    }
    let body = if is_head || e.status == StatusCode::NOT_MODIFIED {
        Body::empty()
    } else {
        Body::full(xml::error_body(e.code, &e.message, request_id, &e.extra))
    };
    let mut r = Response::new(body);
    *r.status_mut() = e.status;
    if !is_head && e.status != StatusCode::NOT_MODIFIED {
        r.headers_mut()
            .insert("content-type", "application/xml".parse().expect("static"));
    }
    for (name, value) in e.headers {
        if let Ok(v) = value.parse() {
            r.headers_mut().insert(name, v);
        }
    }
    r
}
