//! Live events out of a turn: captions in the LiveKit room and the feed behind
//! `GET /api/sessions/{id}/stream` (design.md §8.3).
//!
//! [`LiveHub`] is the domain's `LiveEvents`: `publish` only puts the event on two bounded
//! queues (never waits; a full queue drops the event and counts it in
//! `june_live_events_dropped_total{queue}`), so a turn is never slowed by a slow LiveKit or a
//! slow database. One task per queue drains it in order:
//!
//! - **captions** (when `captions.enabled`): a final transcript becomes
//!   `{type:"user", turn, text, final:true}`, each reply sentence
//!   `{type:"assistant", turn, text, final:false}`, and the end of every turn one closing
//!   `{type:"assistant", turn, text:"", final:true}` with `interrupted:true` when the turn was
//!   cut off (by the user speaking or a newer final) — so a client knows when a reply is
//!   complete and when to mark it as cut short. Each goes to the room by `SendData`, reliable,
//!   on topic [`CAPTIONS_TOPIC`], within `send_timeout`; a failure is logged and counted
//!   (`june_captions_total{outcome}`) and the next caption goes on: never retried, never a
//!   failed turn. Status events make no caption.
//! - **feed**: every event goes to the [`LiveFeed`] (in-process, or PostgreSQL `NOTIFY`).
//!
//! [`LiveStreams`] is what the stream route needs: the feed to subscribe to, the turn records
//! to resume from, and the bounds (open streams, the per-client buffer, the ping interval).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use june_domain::RecordOutcome;
use june_domain::ports::{LiveEvent, LiveEvents, LiveFeed, RoomService, SessionEvent, TurnStore};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};

/// The data topic of the captions (design.md §8.3).
pub const CAPTIONS_TOPIC: &str = "june.transcript";

/// Bounds of the live events; filled from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    /// Send captions to the room (`captions.enabled`).
    pub captions: bool,
    /// Events waiting per queue (captions, feed); beyond, events are dropped.
    pub queue: usize,
    /// Longest one caption's `SendData` may take.
    pub send_timeout: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            captions: true,
            queue: 1024,
            send_timeout: Duration::from_secs(2),
        }
    }
}

/// A caption as the room receives it.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Caption<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    turn: u64,
    text: &'a str,
    #[serde(rename = "final")]
    is_final: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    interrupted: bool,
}

/// The caption JSON of an event, if it makes one (see the module docs for the rule).
pub fn caption(event: &LiveEvent) -> Option<Vec<u8>> {
    let caption = match event {
        LiveEvent::Transcript { turn, text } => Caption {
            kind: "user",
            turn: *turn,
            text,
            is_final: true,
            interrupted: false,
        },
        LiveEvent::Reply { turn, text, .. } => Caption {
            kind: "assistant",
            turn: *turn,
            text,
            is_final: false,
            interrupted: false,
        },
        LiveEvent::TurnEnded(record) => Caption {
            kind: "assistant",
            turn: record.turn,
            text: "",
            is_final: true,
            interrupted: record.outcome == RecordOutcome::Interrupted,
        },
        LiveEvent::Status(_) => return None,
    };
    serde_json::to_vec(&caption).ok()
}

/// The domain's `LiveEvents`: see the module docs. Cheap to share behind an `Arc`; the
/// drain tasks end when it is dropped.
pub struct LiveHub {
    captions: Option<mpsc::Sender<SessionEvent>>,
    feed: mpsc::Sender<SessionEvent>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("captions", &self.captions.is_some())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    /// Starts the drain tasks on the current tokio runtime (panics outside one, as
    /// `tokio::spawn` does).
    pub fn start(rooms: Arc<dyn RoomService>, feed: Arc<dyn LiveFeed>, config: LiveConfig) -> Self {
        let captions = config.captions.then(|| {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            tokio::spawn(send_captions(rooms, rx, config.send_timeout));
            tx
        });
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(feed_events(feed, rx));
        LiveHub {
            captions,
            feed: tx,
            dropped: AtomicU64::new(0),
        }
    }

