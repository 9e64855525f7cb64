use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// Where a request carrying an `Idempotency-Key` stands.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyState {
    /// The key is new: this caller does the work, then calls `complete` (or `abandon`).
    Started,
    /// The same key and body finished before: answer with this stored response.
    Completed(serde_json::Value),
    /// The same key and body are being handled right now by another request.
    InProgress,
    /// The key was used with another body.
    Mismatch,
}

/// Remembers requests by `Idempotency-Key` so a retried create makes one session. Races are
/// settled by the database (a unique key), not by process memory, so replicas agree.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request whose body is `fingerprint`, unless it is already claimed
    /// since `not_before` (older claims have expired and are replaced).
    ///
    /// Errors: only `Unavailable` (and `Invalid` for a refused text); a key used with
    /// another body is the `Mismatch` state, not an error.
    async fn begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> Result<IdempotencyState, StoreError>;

    /// Stores the response of a claimed key (nothing to do for an unknown key).
    ///
    /// Errors: only `Unavailable`.
    async fn complete(&self, key: &str, response: &serde_json::Value) -> Result<(), StoreError>;

    /// Releases a claim whose request failed, so a retry can do the work. A completed key
    /// is kept. Errors: only `Unavailable`.
    async fn abandon(&self, key: &str) -> Result<(), StoreError>;
}
