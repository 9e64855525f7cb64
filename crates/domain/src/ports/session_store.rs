use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::BoxError;
use crate::model::{HistoryEntry, Session, SessionStatus};

/// What a store can fail with. Adapters map their driver's errors onto these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that key.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (e.g. a live session already uses the room name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refused a value of this call (e.g. a NUL character in a text on
    /// PostgreSQL, SQLSTATE class 22). Retrying the same call fails the same way, so callers
    /// answer it as the client's fault, never as an outage. The message is safe to show: it
    /// says what is wrong with the value and holds no SQL.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The database could not be reached, failed, or did not answer in time (after a
    /// timeout the call may still have taken effect).
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
}

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

/// The outcome of [`SessionStore::advance_status`].
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The session as it is now.
    pub session: Session,
    /// Whether this call changed its status.
    pub changed: bool,
}

/// Which sessions to list, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionFilter {
    /// Only this owner's sessions.
    pub user_id: Option<String>,
    /// Only sessions in this status.
    pub status: Option<SessionStatus>,
    /// Page size (the service bounds it).
    pub limit: u32,
    /// Continue after this position (from a previous page's `next_cursor`).
    pub after: Option<PageCursor>,
}

/// A position in the newest-first listing of sessions: `(created_at, id)` of the last row seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    /// `created_at` of the last row of the previous page.
    pub created_at: DateTime<Utc>,
    /// `id` of that row (ties on `created_at` are broken by id).
    pub id: Uuid,
}

/// Persistence of sessions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    ///
    /// Returns `StoreError::Conflict` if a live (`created`/`active`) session already has the
    /// same room name, or the id exists.
    async fn insert(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this id; `StoreError::NotFound` if none.
    async fn get(&self, id: Uuid) -> Result<Session, StoreError>;

    /// The live session using this room name, if any.
    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError>;

    /// The session whose room LiveKit created with this sid, if any.
    async fn find_by_room_sid(&self, room_sid: &str) -> Result<Option<Session>, StoreError>;

    /// Live (`created`/`active`) sessions, oldest first, `limit` at most (for the reaper).
    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError>;

    /// Records that `identity` joined (`present`) or left the session's room at `at`
    /// (LiveKit's clock), then refreshes the session's `participant_count` and
    /// `last_activity_at`. Older news about the same identity than what is already known
    /// changes nothing, so late or replayed webhooks cannot undo newer ones.
    async fn record_presence(
        &self,
        session_id: Uuid,
        identity: &str,
        present: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The sessions of these room sids (a batch of webhooks asks once; the default asks
    /// per sid).
    async fn find_by_room_sids(&self, room_sids: &[String]) -> Result<Vec<Session>, StoreError> {
        let mut found = Vec::new();
        for sid in room_sids {
            found.extend(self.find_by_room_sid(sid).await?);
        }
        Ok(found)
    }

    /// [`SessionStore::record_presence`] for each piece of news, in order. A backend may
    /// write them all at once.
    async fn record_presence_many(&self, news: &[Presence]) -> Result<(), StoreError> {
        for n in news {
            self.record_presence(n.session_id, &n.identity, n.present, n.at)
                .await?;
        }
        Ok(())
    }

    /// Sessions newest first, `filter.limit` of them at most, after `filter.after`.
    async fn list(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError>;

    /// Moves the session to `to` if that is a step forward from its current status
    /// (see [`SessionStatus::can_become`]), atomically, and returns the session as it now is
    /// and whether *this* call moved it. A step that is not forward changes nothing and is not
    /// an error: webhooks and replicas race, and the later state has already won; of two
    /// replicas making the same step, exactly one sees `changed`. `StoreError::NotFound` if
    /// no such session.
    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError>;

    /// Takes or renews the lease `name` for `holder` until `until`, unless another holder's
    /// lease is still running at `now`. Returns whether `holder` holds it. One statement, so
    /// replicas racing for it cannot both win.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Claims the one-time dispatch of the voice bots for the session: true for exactly one
    /// caller, whichever replica it runs on.
    async fn claim_dispatch(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Gives a claim back after a failed dispatch, so a later event can try again.
    async fn release_dispatch(&self, id: Uuid) -> Result<(), StoreError>;

    /// Starts a new turn: increments the session's turn generation atomically and returns
    /// it. Any turn running with an older generation is thereby cancelled.
    async fn next_turn(&self, id: Uuid) -> Result<u64, StoreError>;

    /// The session's current turn generation (a running turn checks it before each send).
    async fn current_turn(&self, id: Uuid) -> Result<u64, StoreError>;

    /// Records a final transcript unless the same text was recorded within `window` before
    /// `at` (STT bots resend finals). Returns whether it is new.
    async fn note_final(
        &self,
        id: Uuid,
        text: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<bool, StoreError>;

    /// Connections open and idle in the pool, for metrics (`None` when there is no pool).
    fn pool_stats(&self) -> Option<(u32, u32)> {
        None
    }

    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Persistence of the conversation history of sessions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Appends one entry at the end of the session's history.
    async fn append(&self, session_id: Uuid, entry: &HistoryEntry) -> Result<(), StoreError>;

    /// The last `limit` entries, oldest first.
    async fn recent(&self, session_id: Uuid, limit: u32) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Removes every entry of the session.
    async fn clear(&self, session_id: Uuid) -> Result<(), StoreError>;
}
