//! Send: sign one request and send it to S3, sending it once more when that is safe and useful
//! (a connection that failed before S3 saw the request; a session token S3 rejected).

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use tokio::time::Instant;

use crate::body::{full, ProxyBody};
use crate::create_session::{CreateSessionError, SessionKey};
use crate::metrics::{Lookup, Metrics};
use crate::names::Region;
use crate::record::RequestRecord;
use crate::session::{Session, SessionCache};
use crate::sign::{self, Payload, Scope, SignError, TokenHeader};
use crate::upstream::{read_answer, Upstream, UpstreamError};
use crate::xml;

/// Why a request got no answer from S3 that could be relayed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The request could not be signed; nothing was sent.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// S3 could not be reached, did not answer, or its answer could not be read.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// S3 rejected the session and a fresh one could not be had.
    #[error(transparent)]
    Session(#[from] CreateSessionError),
}

/// The method, URI and headers of a request on its way upstream (signed anew per attempt).
#[derive(Clone, Debug)]
pub struct Head {
    /// Method.
    pub method: Method,
    /// Absolute `https://` URI.
    pub uri: Uri,
    /// Headers, client auth already stripped.
    pub headers: HeaderMap,
}

/// The body of a request on its way upstream.
pub enum OutBody {
    /// Small and kept: can be sent again.
    Kept(Bytes),
    /// Streaming: can be sent once.
    Streaming(Option<ProxyBody>),
}

impl OutBody {
    /// The body for the next attempt, and whether another attempt could follow.
    fn attempt(&mut self) -> (ProxyBody, bool) {
        match self {
            OutBody::Kept(bytes) => (full(bytes.clone()), true),
            OutBody::Streaming(stream) => (stream.take().unwrap_or_else(crate::body::empty), false),
        }
    }
}

/// The credentials a request is signed with.
#[derive(Clone)]
pub enum Signer {
    /// A session, which S3 may reject (then it is replaced).
    Session {
        /// The cache key it was found under (its Zonal endpoint is the signing scope).
        key: SessionKey,
        /// The session.
        session: Arc<Session>,
    },
    /// The IAM credentials.
    Iam {
        /// The credentials.
        identity: Identity,
        /// The signing region.
        region: Region,
        /// The signing name (`s3express` or `s3`).
        service: &'static str,
    },
}

/// What one attempt came to.
enum Outcome {
    /// S3's answer, to relay.
    Done(Response<ProxyBody>),
    /// The connection failed before S3 saw the request.
    RetryConnect(UpstreamError),
    /// S3 rejected the session token (the reason is the retry metric's label).
    RetryFreshSession(Response<ProxyBody>, &'static str),
}

/// Signs and sends requests; shared by the pipeline and the multipart conversion.
#[derive(Clone)]
pub struct Sender {
    upstream: Arc<dyn Upstream>,
    sessions: SessionCache,
    metrics: Metrics,
}

impl Sender {
    /// A sender over `upstream`, replacing rejected sessions through `sessions`.
    pub fn new(upstream: Arc<dyn Upstream>, sessions: SessionCache, metrics: Metrics) -> Self {
        Self {
            upstream,
            sessions,
            metrics,
        }
    }

