//! A clock the crate's tests set and advance by hand: nothing sleeps.

use std::sync::Mutex;

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
}
