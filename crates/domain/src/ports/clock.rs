use std::time::Instant;

use chrono::{DateTime, Utc};

/// The time source. Injected so that expiry and ordering can be tested without sleeping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Now, on a monotonic clock: what turn timings are measured with, so tests control
    /// them exactly (a fake clock here, or a paused tokio clock in the binary's tests).
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
