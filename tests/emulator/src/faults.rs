//! Injected faults: throttling, delays, token and server errors, early answers, resets, corruption.

use std::time::Duration;

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Only CreateSession.
    CreateSession,
    /// Zonal requests other than CreateSession.
    Data,
    /// Requests to general-purpose buckets.
    GeneralPurpose,
    /// One S3 operation, by name ("PutObject", "UploadPart", "GetObject", ...).
    Operation(&'static str),
    /// Every request.
    Any,
}

/// A request as the fault matcher sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Req<'a> {
    /// The S3 operation name.
    pub op: &'a str,
    /// On a Zonal endpoint.
    pub zonal: bool,
    /// On a general-purpose endpoint.
    pub general_purpose: bool,
}

impl Target {
    fn matches(self, r: Req<'_>) -> bool {
        let cs = r.op == "CreateSession";
        match self {
            Target::CreateSession => cs,
            Target::Data => r.zonal && !cs,
            Target::GeneralPurpose => r.general_purpose,
            Target::Operation(name) => r.op == name,
            Target::Any => true,
        }
    }
}

/// A fault to inject with [`crate::Emulator::inject`].
#[derive(Clone, Debug)]
pub enum Fault {
    /// The next `count` matching requests get 503 SlowDown.
    SlowDown { count: u32, target: Target },
    /// The next `count` matching requests have their response head delayed.
    Delay {
        count: u32,
        delay: Duration,
        target: Target,
    },
    /// The next `count` correctly signed session requests get 400 ExpiredToken, and the session
    /// they used is expired from then on.
    ExpiredToken { count: u32 },
    /// The next `count` correctly signed session requests get 400 InvalidToken, and the session
    /// they used is forgotten.
    InvalidToken { count: u32 },
    /// The next `count` matching requests get 500 InternalError.
    InternalError { count: u32, target: Target },
    /// GetObject bodies stream at this many bytes per second from now on (0 = full speed).
    SlowBody { bytes_per_sec: u64 },
    /// The next `count` matching requests that carry a body are answered with this S3 error
    /// before any of the body is read; the connection is then closed without draining the body
    /// (HTTP/1.1 answers carry `Connection: close`; a client still sending typically sees a
    /// reset). On h2 the stream is reset after the answer instead.
    RejectEarly {
        count: u32,
        status: u16,
        code: &'static str,
        target: Target,
        /// How long S3 takes to decide, reading none of the body meanwhile.
        after: Duration,
    },
    /// The next `count` matching GetObject responses declare their full Content-Length, send
    /// `after_bytes` of the body (at most the whole body), then abort the connection: the TCP
    /// stream is shut down right after those bytes, with no TLS close_notify, so the client's
    /// read fails (an unexpected EOF) short of the Content-Length. On h2 the whole connection
    /// goes, with every stream on it.
    ResetMidBody {
        count: u32,
        after_bytes: u64,
        target: Target,
    },
    /// The next `count` non-empty PutObject or UploadPart bodies have one byte flipped as
    /// received: the middle byte of the data (XOR 0x01), before x-amz-content-sha256, chunk
    /// signatures and checksums are verified, and before storage.
    CorruptUpload { count: u32 },
}

/// A fault that answers early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Early {
    pub status: u16,
    pub code: &'static str,
    pub after: Duration,
}

/// A pending fault with its remaining count.
#[derive(Debug)]
struct Pending<T> {
    left: u32,
    target: Target,
    what: T,
}

fn pending<T>(left: u32, target: Target, what: T) -> Pending<T> {
    Pending { left, target, what }
}

/// Takes one unit from the first pending fault that matches.
fn take<T: Clone>(list: &mut Vec<Pending<T>>, r: Req<'_>) -> Option<T> {
    let i = list
        .iter()
        .position(|p| p.left > 0 && p.target.matches(r))?;
    list[i].left -= 1;
    let what = list[i].what.clone();
    list.retain(|p| p.left > 0);
    Some(what)
}

/// Pending faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    slow_down: Vec<Pending<()>>,
    internal: Vec<Pending<()>>,
    delays: Vec<Pending<Duration>>,
    early: Vec<Pending<Early>>,
    resets: Vec<Pending<u64>>,
    expired: u32,
    invalid: u32,
    corrupt: u32,
    pub slow_body: u64,
}

