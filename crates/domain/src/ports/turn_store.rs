use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;
use crate::turns::TurnRecord;

/// A session's turns in figures, for `GET /api/sessions/{id}` (one read of the turn rows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnSummary {
    /// Stored turns.
    pub turns: u64,
    /// Median ms from the final (or the chat request) to the first TTS request, over the
    /// turns that sent one (nearest rank).
    pub first_tts_p50_ms: Option<u64>,
    /// The 95th percentile of the same (nearest rank).
    pub first_tts_p95_ms: Option<u64>,
    /// Tokens of every stored turn.
    pub total_tokens: u64,
}

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

    /// The next turn number of a chat turn (voice turns get theirs from
    /// [`VoiceStateStore::start_turn`](super::VoiceStateStore::start_turn): one counter).
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn allocate_turn(&self, session_id: Uuid) -> Result<u64, StoreError>;

    /// The session's turns in figures; all zero/`None` when there are none (or no such
    /// session).
    async fn summary(&self, session_id: Uuid) -> Result<TurnSummary, StoreError>;
}
