//! The pipeline: route → policy → session → sign → send → respond, for one request.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, Method, Request, Response};
use tracing::Instrument;

use crate::admit::identity::{AccessControl, BodyCheck, ChunkSignatures};
use crate::admit::{self, Arrival};
use crate::body::{ClientBodyError, DrainRule, ProxyBody};
use crate::error::ProxyError;
use crate::metrics::Metrics;
use crate::policy::{authorize, presigned_fresh, SessionMode};
use crate::respond::record::{RequestIds, RequestRecord};
use crate::respond::{bucket_location, finish, local_create_session};
use crate::route::compat::{self, Bridge};
use crate::route::endpoint::BucketRegions;
use crate::route::operation::{Auth, Mode, Operation};
use crate::route::{route, Route, RouteSettings};
use crate::send::listing::{ListingSettings, Listings, Plan};
use crate::send::unknown_length;
use crate::send::{Head, OutBody, Sender, Signer};
use crate::session::create_session::SessionKey;
use crate::session::credentials::IamCredentials;
use crate::session::SessionCache;
use crate::sign::budget::{Budget, Reserved};
use crate::sign::checksum::{self, Computed};
use crate::sign::content_md5;
use crate::sign::digest::Expected;
use crate::sign::{self, Payload};

/// Request bodies up to this size (with a known length) are kept, so that the request can be
/// sent again with a fresh session if S3 says the token expired.
pub const RETAIN_BODY_LIMIT: u64 = 64 * 1024;

/// Pipeline settings.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// What routing needs.
    pub route: RouteSettings,
    /// `--session-mode`.
    pub session_mode: SessionMode,
    /// Whether bucket and key appear in access log lines.
    pub log_names: bool,
    /// `--max-buffered-bytes`: request body bytes held in memory at once.
    pub max_buffered_bytes: u64,
    /// `--checksum`: the checksum added to uploads that carry none.
    pub checksum: Option<Computed>,
    /// The bounds of the listing bridges.
    pub listing: ListingSettings,
}

/// The request pipeline, shared by every connection.
pub struct Proxy {
    settings: PipelineSettings,
    access: Option<Arc<AccessControl>>,
    regions: BucketRegions,
    budget: Budget,
    sessions: SessionCache,
    iam: Arc<IamCredentials>,
    sender: Sender,
    metrics: Metrics,
    request_ids: RequestIds,
    listings: Listings,
}

/// What the proxy does to a request body on its way: a checksum to add, digests to check
/// (`digest`), a client's chunk signatures to check (`aws_chunked`).
struct Checks {
    add: Option<Computed>,
    expected: Expected,
    chunks: Option<Box<ChunkSignatures>>,
}

/// A request body, ready to send.
enum Prepared {
    /// With a known length (or none at all).
    Known(OutBody),
    /// Of unknown length: see `unknown_length`.
    UnknownLength(ProxyBody),
}

impl Proxy {
    /// Builds the pipeline.
    pub fn new(
        settings: PipelineSettings,
        sessions: SessionCache,
        iam: Arc<IamCredentials>,
        sender: Sender,
        regions: BucketRegions,
        metrics: Metrics,
    ) -> Self {
        Self {
            access: None,
            listings: Listings::new(settings.listing.clone()),
            regions,
            budget: Budget::new(settings.max_buffered_bytes),
            settings,
            sessions,
            iam,
            sender,
            metrics,
            request_ids: RequestIds::new(),
        }
    }

    /// The metrics this pipeline records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// With `access`, every request must come from a client of the access file.
    pub fn with_access(mut self, access: Option<Arc<AccessControl>>) -> Self {
        self.access = access;
        self
    }

    /// The access control in force (`--access-file`), if any.
    pub fn access(&self) -> Option<&Arc<AccessControl>> {
        self.access.as_ref()
    }

    /// The IAM credentials cache.
    pub fn credentials(&self) -> &Arc<IamCredentials> {
        &self.iam
    }

    /// A record (request id, client, start time) for a request that arrived now.
    pub fn record(&self, method: &Method, arrival: &Arrival) -> RequestRecord {
        let mut record =
            RequestRecord::new(self.request_ids.next(), arrival.client, method.clone());
        record.log_names = self.settings.log_names;
        record
    }

