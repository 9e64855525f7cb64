//! The replica's way out and its background work over HTTP: `/readyz` while draining,
//! `Connection: close` on every response of a draining replica, the cap on voice turns.

mod common;

use actix_web::http::ConnectionType;
use actix_web::test::{self, TestRequest};
use june_domain::SessionStatus;
use june_domain::memory::{InMemoryRooms, InMemoryStore};
use june_domain::ports::{SessionStore, VoiceStateStore};
use june_http_api::background::BackgroundConfig;
use june_http_api::{SttAuth, app};
use serde_json::{Value, json};
use std::sync::Arc;

use common::state;

/// The status, JSON body and connection type of one request.
async fn call(st: june_http_api::AppState, req: TestRequest) -> (u16, Value, ConnectionType) {
    let svc = test::init_service(app(st)).await;
    let resp = test::call_service(&svc, req.to_request()).await;
    let status = resp.status().as_u16();
    let connection = resp.response().head().connection_type();
    let body = serde_json::from_slice(&test::read_body(resp).await).unwrap_or(Value::Null);
    (status, body, connection)
}

#[actix_web::test]
async fn a_draining_replica_is_not_ready_but_serves_every_route_asking_clients_to_reconnect() {
    // Arrange: a ready replica (store and LiveKit answer).
    let store = Arc::new(InMemoryStore::default());
    let st = state()
        .on_store(store)
        .rooms(InMemoryRooms::default())
        .build();
    let (status, body, connection) = call(st.clone(), TestRequest::get().uri("/readyz")).await;
    assert_eq!((status, &body["status"]), (200, &json!("ready")), "{body}");
    assert_eq!(connection, ConnectionType::KeepAlive);

    // Act: SIGTERM's first step.
    assert!(st.drain.begin());

    // Assert: not ready, with the checks still reported; every other route serves as before,
    // each response closing its connection.
    let (status, body, connection) = call(st.clone(), TestRequest::get().uri("/readyz")).await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "draining");
    assert_eq!(body["checks"]["store"]["status"], "ok");
    assert_eq!(body["checks"]["livekit"]["status"], "ok");
    assert_eq!(connection, ConnectionType::Close);
    let (status, _, connection) = call(st.clone(), TestRequest::get().uri("/healthz")).await;
    assert_eq!((status, connection), (200, ConnectionType::Close));
    let (status, body, connection) = call(
        st.clone(),
        TestRequest::post()
            .uri("/api/sessions")
            .set_json(json!({"user_id": "dora"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(connection, ConnectionType::Close);
    // Errors too: a client told 404 must also reconnect elsewhere.
    let (status, _, connection) = call(st, TestRequest::get().uri("/no/such/route")).await;
    assert_eq!((status, connection), (404, ConnectionType::Close));
}

#[actix_web::test]
async fn a_final_beyond_the_turn_cap_is_refused_before_it_cancels_the_running_turn() {
    // Arrange: one turn at a time, and that place taken (a turn runs).
    let store = Arc::new(InMemoryStore::default());
    let session = june_testkit::session()
        .room("room-t")
        .status(SessionStatus::Active)
        .voice(true)
        .build();
    store.insert(&session).await.unwrap();
    let mut st = state()
        .on_store(store.clone())
        .background(BackgroundConfig {
            max_turns: 1,
            ..BackgroundConfig::default()
        })
        .build();
    st.config.stt_auth = SttAuth::None;
    let running = st.background.turn_slot().expect("the one place");
    let final_ = || {
        TestRequest::post()
            .uri("/api/webhooks/stt")
            .set_json(json!({"room_name": "room-t", "text": "hello there", "event": "final"}))
    };

    // Act
    let (status, body, _) = call(st.clone(), final_()).await;

    // Assert: 503 voice_busy, and the running turn's generation is untouched.
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "voice_busy");
    assert_eq!(store.current_turn(session.id).await.unwrap().generation, 0);

    // A partial needs no place; once the turn ends, a final starts the next one.
    let (status, body, _) = call(
        st.clone(),
        TestRequest::post()
            .uri("/api/webhooks/stt")
            .set_json(json!({"room_name": "room-t", "text": "hel", "event": "partial"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    drop(running);
    let (status, body, _) = call(st, final_()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["turn"], 1);
}
