//! A deadline on every store call, kept by the client.
//!
//! PostgreSQL enforces `statement_timeout` itself, so when the network is partitioned (the
//! TCP connection open but silent, no RST) nobody tells a request that holds a connection to
//! stop: it waits until the network heals, or until the kernel gives up on the connection
//! (about 15 minutes). [`Bounded`] wraps every port call in a timeout so such a request
//! answers `Unavailable` (503) instead. A timeout on every network call, the database
//! included; SQLite gets it too, for one rule and no surprises.
//!
//! A call given up on drops its connection mid-statement. sqlx returns that connection to
//! the pool and pings it there without a deadline; on a silent socket that ping would hold
//! the pool slot for as long as the kernel keeps the connection. [`Abandonments`] remembers
//! when a call was last given up on, so the PostgreSQL pool's release hook (`postgres.rs`)
//! can ping with a deadline then, and only then: no extra round trip on the hot path.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use june_domain::ports::{
    EventCursor, EventStore, HistoryStore, IdempotencyState, IdempotencyStore, LeaseStore,
    Presence, PresenceStore, SessionFilter, SessionStore, StoreError, StoreHealth, Transition,
    TurnGeneration, TurnStart, TurnStore, TurnSummary, VoiceStateStore,
};
use june_domain::{HistoryEntry, RecordedEvent, Session, SessionStatus, TurnRecord};
use tokio::time::Instant;
use uuid::Uuid;

/// When a store call was last given up on; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Abandonments {
    origin: Instant,
    /// Milliseconds after `origin` plus one; 0 for never.
    last: Arc<AtomicU64>,
}

