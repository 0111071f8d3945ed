//! The pipeline: route → policy → session → sign → forward → respond, for one request.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, Method, Request, Response, StatusCode, Uri};
use tokio::time::Instant;
use tracing::Instrument;

use crate::body::{full, ProxyBody};
use crate::create_session::read_small_body;
use crate::credentials::IamCredentials;
use crate::error::{ProxyError, RequestError};
use crate::forward::Upstream;
use crate::metrics::{Lookup, Metrics};
use crate::names::RegionResolver;
use crate::operation::{Auth, Mode};
use crate::policy::{authorize, SessionMode};
use crate::respond::{count_upload, finish, local_create_session, RequestIds, RequestRecord};
use crate::route::{route, Arrival, Route};
use crate::session::{Session, SessionCache, SessionError, SessionKey, SessionTarget};
use crate::sign::{self, Payload, TokenHeader};
use crate::xml;

/// Request bodies up to this size (with a known length) are kept, so that the request can be
/// sent again with a fresh session if S3 says the token expired.
pub const RETAIN_BODY_LIMIT: u64 = 64 * 1024;

/// Pipeline settings.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Zone → region resolution.
    pub regions: RegionResolver,
    /// `--session-mode`.
    pub session_mode: SessionMode,
    /// Whether bucket and key appear in access log lines.
    pub log_names: bool,
}

/// The request pipeline, shared by every connection.
pub struct Proxy {
    settings: PipelineSettings,
    sessions: SessionCache,
    iam: Arc<IamCredentials>,
    upstream: Arc<dyn Upstream>,
    metrics: Metrics,
    request_ids: RequestIds,
}

/// The body of a request on its way upstream.
pub(crate) enum OutBody {
    /// Small and kept: can be sent again.
    Kept(Bytes),
    /// Streaming: can be sent once.
    Streaming(Option<ProxyBody>),
    /// Of unknown length: see `unknown_length`.
    UnknownLength(ProxyBody),
}

impl OutBody {
    /// The body for the next attempt, and whether another attempt could follow.
    fn attempt(&mut self) -> (ProxyBody, bool) {
        match self {
            OutBody::Kept(bytes) => (full(bytes.clone()), true),
            OutBody::Streaming(stream) => (stream.take().unwrap_or_else(crate::body::empty), false),
            OutBody::UnknownLength(_) => (crate::body::empty(), false),
        }
    }
}

/// The credentials a request is signed with.
#[derive(Clone)]
pub(crate) enum Signer {
    Session {
        key: SessionKey,
        target: SessionTarget,
        session: Arc<Session>,
    },
    Iam {
        identity: Identity,
        region: String,
    },
}

impl Proxy {
    /// Builds the pipeline.
    pub fn new(
        settings: PipelineSettings,
        sessions: SessionCache,
        iam: Arc<IamCredentials>,
        upstream: Arc<dyn Upstream>,
        metrics: Metrics,
    ) -> Self {
        Self {
            settings,
            sessions,
            iam,
            upstream,
            metrics,
            request_ids: RequestIds::new(),
        }
    }

    /// The metrics this pipeline records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A fresh request id.
    pub fn next_request_id(&self) -> String {
        self.request_ids.next()
    }

    /// Handles one request from a client and always produces a response.
    pub async fn handle(
        &self,
        request: Request<ProxyBody>,
        arrival: &Arrival,
    ) -> Response<ProxyBody> {
        let (parts, body) = request.into_parts();
        let mut record = RequestRecord::new(self.request_ids.next(), parts.method.clone());
        let span = tracing::info_span!("request", id = %record.request_id, method = %parts.method, operation = tracing::field::Empty);
        let head_only = parts.method == Method::HEAD;
        let result = self
            .pipeline(parts, body, arrival, &mut record)
            .instrument(span.clone())
            .await;
        let response = result.unwrap_or_else(|error| {
            let reply = error.reply();
            let _enter = span.enter();
            if reply.status.is_server_error() {
                tracing::warn!(%error, status = reply.status.as_u16(), "request failed");
            } else {
                tracing::debug!(%error, status = reply.status.as_u16(), "request refused");
            }
            error.into_response(&record.request_id, head_only)
        });
        finish(response, record, &self.metrics)
    }

