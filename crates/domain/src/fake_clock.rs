//! A clock the crate's tests set and advance by hand: nothing sleeps.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

use crate::ports::Clock;

/// Stands still until advanced.
pub(crate) struct FakeClock(pub(crate) Mutex<DateTime<Utc>>);

impl FakeClock {
    pub(crate) fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    /// Moves with the wall time it is set to: a fixed anchor plus the time since 2000, so
    /// `advance` moves both clocks by the same amount.
    fn instant(&self) -> Instant {
        static ANCHOR: OnceLock<Instant> = OnceLock::new();
        let base = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let since = (self.now() - base).to_std().unwrap();
        *ANCHOR.get_or_init(Instant::now) + since
    }
}
