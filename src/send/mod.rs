//! Send: sign one request and send it to S3, sending it once more when that is safe and useful
//! (a connection that failed before S3 saw the request; a session token or IAM credentials S3
//! rejected; a general-purpose bucket in another region).

pub(crate) mod listing;
pub(crate) mod unknown_length;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri};
use tokio::time::Instant;

use crate::body::{full, ProxyBody};
use crate::metrics::{Lookup, Metrics};
use crate::respond::record::RequestRecord;
use crate::route::endpoint::{BucketRegions, Endpoint};
use crate::session::create_session::{CreateSessionError, SessionKey};
use crate::session::credentials::{CredentialsUnavailable, IamCredentials, Loaded};
use crate::session::{Session, SessionCache};
use crate::sign::{self, Payload, Scope, SignError, TokenHeader};
use crate::upstream::outgoing::{reclaimable, Reclaim};
use crate::upstream::rejection::{classify, Rejection, SignedWith};
use crate::upstream::{Upstream, UpstreamError};

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
    /// S3 rejected the IAM credentials and new ones could not be loaded.
    #[error(transparent)]
    Credentials(CredentialsUnavailable),
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
    /// Streaming: can be sent again only if S3 answered before any of it was read.
    Streaming(Option<ProxyBody>),
}

impl OutBody {
    /// The body for the next attempt, and a handle to take a streamed one back.
    fn attempt(&mut self) -> (ProxyBody, Option<Reclaim>) {
        match self {
            OutBody::Kept(bytes) => (full(bytes.clone()), None),
            OutBody::Streaming(stream) => {
                let body = stream.take().unwrap_or_else(crate::body::empty);
                let (body, reclaim) = reclaimable(body);
                (body, Some(reclaim))
            }
        }
    }

    /// After an attempt: whether the body can be sent again (taking a streamed one back).
    fn replayable(&mut self, reclaim: Option<Reclaim>) -> bool {
        match (self, reclaim) {
            (OutBody::Kept(_), _) => true,
            (OutBody::Streaming(slot), Some(reclaim)) => {
                *slot = reclaim.take();
                slot.is_some()
            }
            (OutBody::Streaming(_), None) => false,
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
    /// The IAM credentials, for `endpoint` (the signing scope; a general-purpose one may move
    /// to the bucket's region).
    Iam {
        /// The credentials and their load.
        loaded: Loaded,
        /// Where the request goes.
        endpoint: Endpoint,
    },
}

impl Signer {
    fn signed_with(&self) -> SignedWith<'_> {
        match self {
            Signer::Session { .. } => SignedWith::Session,
            Signer::Iam { endpoint, .. } => {
                let general = endpoint.general_bucket().map(|_| endpoint.region());
                SignedWith::Iam(general)
            }
        }
    }
}

/// What one attempt came to.
enum Outcome {
    /// S3's answer, to relay.
    Done(Response<ProxyBody>),
    /// The connection failed before S3 saw the request.
    RetryConnect(UpstreamError),
    /// S3's answer says what another attempt should change.
    Rejected(Response<ProxyBody>, Rejection),
}

/// Signs and sends requests; shared by the pipeline and the multipart conversion.
#[derive(Clone)]
pub struct Sender {
    upstream: Arc<dyn Upstream>,
    sessions: SessionCache,
    iam: Arc<IamCredentials>,
    regions: BucketRegions,
    metrics: Metrics,
}

impl Sender {
    /// A sender over `upstream`, replacing rejected sessions through `sessions` and rejected IAM
    /// credentials through `iam`, learning buckets' regions into `regions`.
    pub fn new(
        upstream: Arc<dyn Upstream>,
        sessions: SessionCache,
        iam: Arc<IamCredentials>,
        regions: BucketRegions,
        metrics: Metrics,
    ) -> Self {
        Self {
            upstream,
            sessions,
            iam,
            regions,
            metrics,
        }
    }

    /// Sends the request, at most twice: again after a connect error, with a fresh session or
    /// reloaded IAM credentials after S3 rejected them, or to the bucket's own region, if the
    /// body was kept or none of it was sent.
    pub async fn send(
        &self,
        head: &Head,
        mut body: OutBody,
        payload: Payload,
        mut signer: Signer,
        record: &mut RequestRecord,
    ) -> Result<Response<ProxyBody>, SendError> {
        let mut head = std::borrow::Cow::Borrowed(head);
        let mut retried = false;
        loop {
            let (attempt_body, reclaim) = body.attempt();
            let outcome = self
                .attempt(&head, attempt_body, payload, &signer, record)
                .await?;
            let can_retry = !retried && body.replayable(reclaim);
            let rejection = match outcome {
                Outcome::Done(response) => return Ok(response),
                Outcome::RetryConnect(error) if can_retry => {
                    tracing::debug!(%error, "connect failed; retrying once");
                    self.count_retry("connect_error");
                    retried = true;
                    continue;
                }
                Outcome::RetryConnect(error) => return Err(error.into()),
                Outcome::Rejected(response, rejection) if !can_retry => {
                    Box::pin(self.forget(&signer, &rejection)).await;
                    return Ok(response);
                }
                Outcome::Rejected(_, rejection) => rejection,
            };
            tracing::info!(
                reason = rejection.reason(),
                "S3 rejected the attempt; retrying once"
            );
            self.count_retry(rejection.reason());
            // Boxed, as the other rare paths: the future of every request stays small.
            signer = Box::pin(self.fix(&mut head, signer, rejection, record)).await?;
            retried = true;
        }
    }

