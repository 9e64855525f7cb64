use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// Named leases, so one replica at a time does a job (the reaper).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `until`, unless another holder's
    /// lease is still running at `now`. Returns whether `holder` holds it. One statement, so
    /// replicas racing for it cannot both win.
    ///
    /// Errors: only `Unavailable` (and `Invalid` for a refused text).
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