    /// Handles one request from a client and always produces a response.
    pub async fn handle(
        &self,
        request: Request<ProxyBody>,
        arrival: &Arrival,
    ) -> Response<ProxyBody> {
        let (parts, body) = request.into_parts();
        let mut record = self.record(&parts.method, arrival);
        let span = tracing::debug_span!("request", id = %record.request_id, method = %parts.method, operation = tracing::field::Empty);
        let http10 = parts.version == http::Version::HTTP_10;
        let drain = drain_rule(&parts);
        let mut body = Some(record.count_upload(body, &self.metrics, drain));
        let mut result = self
            .pipeline(parts, &mut body, arrival, &mut record)
            .instrument(span.clone())
            .await;
        if http10 {
            result = match result {
                Ok(response) => with_length(response).await,
                error => error,
            };
        }
        // A body the pipeline did not use is dropped here, and read to its end (up to a
        // bound) beside the answer, so the client gets to read the answer.
        drop(body);
        let _entered = span.enter();
        self.respond(result, record)
    }

    /// Finishes any request, the pipeline's or a CONNECT's: an error becomes S3-style XML (and a
    /// log line that says where it happened), then metrics and the access line are recorded.
    pub fn respond(
        &self,
        result: Result<Response<ProxyBody>, ProxyError>,
        record: RequestRecord,
    ) -> Response<ProxyBody> {
        let response = result.map(relayed).unwrap_or_else(|error| {
            let reply = error.reply();
            let status = reply.status.as_u16();
            if reply.status.is_server_error() {
                tracing::warn!(%error, status, request_id = %record.request_id, "request failed");
            } else {
                tracing::debug!(%error, status, request_id = %record.request_id, "request refused");
            }
            error.into_response(&record.request_id, record.method == Method::HEAD)
        });
        finish(response, record, &self.metrics)
    }

    /// Runs the stages; takes `body` only once it is sent (a refusal leaves it for draining).
    async fn pipeline(
        &self,
        mut parts: Parts,
        body: &mut Option<ProxyBody>,
        arrival: &Arrival,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        crate::admit::repeats::refuse_repeats(&parts.headers)?;
        let now = std::time::SystemTime::now();
        let (who, signed_body) = match &self.access {
            Some(access) => {
                let admission = admit::identify(access, &parts, arrival, now)?;
                (Some(admission.principal), admission.body)
            }
            None => (None, BodyCheck::None),
        };
        record.client_name = who.as_ref().map(|w| w.name().to_owned());
        let tunnel = arrival.tunnel.as_deref();
        let route = route(&parts, tunnel, &self.settings.route, &self.regions)?;
        note_route(&route, record);
        let auth = authorize(&route, &parts.method, self.settings.session_mode)?;
        if let Some(who) = &who {
            admit::permit(who, &route, &parts)?;
        }
        presigned_fresh(&route.query, now)?;
        if auth == Auth::AnswerLocally {
            if route.operation == Operation::GetBucketLocation {
                record.bridges.add(Bridge::Location);
                let region = route.endpoint.region().as_str();
                return Ok(bucket_location(&record.request_id, region));
            }
            if let (Some(access), Some(who)) = (&self.access, &who) {
                let request_id = &record.request_id;
                if let Some(minted) =
                    admit::minted_session(access, who, &route, &parts, arrival, request_id)?
                {
                    return Ok(minted);
                }
            }
            return Ok(local_create_session(&record.request_id, &parts.headers));
        }
        if route.endpoint.is_zonal() {
            compat::storage_class(&mut parts.headers, &mut record.bridges)?;
        }
        let payload = sign::strip_client_auth(&mut parts);
        let flag = self.settings.checksum;
        let bridges = &mut record.bridges;
        let md5 = content_md5::for_request(&route, &mut parts, payload, flag, bridges)?;
        sign::set_target(&mut parts, &route.endpoint.host(), &route.path_and_query)?;
        // Listings of directory buckets that need a bridge (`listing`); a delimiter other than
        // `/` is refused here, before any session.
        if let Some(plan) = Plan::of(&route)? {
            let signer = self.signer(auth, &route, &parts.headers, record).await?;
            let listed = self
                .listings
                .serve(plan, &self.sender, &parts, signer, record);
            return Ok(Box::pin(listed).await?);
        }
        let signer = self.signer(auth, &route, &parts.headers, record).await?;
        let body = body.take().unwrap_or_else(crate::body::empty);
        let (add, md5) = match md5 {
            Some(bridged) => (bridged.add, bridged.md5),
            None => (
                checksum::to_add(flag, route.operation, &parts.headers, payload),
                None,
            ),
        };
        let (sha256, chunks) = signed_body.split();
        let checks = Checks {
            add,
            expected: Expected { md5, sha256 },
            chunks,
        };
        let (payload, body, _held) =
            prepare_body(&mut parts, body, payload, checks, &self.budget).await?;
        let head = Head {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
        };
        match body {
            Prepared::Known(body) => Ok(self
                .sender
                .send(&head, body, payload, signer, record)
                .await?),
            Prepared::UnknownLength(body) => {
                let operation = route.operation;
                let upload = unknown_length::Upload::new(&self.sender, &self.budget, signer)
                    .with_checksum(add);
                // Boxed: a multipart upload's state is large and rare (see `dispatch`).
                Ok(Box::pin(upload.send(operation, head, body, payload, record)).await?)
            }
        }
    }