    /// `signer` with the session the cache holds now for its key, if that is another one (a
    /// long multipart upload outlives sessions: each part uses the current one).
    pub async fn current(&self, signer: &Signer) -> Signer {
        if let Signer::Session { key, session } = signer {
            if let Some(now) = self.sessions.peek(key).await {
                if now.generation() != session.generation() {
                    return Signer::Session {
                        key: key.clone(),
                        session: now,
                    };
                }
            }
        }
        signer.clone()
    }

    /// What the next attempt changes: a fresh session, reloaded IAM credentials, or the
    /// bucket's own region.
    async fn fix(
        &self,
        head: &mut std::borrow::Cow<'_, Head>,
        signer: Signer,
        rejection: Rejection,
        record: &mut RequestRecord,
    ) -> Result<Signer, SendError> {
        match (signer, rejection) {
            (Signer::Session { key, session }, _) => {
                let fresh = self.sessions.replace(&key, session.generation()).await?;
                record.lookup = Some(Lookup::Miss);
                Ok(Signer::Session {
                    key,
                    session: fresh,
                })
            }
            (Signer::Iam { loaded, endpoint }, Rejection::Region(region)) => {
                let Some(moved) = endpoint.in_region(region) else {
                    return Ok(Signer::Iam { loaded, endpoint });
                };
                if let (Some(bucket), region) = (moved.general_bucket(), moved.region()) {
                    self.regions.learn(bucket, region.clone());
                }
                head.to_mut().move_to(&moved.host())?;
                Ok(Signer::Iam {
                    loaded,
                    endpoint: moved,
                })
            }
            (Signer::Iam { loaded, endpoint }, _) => {
                self.iam.invalidate(loaded.generation);
                let loaded = self
                    .iam
                    .get_loaded()
                    .await
                    .map_err(SendError::Credentials)?;
                Ok(Signer::Iam { loaded, endpoint })
            }
        }
    }

    /// The attempt is not repeated, but the next request must not repeat its mistake.
    async fn forget(&self, signer: &Signer, rejection: &Rejection) {
        match (signer, rejection) {
            (Signer::Session { key, session }, _) => {
                self.sessions.invalidate(key, session.generation()).await
            }
            (Signer::Iam { endpoint, .. }, Rejection::Region(region)) => {
                if let Some(bucket) = endpoint.general_bucket() {
                    self.regions.learn(bucket, region.clone());
                }
            }
            (Signer::Iam { loaded, .. }, _) => self.iam.invalidate(loaded.generation),
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
        Ok(
            match classify(&head.method, response, signer.signed_with()).await? {
                (response, Some(Rejection::Unclear)) => match Box::pin(self.probe(head, signer))
                    .await
                {
                    Some(reason) => Outcome::Rejected(response, Rejection::SessionToken(reason)),
                    None => Outcome::Done(response),
                },
                (response, Some(rejection)) => Outcome::Rejected(response, rejection),
                (response, None) => Outcome::Done(response),
            },
        )
    }

    /// A session-signed HEAD got a bare 400: asks for one byte with a GET on the same session,
    /// whose error body names the code. Only token errors count; anything else leaves the
    /// HEAD's answer as it was.
    async fn probe(&self, head: &Head, signer: &Signer) -> Option<&'static str> {
        let mut probe = head.clone();
        probe.method = Method::GET;
        probe.headers.insert(
            http::header::RANGE,
            http::HeaderValue::from_static("bytes=0-0"),
        );
        let request =
            signed_request(&probe, crate::body::empty(), Payload::Unsigned, signer).ok()?;
        let response = self.upstream.send(request).await.ok()?;
        if response.status() != http::StatusCode::BAD_REQUEST {
            return None;
        }
        let bytes = crate::upstream::read_answer(response.into_body())
            .await
            .ok()?;
        let code = crate::xml::parse_error(&String::from_utf8_lossy(&bytes))
            .ok()?
            .code;
        crate::upstream::rejection::session_rejected(&code)
    }

    fn count_retry(&self, reason: &str) {
        self.metrics
            .upstream_retries
            .with_label_values(&[reason])
            .inc();
    }
}

impl Head {
    /// Points the head at another host (same path and query), `Host` included.
    fn move_to(&mut self, host: &str) -> Result<(), SignError> {
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        self.uri = format!("https://{host}{path}")
            .parse()
            .map_err(|_| SignError::Unsignable("the target is not a valid URI"))?;
        let host = http::HeaderValue::from_str(host)
            .map_err(|_| SignError::Unsignable("the host is not valid"))?;
        self.headers.insert(http::header::HOST, host);
        Ok(())
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
    let (credentials, token, endpoint) = match signer {
        Signer::Session { session, key } => {
            (session.credentials(), TokenHeader::S3Session, &key.endpoint)
        }
        Signer::Iam { loaded, endpoint } => {
            (&*loaded.signing, TokenHeader::SecurityToken, endpoint)
        }
    };
    let scope = Scope {
        region: endpoint.region().as_str(),
        service: endpoint.service(),
    };
    sign::sign_parts(&mut parts, credentials, token, scope, payload)?;
    Ok(Request::from_parts(parts, body))
}
