//! Response bodies (whole, or streamed in slices at an optional rate) and request body reading.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use crate::conn::Conn;

/// Slice size for streamed bodies.
const SLICE: usize = 64 * 1024;

/// The body of every emulator response.
pub(crate) struct Body {
    data: Bytes,
    pos: usize,
    /// Bytes per second; 0 = as fast as the connection takes them.
    rate: u64,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Reset the connection after this many bytes (an injected fault).
    cut: Option<(usize, Arc<Conn>)>,
}

impl Body {
    pub fn empty() -> Body {
        Body::full(Bytes::new())
    }

    pub fn full(data: impl Into<Bytes>) -> Body {
        Body::streamed(data.into(), 0)
    }

    /// Streams `data` in 64 KiB slices, paced at `rate` bytes per second when non-zero.
    pub fn streamed(data: Bytes, rate: u64) -> Body {
        Body {
            data,
            pos: 0,
            rate,
            sleep: None,
            cut: None,
        }
    }

    /// Sends at most `after` bytes, then cuts the connection (the declared length stays).
    pub fn reset_after(mut self, after: u64, conn: Arc<Conn>) -> Body {
        let after = usize::try_from(after).unwrap_or(usize::MAX);
        self.cut = Some((after.min(self.data.len()), conn));
        self
    }

    fn slice_len(&self) -> usize {
        if self.rate == 0 {
            SLICE
        } else {
            // About 20 slices a second, so a slow body trickles rather than bursts.
            usize::try_from(self.rate / 20)
                .unwrap_or(SLICE)
                .clamp(1, SLICE)
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some((at, conn)) = &self.cut {
            if self.pos >= *at {
                if conn.aborting() {
                    // The connection should be gone already; end the body with an error.
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "connection cut by an injected fault",
                    ))));
                }
                // Pending lets the server flush what was sent; that flush then cuts.
                conn.abort();
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if self.pos >= self.data.len() {
            return Poll::Ready(None);
        }
        if let Some(sleep) = self.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        let end = self.cut.as_ref().map_or(self.data.len(), |(at, _)| *at);
        let n = self.slice_len().min(end - self.pos);
        let chunk = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        if self.rate > 0 && self.pos < self.data.len() {
            let wait = Duration::from_secs_f64(n as f64 / self.rate as f64);
            self.sleep = Some(Box::pin(tokio::time::sleep(wait)));
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.data.len() && self.cut.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.data.len() - self.pos) as u64)
    }
}

/// Reads a whole request body frame by frame into one buffer (no repeated copying).
pub async fn read_all(
    mut body: hyper::body::Incoming,
    size_hint: Option<u64>,
) -> Result<Bytes, hyper::Error> {
    let cap = size_hint.unwrap_or(0).min(8 << 30) as usize;
    let mut buf = BytesMut::with_capacity(cap);
    let mut first: Option<Bytes> = None;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            // Keep a single frame as-is; copy only once a second one arrives.
            if buf.is_empty() && first.is_none() {
                first = Some(data);
                continue;
            }
            if let Some(f) = first.take() {
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_all_bytes_in_slices() {
        let data = Bytes::from(vec![7u8; 200_000]);
        let body = Body::streamed(data.clone(), 0);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(200_000));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected, data);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_bodies_take_time() {
        let start = tokio::time::Instant::now();
        let body = Body::streamed(Bytes::from(vec![1u8; 2000]), 10_000);
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(collected.len(), 2000);
        assert!(start.elapsed() >= Duration::from_millis(150));
    }
}