/// What to do to one request, decided when it arrives.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub slow_down: bool,
    pub internal_error: bool,
    pub delay: Option<Duration>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        match fault {
            Fault::SlowDown { count, target } => self.slow_down.push(pending(count, target, ())),
            Fault::InternalError { count, target } => {
                self.internal.push(pending(count, target, ()))
            }
            Fault::Delay {
                count,
                delay,
                target,
            } => self.delays.push(pending(count, target, delay)),
            Fault::ExpiredToken { count } => self.expired += count,
            Fault::InvalidToken { count } => self.invalid += count,
            Fault::SlowBody { bytes_per_sec } => self.slow_body = bytes_per_sec,
            Fault::RejectEarly {
                count,
                status,
                code,
                target,
                after,
            } => self.early.push(pending(
                count,
                target,
                Early {
                    status,
                    code,
                    after,
                },
            )),
            Fault::ResetMidBody {
                count,
                after_bytes,
                target,
            } => self.resets.push(pending(count, target, after_bytes)),
            Fault::CorruptUpload { count } => self.corrupt += count,
        }
    }

    /// Consumes the faults that apply to a request as it arrives.
    pub fn on_request(&mut self, r: Req<'_>) -> Decision {
        let slow_down = take(&mut self.slow_down, r).is_some();
        Decision {
            slow_down,
            internal_error: !slow_down && take(&mut self.internal, r).is_some(),
            delay: take(&mut self.delays, r),
        }
    }

    /// Consumes an early answer for a request that carries a body.
    pub fn take_early(&mut self, r: Req<'_>) -> Option<Early> {
        take(&mut self.early, r)
    }

    /// Consumes a mid-body reset for a GetObject response: the bytes to send first.
    pub fn take_reset(&mut self, r: Req<'_>) -> Option<u64> {
        take(&mut self.resets, r)
    }

    /// Consumes a pending ExpiredToken fault, if any.
    pub fn take_expired(&mut self) -> bool {
        take_count(&mut self.expired)
    }

    /// Consumes a pending InvalidToken fault, if any.
    pub fn take_invalid(&mut self) -> bool {
        take_count(&mut self.invalid)
    }

    /// Consumes a pending CorruptUpload fault, if any.
    pub fn take_corrupt(&mut self) -> bool {
        take_count(&mut self.corrupt)
    }
}

fn take_count(n: &mut u32) -> bool {
    let hit = *n > 0;
    *n = n.saturating_sub(1);
    hit
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: Req<'static> = Req {
        op: "CreateSession",
        zonal: true,
        general_purpose: false,
    };
    const GET: Req<'static> = Req {
        op: "GetObject",
        zonal: true,
        general_purpose: false,
    };
    const GP_PUT: Req<'static> = Req {
        op: "PutObject",
        zonal: false,
        general_purpose: true,
    };

    #[test]
    fn faults_are_counted_down_by_target() {
        let mut f = Faults::default();
        f.add(Fault::SlowDown {
            count: 2,
            target: Target::CreateSession,
        });
        f.add(Fault::Delay {
            count: 1,
            delay: Duration::from_millis(5),
            target: Target::Data,
        });
        assert!(!f.on_request(GET).slow_down);
        assert!(f.on_request(GET).delay.is_none());
        assert!(f.on_request(CS).slow_down);
        assert!(f.on_request(CS).slow_down);
        assert!(!f.on_request(CS).slow_down);
        f.add(Fault::ExpiredToken { count: 1 });
        assert!(f.take_expired());
        assert!(!f.take_expired());
    }

    #[test]
    fn targets_by_operation_and_kind() {
        let mut f = Faults::default();
        f.add(Fault::RejectEarly {
            count: 1,
            status: 400,
            code: "EntityTooLarge",
            target: Target::Operation("PutObject"),
            after: Duration::ZERO,
        });
        f.add(Fault::ResetMidBody {
            count: 1,
            after_bytes: 10,
            target: Target::GeneralPurpose,
        });
        assert_eq!(f.take_early(GET), None);
        assert_eq!(f.take_reset(GET), None);
        assert_eq!(f.take_early(GP_PUT).map(|e| e.code), Some("EntityTooLarge"));
        assert_eq!(f.take_early(GP_PUT), None);
        assert_eq!(f.take_reset(GP_PUT), Some(10));
        assert_eq!(f.take_reset(GP_PUT), None);
    }
}