    /// Events dropped so far because a queue was full (both queues).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn offer(&self, tx: &mpsc::Sender<SessionEvent>, queue: &'static str, event: SessionEvent) {
        if let Err(mpsc::error::TrySendError::Full(event)) = tx.try_send(event) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("june_live_events_dropped_total", "queue" => queue).increment(1);
            tracing::warn!(session_id = %event.session_id, queue, "live event dropped: the queue is full");
        }
    }
}

impl LiveEvents for LiveHub {
    fn publish(&self, event: SessionEvent) {
        if let Some(captions) = &self.captions
            && !matches!(event.event, LiveEvent::Status(_))
        {
            self.offer(captions, "captions", event.clone());
        }
        self.offer(&self.feed, "feed", event);
    }
}

/// Sends the captions one by one, in order, each within `timeout`.
async fn send_captions(
    rooms: Arc<dyn RoomService>,
    mut queue: mpsc::Receiver<SessionEvent>,
    timeout: Duration,
) {
    while let Some(event) = queue.recv().await {
        let Some(payload) = caption(&event.event) else {
            continue;
        };
        let sent = tokio::time::timeout(
            timeout,
            rooms.send_data(&event.room_name, payload, CAPTIONS_TOPIC, true),
        )
        .await;
        let outcome = match sent {
            Ok(Ok(())) => "sent",
            Ok(Err(e)) => {
                tracing::warn!(session_id = %event.session_id, error = %e, "caption not sent");
                "failed"
            }
            Err(_) => {
                tracing::warn!(session_id = %event.session_id, ?timeout, "caption not sent in time");
                "timeout"
            }
        };
        metrics::counter!("june_captions_total", "outcome" => outcome).increment(1);
    }
}

/// Hands the events to the feed, in order.
async fn feed_events(feed: Arc<dyn LiveFeed>, mut queue: mpsc::Receiver<SessionEvent>) {
    while let Some(event) = queue.recv().await {
        feed.publish(&event).await;
    }
}

/// Bounds of the live stream route; filled from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// Streams open at once on this replica; beyond, 503 `too_many_streams`.
    pub max_streams: usize,
    /// Events waiting for one client; a client that lets it fill up is disconnected.
    pub client_buffer: usize,
    /// How often an idle stream sends `: ping`.
    pub ping_every: Duration,
    /// Most stored turns replayed on a resume (`Last-Event-ID`).
    pub max_replay: u32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_streams: 1000,
            client_buffer: 64,
            ping_every: Duration::from_secs(15),
            max_replay: 500,
        }
    }
}

/// What `GET /api/sessions/{id}/stream` needs. Cheap to clone.
#[derive(Clone)]
pub struct LiveStreams {
    /// Where the events come from.
    pub feed: Arc<dyn LiveFeed>,
    /// The stored turn records a resume replays; `None` when the store keeps none (then a
    /// resume goes live without replaying).
    pub turns: Option<Arc<dyn TurnStore>>,
    /// The bounds.
    pub config: StreamConfig,
    /// One permit per open stream.
    pub(crate) slots: Arc<Semaphore>,
}

