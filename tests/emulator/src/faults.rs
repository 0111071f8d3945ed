//! Injected faults: throttling, delays, token errors, server errors and slow bodies.

use std::time::Duration;

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Only CreateSession.
    CreateSession,
    /// Zonal requests other than CreateSession.
    Data,
    /// Every request.
    Any,
}

impl Target {
    fn matches(self, is_create_session: bool, is_data: bool) -> bool {
        match self {
            Target::CreateSession => is_create_session,
            Target::Data => is_data,
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
}

/// Pending faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    slow_down: Vec<(u32, Target)>,
    internal: Vec<(u32, Target)>,
    delays: Vec<(u32, Duration, Target)>,
    expired: u32,
    invalid: u32,
    pub slow_body: u64,
}

/// Takes one unit from the first matching entry.
fn take(list: &mut Vec<(u32, Target)>, cs: bool, data: bool) -> bool {
    if let Some(i) = list.iter().position(|(n, t)| *n > 0 && t.matches(cs, data)) {
        list[i].0 -= 1;
        list.retain(|(n, _)| *n > 0);
        true
    } else {
        false
    }
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
            Fault::SlowDown { count, target } => self.slow_down.push((count, target)),
            Fault::InternalError { count, target } => self.internal.push((count, target)),
            Fault::Delay {
                count,
                delay,
                target,
            } => self.delays.push((count, delay, target)),
            Fault::ExpiredToken { count } => self.expired += count,
            Fault::InvalidToken { count } => self.invalid += count,
            Fault::SlowBody { bytes_per_sec } => self.slow_body = bytes_per_sec,
        }
    }

    /// Consumes the faults that apply to a request as it arrives.
    pub fn on_request(&mut self, is_create_session: bool, is_data: bool) -> Decision {
        let (cs, data) = (is_create_session, is_data);
        let mut d = Decision {
            slow_down: take(&mut self.slow_down, cs, data),
            ..Decision::default()
        };
        if !d.slow_down {
            d.internal_error = take(&mut self.internal, cs, data);
        }
        if let Some(i) = self
            .delays
            .iter()
            .position(|(n, _, t)| *n > 0 && t.matches(cs, data))
        {
            self.delays[i].0 -= 1;
            d.delay = Some(self.delays[i].1);
            self.delays.retain(|(n, _, _)| *n > 0);
        }
        d
    }

    /// Consumes a pending ExpiredToken fault, if any.
    pub fn take_expired(&mut self) -> bool {
        let hit = self.expired > 0;
        self.expired = self.expired.saturating_sub(1);
        hit
    }

    /// Consumes a pending InvalidToken fault, if any.
    pub fn take_invalid(&mut self) -> bool {
        let hit = self.invalid > 0;
        self.invalid = self.invalid.saturating_sub(1);
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(!f.on_request(false, true).slow_down);
        assert!(f.on_request(false, true).delay.is_none());
        assert!(f.on_request(true, false).slow_down);
        assert!(f.on_request(true, false).slow_down);
        assert!(!f.on_request(true, false).slow_down);
        f.add(Fault::ExpiredToken { count: 1 });
        assert!(f.take_expired());
        assert!(!f.take_expired());
    }
}