    /// Finds the credentials for this request: a session (cached or created) or IAM.
    async fn signer(
        &self,
        auth: Auth,
        route: &Route,
        headers: &HeaderMap,
        record: &mut RequestRecord,
    ) -> Result<Signer, ProxyError> {
        let Auth::Session(mode) = auth.filter_zonal(&route.endpoint) else {
            let loaded = self.iam.get_loaded().await?;
            return Ok(Signer::Iam {
                loaded,
                endpoint: route.endpoint.clone(),
            });
        };
        if mode == Mode::ReadOnly && self.settings.session_mode == SessionMode::PerRequest {
            // A cached ReadWrite session serves reads too: never create a second session.
            let rw = SessionKey::new(route.endpoint.clone(), Mode::ReadWrite, headers);
            if let Some((session, lookup)) = self.sessions.get_cached(&rw).await {
                record.lookup = Some(lookup);
                return Ok(Signer::Session { key: rw, session });
            }
        }
        let key = SessionKey::new(route.endpoint.clone(), mode, headers);
        let (session, lookup) = self.sessions.get(&key).await?;
        record.lookup = Some(lookup);
        Ok(Signer::Session { key, session })
    }
}

/// An answer on its way to the client loses the headers of the hop it came over (the proxy's
/// own answers carry only what it means to send, `Proxy-Authenticate` on a 407 included).
fn relayed(mut response: Response<ProxyBody>) -> Response<ProxyBody> {
    crate::sign::strip_hop_by_hop(response.headers_mut());
    response
}

/// Puts what routing learnt into the record and the request span.
fn note_route(route: &Route, record: &mut RequestRecord) {
    record.operation = route.operation.name();
    record.bridges = route.bridges;
    tracing::Span::current().record("operation", record.operation);
    record.bucket = route.bucket_name();
    if record.log_names {
        record.key = object_key(&route.path_and_query);
    }
}

/// The object key a path names (decoded, without the leading slash), if any.
fn object_key(path_and_query: &str) -> Option<String> {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let key = path.strip_prefix('/').unwrap_or(path);
    (!key.is_empty()).then(|| {
        percent_encoding::percent_decode_str(key)
            .decode_utf8_lossy()
            .into_owned()
    })
}

