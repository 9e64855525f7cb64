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

/// The log of LiveKit events, which is also the dedupe memory of webhook ids.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Whether an event with this id was already recorded.
    async fn seen(&self, event_id: &str) -> Result<bool, StoreError>;

    /// Records the event. Returns `false` (and changes nothing) if its id was already
    /// recorded, e.g. by another replica an instant earlier.
    async fn record(&self, event: &RecordedEvent) -> Result<bool, StoreError>;

    /// Which of these ids were already recorded. A batch of deliveries asks once; the
    /// default asks per id.
    async fn seen_many(
        &self,
        event_ids: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        for id in event_ids {
            if self.seen(id).await? {
                seen.insert(id.clone());
            }
        }
        Ok(seen)
    }

    /// [`EventStore::record`] for each event (distinct ids), in order: `true` where it was
    /// new. A backend may write them all at once.
    async fn record_many(&self, events: &[RecordedEvent]) -> Result<Vec<bool>, StoreError> {
        let mut new = Vec::with_capacity(events.len());
        for e in events {
            new.push(self.record(e).await?);
        }
        Ok(new)
    }

    /// The session's events, newest first, `limit` at most, after `after`.
    async fn list(
        &self,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}
