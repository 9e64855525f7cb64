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
    /// Records each piece of news, then brings each session's `participant_count` and
    /// `last_activity_at` up to date by the change of the identity's row alone (not a recount
    /// of the room: the cost of a piece of news does not grow with the room). News about an
    /// identity older than what is already known changes nothing, so late or replayed
    /// webhooks cannot undo newer ones; of several pieces about one identity with the same
    /// time, the later in the slice wins. One webhook's news is a one-element slice; a batch
    /// of webhooks writes all of theirs at once (one statement per 500 identities).
    ///
    /// Errors: `NotFound` if a piece of news names a session that does not exist; then
    /// nothing of its statement is written. Also `Unavailable`/`Invalid` as every call.
    async fn record_presence(&self, news: &[Presence]) -> Result<(), StoreError>;

    /// Repairs drift (a lost webhook, a count changed by hand) from who LiveKit lists in the
    /// session's room (`listed`, asked at `at`): a stored participant present but not
    /// listed has left at `at`, one stored as gone but listed is back at `at` (news newer
    /// than `at` still wins), then the count and last activity are recounted from the rows.
    /// A listed identity with no stored row is left alone: LiveKit's listing does not say
    /// which participants are agents, and those are never counted. Returns the count.
    ///
    /// Errors: `NotFound` if the session does not exist. Also `Unavailable`/`Invalid`.
    async fn reconcile(
        &self,
        session_id: Uuid,
        listed: &[String],
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError>;
}
