use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use crate::turns::TurnRecord;

/// Persistence of turn records (design.md §8.3), kept with the session and removed with it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TurnStore: Send + Sync {
    /// Stores a finished turn. Storing the same `(session_id, turn)` again replaces it.
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn record_turn(&self, record: &TurnRecord) -> Result<(), StoreError>;

    /// Newest first: at most `limit` turns numbered below `before` (all when `None`).
    async fn list_turns(
        &self,
        session_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError>;

    /// Oldest first: at most `limit` turns numbered above `after` (the live stream's resume).
    async fn turns_after(
        &self,
        session_id: Uuid,
        after: u64,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError>;

    /// One turn, if stored.
    async fn get_turn(&self, session_id: Uuid, turn: u64)
    -> Result<Option<TurnRecord>, StoreError>;
}