    async fn pipeline(
        &self,
        mut parts: Parts,
        body: ProxyBody,
        arrival: &Arrival,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let route = route(&parts, arrival, &self.settings.regions)?;
        record.operation = route.operation.name();
        tracing::Span::current().record("operation", record.operation);
        if self.settings.log_names {
            record.bucket = route.bucket.as_ref().map(|b| b.to_string());
            record.key = Some(
                route
                    .path_and_query
                    .split('?')
                    .next()
                    .unwrap_or("/")
                    .to_owned(),
            );
        }
        let auth = authorize(route.operation, self.settings.session_mode)?;
        if auth == Auth::AnswerLocally {
            return Ok(local_create_session(&record.request_id));
        }
        let payload = sign::strip_client_auth(&mut parts);
        sign::set_target(&mut parts, &route.host, &route.path_and_query)?;
        let (payload, body) = self.prepare_body(&mut parts, body, payload, record).await?;
        let signer = self.signer(auth, &route, &parts.headers, record).await?;
        if let OutBody::UnknownLength(body) = body {
            return self
                .send_unknown_length(route.operation, parts, body, payload, signer, record)
                .await;
        }
        self.forward(parts, body, payload, signer, record).await
    }

    /// Decides whether the body is kept (small, replayable) or streamed, and rewrites framing
    /// the proxy cannot re-sign.
    async fn prepare_body(
        &self,
        parts: &mut Parts,
        body: ProxyBody,
        payload: Payload,
        record: &RequestRecord,
    ) -> Result<(Payload, OutBody), ProxyError> {
        let counted = count_upload(body, &self.metrics, record);
        if payload == Payload::SignedChunks {
            let decoded = crate::chunked::decode_signed_chunks(parts, counted)?;
            return Ok((Payload::Unsigned, OutBody::Streaming(Some(decoded))));
        }
        let length = content_length(&parts.headers);
        let empty = http_body::Body::is_end_stream(&counted);
        if length.is_none() && !empty && payload == Payload::Unsigned {
            return Ok((payload, OutBody::UnknownLength(counted)));
        }
        if empty || length.is_some_and(|n| n <= RETAIN_BODY_LIMIT) {
            let kept = crate::body::collect_limited(counted, RETAIN_BODY_LIMIT as usize)
                .await
                .map_err(|_| RequestError::BodyRead)?;
            return Ok((payload, OutBody::Kept(kept)));
        }
        Ok((payload, OutBody::Streaming(Some(counted))))
    }

    /// Finds the credentials for this request: a session (cached or created) or IAM.
    async fn signer(
        &self,
        auth: Auth,
        route: &Route,
        headers: &HeaderMap,
        record: &mut RequestRecord,
    ) -> Result<Signer, ProxyError> {
        let (Auth::Session(mode), Some(bucket)) = (auth, route.bucket.as_ref()) else {
            let creds = self
                .iam
                .get()
                .await
                .map_err(|_| SessionError::Credentials)?;
            let region = route.region.to_string();
            return Ok(Signer::Iam {
                identity: creds.into(),
                region,
            });
        };
        let target = SessionTarget {
            host: route.host.clone(),
            region: route.region.clone(),
        };
        if mode == Mode::ReadOnly && self.settings.session_mode == SessionMode::PerRequest {
            // A cached ReadWrite session serves reads too: never create a second session.
            let rw = SessionKey::new(bucket.clone(), Mode::ReadWrite, headers);
            if let Some((session, lookup)) = self.sessions.get_cached(&rw, &target).await {
                record.lookup = Some(lookup);
                return Ok(Signer::Session {
                    key: rw,
                    target,
                    session,
                });
            }
        }
        let key = SessionKey::new(bucket.clone(), mode, headers);
        let (session, lookup) = self.sessions.get(&key, &target).await?;
        record.lookup = Some(lookup);
        Ok(Signer::Session {
            key,
            target,
            session,
        })
    }