impl LiveStreams {
    /// Streams over `feed`, resuming from `turns`, within `config`'s bounds.
    pub fn new(
        feed: Arc<dyn LiveFeed>,
        turns: Option<Arc<dyn TurnStore>>,
        config: StreamConfig,
    ) -> Self {
        LiveStreams {
            feed,
            turns,
            config,
            slots: Arc::new(Semaphore::new(config.max_streams)),
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.config.max_streams - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;
    use june_domain::ports::{LocalFeed, MockRoomService, RoomError};
    use june_domain::{
        Heard, InterruptedBy, Interruption, Reply, SessionStatus, TokenUsage, TurnRecord,
        TurnSource, TurnTimings,
    };
    use uuid::Uuid;

    use super::*;

    fn ev(event: LiveEvent) -> SessionEvent {
        SessionEvent {
            session_id: Uuid::nil(),
            room_name: "room-1".into(),
            event,
        }
    }

    fn transcript(turn: u64, text: &str) -> SessionEvent {
        ev(LiveEvent::Transcript {
            turn,
            text: text.into(),
        })
    }

    fn reply(turn: u64, index: u32, text: &str) -> SessionEvent {
        ev(LiveEvent::Reply {
            turn,
            index,
            text: text.into(),
        })
    }

    fn ended(turn: u64, interrupted: bool) -> SessionEvent {
        ev(LiveEvent::TurnEnded(Box::new(TurnRecord {
            session_id: Uuid::nil(),
            turn,
            source: TurnSource::Voice,
            started_at: Utc::now(),
            heard: Heard {
                text: "hi".into(),
                confidence: None,
                language: None,
                partials: None,
            },
            reply: Reply::default(),
            outcome: if interrupted {
                RecordOutcome::Interrupted
            } else {
                RecordOutcome::Completed
            },
            interrupted: interrupted.then_some(Interruption {
                after_sentence: 1,
                by: InterruptedBy::VoiceOnset,
            }),
            error: None,
            model: "m".into(),
            usage: TokenUsage::default(),
            timings_ms: TurnTimings::default(),
        })))
    }

    /// A room service that records what it was asked to send, failing the calls whose
    /// payload contains `fail`.
    fn recording_rooms(
        fail: &'static str,
    ) -> (MockRoomService, Arc<Mutex<Vec<serde_json::Value>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let mut rooms = MockRoomService::new();
        rooms
            .expect_send_data()
            .returning(move |room, payload, topic, reliable| {
                assert_eq!((room, topic, reliable), ("room-1", CAPTIONS_TOPIC, true));
                let json: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                if json["text"] == fail {
                    return Err(RoomError::Unavailable {
                        message: "down".into(),
                        source: None,
                    });
                }
                log.lock().unwrap().push(json);
                Ok(())
            });
        (rooms, sent)
    }

    /// Lets the drain tasks run until `done` holds (the test runtime is single-threaded: a
    /// yield runs them; no clock is involved).
    async fn settle(done: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the live events were not delivered");
    }

    #[tokio::test]
    async fn captions_go_to_the_room_in_order_with_the_documented_shape() {
        // Arrange
        let (rooms, sent) = recording_rooms("never");
        let hub = LiveHub::start(
            Arc::new(rooms),
            Arc::new(LocalFeed::default()),
            LiveConfig::default(),
        );

        // Act
        hub.publish(transcript(1, "hello"));
        hub.publish(reply(1, 0, "Hi there."));
        hub.publish(ev(LiveEvent::Status(SessionStatus::Active)));
        hub.publish(reply(1, 1, "How are you?"));
        hub.publish(ended(1, false));
        hub.publish(transcript(2, "stop"));
        hub.publish(ended(2, true));

        // Assert
        settle(|| sent.lock().unwrap().len() == 6).await;
        assert_eq!(
            *sent.lock().unwrap(),
            vec![
                serde_json::json!({"type": "user", "turn": 1, "text": "hello", "final": true}),
                serde_json::json!({"type": "assistant", "turn": 1, "text": "Hi there.", "final": false}),
                serde_json::json!({"type": "assistant", "turn": 1, "text": "How are you?", "final": false}),
                serde_json::json!({"type": "assistant", "turn": 1, "text": "", "final": true}),
                serde_json::json!({"type": "user", "turn": 2, "text": "stop", "final": true}),
                serde_json::json!({"type": "assistant", "turn": 2, "text": "", "final": true, "interrupted": true}),
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_send_does_not_stop_the_next_captions() {
        let (rooms, sent) = recording_rooms("boom");
        let hub = LiveHub::start(
            Arc::new(rooms),
            Arc::new(LocalFeed::default()),
            LiveConfig::default(),
        );
        hub.publish(transcript(1, "boom"));
        hub.publish(reply(1, 0, "after"));
        settle(|| sent.lock().unwrap().len() == 1).await;
        assert_eq!(sent.lock().unwrap()[0]["text"], "after");
    }

    /// A room service whose first `send_data` never answers; it records the later ones.
    #[derive(Default)]
    struct HangsOnce {
        answered_once: Mutex<bool>,
        sent: Mutex<Vec<serde_json::Value>>,
    }

    #[async_trait::async_trait]
    impl RoomService for HangsOnce {
        async fn create_room(
            &self,
            _: &june_domain::RoomSpec,
        ) -> Result<june_domain::Room, RoomError> {
            Err(RoomError::Rejected("unused".into()))
        }
        async fn delete_room(&self, _: &str) -> Result<(), RoomError> {
            Err(RoomError::Rejected("unused".into()))
        }
        async fn list_rooms(&self, _: &[String]) -> Result<Vec<june_domain::Room>, RoomError> {
            Err(RoomError::Rejected("unused".into()))
        }
        async fn list_participants(
            &self,
            _: &str,
        ) -> Result<Vec<june_domain::Participant>, RoomError> {
            Err(RoomError::Rejected("unused".into()))
        }
        async fn remove_participant(&self, _: &str, _: &str) -> Result<(), RoomError> {
            Err(RoomError::Rejected("unused".into()))
        }
        async fn send_data(
            &self,
            _: &str,
            payload: Vec<u8>,
            _: &str,
            _: bool,
        ) -> Result<(), RoomError> {
            let first = !std::mem::replace(&mut *self.answered_once.lock().unwrap(), true);
            if first {
                std::future::pending::<()>().await;
            }
            self.sent
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&payload).unwrap());
            Ok(())
        }
    }

    /// A send that never answers is given up on after the timeout (the paused clock jumps to
    /// it when the runtime is idle), and the next caption goes.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_send_times_out_and_the_next_caption_goes() {
        let rooms = Arc::new(HangsOnce::default());
        let hub = LiveHub::start(
            rooms.clone(),
            Arc::new(LocalFeed::default()),
            LiveConfig::default(),
        );
        hub.publish(transcript(1, "lost"));
        hub.publish(transcript(2, "kept"));
        tokio::time::sleep(LiveConfig::default().send_timeout * 2).await;
        let sent = rooms.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["text"], "kept");
    }

    #[tokio::test]
    async fn a_full_queue_drops_events_instead_of_blocking_the_publisher() {
        // Arrange: a queue of two and drain tasks that have not run yet (single-threaded
        // runtime, no await in between).
        let (rooms, sent) = recording_rooms("never");
        let feed = Arc::new(LocalFeed::default());
        let mut watcher = feed.subscribe(Uuid::nil(), 16);
        let hub = LiveHub::start(
            Arc::new(rooms),
            feed,
            LiveConfig {
                queue: 2,
                ..LiveConfig::default()
            },
        );

        // Act: three events at once; publish returns every time.
        hub.publish(transcript(1, "one"));
        hub.publish(transcript(2, "two"));
        hub.publish(transcript(3, "three"));

        // Assert: the third was dropped from both queues, the first two delivered.
        assert_eq!(hub.dropped(), 2);
        settle(|| sent.lock().unwrap().len() == 2).await;
        use futures_util::StreamExt;
        assert_eq!(watcher.next().await, Some(transcript(1, "one")));
        assert_eq!(watcher.next().await, Some(transcript(2, "two")));
        assert_eq!(
            sent.lock()
                .unwrap()
                .iter()
                .map(|c| c["turn"].clone())
                .collect::<Vec<_>>(),
            vec![serde_json::json!(1), serde_json::json!(2)]
        );
    }

    #[test]
    fn status_events_make_no_caption() {
        assert!(caption(&LiveEvent::Status(SessionStatus::Ended)).is_none());
    }
}
