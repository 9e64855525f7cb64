use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::model::{Session, SessionStatus};

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

/// Persistence of the sessions themselves: create, read, list, and the forward-only status.
///
/// Every method may also fail with [`StoreError::Unavailable`] (and, for a text the
/// database refuses, [`StoreError::Invalid`]); the docs below name the other errors.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    ///
    /// Errors: `Conflict` if the id exists or a live (`created`/`active`) session already
    /// has the same room name.
    async fn insert(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this id.
    ///
    /// Errors: `NotFound` if there is none.
    async fn get(&self, id: Uuid) -> Result<Session, StoreError>;

    /// The live session using this room name, if any (`Ok(None)` otherwise).
    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError>;

    /// The sessions whose LiveKit room has one of these sids, oldest first (so a caller
    /// keying by sid keeps the newest). Unknown sids are simply absent; one sid per lookup
    /// is a one-element slice.
    async fn find_by_room_sids(&self, room_sids: &[String]) -> Result<Vec<Session>, StoreError>;

    /// Sessions newest first, `filter.limit` of them at most, after `filter.after`.
    async fn list(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError>;

    /// Live (`created`/`active`) sessions, oldest first, `limit` at most (for the reaper).
    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError>;

    /// Moves the session to `to` if that is a step forward from its current status
    /// (see [`SessionStatus::can_become`]), atomically, and returns the session as it now is
    /// and whether *this* call moved it. A step that is not forward changes nothing and is not
    /// an error: webhooks and replicas race, and the later state has already won; of two
    /// replicas making the same step, exactly one sees `changed`.
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError>;
}
