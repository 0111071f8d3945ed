//! The request pipeline: count, route, classify, faults, authenticate, authorise, read, dispatch.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Response, Version};
use hyper::body::Incoming;

use crate::auth::{self, Head, Principal};
use crate::body::Body;
use crate::classify::{classify, Classified};
use crate::conn::Conn;
use crate::error::{Result, S3Error};
use crate::faults::Req;
use crate::hosts::{self, Endpoint};
use crate::respond::error_response;
use crate::route::{Op, Query};
use crate::store::{self, State};
use crate::{
    attributes, authorize, buckets, copy, express, list, list_v1, multipart, objects, receive,
    regions, seen, uploads,
};

/// What an operation handler gets.
pub(crate) struct Ctx<'a> {
    pub state: &'a State,
    pub conn: &'a Arc<Conn>,
    pub head: &'a Head,
    pub query: &'a Query,
    /// Empty on the control plane's `GET /`.
    pub bucket: &'a str,
    /// Empty for bucket-level operations.
    pub key: &'a str,
    pub region: &'a str,
    pub principal: &'a Principal,
    /// How fault matchers see this request.
    pub req: Req<'a>,
    /// The bucket is a general-purpose one.
    pub general_purpose: bool,
}

impl Ctx<'_> {
    /// The storage class objects of this bucket have.
    pub fn storage_class(&self) -> &'static str {
        if self.general_purpose {
            "STANDARD"
        } else {
            "EXPRESS_ONEZONE"
        }
    }
}

/// A verified request body, aws-chunked framing removed.
pub(crate) struct Received {
    pub data: Bytes,
    /// `x-amz-checksum-*` values given (as headers or trailers) and verified.
    pub checksums: Vec<(String, String)>,
}

/// The request head as the handlers see it: lowercase names, values as received, and the h2
/// `:authority` as `host`.
fn head_of(parts: &http::request::Parts) -> Head {
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
    Head {
        method: parts.method.as_str().to_string(),
        raw_path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().unwrap_or("").to_string(),
        headers,
    }
}

