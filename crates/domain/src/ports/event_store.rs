use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::events::RecordedEvent;

/// A position in a session's newest-first event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    /// `created_at` of the last event of the previous page.
    pub created_at: DateTime<Utc>,
    /// Its id (ties on `created_at` are broken by id).
    pub id: String,
}

/// The log of LiveKit events, which is also the dedupe memory of webhook ids. Webhooks are
/// applied in batches, so the dedupe and the record take several ids at once; one event is
/// a one-element slice.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Which of these ids were already recorded.
    ///
    /// Errors: only `Unavailable` (and `Invalid` for a refused text).
    async fn seen(&self, event_ids: &[String]) -> Result<HashSet<String>, StoreError>;

    /// Records the events (distinct ids), in order: `true` where the event was new, `false`
    /// (and nothing changed) where its id was already recorded, e.g. by another replica an
    /// instant earlier.
    ///
    /// Errors: `Invalid` for a value the database refuses (then none of the call is
    /// recorded); `Unavailable`.
    async fn record(&self, events: &[RecordedEvent]) -> Result<Vec<bool>, StoreError>;

    /// The session's events, newest first, `limit` at most, after `after` (none for an
    /// unknown session).
    ///
    /// Errors: only `Unavailable`.
    async fn list(
        &self,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}
