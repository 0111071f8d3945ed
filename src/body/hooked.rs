//! Hooked bodies: the one `poll_frame` skeleton of every body that wraps another body. Each
//! such body (counting, the idle limit, the `100 Continue` gate, digests, aws-chunked decoding
//! and framing, S3's answer read on its connection) is a [`Hooked`] body with its own [`Hook`],
//! which says only what it does differently from passing the inner body through.
//!
//! Each poll goes round a loop: [`Hook::before`] may answer it (a frame made ready earlier, a
//! failure held back, a gate still shut); else the inner body is polled, and [`Hook::pending`]
//! answers while it has nothing, or [`Hook::frame`] gets what it gave, and answers or takes the
//! frame in and goes round again. Generic over the hook, the skeleton adds no box, no dynamic
//! call and no allocation per frame.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Any error a body can fail with (`body::BoxError`, spelled out: `body` builds on this module).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A frame, an error, or the end (`None`): what a body gives.
pub type Given = Option<Result<Frame<Bytes>, BoxError>>;

/// What one poll of a body answers.
pub type Polled = Poll<Given>;

/// What a hook says: answer the poll with this (`Break`), or go on (`Continue`).
pub type Step = ControlFlow<Polled>;

/// What a [`Hooked`] body does around the body `B` it wraps. Every hook has a default that
/// passes the inner body through as it is.
pub trait Hook<B: Body> {
    /// First on every poll (and again after [`Hook::frame`] went on): `Break` answers the poll
    /// without polling the inner body.
    fn before(&mut self, _cx: &mut Context<'_>) -> Step {
        ControlFlow::Continue(())
    }

    /// The inner body gave `given`: `Break` answers the poll, `Continue` takes it in and goes
    /// round again.
    fn frame(&mut self, given: Given, _inner: &mut B, _cx: &mut Context<'_>) -> Step {
        ControlFlow::Break(Poll::Ready(given))
    }

    /// The inner body has no frame yet: the poll's answer.
    fn pending(&mut self, _inner: &mut B, _cx: &mut Context<'_>) -> Polled {
        Poll::Pending
    }

    /// Whether the hooked body has ended.
    fn is_end_stream(&self, inner: &B) -> bool {
        inner.is_end_stream()
    }

    /// The hooked body's size.
    fn size_hint(&self, inner: &B) -> SizeHint {
        inner.size_hint()
    }

    /// The hooked body is dropped (the inner body and then the hook are dropped after this).
    fn dropped(&mut self, _inner: &mut B) {}
}

/// The body `B` with the hook `H` around it.
pub struct Hooked<B: Body, H: Hook<B>> {
    inner: B,
    hook: H,
}

impl<B: Body, H: Hook<B>> Hooked<B, H> {
    /// `inner` with `hook` around it.
    pub fn wrap(inner: B, hook: H) -> Self {
        Hooked { inner, hook }
    }

    /// The body inside.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The body inside.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The hook.
    pub fn hook_mut(&mut self) -> &mut H {
        &mut self.hook
    }
}

impl<B, H> Body for Hooked<B, H>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    H: Hook<B> + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        let this = self.get_mut();
        loop {
            if let ControlFlow::Break(answer) = this.hook.before(cx) {
                return answer;
            }
            let given = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(given) => given.map(|r| r.map_err(Into::into)),
                Poll::Pending => return this.hook.pending(&mut this.inner, cx),
            };
            if let ControlFlow::Break(answer) = this.hook.frame(given, &mut this.inner, cx) {
                return answer;
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.hook.is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        self.hook.size_hint(&self.inner)
    }
}

impl<B: Body, H: Hook<B>> Drop for Hooked<B, H> {
    fn drop(&mut self) {
        self.hook.dropped(&mut self.inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{full, ProxyBody};
    use http_body_util::BodyExt;

    /// Passes frames through, noting what it saw.
    #[derive(Default)]
    struct Seen {
        frames: usize,
        ended: bool,
        dropped: bool,
    }

    impl Hook<ProxyBody> for &mut Seen {
        fn frame(&mut self, given: Given, _: &mut ProxyBody, _: &mut Context<'_>) -> Step {
            match &given {
                Some(_) => self.frames += 1,
                None => self.ended = true,
            }
            ControlFlow::Break(Poll::Ready(given))
        }

        fn dropped(&mut self, _: &mut ProxyBody) {
            self.dropped = true;
        }
    }

    #[tokio::test]
    async fn a_hook_sees_every_frame_the_end_and_the_drop() {
        let mut seen = Seen::default();
        let body = Hooked::wrap(full("abc"), &mut seen);
        assert_eq!(body.size_hint().exact(), Some(3));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abc");
        assert_eq!((seen.frames, seen.dropped), (1, true));
    }

    /// Splits each frame into single bytes: takes frames in, answers from what it holds.
    #[derive(Default)]
    struct Bytewise(Bytes);

    impl Hook<ProxyBody> for Bytewise {
        fn before(&mut self, _: &mut Context<'_>) -> Step {
            match self.0.is_empty() {
                true => ControlFlow::Continue(()),
                false => ControlFlow::Break(Poll::Ready(Some(Ok(Frame::data(self.0.split_to(1)))))),
            }
        }

        fn frame(&mut self, given: Given, _: &mut ProxyBody, _: &mut Context<'_>) -> Step {
            match given {
                Some(Ok(frame)) => {
                    self.0 = frame.into_data().unwrap_or_default();
                    ControlFlow::Continue(())
                }
                other => ControlFlow::Break(Poll::Ready(other)),
            }
        }
    }

    #[tokio::test]
    async fn a_hook_that_goes_on_takes_frames_in_and_answers_from_before() {
        let mut body = Hooked::wrap(full("abc"), Bytewise::default());
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames, ["a", "b", "c"]);
    }
}