/// Handles one HTTP request. Never fails: errors become S3 error documents.
pub(crate) async fn handle(
    state: Arc<State>,
    conn: Arc<Conn>,
    req: http::Request<Incoming>,
) -> Response<Body> {
    let request_id = store::random_upper(16);
    state.counters().requests += 1;
    let is_head = req.method() == Method::HEAD;
    let http1 = req.version() < Version::HTTP_2;
    let (parts, incoming) = req.into_parts();
    let head = head_of(&parts);
    let query = Query::parse(&head.raw_query);
    let endpoint = hosts::parse_host(head.get("host").unwrap_or(""));
    let classified = classify(&endpoint, &head, &query);
    let op_name = classified.as_ref().map_or("Unknown", |c| c.op.name());
    *state
        .counters()
        .by_operation
        .entry(op_name.to_string())
        .or_default() += 1;
    let mut seen = seen::observe(&state, &head, &endpoint, &request_id, conn.sni());
    seen.operation = op_name.to_string();
    seen.bucket = classified
        .as_ref()
        .ok()
        .map(|c| c.bucket.clone())
        .filter(|b| !b.is_empty());

    let mut close = false;
    let result = match classified {
        Err(e) => Err(e),
        Ok(c) => {
            let req = Req {
                op: op_name,
                zonal: matches!(endpoint, Endpoint::Zonal { .. }),
                general_purpose: c.general_purpose.is_some(),
            };
            let has_body = !http_body::Body::is_end_stream(&incoming);
            let early = has_body.then(|| state.faults().take_early(req)).flatten();
            if let Some(early) = early {
                // Answer after `after`, reading nothing: the body is dropped undrained.
                tokio::time::sleep(early.after).await;
                drop(incoming);
                close = http1;
                Err(S3Error::new(
                    early.status,
                    early.code,
                    "The request was refused before its body was read (injected fault).",
                ))
            } else {
                let _in_flight =
                    (c.op == Op::CreateSession).then(|| state.create_session_started());
                let decision = state.faults().on_request(req);
                let result = if decision.slow_down || decision.internal_error {
                    refuse_body(&head, incoming).await;
                    Err(if decision.slow_down {
                        S3Error::new(503, "SlowDown", "Please reduce your request rate.")
                    } else {
                        S3Error::internal("We encountered an internal error. Please try again.")
                    })
                } else {
                    let p = Pipeline {
                        state: &state,
                        conn: &conn,
                        head: &head,
                        query: &query,
                        c: &c,
                        req,
                    };
                    p.process(incoming, &mut seen.signature_verified).await
                };
                if let Some(d) = decision.delay {
                    tokio::time::sleep(d).await;
                }
                result
            }
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
    seen.status = resp.status().as_u16();
    seen.error_code = code.map(str::to_string);
    state.seen().push(seen);
    let h = resp.headers_mut();
    h.insert("x-amz-request-id", request_id.parse().expect("ascii"));
    h.insert(
        "x-amz-id-2",
        format!("s3x-emulator/{request_id}").parse().expect("ascii"),
    );
    h.insert("server", "AmazonS3".parse().expect("static"));
    if close {
        h.insert("connection", "close".parse().expect("static"));
    }
    if http1 {
        resp.extensions_mut().extend(state.header_case.clone());
    }
    resp
}

/// One classified request on its way through authentication, body reading and dispatch.
struct Pipeline<'a> {
    state: &'a State,
    conn: &'a Arc<Conn>,
    head: &'a Head,
    query: &'a Query,
    c: &'a Classified,
    req: Req<'a>,
}

/// The checks made before a request body is read: operation, bucket, region, authentication,
/// authorization, and what S3 refuses from the head alone (see [`express`]). Returns the credentials and the region the request was signed for.
fn admit(
    state: &State,
    head: &Head,
    query: &Query,
    c: &Classified,
    verified: &mut bool,
) -> Result<(auth::Auth, String)> {
    if let Op::NotImplemented(name) = c.op {
        return Err(S3Error::not_implemented(name));
    }
    if c.zonal && !state.bucket_exists(&c.bucket) {
        return Err(S3Error::no_such_bucket(&c.bucket));
    }
    let region = regions::signing_region(state, c)?;
    if head.get("authorization").is_none() {
        state
            .counters()
            .auth_by_operation
            .insert(c.op.name().to_string(), "anonymous".to_string());
    }
    let service = if c.general_purpose.is_some() {
        "s3"
    } else {
        "s3express"
    };
    let scope = auth::Scope {
        region: &region,
        service,
    };
    let auth = auth::authenticate(state, head, scope, c.op)?;
    *verified = true;
    state
        .counters()
        .auth_by_operation
        .insert(c.op.name().to_string(), auth.principal.kind().to_string());
    let target = if c.general_purpose.is_some() {
        authorize::Target::GeneralPurpose(&c.bucket)
    } else if c.zonal {
        authorize::Target::Directory(&c.bucket)
    } else {
        authorize::Target::Control
    };
    authorize::authorize(state, c.op, &auth.principal, target)?;
    express::refuse_before_body(c, head, query)?;
    Ok((auth, region))
}

/// The body of a refused request: a client that sent `Expect: 100-continue` is answered
/// without `100 Continue` and without reading it (S3 refuses before the upload); any other
/// body is read and discarded, so the client reads the error instead of a reset.
async fn refuse_body(head: &crate::auth::Head, incoming: Incoming) {
    let expects = head
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !expects {
        drain(incoming).await;
    }
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

impl Pipeline<'_> {
    /// Authenticates, authorises, reads the body and runs the operation. `verified` is set once
    /// the signature held.
    async fn process(&self, incoming: Incoming, verified: &mut bool) -> Result<Response<Body>> {
        let (state, head, c) = (self.state, self.head, self.c);
        let (auth, region) = match admit(state, head, self.query, c, verified) {
            Ok(admitted) => admitted,
            Err(e) => {
                refuse_body(head, incoming).await;
                return Err(e);
            }
        };
        let received = receive::read_body(state, head, &auth, c.op, incoming).await?;
        let ctx = Ctx {
            state,
            conn: self.conn,
            head,
            query: self.query,
            bucket: &c.bucket,
            key: &c.key,
            region: &region,
            principal: &auth.principal,
            req: self.req,
            general_purpose: c.general_purpose.is_some(),
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
            Op::ListParts => uploads::list_parts(&ctx),
            Op::ListMultipartUploads => uploads::list_uploads(&ctx),
            Op::ListDirectoryBuckets => buckets::list_directory_buckets(&ctx),
            Op::CreateBucket => buckets::create_bucket(&ctx),
            Op::DeleteBucket => buckets::delete_bucket(&ctx),
            Op::ListObjects => list_v1::list_objects(&ctx),
            Op::GetBucketLocation => buckets::get_bucket_location(&ctx),
            Op::NotImplemented(name) => Err(S3Error::not_implemented(name)),
        }
    }
}
