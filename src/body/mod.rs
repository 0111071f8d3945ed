//! Bodies: the one boxed body type streamed both ways, reading small bodies, counting bytes and
//! bodies cut short, idle limits, and the errors of a client's request body.

pub(crate) mod hooked;

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};
use prometheus::IntCounter;
use tokio::time::{Instant, Sleep};

use crate::body::hooked::{Given, Hook, Hooked, Polled, Step};

/// Any error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request the proxy sends and every response it returns.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// What was wrong with the body a client sent (its fault: 4xx).
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// The client's request body could not be read (it broke off or stalled).
    #[error("the request body could not be read: {0}")]
    Read(#[source] BoxError),
    /// The body's framing (aws-chunked) or the headers that describe it are broken.
    #[error("{0}")]
    Malformed(String),
    /// A body of unknown length that is too large to hold and cannot be split into parts.
    #[error("this request needs a Content-Length header")]
    LengthRequired,
}

/// A body holding these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// Reads a whole body into memory, failing once it grows past `limit` bytes.
pub async fn collect_limited(mut body: ProxyBody, limit: usize) -> Result<Bytes, BoxError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > limit {
                return Err(format!("body larger than {limit} bytes").into());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// One direction of a request's body: the data bytes seen, and whether it was cut short.
#[derive(Debug, Default)]
pub struct Tally {
    /// Data bytes that went through.
    pub bytes: AtomicU64,
    /// The body failed, or was dropped before its end.
    pub cut: AtomicBool,
}

/// A body whose data bytes are counted into `counter` and `tally`. When it fails, or is dropped
/// before its end, `tally.cut` is set and `cuts` counted. `keep` lives as long as the body and
/// is dropped after that is known (the access-log record rides on response bodies this way).
pub type Counted<K> = Hooked<ProxyBody, Counting<K>>;

/// What a [`Counted`] body counts with, and what it keeps.
pub struct Counting<K> {
    counter: IntCounter,
    cuts: IntCounter,
    tally: Arc<Tally>,
    /// The end was reached (or nothing was ever due: an empty body, a HEAD answer).
    done: bool,
    /// Anyone asked for a frame.
    polled: bool,
    /// Read what is left when dropped before the end (a client's request body).
    drain: Option<DrainRule>,
    /// Hold a failure back for one poll (see [`Counted::flush_before_failing`]).
    defer_failure: bool,
    /// A failure held back: returned on the next poll.
    failure: Option<BoxError>,
    keep: K,
}

/// When a request body the proxy stopped reading is read to its end (up to a bound) so the
/// client gets to read the answer: over h2, a stream ended before the client finished sending
/// is reset, and some clients (curl 7.88) then report a framing error instead of the answer;
/// an HTTP/1.1 client still writing gets a broken pipe.
#[derive(Clone, Copy, Debug)]
pub struct DrainRule {
    /// An HTTP/1.1 client waiting for `100 Continue` has sent nothing yet: if the body was
    /// never asked for, reading it now would ask for an upload nobody wants.
    pub awaits_continue: bool,
}

/// How much of an abandoned request body is read and thrown away.
pub const DRAIN_LIMIT: u64 = 1 << 20;
/// How long that may take.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Reads and drops up to [`DRAIN_LIMIT`] bytes of `body` for up to [`DRAIN_TIME`], in the
/// background.
fn drain(mut body: ProxyBody) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut read = 0;
        let drain = async {
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > DRAIN_LIMIT {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    });
}

impl<K> Counted<K> {
    /// Wraps `inner`; `body_due` says whether a body is expected at all (not for HEAD answers).
    pub fn new(
        inner: ProxyBody,
        counter: IntCounter,
        cuts: IntCounter,
        tally: Arc<Tally>,
        body_due: bool,
        keep: K,
    ) -> Self {
        let done = !body_due || inner.is_end_stream();
        let counting = Counting {
            counter,
            cuts,
            tally,
            done,
            polled: false,
            drain: None,
            defer_failure: false,
            failure: None,
            keep,
        };
        Hooked::wrap(inner, counting)
    }

