use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures_channel::mpsc;
use uuid::Uuid;

use super::SessionEvent;

/// A session's live events for whoever watches them (`GET /api/sessions/{id}/stream`), on
/// every replica that shares the store: the event happens on whichever replica runs the
/// turn, the watcher may be connected to another.
///
/// Delivery is best effort and in publishing order per publisher; nothing is stored here
/// (the turn records are, and a watcher that reconnects reads them from the `TurnStore`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LiveFeed: Send + Sync {
    /// Hands `event` to every subscriber of its session. Never fails the caller: an
    /// implementation that cannot deliver logs and counts it. Bounded in time.
    async fn publish(&self, event: &SessionEvent);

    /// The session's events from now on, through a channel of at most `capacity` waiting
    /// events. A subscriber that lets it fill up is dropped (its receiver ends): a slow
    /// watcher is disconnected, it never slows publishing. Dropping the receiver unsubscribes.
    fn subscribe(&self, session_id: Uuid, capacity: usize) -> mpsc::Receiver<SessionEvent>;
}

/// The in-process [`LiveFeed`]: a fan-out to this process's subscribers. On its own it serves
/// a single replica (SQLite); a cross-replica feed (PostgreSQL `LISTEN/NOTIFY`) uses it to fan
/// out what it receives.
#[derive(Debug, Default)]
pub struct LocalFeed {
    subscribers: Mutex<HashMap<Uuid, Vec<mpsc::Sender<SessionEvent>>>>,
}

impl LocalFeed {
    /// Delivers `event` to this process's subscribers of its session, dropping those whose
    /// channel is full or gone. Returns how many subscribers were dropped for being full.
    pub fn deliver(&self, event: &SessionEvent) -> usize {
        let Ok(mut map) = self.subscribers.lock() else {
            return 0;
        };
        let Some(senders) = map.get_mut(&event.session_id) else {
            return 0;
        };
        let mut full = 0;
        senders.retain_mut(|tx| match tx.try_send(event.clone()) {
            Ok(()) => true,
            Err(e) => {
                if e.is_full() {
                    full += 1;
                }
                false
            }
        });
        if senders.is_empty() {
            map.remove(&event.session_id);
        }
        full
    }

    /// How many subscribers this process has (all sessions), counting ones whose receiver
    /// was dropped since the last delivery to their session.
    pub fn subscribers(&self) -> usize {
        self.subscribers
            .lock()
            .map(|m| m.values().map(Vec::len).sum())
            .unwrap_or_default()
    }

    /// See [`LiveFeed::subscribe`].
    pub fn add(&self, session_id: Uuid, capacity: usize) -> mpsc::Receiver<SessionEvent> {
        // futures' channel holds `capacity` plus one per sender; one sender here.
        let (tx, rx) = mpsc::channel(capacity.saturating_sub(1));
        if let Ok(mut map) = self.subscribers.lock() {
            // Forget watchers that went away (of any session: one that never publishes again
            // would otherwise keep them), so the map holds about the open streams (bounded by
            // the stream route), at the cost of one pass over them per new watcher.
            map.retain(|_, senders| {
                senders.retain(|s| !s.is_closed());
                !senders.is_empty()
            });
            map.entry(session_id).or_default().push(tx);
        }
        rx
    }
}

#[async_trait]
impl LiveFeed for LocalFeed {
    async fn publish(&self, event: &SessionEvent) {
        let dropped = self.deliver(event);
        if dropped > 0 {
            tracing::warn!(
                session_id = %event.session_id,
                dropped,
                "live stream subscribers dropped: they did not keep up"
            );
        }
    }

    fn subscribe(&self, session_id: Uuid, capacity: usize) -> mpsc::Receiver<SessionEvent> {
        self.add(session_id, capacity)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::ports::LiveEvent;

    fn event(session_id: Uuid, turn: u64) -> SessionEvent {
        SessionEvent {
            session_id,
            room_name: "r".into(),
            event: LiveEvent::Transcript {
                turn,
                text: format!("t{turn}"),
            },
        }
    }

    #[tokio::test]
    async fn subscribers_get_their_sessions_events_in_order() {
        let feed = LocalFeed::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut rx_a = feed.subscribe(a, 8);
        let mut rx_b = feed.subscribe(b, 8);
        feed.publish(&event(a, 1)).await;
        feed.publish(&event(b, 7)).await;
        feed.publish(&event(a, 2)).await;
        drop(feed);
        let got: Vec<_> = rx_a.by_ref().collect().await;
        assert_eq!(got, vec![event(a, 1), event(a, 2)]);
        assert_eq!(rx_b.next().await, Some(event(b, 7)));
    }

    #[tokio::test]
    async fn a_subscriber_that_does_not_keep_up_is_dropped_and_others_still_get_events() {
        let feed = LocalFeed::default();
        let s = Uuid::new_v4();
        let mut slow = feed.subscribe(s, 2);
        let mut fast = feed.subscribe(s, 2);
        for turn in 1..=3 {
            feed.publish(&event(s, turn)).await;
            assert_eq!(fast.next().await, Some(event(s, turn)));
        }
        // The slow one got the two that fit, then its channel ended.
        assert_eq!(slow.next().await, Some(event(s, 1)));
        assert_eq!(slow.next().await, Some(event(s, 2)));
        assert_eq!(slow.next().await, None);
        assert_eq!(feed.subscribers(), 1);
    }

    #[tokio::test]
    async fn a_dropped_receiver_unsubscribes() {
        let feed = LocalFeed::default();
        let s = Uuid::new_v4();
        drop(feed.subscribe(s, 4));
        feed.publish(&event(s, 1)).await;
        assert_eq!(feed.subscribers(), 0);
    }

    #[test]
    fn watchers_gone_from_a_quiet_session_are_forgotten_when_another_subscribes() {
        let feed = LocalFeed::default();
        drop(feed.subscribe(Uuid::new_v4(), 4));
        let _kept = feed.subscribe(Uuid::new_v4(), 4);
        assert_eq!(feed.subscribers(), 1);
    }
}