/// Decides whether the body is kept (small, replayable; held against the budget, returned
/// with it) or streamed, and rewrites framing the proxy cannot re-sign. With `add` (see
/// `checksum::to_add` and `content_md5::bridge`), a body that is not empty gets that checksum:
/// as a header when it is kept, as an aws-chunked trailer computed while it streams. With
/// `expected` digests (a bridged `Content-MD5`, a signed `x-amz-content-sha256`), a kept body is
/// checked before it is sent, a streamed one as it streams, a client's aws-chunked body once
/// decoded (`digest`); with `chunks`, a client's chunk signatures as it is decoded.
async fn prepare_body(
    parts: &mut Parts,
    body: ProxyBody,
    payload: Payload,
    checks: Checks,
    budget: &Budget,
) -> Result<(Payload, Prepared, Option<Reserved>), ProxyError> {
    let Checks {
        add,
        expected,
        chunks,
    } = checks;
    // A client's unsigned aws-chunked body is decoded too when its MD5 is to be checked.
    let trailer_md5 = expected.md5.is_some() && payload == Payload::StreamingUnsignedTrailer;
    if payload == Payload::SignedChunks || trailer_md5 {
        let checked = chunks.is_some();
        let decoded =
            crate::admit::aws_chunked::decode_signed_chunks(parts, body, add, expected, chunks)
                .map_err(ClientBodyError::from)?;
        let (payload, decoded) = decoded;
        if checked && content_length(&parts.headers) == Some(0) {
            // No data to hold back until the signatures are checked: S3 could take the empty
            // request before its body is read, so it is read first.
            crate::body::collect_limited(decoded, 0)
                .await
                .map_err(ClientBodyError::Read)?;
            return Ok((payload, Prepared::Known(OutBody::Kept(Bytes::new())), None));
        }
        let prepared = Prepared::Known(OutBody::Streaming(Some(decoded)));
        return Ok((payload, prepared, None));
    }
    let length = content_length(&parts.headers);
    let empty = http_body::Body::is_end_stream(&body);
    if length.is_none() && !empty && payload == Payload::Unsigned {
        let body = expected.verify(body, None);
        return Ok((payload, Prepared::UnknownLength(body), None));
    }
    if empty || length.is_some_and(|n| n <= RETAIN_BODY_LIMIT) {
        let held = budget.reserve(length.unwrap_or(0))?;
        let kept: Bytes = crate::body::collect_limited(body, RETAIN_BODY_LIMIT as usize)
            .await
            .map_err(ClientBodyError::Read)?;
        expected.check(&kept)?;
        if let Some(computed) = add.filter(|_| !kept.is_empty()) {
            checksum::insert_header(&mut parts.headers, computed, &kept);
        }
        return Ok((payload, Prepared::Known(OutBody::Kept(kept)), Some(held)));
    }
    let body = expected.verify(body, length);
    if let (Some(computed), Some(length)) = (add, length) {
        let framed = crate::admit::aws_chunked::encode_with_checksum(
            &mut parts.headers,
            body,
            length,
            computed,
        )
        .map_err(ClientBodyError::from)?;
        let prepared = Prepared::Known(OutBody::Streaming(Some(framed)));
        return Ok((Payload::StreamingUnsignedTrailer, prepared, None));
    }
    Ok((
        payload,
        Prepared::Known(OutBody::Streaming(Some(body))),
        None,
    ))
}

/// The longest answer without a length that an HTTP/1.0 client gets with one.
const HTTP10_LENGTH_LIMIT: usize = 1 << 20;

/// An HTTP/1.0 client reads an answer without Content-Length until the connection closes, so
/// it cannot tell a cut from the end. S3 gives object data a length; an answer without one
/// (chunked XML) is read first (up to 1 MiB) and given its length, so a cut becomes a 502.
async fn with_length(response: Response<ProxyBody>) -> Result<Response<ProxyBody>, ProxyError> {
    let unknown = !response.headers().contains_key(header::CONTENT_LENGTH)
        && !http_body::Body::is_end_stream(response.body());
    if !unknown {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = crate::body::collect_limited(body, HTTP10_LENGTH_LIMIT)
        .await
        .map_err(crate::upstream::UpstreamError::Answer)?;
    parts
        .headers
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    Ok(Response::from_parts(parts, crate::body::full(bytes)))
}

/// How a request's body is drained if the proxy answers before reading it all.
fn drain_rule(parts: &Parts) -> DrainRule {
    let expect = parts
        .headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok());
    let awaits_continue = parts.version < http::Version::HTTP_2
        && expect.is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    DrainRule { awaits_continue }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_key_is_decoded_and_has_no_leading_slash() {
        assert_eq!(
            object_key("/dir/a%20b?x-id=GetObject").as_deref(),
            Some("dir/a b")
        );
        assert_eq!(object_key("/?list-type=2"), None);
        assert_eq!(object_key("/"), None);
    }
}
