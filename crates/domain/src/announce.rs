//! Status events for the live stream: every status change of a session, wherever it is made
//! (a webhook, `DELETE`, the reaper, room adoption), goes through
//! [`SessionStore::advance_status`], so the store is wrapped once here instead of each caller
//! remembering to publish. Only the call that *changed* the status publishes: of two replicas
//! making the same step, exactly one does.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{Session, SessionStatus};
use crate::ports::{
    LiveEvent, LiveEvents, SessionEvent, SessionFilter, SessionStore, StoreError, Transition,
};

/// A [`SessionStore`] that publishes a [`LiveEvent::Status`] after each status change.
pub(crate) struct StatusAnnouncer {
    pub(crate) inner: Arc<dyn SessionStore>,
    pub(crate) live: Arc<dyn LiveEvents>,
}

#[async_trait]
impl SessionStore for StatusAnnouncer {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        self.inner.insert(session).await
    }

    async fn get(&self, id: Uuid) -> Result<Session, StoreError> {
        self.inner.get(id).await
    }

    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError> {
        self.inner.find_live_by_room(room_name).await
    }

    async fn find_by_room_sids(&self, room_sids: &[String]) -> Result<Vec<Session>, StoreError> {
        self.inner.find_by_room_sids(room_sids).await
    }

    async fn list(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        self.inner.list(filter).await
    }

    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError> {
        self.inner.list_live(limit).await
    }

    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        let transition = self.inner.advance_status(id, to, at).await?;
        if transition.changed {
            self.live.publish(SessionEvent {
                session_id: id,
                room_name: transition.session.room_name.clone(),
                event: LiveEvent::Status(transition.session.status),
            });
        }
        Ok(transition)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::memory::InMemoryStore;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<SessionEvent>>);

    impl LiveEvents for Recorded {
        fn publish(&self, event: SessionEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[tokio::test]
    async fn a_status_change_is_published_once_and_a_repeated_step_not_at_all() {
        // Arrange
        let live = Arc::new(Recorded::default());
        let store = StatusAnnouncer {
            inner: Arc::new(InMemoryStore::default()),
            live: live.clone(),
        };
        let session = crate::tests::session(SessionStatus::Created);
        store.insert(&session).await.unwrap();

        // Act
        let now = Utc::now();
        store
            .advance_status(session.id, SessionStatus::Active, now)
            .await
            .unwrap();
        store
            .advance_status(session.id, SessionStatus::Active, now)
            .await
            .unwrap();
        store
            .advance_status(session.id, SessionStatus::Ended, now)
            .await
            .unwrap();

        // Assert
        let events = live.0.lock().unwrap().clone();
        let statuses: Vec<_> = events.iter().map(|e| e.event.clone()).collect();
        assert_eq!(
            statuses,
            vec![
                LiveEvent::Status(SessionStatus::Active),
                LiveEvent::Status(SessionStatus::Ended)
            ]
        );
        assert!(events.iter().all(|e| e.session_id == session.id));
        assert_eq!(events[0].room_name, session.room_name);
    }
}