    /// Lets what the body already handed over reach the client before its failure does (a
    /// response body). hyper's server drops the connection, and with it whatever it still
    /// buffers, the moment a body fails: when S3 cuts a download, the status line, headers and
    /// data that arrived in the same read as the cut would never be written, and the client
    /// would see a connection closed with no answer instead of an answer cut short (which tells
    /// it the status, the length, and where to resume). Returning `Pending` once (after waking
    /// itself) makes hyper flush before it polls again and meets the failure.
    pub fn flush_before_failing(mut self) -> Self {
        self.hook_mut().defer_failure = true;
        self
    }

    /// Reads what is left of the body, under `rule`, if it is dropped before its end.
    pub fn drain_when_abandoned(mut self, rule: DrainRule) -> Self {
        self.hook_mut().drain = Some(rule);
        self
    }
}

impl<K> Counting<K> {
    fn cut(&mut self) {
        if !self.done {
            self.done = true;
            self.tally.cut.store(true, Ordering::Relaxed);
            self.cuts.inc();
        }
    }
}

impl<K> Hook<ProxyBody> for Counting<K> {
    fn before(&mut self, _: &mut Context<'_>) -> Step {
        self.polled = true;
        match self.failure.take() {
            Some(failure) => ControlFlow::Break(Poll::Ready(Some(Err(failure)))),
            None => ControlFlow::Continue(()),
        }
    }

    fn frame(&mut self, given: Given, inner: &mut ProxyBody, cx: &mut Context<'_>) -> Step {
        match &given {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    self.counter.inc_by(data.len() as u64);
                    self.tally
                        .bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                if inner.is_end_stream() {
                    self.done = true;
                }
            }
            Some(Err(_)) => {
                self.cut();
                if self.defer_failure {
                    if let Some(Err(failure)) = given {
                        self.failure = Some(failure);
                        cx.waker().wake_by_ref();
                        return ControlFlow::Break(Poll::Pending);
                    }
                }
            }
            None => self.done = true,
        }
        ControlFlow::Break(Poll::Ready(given))
    }

    fn is_end_stream(&self, inner: &ProxyBody) -> bool {
        self.failure.is_none() && inner.is_end_stream()
    }

    fn dropped(&mut self, inner: &mut ProxyBody) {
        if self.done || inner.is_end_stream() {
            return;
        }
        self.cut();
        if let Some(rule) = self.drain {
            if self.polled || !rule.awaits_continue {
                drain(std::mem::replace(inner, empty()));
            }
        }
        let _ = &self.keep;
    }
}

/// A body that made no progress for `--client-idle-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("no body bytes for {0:?} (--client-idle-timeout)")]
pub struct BodyIdle(pub Duration);

/// Fails `body` with [`BodyIdle`] once its reader has waited `idle` for a frame. Only waiting
/// counts: a reader that is slow to ask (backpressure) does not make the body idle. The clock
/// is read once per wait, not per frame, and no timer exists until the first wait.
pub fn idle_limited(body: ProxyBody, idle: Duration) -> ProxyBody {
    let limit = IdleLimit {
        idle,
        timer: None,
        waiting: false,
    };
    Hooked::wrap(body, limit).boxed_unsync()
}

struct IdleLimit {
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// The reader is waiting, and `timer` is armed for this wait.
    waiting: bool,
}

impl Hook<ProxyBody> for IdleLimit {
    fn frame(&mut self, given: Given, _: &mut ProxyBody, _: &mut Context<'_>) -> Step {
        self.waiting = false;
        ControlFlow::Break(Poll::Ready(given))
    }