    /// Sends the request, at most twice: again after a connect error, or with a fresh session
    /// after a token error, if the body was kept.
    pub async fn send(
        &self,
        head: &Head,
        mut body: OutBody,
        payload: Payload,
        mut signer: Signer,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, SendError> {
        let mut retried = false;
        loop {
            let (attempt_body, replayable) = body.attempt();
            let outcome = self
                .attempt(head, attempt_body, payload, &signer, record)
                .await?;
            let can_retry = replayable && !retried;
            match outcome {
                Outcome::Done(response) => return Ok(response),
                Outcome::RetryConnect(error) if can_retry => {
                    tracing::debug!(%error, "connect failed; retrying once");
                    self.count_retry("connect_error");
                }
                Outcome::RetryConnect(error) => return Err(error.into()),
                Outcome::RetryFreshSession(response, reason) => {
                    let Signer::Session { key, session } = &signer else {
                        return Ok(response);
                    };
                    if !can_retry {
                        // Cannot send it again, but the next request must not use this session.
                        self.sessions.invalidate(key, session.generation()).await;
                        return Ok(response);
                    }
                    tracing::info!(
                        reason,
                        "S3 rejected the session token; retrying with a new session"
                    );
                    self.count_retry(reason);
                    let fresh = self.sessions.replace(key, session.generation()).await?;
                    record.lookup = Some(Lookup::Miss);
                    signer = Signer::Session {
                        key: key.clone(),
                        session: fresh,
                    };
                }
            }
            retried = true;
        }
    }

    /// Signs and sends one attempt, records how long S3 took, and classifies the answer.
    async fn attempt(
        &self,
        head: &Head,
        body: ProxyBody,
        payload: Payload,
        signer: &Signer,
        record: &mut RequestRecord,
    ) -> Result<Outcome, SendError> {
        let request = signed_request(head, body, payload, signer)?;
        let started = Instant::now();
        let sent = self.upstream.send(request).await;
        let elapsed = started.elapsed();
        record.upstream = Some(elapsed);
        self.metrics
            .upstream_duration
            .with_label_values(&[record.operation])
            .observe(elapsed.as_secs_f64());
        let response = match sent {
            Ok(response) => response,
            Err(error) if error.is_not_sent() => return Ok(Outcome::RetryConnect(error)),
            Err(error) => return Err(error.into()),
        };
        let Signer::Session { session, .. } = signer else {
            return Ok(Outcome::Done(response));
        };
        Ok(
            match token_rejection(&head.method, response, session).await? {
                (response, Some(reason)) => Outcome::RetryFreshSession(response, reason),
                (response, None) => Outcome::Done(response),
            },
        )
    }

    fn count_retry(&self, reason: &str) {
        self.metrics
            .upstream_retries
            .with_label_values(&[reason])
            .inc();
    }
}

/// Builds and signs one attempt of the upstream request.
fn signed_request(
    head: &Head,
    body: ProxyBody,
    payload: Payload,
    signer: &Signer,
) -> Result<Request<ProxyBody>, SignError> {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = head.method.clone();
    parts.uri = head.uri.clone();
    parts.headers = head.headers.clone();
    let (identity, token, scope) = match signer {
        Signer::Session { session, key } => {
            let scope = Scope {
                region: key.endpoint.region().as_str(),
                service: key.endpoint.service(),
            };
            (session.identity(), TokenHeader::S3Session, scope)
        }
        Signer::Iam {
            identity,
            region,
            service,
        } => {
            let scope = Scope {
                region: region.as_str(),
                service,
            };
            (identity, TokenHeader::SecurityToken, scope)
        }
    };
    sign::sign_parts(&mut parts, identity, token, scope, payload)?;
    Ok(Request::from_parts(parts, body))
}

/// Whether S3 rejected the session token of a request, and why. A 400's body is read to find
/// its code, so the response returned carries it again.
async fn token_rejection(
    method: &Method,
    response: Response<ProxyBody>,
    session: &Session,
) -> Result<(Response<ProxyBody>, Option<&'static str>), UpstreamError> {
    if response.status() != StatusCode::BAD_REQUEST {
        return Ok((response, None));
    }
    if *method == Method::HEAD {
        // A HEAD error has no body naming its code. A bare 400 on a session that is not brand
        // new is most likely an expired token: replace it (at most once a second per session).
        let stale = session.age() >= Duration::from_secs(1);
        return Ok((response, stale.then_some("head_bad_request")));
    }
    let (parts, body) = response.into_parts();
    let bytes = read_answer(body).await?;
    let reason = match xml::parse_error(&String::from_utf8_lossy(&bytes)) {
        Ok(e) if e.code == "ExpiredToken" => Some("expired_token"),
        Ok(e) if e.code == "InvalidToken" => Some("invalid_token"),
        _ => None,
    };
    Ok((Response::from_parts(parts, full(bytes)), reason))
}
