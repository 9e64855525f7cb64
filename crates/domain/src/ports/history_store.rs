use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use crate::model::HistoryEntry;

/// Persistence of the conversation history of sessions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Appends one entry at the end of the session's history.
    ///
    /// Errors: `NotFound` if there is no such session; `Invalid` for a text the database
    /// refuses; `Unavailable`.
    async fn append(&self, session_id: Uuid, entry: &HistoryEntry) -> Result<(), StoreError>;

    /// The last `limit` entries, oldest first (none for an unknown session).
    ///
    /// Errors: only `Unavailable`.
    async fn recent(&self, session_id: Uuid, limit: u32) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Removes every entry of the session (nothing to do for an unknown one).
    ///
    /// Errors: only `Unavailable`.
    async fn clear(&self, session_id: Uuid) -> Result<(), StoreError>;
}
