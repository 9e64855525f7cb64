//! The live feed across replicas on PostgreSQL `LISTEN/NOTIFY` (design.md §8.3).
//!
//! A turn runs on whichever replica got the final transcript; the client watching
//! `GET /api/sessions/{id}/stream` may be connected to another. Each replica publishes with
//! `pg_notify` on one channel and holds **one** listener connection, whose notifications it
//! fans out to its own subscribers through the domain's [`LocalFeed`]. A replica hears its own
//! notifications too, so local and remote events take the same path, in the same order.
//!
//! A NOTIFY payload must stay under 8000 bytes. A turn record can be larger (a long reply), so
//! then only its ids travel and the listening replica reads the record from the
//! [`TurnStore`] (it is stored before the event is published). A transcript or sentence too
//! large for a notification is dropped with a warning (sentences are capped far below).
//!
//! The listener reconnects with a doubling backoff; notifications sent while it is away are
//! lost (LISTEN/NOTIFY keeps nothing), which is what `Last-Event-ID` resume from the stored
//! records is for.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_channel::mpsc;
use june_domain::ports::{LiveEvent, LiveFeed, LocalFeed, SessionEvent, StoreError, TurnStore};
use june_domain::{SessionStatus, TurnRecord};
use serde_json::{Value, json};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The NOTIFY channel of every session's events.
pub const CHANNEL: &str = "june_live";

/// PostgreSQL refuses payloads of 8000 bytes or more.
pub const MAX_PAYLOAD: usize = 7999;

/// How the feed talks to PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// Longest a publish (one `pg_notify`) or a connection attempt may take.
    pub timeout: Duration,
    /// First wait before reconnecting the listener; doubled up to `max_backoff`.
    pub backoff: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            timeout: Duration::from_secs(3),
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// [`LiveFeed`] on PostgreSQL `LISTEN/NOTIFY`: see the module docs.
pub struct PgFeed {
    local: Arc<LocalFeed>,
    pool: PgPool,
    timeout: Duration,
    listener: JoinHandle<()>,
}

impl std::fmt::Debug for PgFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgFeed").finish_non_exhaustive()
    }
}

impl Drop for PgFeed {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgFeed {
    /// Starts listening on `url` (in the background: a database that is away at start-up is
    /// retried, the replica starts anyway). `turns` resolves records too large to travel.
    /// Must run inside a tokio runtime.
    pub fn start(
        url: &str,
        turns: Option<Arc<dyn TurnStore>>,
        options: FeedOptions,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(options.timeout)
            .connect_lazy(url)
            .map_err(crate::store_error)?;
        let local = Arc::new(LocalFeed::default());
        let listener = tokio::spawn(listen(url.to_owned(), local.clone(), turns, options));
        Ok(PgFeed {
            local,
            pool,
            timeout: options.timeout,
            listener,
        })
    }
}

#[async_trait]
impl LiveFeed for PgFeed {
    async fn publish(&self, event: &SessionEvent) {
        let Some(payload) = encode(event) else {
            tracing::warn!(session_id = %event.session_id, "live event too large for a notification; dropped");
            return;
        };
        let sent = tokio::time::timeout(
            self.timeout,
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&self.pool),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(session_id = %event.session_id, error = %e, "live event not published")
            }
            Err(_) => {
                tracing::warn!(session_id = %event.session_id, "live event not published in time")
            }
        }
    }

    fn subscribe(&self, session_id: Uuid, capacity: usize) -> mpsc::Receiver<SessionEvent> {
        self.local.add(session_id, capacity)
    }
}

/// The listener: connect, LISTEN, fan out; reconnect with backoff on failure.
async fn listen(
    url: String,
    local: Arc<LocalFeed>,
    turns: Option<Arc<dyn TurnStore>>,
    options: FeedOptions,
) {
    let mut backoff = options.backoff;
    loop {
        let connected = tokio::time::timeout(options.timeout, async {
            let mut listener = PgListener::connect(&url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        })
        .await;
        let mut listener = match connected {
            Ok(Ok(listener)) => listener,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, ?backoff, "live feed: cannot listen; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
                continue;
            }
            Err(_) => {
                tracing::warn!(
                    ?backoff,
                    "live feed: the listener did not connect in time; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
                continue;
            }
        };
        backoff = options.backoff;
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(event) = decode(notification.payload(), turns.as_deref()).await {
                        let dropped = local.deliver(&event);
                        if dropped > 0 {
                            tracing::warn!(session_id = %event.session_id, dropped, "live stream subscribers dropped: they did not keep up");
                        }
                    }
                }
                // The connection was lost; the next call reconnects (and re-LISTENs).
                Ok(None) => tracing::warn!("live feed: listener connection lost; reconnecting"),
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "live feed: listener failed; reconnecting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(options.max_backoff);
                    break;
                }
            }
        }
    }
}