    fn pending(&mut self, _: &mut ProxyBody, cx: &mut Context<'_>) -> Polled {
        let idle = self.idle;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        if !self.waiting {
            // A new wait starts the clock; frames that are ready in a row never get here.
            timer.as_mut().reset(Instant::now() + idle);
            self.waiting = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyIdle(self.idle).into()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use http_body_util::StreamBody;
    use tokio::sync::mpsc;

    /// A body fed frame by frame through a channel; it ends when the sender is dropped.
    fn channel_body() -> (mpsc::Sender<Bytes>, ProxyBody) {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let data = rx.recv().await?;
            Some((Ok::<_, BoxError>(Frame::data(data)), rx))
        });
        (tx, StreamBody::new(stream).boxed_unsync())
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_fails_after_the_idle_timeout() {
        let (tx, body) = channel_body();
        let mut body = idle_limited(body, Duration::from_secs(60));
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        let started = Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(error.is::<BodyIdle>(), "{error}");
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_moving_body_is_not_cut() {
        let (tx, body) = channel_body();
        tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_secs(40)).await;
                tx.send(Bytes::from_static(b"x")).await.unwrap();
            }
        });
        let collected = idle_limited(body, Duration::from_secs(60))
            .collect()
            .await
            .unwrap();
        assert_eq!(collected.to_bytes().len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_slow_to_ask_does_not_make_the_body_idle() {
        let (tx, body) = channel_body();
        let mut body = idle_limited(body, Duration::from_secs(60));
        tx.send(Bytes::from_static(b"a")).await.unwrap();
        assert!(body.frame().await.unwrap().is_ok());
        tx.send(Bytes::from_static(b"b")).await.unwrap();
        // The reader is busy (backpressure) far longer than the idle timeout.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(body.frame().await.unwrap().is_ok());
        drop(tx);
        assert!(body.frame().await.is_none());
    }

    /// A response whose body hands over `data` and fails in the same poll, served by hyper to
    /// a hyper client over an in-memory pipe: what the client gets.
    async fn serve_a_cut_response(deferred: bool) -> Result<(http::StatusCode, usize), String> {
        use hyper_util::rt::TokioIo;
        let (client_io, server_io) = tokio::io::duplex(4 << 20);
        let service = hyper::service::service_fn(move |_req| async move {
            let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
                Ok(Frame::data(Bytes::from(vec![b'x'; 100_000]))),
                Err("S3 cut the download".into()),
            ];
            let inner = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
            let counter = IntCounter::new("bytes", "bytes").unwrap();
            let cuts = IntCounter::new("cuts", "cuts").unwrap();
            let counted = Counted::new(inner, counter, cuts, Arc::default(), true, ());
            let counted = if deferred {
                counted.flush_before_failing()
            } else {
                counted
            };
            let response = http::Response::builder()
                .header("content-length", "1000000")
                .body(counted)
                .unwrap();
            Ok::<_, std::convert::Infallible>(response)
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server_io), service),
        );
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client_io))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = http::Request::new(Empty::<Bytes>::new());
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let status = response.status();
        let mut body = response.into_body();
        let mut got = 0;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => got += frame.data_ref().map_or(0, |d| d.len()),
                Err(_) => break,
            }
        }
        Ok((status, got))
    }

    #[tokio::test]
    async fn a_response_cut_in_the_same_read_as_its_data_still_reaches_the_client() {
        let (status, got) = serve_a_cut_response(true).await.unwrap();
        assert_eq!(status, http::StatusCode::OK);
        assert_eq!(
            got, 100_000,
            "the data before the cut is delivered, then the cut"
        );
        // What hyper does without the deferral: the client gets no answer at all. If hyper
        // ever flushes before dropping a failed connection, this says the deferral can go.
        let undeferred = serve_a_cut_response(false).await;
        assert!(undeferred.is_err(), "{undeferred:?}");
    }

    #[test]
    fn the_length_and_end_of_the_body_show_through() {
        let body = idle_limited(full("abc"), Duration::from_secs(1));
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(idle_limited(empty(), Duration::from_secs(1)).is_end_stream());
    }
}
