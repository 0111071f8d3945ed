//! Outgoing: a request body on its way to S3. It says when it has been sent (the response-header
//! deadline starts then, so a slow upload is not cut), and a large one waits for S3's
//! `100 Continue`, so that S3 can refuse the request before the upload and the client sees S3's
//! own answer instead of a reset; and a body none of which was read can be taken back to send
//! again.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use crate::body::hooked::{Given, Hook, Hooked, Step};
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
pub type Outgoing = Hooked<ProxyBody, Gated>;

/// What an [`Outgoing`] body waits for, and whom it tells once it has been sent.
pub struct Gated {
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
    let mut gated = Gated {
        sent: Some(sent_tx),
        waiting,
    };
    if body.is_end_stream() {
        gated.mark_sent();
    }
    (Hooked::wrap(body, gated), sent_rx, gate)
}

impl Gated {
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

impl Hook<ProxyBody> for Gated {
    fn before(&mut self, cx: &mut Context<'_>) -> Step {
        match self.poll_gate(cx) {
            Poll::Pending => ControlFlow::Break(Poll::Pending),
            Poll::Ready(false) => ControlFlow::Break(Poll::Ready(Some(Err(AnsweredEarly.into())))),
            Poll::Ready(true) => ControlFlow::Continue(()),
        }
    }

    fn frame(&mut self, given: Given, inner: &mut ProxyBody, _: &mut Context<'_>) -> Step {
        if given.is_none() || inner.is_end_stream() {
            self.mark_sent();
        }
        ControlFlow::Break(Poll::Ready(given))
    }
}

/// A streamed body that can be taken back when none of it was read: S3 answered before asking
/// for it (a 301 to another region, say), so the request can be sent again, body and all.
struct Reclaimable {
    slot: Arc<Mutex<Option<ProxyBody>>>,
    started: Arc<std::sync::atomic::AtomicBool>,
}

/// The handle that takes a [`Reclaimable`] body back.
pub struct Reclaim {
    slot: Arc<Mutex<Option<ProxyBody>>>,
    started: Arc<std::sync::atomic::AtomicBool>,
}

/// Wraps `body` so that [`Reclaim::take`] can have it back if none of it was read.
pub fn reclaimable(body: ProxyBody) -> (ProxyBody, Reclaim) {
    let slot = Arc::new(Mutex::new(Some(body)));
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reclaim = Reclaim {
        slot: slot.clone(),
        started: started.clone(),
    };
    let wrapped = Reclaimable { slot, started };
    (http_body_util::BodyExt::boxed_unsync(wrapped), reclaim)
}

impl Reclaim {
    /// The body, if not a byte of it was read.
    pub fn take(self) -> Option<ProxyBody> {
        use std::sync::atomic::Ordering;
        if self.started.load(Ordering::Acquire) {
            return None;
        }
        self.slot.lock().ok()?.take()
    }
}

impl Body for Reclaimable {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Ok(mut slot) = self.slot.lock() else {
            return Poll::Ready(Some(Err("the body's lock was poisoned".into())));
        };
        let Some(body) = slot.as_mut() else {
            return Poll::Ready(Some(Err("the body was taken back".into())));
        };
        let frame = std::task::ready!(Pin::new(body).poll_frame(cx));
        self.started
            .store(true, std::sync::atomic::Ordering::Release);
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.slot
            .lock()
            .map(|s| s.as_ref().is_none_or(|b| b.is_end_stream()))
            .unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.slot
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|b| b.size_hint()))
            .unwrap_or_default()
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

    #[tokio::test]
    async fn a_body_none_of_which_was_read_can_be_taken_back() {
        let (body, reclaim) = reclaimable(full(vec![3u8; 10]));
        drop(body);
        assert_eq!(
            reclaim
                .take()
                .unwrap()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .len(),
            10
        );
        let (mut body, reclaim) = reclaimable(full(vec![3u8; 10]));
        body.frame().await.unwrap().unwrap();
        assert!(reclaim.take().is_none(), "once read, it is gone");
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_answer_stops_the_body() {
        let (body, _, gate) = outgoing(full(vec![1u8; 100_000]));
        gate.unwrap().abort();
        assert!(body.collect().await.is_err());
    }
}
