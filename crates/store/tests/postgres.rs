//! The store contract, run against the real PostgreSQL server: a fresh schema per test,
//! dropped afterwards. `JUNE_TEST_POSTGRES_URL` overrides the server
//! (default `postgres://postgres@127.0.0.1:5432/test`).

mod contract;

use june_store::{StoreOptions, Stores, connect};
use june_testkit::pg::PgSchema;

struct Db {
    stores: Stores,
    schema: PgSchema,
}

impl Db {
    async fn cleanup(self) {
        drop(self.stores);
        self.schema.drop().await;
    }
}

async fn fresh() -> Db {
    let schema = PgSchema::create().await;
    let stores = connect(&schema.url(), &StoreOptions::default())
        .await
        .unwrap();
    Db { stores, schema }
}

store_contract!(fresh);

#[tokio::test]
async fn migrations_run_once_even_when_replicas_start_together() {
    let db = fresh().await;
    let url = db.schema.url();
    let options = StoreOptions::default();
    let (a, b) = tokio::join!(connect(&url, &options), connect(&url, &options));
    a.unwrap();
    b.unwrap();
    db.cleanup().await;
}

/// PostgreSQL refuses a NUL in a text (SQLSTATE 22021). That is the value's fault, the same on
/// every retry: `Invalid`, not `Unavailable` (which the API answers 503, so LiveKit would
/// redeliver such a webhook forever). SQLite stores the NUL, so this is not in the contract.
#[tokio::test]
async fn a_nul_in_a_text_is_an_invalid_value_not_an_outage() {
    use chrono::Utc;
    use june_domain::ports::StoreError;
    use june_domain::{HistoryEntry, RecordedEvent, Role};

    let db = fresh().await;
    let invalid = |r: Result<(), StoreError>| match r {
        Err(StoreError::Invalid(message)) => {
            assert!(!message.to_uppercase().contains("INSERT"), "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected StoreError::Invalid, got {other:?}"),
    };

    invalid(
        db.stores
            .sessions
            .insert(&contract::session("mal\u{0}lory", "room-nul"))
            .await,
    );
    let s = contract::session("mallory", "room-ok");
    db.stores.sessions.insert(&s).await.unwrap();
    let entry = HistoryEntry {
        role: Role::User,
        content: "hello\u{0}world".into(),
        timestamp: Utc::now(),
    };
    invalid(db.stores.history.append(s.id, &entry).await);
    let event = RecordedEvent {
        id: "EV_nul".into(),
        event: "participant_joined".into(),
        session_id: Some(s.id),
        room_name: Some("room-ok".into()),
        participant: Some("bo\u{0}b".into()),
        track_sid: None,
        created_at: Utc::now(),
        received_at: Utc::now(),
        payload: serde_json::json!({}),
    };
    invalid(
        db.stores
            .events
            .record(std::slice::from_ref(&event))
            .await
            .map(|_| ()),
    );
    invalid(
        db.stores
            .sessions
            .find_live_by_room("room\u{0}")
            .await
            .map(|_| ()),
    );

    // The connections that saw the refusals still serve.
    assert_eq!(db.stores.sessions.get(s.id).await.unwrap(), s);
    assert!(db.stores.history.recent(s.id, 10).await.unwrap().is_empty());
    db.cleanup().await;
}

/// The live feed across replicas: a subscriber of one `PgFeed` gets what another publishes,
/// in order, and nothing of other sessions.
#[tokio::test]
async fn the_pg_feed_carries_events_from_one_replica_to_another() {
    use futures_util::StreamExt;
    use june_domain::ports::{LiveEvent, LiveFeed, SessionEvent};
    use june_store::{FeedOptions, PgFeed};

    let url = june_testkit::pg::server();
    let a = PgFeed::start(&url, None, FeedOptions::default()).unwrap();
    let b = PgFeed::start(&url, None, FeedOptions::default()).unwrap();
    let session = uuid::Uuid::new_v4();
    let mut watcher = b.subscribe(session, 16);
    let event = |turn: u64| SessionEvent {
        session_id: session,
        room_name: "r".into(),
        event: LiveEvent::Transcript {
            turn,
            text: format!("t{turn}"),
        },
    };

    // B's listener connects in the background: publish until the first event arrives (a
    // notification sent before LISTEN is not kept), then two more in order.
    let first = loop {
        a.publish(&event(0)).await;
        tokio::select! {
            got = watcher.next() => break got,
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
    };
    assert_eq!(first, Some(event(0)));
    a.publish(&SessionEvent {
        session_id: uuid::Uuid::new_v4(),
        ..event(9)
    })
    .await;
    a.publish(&event(1)).await;
    a.publish(&event(2)).await;
    let mut rest = Vec::new();
    while rest.len() < 2 {
        let got = watcher.next().await.unwrap();
        if got != event(0) {
            rest.push(got);
        }
    }
    assert_eq!(rest, vec![event(1), event(2)]);
}