impl Default for Abandonments {
    fn default() -> Self {
        Abandonments {
            origin: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Abandonments {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    /// Notes that a call was given up on just now.
    pub(crate) fn note(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Whether a call was given up on within the last `window`.
    pub(crate) fn within(&self, window: Duration) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        last != 0 && u128::from(self.now().saturating_sub(last)) <= window.as_millis()
    }
}

/// Why a call was given up on (the source of its `Unavailable`).
#[derive(Debug, thiserror::Error)]
#[error("the database did not answer within {0} ms")]
pub(crate) struct NoAnswer(u128);

/// Every store port of `S`, each call bounded by a timeout.
#[derive(Debug)]
pub(crate) struct Bounded<S> {
    inner: S,
    timeout: Duration,
    abandoned: Abandonments,
}

impl<S> Bounded<S> {
    /// Wraps `inner`; a call that has not answered after `timeout` is given up on and noted
    /// in `abandoned`.
    pub(crate) fn new(inner: S, timeout: Duration, abandoned: Abandonments) -> Self {
        Bounded {
            inner,
            timeout,
            abandoned,
        }
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        // Pinned here, not moved into the timeout, so it outlives the timeout: the
        // abandonment is noted before the call (and the connection it holds) is dropped,
        // and the pool's release hook sees it.
        let mut call = std::pin::pin!(call);
        match tokio::time::timeout(self.timeout, call.as_mut()).await {
            Ok(answer) => answer,
            Err(_) => {
                self.abandoned.note();
                tracing::warn!(
                    timeout_ms = self.timeout.as_millis(),
                    "a store call did not answer in time; giving up on it"
                );
                Err(StoreError::Unavailable(Box::new(NoAnswer(
                    self.timeout.as_millis(),
                ))))
            }
        }
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for Bounded<S> {
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        self.call(self.inner.insert(session)).await
    }

    async fn get(&self, id: Uuid) -> Result<Session, StoreError> {
        self.call(self.inner.get(id)).await
    }

    async fn find_live_by_room(&self, room_name: &str) -> Result<Option<Session>, StoreError> {
        self.call(self.inner.find_live_by_room(room_name)).await
    }

    async fn find_by_room_sids(&self, room_sids: &[String]) -> Result<Vec<Session>, StoreError> {
        self.call(self.inner.find_by_room_sids(room_sids)).await
    }

    async fn list(&self, filter: &SessionFilter) -> Result<Vec<Session>, StoreError> {
        self.call(SessionStore::list(&self.inner, filter)).await
    }

    async fn list_live(&self, limit: u32) -> Result<Vec<Session>, StoreError> {
        self.call(self.inner.list_live(limit)).await
    }

    async fn advance_status(
        &self,
        id: Uuid,
        to: SessionStatus,
        at: DateTime<Utc>,
    ) -> Result<Transition, StoreError> {
        self.call(self.inner.advance_status(id, to, at)).await
    }
}

#[async_trait]
impl<S: PresenceStore> PresenceStore for Bounded<S> {
    async fn record_presence(&self, news: &[Presence]) -> Result<(), StoreError> {
        self.call(self.inner.record_presence(news)).await
    }

    async fn reconcile(
        &self,
        session_id: Uuid,
        listed: &[String],
        at: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        self.call(self.inner.reconcile(session_id, listed, at))
            .await
    }
}

#[async_trait]
impl<S: LeaseStore> LeaseStore for Bounded<S> {
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call(self.inner.try_lease(name, holder, now, until))
            .await
    }
}

#[async_trait]
impl<S: VoiceStateStore> VoiceStateStore for Bounded<S> {
    async fn claim_dispatch(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.call(self.inner.claim_dispatch(id, at)).await
    }

    async fn release_dispatch(&self, id: Uuid) -> Result<(), StoreError> {
        self.call(self.inner.release_dispatch(id)).await
    }

    async fn next_turn(&self, id: Uuid) -> Result<u64, StoreError> {
        self.call(self.inner.next_turn(id)).await
    }

    async fn start_turn(&self, id: Uuid) -> Result<TurnStart, StoreError> {
        self.call(self.inner.start_turn(id)).await
    }

    async fn current_turn(&self, id: Uuid) -> Result<TurnGeneration, StoreError> {
        self.call(self.inner.current_turn(id)).await
    }

    async fn note_final(
        &self,
        id: Uuid,
        text: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<bool, StoreError> {
        self.call(self.inner.note_final(id, text, at, window)).await
    }
}

#[async_trait]
impl<S: TurnStore> TurnStore for Bounded<S> {
    async fn record_turn(&self, record: &TurnRecord) -> Result<(), StoreError> {
        self.call(self.inner.record_turn(record)).await
    }

    async fn list_turns(
        &self,
        session_id: Uuid,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        self.call(self.inner.list_turns(session_id, before, limit))
            .await
    }

    async fn turns_after(
        &self,
        session_id: Uuid,
        after: u64,
        limit: u32,
    ) -> Result<Vec<TurnRecord>, StoreError> {
        self.call(self.inner.turns_after(session_id, after, limit))
            .await
    }

    async fn get_turn(
        &self,
        session_id: Uuid,
        turn: u64,
    ) -> Result<Option<TurnRecord>, StoreError> {
        self.call(self.inner.get_turn(session_id, turn)).await
    }

    async fn allocate_turn(&self, session_id: Uuid) -> Result<u64, StoreError> {
        self.call(self.inner.allocate_turn(session_id)).await
    }

    async fn summary(&self, session_id: Uuid) -> Result<TurnSummary, StoreError> {
        self.call(self.inner.summary(session_id)).await
    }
}

#[async_trait]
impl<S: StoreHealth> StoreHealth for Bounded<S> {
    async fn ping(&self) -> Result<(), StoreError> {
        self.call(self.inner.ping()).await
    }

    fn pool_stats(&self) -> Option<(u32, u32)> {
        self.inner.pool_stats()
    }
}

#[async_trait]
impl<S: HistoryStore> HistoryStore for Bounded<S> {
    async fn append(&self, session_id: Uuid, entry: &HistoryEntry) -> Result<(), StoreError> {
        self.call(self.inner.append(session_id, entry)).await
    }

    async fn recent(&self, session_id: Uuid, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        self.call(self.inner.recent(session_id, limit)).await
    }

    async fn clear(&self, session_id: Uuid) -> Result<(), StoreError> {
        self.call(self.inner.clear(session_id)).await
    }
}

#[async_trait]
impl<S: EventStore> EventStore for Bounded<S> {
    async fn seen(&self, event_ids: &[String]) -> Result<HashSet<String>, StoreError> {
        self.call(self.inner.seen(event_ids)).await
    }

    async fn record(&self, events: &[RecordedEvent]) -> Result<Vec<bool>, StoreError> {
        self.call(self.inner.record(events)).await
    }

    async fn list(
        &self,
        session_id: Uuid,
        limit: u32,
        after: Option<EventCursor>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.call(EventStore::list(&self.inner, session_id, limit, after))
            .await
    }
}

#[async_trait]
impl<S: IdempotencyStore> IdempotencyStore for Bounded<S> {
    async fn begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> Result<IdempotencyState, StoreError> {
        self.call(self.inner.begin(key, fingerprint, now, not_before))
            .await
    }

    async fn complete(&self, key: &str, response: &serde_json::Value) -> Result<(), StoreError> {
        self.call(self.inner.complete(key, response)).await
    }

    async fn abandon(&self, key: &str) -> Result<(), StoreError> {
        self.call(self.inner.abandon(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use june_domain::ports::{MockSessionStore, MockStoreHealth};
    use june_domain::{HistoryEntry, Role};
    use std::sync::atomic::AtomicBool;

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// A history store that never answers, and tells whether the abandonment was already
    /// noted when its call was dropped.
    struct Silent {
        abandoned: Abandonments,
        noted_before_drop: Arc<AtomicBool>,
    }

    struct OnDrop(Abandonments, Arc<AtomicBool>);

    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.1.store(self.0.within(TIMEOUT), Ordering::SeqCst);
        }
    }

    #[async_trait]
    impl HistoryStore for Silent {
        async fn append(&self, _: Uuid, _: &HistoryEntry) -> Result<(), StoreError> {
            let _guard = OnDrop(self.abandoned.clone(), self.noted_before_drop.clone());
            std::future::pending().await
        }

        async fn recent(&self, _: Uuid, _: u32) -> Result<Vec<HistoryEntry>, StoreError> {
            std::future::pending().await
        }

        async fn clear(&self, _: Uuid) -> Result<(), StoreError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_is_unavailable_after_the_timeout() {
        let abandoned = Abandonments::default();
        let noted_before_drop = Arc::new(AtomicBool::new(false));
        let store = Bounded::new(
            Silent {
                abandoned: abandoned.clone(),
                noted_before_drop: noted_before_drop.clone(),
            },
            TIMEOUT,
            abandoned.clone(),
        );
        assert!(!abandoned.within(TIMEOUT));
        let started = Instant::now();
        let entry = HistoryEntry {
            role: Role::User,
            content: "hello".into(),
            timestamp: Utc::now(),
        };

        let err = store.append(Uuid::new_v4(), &entry).await.unwrap_err();

        assert_eq!(started.elapsed(), TIMEOUT);
        let StoreError::Unavailable(cause) = err else {
            panic!("expected Unavailable, got {err:?}");
        };
        assert_eq!(
            cause.to_string(),
            "the database did not answer within 2000 ms"
        );
        assert!(abandoned.within(TIMEOUT));
        assert!(
            noted_before_drop.load(Ordering::SeqCst),
            "the release hook must see the abandonment when the connection goes back"
        );
        tokio::time::advance(3 * TIMEOUT).await;
        assert!(!abandoned.within(TIMEOUT), "old news after the window");
    }

    #[tokio::test(start_paused = true)]
    async fn answers_in_time_pass_through_untouched() {
        let mut inner = MockSessionStore::new();
        inner.expect_get().returning(|_| Err(StoreError::NotFound));
        inner
            .expect_find_by_room_sids()
            .times(1)
            .returning(|_| Ok(Vec::new()));
        let mut health = MockStoreHealth::new();
        health.expect_pool_stats().returning(|| Some((3, 1)));
        let abandoned = Abandonments::default();
        let store = Bounded::new(inner, TIMEOUT, abandoned.clone());
        let health = Bounded::new(health, TIMEOUT, abandoned.clone());

        assert!(matches!(
            store.get(Uuid::new_v4()).await,
            Err(StoreError::NotFound)
        ));
        assert!(
            store
                .find_by_room_sids(&["RM_a".into()])
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(health.pool_stats(), Some((3, 1)));
        assert!(!abandoned.within(TIMEOUT));
    }
}
