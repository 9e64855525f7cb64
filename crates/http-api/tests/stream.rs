//! `GET /api/sessions/{id}/stream` in process: the SSE frames and their ids, the resume
//! from stored turn records, the bounds, and the end of a stream (session end, drain).

mod common;

use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::test;
use chrono::Utc;
use june_domain::memory::InMemoryStore;
use june_domain::ports::{
    LiveEvent, LiveFeed, LocalFeed, MockTurnStore, SessionEvent, SessionStore,
};
use june_domain::{
    Heard, RecordOutcome, Reply, SessionStatus, TokenUsage, TurnRecord, TurnSource, TurnTimings,
};
use june_http_api::app;
use june_http_api::live::{LiveStreams, StreamConfig};
use uuid::Uuid;

use common::state;

type Body = actix_web::body::BoxBody;

fn record(session_id: Uuid, turn: u64) -> TurnRecord {
    TurnRecord {
        session_id,
        turn,
        source: TurnSource::Voice,
        started_at: Utc::now(),
        heard: Heard {
            text: format!("question {turn}"),
            confidence: Some(0.9),
            language: Some("en".into()),
            partials: None,
        },
        reply: Reply {
            sentences: vec![format!("answer {turn}.")],
            text: format!("answer {turn}."),
        },
        outcome: RecordOutcome::Completed,
        interrupted: None,
        error: None,
        model: "gemini-test".into(),
        usage: TokenUsage::default(),
        timings_ms: TurnTimings::default(),
    }
}

fn event(session: &june_domain::Session, event: LiveEvent) -> SessionEvent {
    SessionEvent {
        session_id: session.id,
        room_name: session.room_name.clone(),
        event,
    }
}

/// One SSE frame as text; `None` when the stream ended.
async fn next(body: &mut Body) -> Option<String> {
    let chunk = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_next(cx)).await?;
    Some(String::from_utf8(chunk.unwrap().to_vec()).unwrap())
}

/// The next frame that is not a ping.
async fn next_event(body: &mut Body) -> Option<String> {
    loop {
        let frame = next(body).await?;
        if frame != ": ping\n\n" {
            return Some(frame);
        }
    }
}

/// A session in an in-memory store, and the app's state with an in-process feed and `turns`.
async fn world(
    turns: Option<MockTurnStore>,
    config: StreamConfig,
) -> (
    Arc<LocalFeed>,
    june_domain::Session,
    june_http_api::AppState,
) {
    world_with(june_testkit::session().build(), turns, config).await
}

async fn world_with(
    session: june_domain::Session,
    turns: Option<MockTurnStore>,
    config: StreamConfig,
) -> (
    Arc<LocalFeed>,
    june_domain::Session,
    june_http_api::AppState,
) {
    let store = Arc::new(InMemoryStore::default());
    store.insert(&session).await.unwrap();
    let feed = Arc::new(LocalFeed::default());
    let live = LiveStreams::new(
        feed.clone(),
        turns.map(|t| Arc::new(t) as Arc<dyn june_domain::ports::TurnStore>),
        config,
    );
    (feed, session, state().on_store(store).live(live).build())
}

fn get(session: &june_domain::Session) -> test::TestRequest {
    test::TestRequest::get().uri(&format!("/api/sessions/{}/stream", session.id))
}

