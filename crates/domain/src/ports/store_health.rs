use async_trait::async_trait;

use super::StoreError;

/// Whether the store answers, and how its connections are used (readiness and metrics).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// A cheap round trip.
    ///
    /// Errors: `Unavailable` if the database cannot be reached or does not answer in time.
    async fn ping(&self) -> Result<(), StoreError>;

    /// `(open, idle)` connections, for metrics; `None` when there is no pool. Never fails.
    fn pool_stats(&self) -> Option<(u32, u32)>;
}
