//! Timestamps as Unix microseconds, the column type of the SQLite schema.

use chrono::{DateTime, Utc};
use june_domain::ports::StoreError;

pub(crate) fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Unavailable(format!("stored time {us} is out of range").into()))
}
