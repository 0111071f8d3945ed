//! How HTTP/1.1 and h2 are served: hyper's settings for client connections, and how soon an
//! HTTP/1.1 connection rests between requests (see `keepalive`).

use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// HTTP/1.1 and h2 settings: the request head must arrive within the idle timeout, and h2
/// pings a peer that has gone quiet with requests in flight (an idle h2 connection is closed
/// by the watchdog before its first ping).
pub struct Http {
    pub(crate) h1: http1::Builder,
    pub(crate) h2: http2::Builder<TokioExecutor>,
    /// `--client-rest-after` (see `keepalive`); `None`: HTTP/1.1 connections never rest.
    rest_after: Option<Duration>,
}

/// Most h2 streams a client may have open on one connection: with `--max-connections`, this
/// bounds the requests (and their buffers) one client can hold. Bodies held in memory are
/// bounded by `--max-buffered-bytes` in any case.
pub const MAX_H2_STREAMS: u32 = 100;
/// Most bytes of header fields an h2 client may send (h1's read buffer bounds its own at
/// about 400 KiB).
const MAX_HEADER_BYTES: u32 = 64 * 1024;

/// Open client connections past which a connection rests after at most [`CROWDED_REST_AFTER`].
pub const CROWDED: i64 = 256;
/// The longest `--client-rest-after` when more than [`CROWDED`] client connections are open.
pub const CROWDED_REST_AFTER: Duration = Duration::from_millis(10);

impl Http {
    /// How long an HTTP/1.1 connection waits before it rests, with `open` client connections
    /// open: `--client-rest-after`, or at most [`CROWDED_REST_AFTER`] when more than
    /// [`CROWDED`] are. A few busy connections keep their buffers for the next request, as
    /// waking costs CPU; many connections, most of them idle, give theirs back at once, as
    /// nginx's keep-alive connections do (20 KiB each: 1,000 of them hold 20 MiB). Under load a
    /// connection is not idle for 10 ms between requests, so it does not rest.
    pub fn rest_after(&self, open: i64) -> Option<Duration> {
        let after = self.rest_after?;
        Some(match open > CROWDED {
            true => after.min(CROWDED_REST_AFTER),
            false => after,
        })
    }

    /// The settings for `--client-idle-timeout` `idle` and `--client-rest-after` `rest_after`.
    pub fn new(idle: Duration, rest_after: Option<Duration>) -> Self {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new()).header_read_timeout(idle);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .keep_alive_interval(idle * 2)
            .keep_alive_timeout(idle)
            .max_concurrent_streams(MAX_H2_STREAMS)
            .max_header_list_size(MAX_HEADER_BYTES);
        Http { h1, h2, rest_after }
    }
}

#[cfg(test)]
mod tests {
    use super::{Http, CROWDED, CROWDED_REST_AFTER};
    use std::time::Duration;

    #[test]
    fn connections_rest_sooner_when_many_are_open() {
        let idle = Duration::from_secs(60);
        let second = Http::new(idle, Some(Duration::from_secs(1)));
        assert_eq!(second.rest_after(1), Some(Duration::from_secs(1)));
        assert_eq!(second.rest_after(CROWDED), Some(Duration::from_secs(1)));
        assert_eq!(second.rest_after(CROWDED + 1), Some(CROWDED_REST_AFTER));
        // A shorter setting stays; `0s` (never) stays never.
        let short = Http::new(idle, Some(Duration::from_millis(2)));
        assert_eq!(short.rest_after(5000), Some(Duration::from_millis(2)));
        assert_eq!(Http::new(idle, None).rest_after(5000), None);
    }
}
