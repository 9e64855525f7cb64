//! The domain's clock on tokio's time: wall time from the system, monotonic time from
//! `tokio::time::Instant`, so a test with a paused tokio clock controls turn timings.

use std::time::Instant;

use chrono::{DateTime, Utc};
use june_domain::ports::Clock;

/// System wall time; tokio's monotonic time (the same as std's unless paused in a test).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn instant(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}