    /// Signs and sends; sends once more when the connection failed before S3 saw the request,
    /// or with a fresh session when S3 rejected the session token, if the body was kept.
    pub(crate) async fn forward(
        &self,
        parts: Parts,
        mut body: OutBody,
        payload: Payload,
        mut signer: Signer,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let head = (parts.method, parts.uri, parts.headers);
        let mut retried = false;
        loop {
            let (attempt_body, replayable) = body.attempt();
            let sent = self
                .send_signed(&head, attempt_body, payload, &signer, record)
                .await;
            let response = match sent {
                Err(ProxyError::Upstream(e)) if e.is_not_sent() && replayable && !retried => {
                    tracing::debug!(error = %e, "connect failed; retrying once");
                    self.count_retry("connect_error");
                    retried = true;
                    continue;
                }
                result => result?,
            };
            let (response, rejected) = session_rejection(&head.0, response, &signer).await?;
            let (
                Some(reason),
                Signer::Session {
                    key,
                    target,
                    session,
                },
            ) = (rejected, &signer)
            else {
                return Ok(response);
            };
            if !replayable || retried {
                // Cannot send it again, but the next request must not use this session.
                self.sessions.invalidate(key, session.generation()).await;
                return Ok(response);
            }
            tracing::info!(
                reason,
                "S3 rejected the session token; retrying with a new session"
            );
            self.count_retry(reason);
            let fresh = self
                .sessions
                .replace(key, target, session.generation())
                .await?;
            record.lookup = Some(Lookup::Miss);
            signer = Signer::Session {
                key: key.clone(),
                target: target.clone(),
                session: fresh,
            };
            retried = true;
        }
    }

    /// Signs one attempt, sends it, and records how long S3 took to answer.
    async fn send_signed(
        &self,
        head: &(Method, Uri, HeaderMap),
        body: ProxyBody,
        payload: Payload,
        signer: &Signer,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let request = signed_request(head, body, payload, signer)?;
        let started = Instant::now();
        let sent = self.upstream.send(request).await;
        let elapsed = started.elapsed();
        record.upstream = Some(elapsed);
        self.metrics
            .upstream_duration
            .with_label_values(&[record.operation])
            .observe(elapsed.as_secs_f64());
        Ok(sent?)
    }

    fn count_retry(&self, reason: &str) {
        self.metrics
            .upstream_retries
            .with_label_values(&[reason])
            .inc();
    }
}

/// Whether S3 rejected the session a request was signed with, and why (`None` when it did
/// not). The body of a 400 is read to find its code, so the response returned carries it again.
async fn session_rejection(
    method: &Method,
    response: Response<ProxyBody>,
    signer: &Signer,
) -> Result<(Response<ProxyBody>, Option<&'static str>), ProxyError> {
    let Signer::Session { session, .. } = signer else {
        return Ok((response, None));
    };
    if response.status() != StatusCode::BAD_REQUEST {
        return Ok((response, None));
    }
    if *method == Method::HEAD {
        // A HEAD error has no body naming its code. A bare 400 on a session that is not brand
        // new is most likely an expired token: replace it (at most once a second per session).
        let stale = session.age() >= Duration::from_secs(1);
        return Ok((response, stale.then_some("head_bad_request")));
    }
    token_error(response).await
}

/// Builds and signs one attempt of the upstream request.
fn signed_request(
    head: &(Method, Uri, HeaderMap),
    body: ProxyBody,
    payload: Payload,
    signer: &Signer,
) -> Result<Request<ProxyBody>, ProxyError> {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = head.0.clone();
    parts.uri = head.1.clone();
    parts.headers = head.2.clone();
    let (identity, token, region) = match signer {
        Signer::Session {
            session, target, ..
        } => (
            session.identity(),
            TokenHeader::S3Session,
            target.region.as_str(),
        ),
        Signer::Iam { identity, region } => (identity, TokenHeader::SecurityToken, region.as_str()),
    };
    sign::sign_parts(&mut parts, identity, token, region, payload)?;
    Ok(Request::from_parts(parts, body))
}

/// Reads a 400 answer and says whether it is a session-token error worth a retry. The body has
/// been read, so the response returned carries it again.
async fn token_error(
    response: Response<ProxyBody>,
) -> Result<(Response<ProxyBody>, Option<&'static str>), ProxyError> {
    let (parts, body) = response.into_parts();
    let bytes = read_small_body(body).await?;
    let reason = match xml::parse_error(&String::from_utf8_lossy(&bytes)) {
        Ok(e) if e.code == "ExpiredToken" => Some("expired_token"),
        Ok(e) if e.code == "InvalidToken" => Some("invalid_token"),
        _ => None,
    };
    Ok((Response::from_parts(parts, full(bytes)), reason))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
