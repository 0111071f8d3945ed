//! The request pipeline: count, route, classify, faults, authenticate, authorise, read, dispatch.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;

use crate::auth::{self, Head, Principal};
use crate::body::Body;
use crate::error::{Result, S3Error};
use crate::route::{self, Endpoint, Op, Query};
use crate::store::{self, State};
use crate::xml;
use crate::{attributes, buckets, copy, list, multipart, objects, receive};

/// What an operation handler gets.
pub(crate) struct Ctx<'a> {
    pub state: &'a State,
    pub head: &'a Head,
    pub query: &'a Query,
    /// Empty on the control plane's `GET /`.
    pub bucket: &'a str,
    /// Empty for bucket-level operations.
    pub key: &'a str,
    pub region: &'a str,
    pub principal: &'a Principal,
}

/// A verified request body, aws-chunked framing removed.
pub(crate) struct Received {
    pub data: Bytes,
    /// `x-amz-checksum-*` values given (as headers or trailers) and verified.
    pub checksums: Vec<(String, String)>,
}

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

/// Handles one HTTP request. Never fails: errors become S3 error documents.
pub(crate) async fn handle(state: Arc<State>, req: http::Request<Incoming>) -> Response<Body> {
    let request_id = store::random_upper(16);
    state.counters().requests += 1;
    let is_head = req.method() == Method::HEAD;
    let (parts, incoming) = req.into_parts();
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if !headers.iter().any(|(n, _)| n == "host") {
        // h2 carries the host in :authority, which is what the client signed as `host`.
        if let Some(a) = parts.uri.authority() {
            headers.push(("host".into(), a.as_str().to_string()));
        }
    }
    let head = Head {
        method: parts.method.as_str().to_string(),
        raw_path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().unwrap_or("").to_string(),
        headers,
    };
    let query = Query::parse(&head.raw_query);
    let endpoint = route::parse_host(head.get("host").unwrap_or(""));
    let classified = classify(&endpoint, &head, &query);
    let op_name = classified.as_ref().map_or("Unknown", |c| c.op.name());
    *state
        .counters()
        .by_operation
        .entry(op_name.to_string())
        .or_default() += 1;

    let result = match classified {
        Err(e) => Err(e),
        Ok(c) => {
            let _in_flight = (c.op == Op::CreateSession).then(|| state.create_session_started());
            let zonal = matches!(endpoint, Endpoint::Zonal { .. });
            let decision = state.faults().on_request(
                c.op == Op::CreateSession,
                zonal && c.op != Op::CreateSession,
            );
            let result = if decision.slow_down || decision.internal_error {
                drain(incoming).await;
                Err(if decision.slow_down {
                    S3Error::new(503, "SlowDown", "Please reduce your request rate.")
                } else {
                    S3Error::internal("We encountered an internal error. Please try again.")
                })
            } else {
                process(&state, &head, &query, &c, incoming).await
            };
            if let Some(d) = decision.delay {
                tokio::time::sleep(d).await;
            }
            result
        }
    };
    let code = result.as_ref().err().map(|e| e.code);
    let mut resp = result.unwrap_or_else(|e| error_response(&state, e, &request_id, is_head));
    if state.log {
        eprintln!(
            "s3x-emulator {request_id} {} {}{}{} -> {} {} {}",
            head.method,
            head.get("host").unwrap_or("-"),
            head.raw_path,
            if head.raw_query.is_empty() {
                String::new()
            } else {
                format!("?{}", head.raw_query)
            },
            resp.status().as_u16(),
            op_name,
            code.unwrap_or("")
        );
    }
    let h = resp.headers_mut();
    h.insert("x-amz-request-id", request_id.parse().expect("ascii"));
    h.insert(
        "x-amz-id-2",
        format!("s3x-emulator/{request_id}").parse().expect("ascii"),
    );
    h.insert("server", "AmazonS3".parse().expect("static"));
    resp
}

