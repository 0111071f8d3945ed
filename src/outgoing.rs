//! Outgoing: a request body on its way to S3. It says when it has been sent (the response-header
//! deadline starts then, so a slow upload is not cut), and a large one waits for S3's
//! `100 Continue`, so that S3 can refuse the request before the upload and the client sees S3's
//! own answer instead of a reset.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use crate::body::{BoxError, ProxyBody};

/// Bodies larger than this (or of unknown size) wait for `100 Continue`.
pub const EXPECT_CONTINUE_OVER: u64 = 64 * 1024;
/// How long to wait for `100 Continue` before sending anyway (as curl does).
pub const CONTINUE_TIMEOUT: Duration = Duration::from_secs(1);

/// Opens (S3 said continue) or aborts (S3 answered first) a gated body; shared with hyper's
/// informational-response callback.
#[derive(Clone, Default)]
pub struct Gate(Arc<Mutex<Option<oneshot::Sender<bool>>>>);

impl Gate {
    /// Lets the body go.
    pub fn open(&self) {
        self.settle(true);
    }

    /// S3 answered before asking for the body: the body is not sent.
    pub fn abort(&self) {
        self.settle(false);
    }

    fn settle(&self, go: bool) {
        if let Some(sender) = self.0.lock().ok().and_then(|mut s| s.take()) {
            let _ = sender.send(go);
        }
    }
}

/// Why an outgoing body stopped.
#[derive(Debug, thiserror::Error)]
#[error("S3 answered before the request body was sent")]
pub struct AnsweredEarly;

/// The body as hyper sends it upstream.
pub struct Outgoing {
    inner: ProxyBody,
    /// Fired once the last frame has been taken (or at once for an empty body).
    sent: Option<oneshot::Sender<()>>,
    /// Waiting for `100 Continue`: the decision, and the fallback timer.
    waiting: Option<(oneshot::Receiver<bool>, Pin<Box<tokio::time::Sleep>>)>,
}

/// Wraps `body`; returns it, a receiver that fires once it has been sent, and a gate when it
/// must wait for `100 Continue` (the caller then adds `Expect: 100-continue`).
pub fn outgoing(body: ProxyBody) -> (Outgoing, oneshot::Receiver<()>, Option<Gate>) {
    let (sent_tx, sent_rx) = oneshot::channel();
    let hint = body.size_hint();
    let large = hint
        .upper()
        .is_none_or(|upper| upper > EXPECT_CONTINUE_OVER);
    let (waiting, gate) = if large && !body.is_end_stream() {
        let (tx, rx) = oneshot::channel();
        let timer = Box::pin(tokio::time::sleep(CONTINUE_TIMEOUT));
        (
            Some((rx, timer)),
            Some(Gate(Arc::new(Mutex::new(Some(tx))))),
        )
    } else {
        (None, None)
    };
    let mut outgoing = Outgoing {
        inner: body,
        sent: Some(sent_tx),
        waiting,
    };
    if outgoing.inner.is_end_stream() {
        outgoing.mark_sent();
    }
    (outgoing, sent_rx, gate)
}

impl Outgoing {
    fn mark_sent(&mut self) {
        if let Some(sent) = self.sent.take() {
            let _ = sent.send(());
        }
    }

    /// Ready(true) to go on, Ready(false) to stop, Pending while S3 has not decided.
    fn poll_gate(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let Some((decision, timer)) = self.waiting.as_mut() else {
            return Poll::Ready(true);
        };
        let go = match Pin::new(decision).poll(cx) {
            Poll::Ready(Ok(go)) => go,
            // The gate was dropped undecided: go on.
            Poll::Ready(Err(_)) => true,
            Poll::Pending => match timer.as_mut().poll(cx) {
                Poll::Ready(()) => true,
                Poll::Pending => return Poll::Pending,
            },
        };
        self.waiting = None;
        Poll::Ready(go)
    }
}

use std::future::Future;

impl Body for Outgoing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match this.poll_gate(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(false) => return Poll::Ready(Some(Err(AnsweredEarly.into()))),
            Poll::Ready(true) => {}
        }
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if frame.is_none() || this.inner.is_end_stream() {
            this.mark_sent();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_small_body_goes_at_once_and_says_when_it_was_sent() {
        let (body, sent, gate) = outgoing(full(vec![7u8; 10]));
        assert!(gate.is_none());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.len(), 10);
        assert!(sent.await.is_ok());
        let (_, sent, _) = outgoing(crate::body::empty());
        assert!(
            sent.await.is_ok(),
            "an empty body is sent as soon as it exists"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_body_waits_for_continue_or_the_timeout() {
        let (body, _, gate) = outgoing(full(vec![1u8; 100_000]));
        let gate = gate.unwrap();
        let reader = tokio::spawn(body.collect());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!reader.is_finished(), "held until S3 says continue");
        gate.open();
        assert_eq!(reader.await.unwrap().unwrap().to_bytes().len(), 100_000);

        let (body, _, _gate) = outgoing(full(vec![1u8; 100_000]));
        let started = tokio::time::Instant::now();
        body.collect().await.unwrap();
        assert_eq!(
            started.elapsed(),
            CONTINUE_TIMEOUT,
            "sent anyway after the timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_answer_stops_the_body() {
        let (body, _, gate) = outgoing(full(vec![1u8; 100_000]));
        gate.unwrap().abort();
        assert!(body.collect().await.is_err());
    }
}