#[actix_web::test]
async fn live_events_arrive_as_sse_frames_with_resumable_ids_and_the_stream_ends_with_the_session()
{
    // Arrange
    let (feed, session, st) = world(None, StreamConfig::default()).await;
    let svc = test::init_service(app(st)).await;
    let resp = test::call_service(&svc, get(&session).to_request()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut body = resp.into_body().boxed();
    // The first tick of the ping comes at once: the stream is open and subscribed.
    assert_eq!(next(&mut body).await.unwrap(), ": ping\n\n");

    // Act
    let ended = record(session.id, 1);
    for e in [
        LiveEvent::Transcript {
            turn: 1,
            text: "hello".into(),
        },
        LiveEvent::Reply {
            turn: 1,
            index: 0,
            text: "Hi.".into(),
        },
        LiveEvent::TurnEnded(Box::new(ended.clone())),
        LiveEvent::Status(SessionStatus::Ended),
    ] {
        feed.publish(&event(&session, e)).await;
    }

    // Assert
    assert_eq!(
        next_event(&mut body).await.unwrap(),
        "id: 1.0\nevent: transcript\ndata: {\"text\":\"hello\",\"turn\":1}\n\n"
    );
    assert_eq!(
        next_event(&mut body).await.unwrap(),
        "id: 1.1\nevent: reply\ndata: {\"index\":0,\"text\":\"Hi.\",\"turn\":1}\n\n"
    );
    let turn = next_event(&mut body).await.unwrap();
    assert!(turn.starts_with("id: 1.end\nevent: turn\ndata: "), "{turn}");
    let data: serde_json::Value =
        serde_json::from_str(turn.lines().nth(2).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        data,
        serde_json::to_value(june_http_api::dto::TurnResponse::from(ended.clone())).unwrap()
    );
    assert_eq!(
        next_event(&mut body).await.unwrap(),
        "id: 1.end\nevent: status\ndata: {\"status\":\"ended\"}\n\n"
    );
    assert_eq!(
        next(&mut body).await,
        None,
        "the stream ends with the session"
    );
}

#[actix_web::test]
async fn a_resume_replays_the_stored_turns_then_goes_live_without_duplicates() {
    // Arrange: turns 2 and 3 are stored; the client saw turn 2's transcript only (`2.0`).
    let mut turns = MockTurnStore::new();
    turns
        .expect_turns_after()
        .withf(|_, after, _| *after == 1)
        .times(1)
        .returning(|id, _, _| Ok(vec![record(id, 2), record(id, 3)]));
    let (feed, session, st) = world(Some(turns), StreamConfig::default()).await;
    let svc = test::init_service(app(st)).await;

    // Act
    let resp = test::call_service(
        &svc,
        get(&session)
            .insert_header(("last-event-id", "2.0"))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body().boxed();

    // Assert: the records first, then only what they did not cover.
    let first = next_event(&mut body).await.unwrap();
    assert!(first.starts_with("id: 2.end\nevent: turn\n"), "{first}");
    let second = next_event(&mut body).await.unwrap();
    assert!(second.starts_with("id: 3.end\nevent: turn\n"), "{second}");
    // Published by the replica that ran turn 3 while the client was reconnecting: covered.
    feed.publish(&event(
        &session,
        LiveEvent::Reply {
            turn: 3,
            index: 0,
            text: "old".into(),
        },
    ))
    .await;
    feed.publish(&event(
        &session,
        LiveEvent::Transcript {
            turn: 4,
            text: "new".into(),
        },
    ))
    .await;
    assert!(
        next_event(&mut body)
            .await
            .unwrap()
            .starts_with("id: 4.0\nevent: transcript\n")
    );
}

#[actix_web::test]
async fn a_bad_last_event_id_is_422_and_an_unknown_session_404() {
    let (_feed, session, st) = world(None, StreamConfig::default()).await;
    let svc = test::init_service(app(st)).await;
    let resp = test::call_service(
        &svc,
        get(&session)
            .insert_header(("last-event-id", "yesterday"))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["field"], "Last-Event-ID");

    let resp = test::call_service(
        &svc,
        test::TestRequest::get()
            .uri(&format!("/api/sessions/{}/stream", Uuid::new_v4()))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), 404);
}

#[actix_web::test]
async fn streams_beyond_the_limit_are_refused_with_503_until_one_closes() {
    let (_feed, session, st) = world(
        None,
        StreamConfig {
            max_streams: 1,
            ..StreamConfig::default()
        },
    )
    .await;
    let svc = test::init_service(app(st)).await;
    let first = test::call_service(&svc, get(&session).to_request()).await;
    assert_eq!(first.status(), 200);

    let refused = test::call_service(&svc, get(&session).to_request()).await;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = test::read_body_json(refused).await;
    assert_eq!(body["code"], "too_many_streams");

    drop(first);
    let again = test::call_service(&svc, get(&session).to_request()).await;
    assert_eq!(again.status(), 200);
}

#[actix_web::test]
async fn the_drain_ends_open_streams() {
    let (_feed, session, st) = world(None, StreamConfig::default()).await;
    let drain = st.drain.clone();
    let svc = test::init_service(app(st)).await;
    let resp = test::call_service(&svc, get(&session).to_request()).await;
    let mut body = resp.into_body().boxed();
    assert_eq!(next(&mut body).await.unwrap(), ": ping\n\n");

    drain.begin();

    assert_eq!(next(&mut body).await, None);
}

#[actix_web::test]
async fn a_stream_of_an_ended_session_sends_its_status_and_ends() {
    let ended = june_domain::Session {
        status: SessionStatus::Ended,
        ..june_testkit::session().build()
    };
    let (_feed, session, st) = world_with(ended, None, StreamConfig::default()).await;
    let svc = test::init_service(app(st)).await;
    let resp = test::call_service(&svc, get(&session).to_request()).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body().boxed();
    assert_eq!(
        next_event(&mut body).await.unwrap(),
        "id: 0.end\nevent: status\ndata: {\"status\":\"ended\"}\n\n"
    );
    assert_eq!(next(&mut body).await, None);
}
