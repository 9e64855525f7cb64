use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// That `identity` joined (`present`) or left a session's room at `at` (LiveKit's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// The session.
    pub session_id: Uuid,
    /// The participant.
    pub identity: String,
    /// Joined (`true`) or left.
    pub present: bool,
    /// When, by LiveKit's clock.
    pub at: DateTime<Utc>,
}

/// Who is in a session's room, as LiveKit's webhooks tell it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Records each piece of news, in order, then refreshes each session's
    /// `participant_count` and `last_activity_at`. News about an identity older than what is
    /// already known changes nothing, so late or replayed webhooks cannot undo newer ones.
    /// One webhook's news is a one-element slice; a batch of webhooks writes all of theirs
    /// at once (one transaction per 500 news).
    ///
    /// Errors: `NotFound` if a piece of news names a session that does not exist; then
    /// nothing of its transaction is written. Also `Unavailable`/`Invalid` as every call.
    async fn record_presence(&self, news: &[Presence]) -> Result<(), StoreError>;
}