fn error_response(state: &State, e: S3Error, request_id: &str, is_head: bool) -> Response<Body> {
    {
        let mut c = state.counters();
        *c.errors_by_code.entry(e.code.to_string()).or_default() += 1;
        c.signature_failures += u64::from(e.auth_failure);
        match e.code {
            "AccessDenied" => c.access_denied += 1,
            "ExpiredToken" => c.expired_token += 1,
            "InvalidToken" => c.invalid_token += 1,
            "SlowDown" => c.slow_down += 1,
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

struct Classified {
    op: Op,
    bucket: String,
    key: String,
    region: String,
    zonal: bool,
}

fn classify(endpoint: &Endpoint, head: &Head, query: &Query) -> Result<Classified> {
    let raw = head.raw_path.strip_prefix('/').unwrap_or(&head.raw_path);
    let decoded = String::from_utf8(crate::sigv4::percent_decode(raw)).map_err(|_| {
        S3Error::new(
            400,
            "InvalidURI",
            "The path is not valid UTF-8 once decoded.",
        )
    })?;
    match endpoint {
        Endpoint::Unknown(h) => Err(S3Error::invalid_request(format!(
            "{h:?} is not an S3 Express Zonal or control-plane endpoint."
        ))),
        Endpoint::ZonalPathStyle { .. } => Err(S3Error::invalid_request(
            "Path-style requests are not supported on Zonal endpoints; use BUCKET.s3express-ZONE.REGION.amazonaws.com.",
        )),
        Endpoint::Zonal { bucket, zone, region } => {
            if route::bucket_zone(bucket) != Some(zone.as_str()) {
                return Err(S3Error::new(
                    400,
                    "InvalidBucketName",
                    format!("Bucket {bucket} is not a directory bucket in zone {zone}."),
                )
                .with("BucketName", bucket.clone()));
            }
            if let Some(expected) = route::zone_region(zone).filter(|r| r != region) {
                return Err(S3Error::new(
                    400,
                    "IncorrectEndpoint",
                    format!("Zone {zone} is in {expected}, not {region}: this endpoint does not exist."),
                ));
            }
            if decoded.len() > 1024 {
                return Err(S3Error::new(400, "KeyTooLongError", "Your key is too long"));
            }
            let copy = head.get("x-amz-copy-source").is_some();
            Ok(Classified {
                op: route::zonal_op(&head.method, !decoded.is_empty(), query, copy),
                bucket: bucket.clone(),
                key: decoded,
                region: region.clone(),
                zonal: true,
            })
        }
        Endpoint::Control { region } => {
            let bucket = decoded.trim_end_matches('/');
            if bucket.contains('/') {
                return Err(S3Error::invalid_request("The control plane takes /BUCKET paths only."));
            }
            let op = route::control_op(&head.method, (!bucket.is_empty()).then_some(bucket), query);
            Ok(Classified {
                op,
                bucket: bucket.to_string(),
                key: String::new(),
                region: region.clone(),
                zonal: false,
            })
        }
    }
}

/// The checks made before a request body is read: operation, bucket, authentication and
/// authorization.
fn admit(state: &State, head: &Head, c: &Classified) -> Result<auth::Auth> {
    if let Op::NotImplemented(name) = c.op {
        return Err(S3Error::not_implemented(name));
    }
    if c.zonal && !state.bucket_exists(&c.bucket) {
        return Err(S3Error::no_such_bucket(&c.bucket));
    }
    if head.get("authorization").is_none() {
        state
            .counters()
            .auth_by_operation
            .insert(c.op.name().to_string(), "anonymous".to_string());
    }
    let auth = auth::authenticate(state, head, &c.region, c.op)?;
    state
        .counters()
        .auth_by_operation
        .insert(c.op.name().to_string(), auth.principal.kind().to_string());
    auth::authorize(
        state,
        c.op,
        &auth.principal,
        c.zonal.then_some(c.bucket.as_str()),
    )?;
    Ok(auth)
}

/// Reads and discards the body of a request that is refused before its body is read (up to
/// 64 MiB), so the client reads the error instead of a connection reset, as S3 lets it.
pub(crate) async fn drain(mut body: Incoming) {
    use http_body_util::BodyExt;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, |d| d.len());
        if seen > 64 * 1024 * 1024 {
            break;
        }
    }
}

async fn process(
    state: &State,
    head: &Head,
    query: &Query,
    c: &Classified,
    incoming: Incoming,
) -> Result<Response<Body>> {
    let auth = match admit(state, head, c) {
        Ok(auth) => auth,
        Err(e) => {
            drain(incoming).await;
            return Err(e);
        }
    };
    let received = receive::read_body(head, &auth, c.op, incoming).await?;
    let ctx = Ctx {
        state,
        head,
        query,
        bucket: &c.bucket,
        key: &c.key,
        region: &c.region,
        principal: &auth.principal,
    };
    match c.op {
        Op::CreateSession => buckets::create_session(&ctx),
        Op::HeadBucket => buckets::head_bucket(&ctx),
        Op::ListObjectsV2 => list::list_objects_v2(&ctx),
        Op::DeleteObjects => objects::delete_objects(&ctx, &received.data),
        Op::GetObject => objects::get_object(&ctx, false),
        Op::HeadObject => objects::get_object(&ctx, true),
        Op::PutObject => objects::put_object(&ctx, received),
        Op::CopyObject => copy::copy_object(&ctx),
        Op::RenameObject => copy::rename_object(&ctx),
        Op::DeleteObject => objects::delete_object(&ctx),
        Op::GetObjectAttributes => attributes::get_object_attributes(&ctx),
        Op::CreateMultipartUpload => multipart::create(&ctx),
        Op::UploadPart => multipart::upload_part(&ctx, received),
        Op::UploadPartCopy => multipart::upload_part_copy(&ctx),
        Op::CompleteMultipartUpload => multipart::complete(&ctx, &received.data),
        Op::AbortMultipartUpload => multipart::abort(&ctx),
        Op::ListParts => multipart::list_parts(&ctx),
        Op::ListMultipartUploads => multipart::list_uploads(&ctx),
        Op::ListDirectoryBuckets => buckets::list_directory_buckets(&ctx),
        Op::CreateBucket => buckets::create_bucket(&ctx),
        Op::DeleteBucket => buckets::delete_bucket(&ctx),
        Op::NotImplemented(name) => Err(S3Error::not_implemented(name)),
    }
}