/// The notification payload of an event, within [`MAX_PAYLOAD`]; `None` if it cannot fit.
pub fn encode(event: &SessionEvent) -> Option<String> {
    let head = |kind: &str| json!({ "s": event.session_id, "r": event.room_name, "k": kind });
    let mut v = match &event.event {
        LiveEvent::Transcript { turn, text } => {
            let mut v = head("transcript");
            v["turn"] = json!(turn);
            v["text"] = json!(text);
            v
        }
        LiveEvent::Reply { turn, index, text } => {
            let mut v = head("reply");
            v["turn"] = json!(turn);
            v["index"] = json!(index);
            v["text"] = json!(text);
            v
        }
        LiveEvent::TurnEnded(record) => {
            let mut v = head("turn");
            v["turn"] = json!(record.turn);
            v["record"] = serde_json::to_value(record).ok()?;
            v
        }
        LiveEvent::Status(status) => {
            let mut v = head("status");
            v["status"] = json!(status.as_str());
            v
        }
    };
    let text = v.to_string();
    if text.len() <= MAX_PAYLOAD {
        return Some(text);
    }
    // A record too large: its ids only; the listener reads it from the store.
    let obj = v.as_object_mut()?;
    obj.remove("record")?;
    Some(v.to_string()).filter(|t| t.len() <= MAX_PAYLOAD)
}

/// The event of a notification payload; a record sent by reference is read from `turns`.
pub async fn decode(payload: &str, turns: Option<&dyn TurnStore>) -> Option<SessionEvent> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let session_id: Uuid = v["s"].as_str()?.parse().ok()?;
    let room_name = v["r"].as_str()?.to_owned();
    let turn = v["turn"].as_u64();
    let event = match v["k"].as_str()? {
        "transcript" => LiveEvent::Transcript {
            turn: turn?,
            text: v["text"].as_str()?.to_owned(),
        },
        "reply" => LiveEvent::Reply {
            turn: turn?,
            index: u32::try_from(v["index"].as_u64()?).ok()?,
            text: v["text"].as_str()?.to_owned(),
        },
        "turn" => {
            let record = match v.get("record") {
                Some(record) => {
                    let mut record: TurnRecord = serde_json::from_value(record.clone()).ok()?;
                    record.session_id = session_id;
                    record
                }
                None => match turns?.get_turn(session_id, turn?).await {
                    Ok(Some(record)) => record,
                    Ok(None) => {
                        tracing::warn!(%session_id, ?turn, "live feed: a turn record announced is not stored");
                        return None;
                    }
                    Err(e) => {
                        tracing::warn!(%session_id, error = %e, "live feed: cannot read an announced turn record");
                        return None;
                    }
                },
            };
            LiveEvent::TurnEnded(Box::new(record))
        }
        "status" => LiveEvent::Status(SessionStatus::parse(v["status"].as_str()?)?),
        _ => return None,
    };
    Some(SessionEvent {
        session_id,
        room_name,
        event,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use june_domain::ports::MockTurnStore;
    use june_domain::{Heard, RecordOutcome, Reply, TokenUsage, TurnSource, TurnTimings};

    use super::*;

    fn record(session_id: Uuid, sentence: &str, count: usize) -> TurnRecord {
        let sentences = vec![sentence.to_owned(); count];
        TurnRecord {
            session_id,
            turn: 4,
            source: TurnSource::Voice,
            started_at: Utc::now(),
            heard: Heard {
                text: "hi".into(),
                confidence: Some(0.5),
                language: None,
                partials: None,
            },
            reply: Reply {
                text: sentences.join(" "),
                sentences,
            },
            outcome: RecordOutcome::Completed,
            interrupted: None,
            error: None,
            model: "m".into(),
            usage: TokenUsage::default(),
            timings_ms: TurnTimings::default(),
        }
    }

    fn ev(session_id: Uuid, event: LiveEvent) -> SessionEvent {
        SessionEvent {
            session_id,
            room_name: "room".into(),
            event,
        }
    }

    #[tokio::test]
    async fn every_event_survives_the_notification_payload() {
        let id = Uuid::new_v4();
        for event in [
            LiveEvent::Transcript {
                turn: 1,
                text: "héllo \"you\"".into(),
            },
            LiveEvent::Reply {
                turn: 1,
                index: 2,
                text: "Hi.".into(),
            },
            LiveEvent::TurnEnded(Box::new(record(id, "Fine.", 3))),
            LiveEvent::Status(SessionStatus::Ended),
        ] {
            let event = ev(id, event);
            let payload = encode(&event).unwrap();
            assert_eq!(decode(&payload, None).await, Some(event));
        }
    }

    /// A record over PostgreSQL's 8000-byte limit travels as ids; the listener reads it back.
    #[tokio::test]
    async fn a_large_turn_record_travels_by_reference_and_is_read_from_the_store() {
        let id = Uuid::new_v4();
        let big = record(id, &"A long sentence indeed. ".repeat(10), 60);
        let payload = encode(&ev(id, LiveEvent::TurnEnded(Box::new(big.clone())))).unwrap();
        assert!(payload.len() <= MAX_PAYLOAD);
        assert!(!payload.contains("A long sentence"));

        let mut turns = MockTurnStore::new();
        let stored = big.clone();
        turns
            .expect_get_turn()
            .withf(move |s, t| *s == id && *t == 4)
            .returning(move |_, _| Ok(Some(stored.clone())));
        let decoded = decode(&payload, Some(&turns as &dyn TurnStore))
            .await
            .unwrap();
        assert_eq!(decoded.event, LiveEvent::TurnEnded(Box::new(big)));
        // Without a store to read it from, the event cannot be rebuilt.
        assert_eq!(decode(&payload, None).await, None);
    }

    #[tokio::test]
    async fn payloads_that_are_not_ours_are_ignored() {
        for payload in [
            "",
            "{}",
            "[1]",
            r#"{"s":"x","r":"r","k":"status","status":"ended"}"#,
        ] {
            assert_eq!(decode(payload, None).await, None, "{payload}");
        }
    }
}
