//! The HTTP layer in process, over mocked ports: statuses, shapes, slashes, bad input.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use june_domain::ports::*;
use june_domain::{DomainPorts, EventKind, IssuedToken, LiveKitEvent, Room, SessionService};
use june_http_api::{AppState, app};
use serde_json::{Value, json};

mod common;
use common::state;

fn tokens() -> MockTokenIssuer {
    let mut t = MockTokenIssuer::new();
    t.expect_issue().returning(|r| {
        Ok(IssuedToken {
            jwt: format!("jwt:{}:{}", r.identity, r.grants.room),
            expires_at: chrono::Utc::now() + r.ttl,
        })
    });
    t
}

/// The app's state over `ports`, built the one way the binary builds it.
fn state_over(ports: DomainPorts) -> AppState {
    common::StateBuilder::over(ports).build()
}

fn happy_rooms() -> MockRoomService {
    let mut rooms = MockRoomService::new();
    rooms.expect_create_room().returning(|spec| {
        Ok(Room {
            sid: "RM_test".into(),
            name: spec.name.clone(),
            ..Default::default()
        })
    });
    rooms
}

fn happy_store() -> MockSessionStore {
    let mut store = MockSessionStore::new();
    store.expect_insert().returning(|_| Ok(()));
    store.expect_find_live_by_room().returning(|_| Ok(None));
    store
}

async fn call(
    st: AppState,
    req: TestRequest,
) -> (StatusCode, Value, actix_web::http::header::HeaderMap) {
    let svc = test::init_service(app(st)).await;
    let resp = test::call_service(&svc, req.to_request()).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = test::read_body(resp).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, headers)
}

#[actix_web::test]
async fn create_session_answers_200_with_the_v3_shape_on_both_slash_forms() {
    for path in ["/api/sessions", "/api/sessions/"] {
        let (status, body, _) = call(
            state().sessions(happy_store()).rooms(happy_rooms()).build(),
            TestRequest::post()
                .uri(path)
                .set_json(json!({"user_id": "alice"})),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        for key in [
            "session_id",
            "user_id",
            "room_name",
            "livekit_room_sid",
            "access_token",
            "livekit_url",
            "created_at",
            "expires_at",
            "token_expires_at",
            "status",
            "language",
        ] {
            assert!(body.get(key).is_some(), "{path}: missing {key} in {body}");
        }
        assert_eq!(body["status"], "created");
        assert_eq!(body["language"], "en");
        assert_eq!(body["livekit_url"], "ws://lk.test:7880");
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    }
}

#[actix_web::test]
async fn a_missing_user_id_is_422_naming_the_field() {
    let (status, body, _) = call(
        state().build(),
        TestRequest::post()
            .uri("/api/sessions")
            .set_json(json!({"room_name": "x"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "validation_error");
    assert_eq!(body["field"], "user_id");
    assert!(body["detail"].as_str().unwrap().contains("user_id"));
}

#[actix_web::test]
async fn a_wrongly_typed_field_is_422_naming_it() {
    let (status, body, _) = call(
        state().build(),
        TestRequest::post()
            .uri("/api/sessions")
            .set_json(json!({"user_id": "a", "ttl_seconds": "soon"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "ttl_seconds");
}

#[actix_web::test]
async fn malformed_json_is_400_and_oversized_bodies_are_413() {
    let (status, body, _) = call(
        state().build(),
        TestRequest::post()
            .uri("/api/sessions")
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"user_id\": "),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "malformed_json");

    let big = json!({"user_id": "a", "metadata": {"blob": "x".repeat(4096)}});
    let (status, body, _) = call(
        state().build(),
        TestRequest::post().uri("/api/sessions").set_json(big),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");
}

#[actix_web::test]
async fn livekit_down_is_502_livekit_unavailable() {
    let mut rooms = MockRoomService::new();
    rooms.expect_create_room().returning(|_| {
        Err(RoomError::Unavailable {
            message: "cannot reach LiveKit at http://lk".into(),
            source: None,
        })
    });
    let mut store = MockSessionStore::new();
    store.expect_insert().never();
    let (status, body, _) = call(
        state().sessions(store).rooms(rooms).build(),
        TestRequest::post()
            .uri("/api/sessions")
            .set_json(json!({"user_id": "a"})),
    )
    .await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "livekit_unavailable");
    assert!(body["detail"].as_str().unwrap().contains("LiveKit"));
}

#[actix_web::test]
async fn a_store_outage_is_503_with_retry_after_and_no_cause_leaks() {
    let mut store = MockSessionStore::new();
    store
        .expect_get()
        .returning(|_| Err(StoreError::Unavailable("password=hunter2 refused".into())));
    let (status, body, headers) = call(
        state().sessions(store).build(),
        TestRequest::get().uri(&format!("/api/sessions/{}", uuid::Uuid::new_v4())),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "store_unavailable");
    assert!(headers.contains_key("retry-after"));
    assert!(!body.to_string().contains("hunter2"));
}

/// A value the database refuses fails the same way on every retry: 422, never 503, and no
/// `Retry-After` (LiveKit retries a 5xx webhook).
#[actix_web::test]
async fn a_value_the_store_refuses_is_422_without_retry_after() {
    let mut store = MockSessionStore::new();
    store.expect_get().returning(|_| {
        Err(StoreError::Invalid(
            "the database refused a value: invalid byte sequence".into(),
        ))
    });
    let (status, body, headers) = call(
        state().sessions(store).build(),
        TestRequest::get().uri(&format!("/api/sessions/{}", uuid::Uuid::new_v4())),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "validation_error");
    assert_eq!(body["field"], "body");
    assert!(!headers.contains_key("retry-after"));
}

#[actix_web::test]
async fn unknown_sessions_and_non_uuid_ids_are_404_session_not_found() {
    let mut store = MockSessionStore::new();
    store.expect_get().returning(|_| Err(StoreError::NotFound));
    let st = state().sessions(store).build();
    for uri in [
        format!("/api/sessions/{}", uuid::Uuid::new_v4()),
        "/api/sessions/not-a-uuid".into(),
    ] {
        let (status, body, _) = call(st.clone(), TestRequest::get().uri(&uri)).await;
        assert_eq!(status, 404, "{uri}");
        assert_eq!(body["detail"], "Session not found");
        assert_eq!(body["code"], "session_not_found");
    }
}

#[actix_web::test]
async fn unknown_routes_are_json_404_and_wrong_methods_json_405() {
    let st = state().build();
    let (status, body, _) = call(st.clone(), TestRequest::get().uri("/nope")).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    let (status, body, _) = call(st, TestRequest::put().uri("/api/sessions")).await;
    assert_eq!(status, 405);
    assert_eq!(body["code"], "method_not_allowed");
}

#[actix_web::test]
async fn every_documented_operation_and_alias_is_served() {
    let mut rooms = MockRoomService::new();
    rooms.expect_list_rooms().returning(|_| Ok(vec![]));
    // Every caller is refused before a handler runs: what is tested here is the routing.
    let st = state().rooms(rooms).auth(MockAuthenticator::new()).build();
    let svc = test::init_service(app(st)).await;
    let aliases = june_http_api::ALIASES.iter().flat_map(|(alias, path)| {
        june_http_api::OPERATIONS
            .iter()
            .filter(move |(_, p)| p == path)
            .map(move |(method, _)| (*method, *alias))
    });
    let spec: Value = serde_json::from_str(&june_http_api::openapi::json()).unwrap();
    let documented = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        });
    let all: Vec<(String, String)> = documented
        .chain(aliases.map(|(m, p)| (m.to_owned(), p.to_owned())))
        .collect();
    assert!(all.len() > june_http_api::OPERATIONS.len());
    for (method, path) in all {
        let uri = path
            .replace("{id}", "0b9f3c2e-6a57-4f4e-9d7c-1f0a3c5e7b21")
            .replace("{identity}", "zoe");
        let req = TestRequest::default()
            .method(method.to_uppercase().parse().unwrap())
            .uri(&uri)
            .to_request();
        let resp = test::call_service(&svc, req).await;
        let status = resp.status();
        let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap_or_default();
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED && body["code"] != "not_found",
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
}

#[actix_web::test]
async fn the_request_id_is_echoed_or_made_up() {
    let st = state().build();
    let (_, _, headers) = call(
        st.clone(),
        TestRequest::get()
            .uri("/healthz")
            .insert_header(("x-request-id", "abc-123")),
    )
    .await;
    assert_eq!(headers.get("x-request-id").unwrap(), "abc-123");
    let (_, _, headers) = call(
        st,
        TestRequest::get()
            .uri("/healthz")
            .insert_header(("x-request-id", "bad id with spaces")),
    )
    .await;
    let made_up = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made_up).is_ok());
}

#[actix_web::test]
async fn legacy_token_routes_say_which_fields_are_missing_with_400() {
    for path in ["/token", "/livekit/token", "/token/"] {
        let (status, body, _) = call(
            state().build(),
            TestRequest::post()
                .uri(path)
                .set_json(json!({"roomName": "r"})),
        )
        .await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["detail"], "roomName and participantName are required");
    }
}

#[actix_web::test]
async fn legacy_token_bodies_that_name_nothing_usable_are_400_too() {
    let bodies = [
        json!({"roomName": "r", "participantName": "   "}),
        json!({"roomName": true, "participantName": "p"}),
        json!(["r", "p"]),
        json!("r"),
    ];
    for bad in bodies {
        let (status, body, _) = call(
            state().build(),
            TestRequest::post().uri("/token").set_json(&bad),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["code"], "missing_fields", "{bad}");
    }
}

#[actix_web::test]
async fn a_numeric_participant_name_is_accepted_and_stringified() {
    let (status, body, _) = call(
        state().build(),
        TestRequest::post()
            .uri("/livekit/token")
            .set_json(json!({"roomName": "r1", "participantName": 42})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["participantName"], "42");
    assert_eq!(body["token"], "jwt:42:r1");
    assert_eq!(body["livekitUrl"], body["ws_url"]);
}

#[actix_web::test]
async fn listing_rejects_an_unknown_status_and_a_forged_cursor() {
    let st = state().build();
    let (status, body, _) = call(
        st.clone(),
        TestRequest::get().uri("/api/sessions?status=zombie"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "status");
    let (status, body, _) = call(
        st.clone(),
        TestRequest::get().uri("/api/sessions?cursor=xyz"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "cursor");
    let (status, _, _) = call(st, TestRequest::get().uri("/api/sessions?limit=many")).await;
    assert_eq!(status, 422);
}

#[actix_web::test]
async fn readyz_is_503_naming_livekit_when_it_fails_and_healthz_stays_200() {
    let store = MockSessionStore::new();
    let mut rooms = MockRoomService::new();
    rooms.expect_list_rooms().returning(|_| {
        Err(RoomError::Unavailable {
            message: "connection refused".into(),
            source: None,
        })
    });
    let st = state().sessions(store).rooms(rooms).build();
    let (status, body, _) = call(st.clone(), TestRequest::get().uri("/readyz")).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["store"]["status"], "ok");
    assert_eq!(body["checks"]["livekit"]["status"], "error");
    let (status, _, _) = call(st, TestRequest::get().uri("/healthz")).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn the_service_info_names_no_secret() {
    let (status, body, _) = call(state().build(), TestRequest::get().uri("/")).await;
    assert_eq!(status, 200);
    assert_eq!(body["service"], "june-orchestrator");
    let text = body.to_string().to_lowercase();
    assert!(!text.contains("secret") && !text.contains("api_key"));
}

fn verifier_returning(result: Result<LiveKitEvent, WebhookError>) -> MockWebhookVerifier {
    let mut v = MockWebhookVerifier::new();
    v.expect_verify().returning(move |_, _| result.clone());
    v
}

fn stray_event(id: &str) -> LiveKitEvent {
    LiveKitEvent {
        id: id.into(),
        kind: EventKind::parse("egress_started"),
        created_at: None,
        room_name: None,
        room_sid: None,
        participant: None,
        track: None,
        payload: json!({"event": "egress_started"}),
    }
}

fn webhook(body: &str) -> TestRequest {
    TestRequest::post()
        .uri("/api/livekit-webhooks/")
        .insert_header(("content-type", "application/webhook+json"))
        .insert_header(("authorization", "signed.jwt.here"))
        .set_payload(body.to_owned())
}

#[actix_web::test]
async fn a_verified_webhook_is_received_and_a_repeat_is_a_duplicate() {
    let mut events = MockEventStore::new();
    let mut seen = mockall::Sequence::new();
    events
        .expect_seen()
        .times(1)
        .in_sequence(&mut seen)
        .returning(|_| Ok(Default::default()));
    events
        .expect_record()
        .times(1)
        .returning(|e| Ok(vec![true; e.len()]));
    events
        .expect_seen()
        .times(1)
        .in_sequence(&mut seen)
        .returning(|ids| Ok(ids.iter().cloned().collect()));
    let st = state()
        .verifier(verifier_returning(Ok(stray_event("EV_1"))))
        .events(events)
        .build();
    let (status, body, _) = call(st.clone(), webhook("{}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "received", "event": "egress_started"})
    );
    let (status, body, _) = call(st, webhook("{}")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "duplicate"}));
}

#[actix_web::test]
async fn a_refused_signature_is_401_and_an_unreadable_event_400() {
    let st = state()
        .verifier(verifier_returning(Err(WebhookError::Unauthorized(
            "bad".into(),
        ))))
        .build();
    let (status, body, _) = call(st, webhook("{}")).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "invalid_signature");

    let st = state()
        .verifier(verifier_returning(Err(WebhookError::Malformed(
            "no event name".into(),
        ))))
        .build();
    let (status, body, _) = call(st, webhook("{}")).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "malformed_webhook");
}

#[actix_web::test]
async fn webhooks_of_another_content_type_are_415_before_any_verification() {
    let mut verifier = MockWebhookVerifier::new();
    verifier.expect_verify().never();
    let st = state().verifier(verifier).build();
    let (status, body, _) = call(
        st,
        TestRequest::post()
            .uri("/api/livekit-webhooks")
            .insert_header(("content-type", "text/plain"))
            .set_payload("{}"),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(body["code"], "unsupported_media_type");
}

#[actix_web::test]
async fn a_panicking_handler_answers_500_json_and_releases_its_idempotency_key() {
    let mut store = MockSessionStore::new();
    store.expect_find_live_by_room().returning(|_| Ok(None));
    store
        .expect_insert()
        .returning(|_| panic!("a bug deep in the store"));
    let mut keys = MockIdempotencyStore::new();
    keys.expect_begin()
        .returning(|_, _, _, _| Ok(IdempotencyState::Started));
    keys.expect_complete().never();
    // The claim is released, so a retry is not told "in progress" for a day.
    keys.expect_abandon().times(1).returning(|_| Ok(()));
    let st = state()
        .sessions(store)
        .rooms(happy_rooms())
        .idempotency(keys)
        .build();
    let svc = test::init_service(app(st)).await;

    let req = TestRequest::post()
        .uri("/api/sessions")
        .insert_header(("idempotency-key", "k-1"))
        .set_json(json!({"user_id": "alice"}))
        .to_request();
    let Err(err) = test::try_call_service(&svc, req).await else {
        panic!("a panic must come out as an error response, not a success");
    };
    let resp = err.error_response();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bytes = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "internal_error");
    assert!(
        !body["detail"].as_str().unwrap().contains("a bug deep"),
        "the panic's text stays in the log: {body}"
    );
}

/// An agent dispatcher that does not answer until its gate opens, and reports each agent
/// it dispatched.
struct GatedDispatcher {
    gate: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    done: tokio::sync::mpsc::UnboundedSender<String>,
}

#[async_trait::async_trait]
impl AgentDispatcher for GatedDispatcher {
    async fn dispatch(&self, _: &str, agent: &str, _: &str) -> Result<String, RoomError> {
        if let Some(gate) = self.gate.lock().await.take() {
            let _ = gate.await;
        }
        let _ = self.done.send(agent.to_owned());
        Ok(format!("AD_{agent}"))
    }
}

/// LiveKit's agent dispatch (two calls, up to 5 s each) runs after the webhook is
/// answered: a dispatcher that has not answered yet does not hold the delivery up.
#[actix_web::test]
async fn a_slow_bot_dispatch_does_not_delay_the_webhook_answer() {
    // Arrange: a voice session in memory, and a microphone track published in its room.
    let store = Arc::new(june_domain::memory::InMemoryStore::default());
    let now = chrono::Utc::now();
    let session = june_testkit::session()
        .user("vic")
        .room("room-vic")
        .sid("RM_vic")
        .status(june_domain::SessionStatus::Active)
        .voice(true)
        .participants(1)
        .build();
    store.insert(&session).await.unwrap();
    let microphone = LiveKitEvent {
        id: "EV_mic".into(),
        kind: EventKind::parse("track_published"),
        created_at: Some(now),
        room_name: Some(session.room_name.clone()),
        room_sid: Some(session.livekit_room_sid.clone()),
        participant: Some(june_domain::EventParticipant {
            identity: "vic".into(),
            sid: "PA_vic".into(),
            kind: "STANDARD".into(),
        }),
        track: Some(june_domain::EventTrack {
            sid: "TR_mic".into(),
            kind: june_domain::TrackKind::Audio,
            source: "microphone".into(),
        }),
        payload: json!({"event": "track_published"}),
    };
    let (open, gate) = tokio::sync::oneshot::channel();
    let (done, mut dispatched) = tokio::sync::mpsc::unbounded_channel();
    let st = state_over(DomainPorts {
        dispatcher: Some(Arc::new(GatedDispatcher {
            gate: tokio::sync::Mutex::new(Some(gate)),
            done,
        })),
        ..DomainPorts::with_store(
            store.clone(),
            Arc::new(MockRoomService::new()),
            Arc::new(tokens()),
            Arc::new(verifier_returning(Ok(microphone))),
        )
    });

    // Act: the delivery is answered while the dispatcher still waits on its gate.
    let (status, body, _) = call(st, webhook("{}")).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "received", "event": "track_published"})
    );
    assert!(dispatched.try_recv().is_err(), "nothing dispatched yet");
    open.send(()).unwrap();
    assert_eq!(dispatched.recv().await.as_deref(), Some("june-stt"));
    assert_eq!(dispatched.recv().await.as_deref(), Some("june-tts"));
}

fn live_session(user: &str) -> june_domain::Session {
    june_testkit::session()
        .user(user)
        .room(&format!("room-{user}"))
        .sid(&format!("RM_{user}"))
        .status(june_domain::SessionStatus::Active)
        .build()
}

/// Authorizing and reading the history share one read of the session.
#[actix_web::test]
async fn get_history_reads_the_session_once() {
    // Arrange
    let session = live_session("hana");
    let id = session.id;
    let mut store = MockSessionStore::new();
    let found = session.clone();
    store
        .expect_get()
        .times(1)
        .returning(move |_| Ok(found.clone()));
    let mut history = MockHistoryStore::new();
    history.expect_recent().times(1).returning(|_, _| {
        Ok(vec![june_domain::HistoryEntry::new(
            june_domain::Role::User,
            "hello",
            chrono::Utc::now(),
        )])
    });
    let mut st = state().build();
    st.sessions = sessions_over(store, history, MockRoomService::new());

    // Act
    let (status, body, _) = call(
        st,
        TestRequest::get().uri(&format!("/api/sessions/{id}/history")),
    )
    .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["history"][0]["content"], "hello");
}

/// Authorizing and ending share one read of the session: one read, one room deletion, one
/// status update.
#[actix_web::test]
async fn delete_session_reads_the_session_once() {
    // Arrange
    let session = live_session("ines");
    let id = session.id;
    let mut store = MockSessionStore::new();
    let found = session.clone();
    store
        .expect_get()
        .times(1)
        .returning(move |_| Ok(found.clone()));
    store
        .expect_advance_status()
        .times(1)
        .returning(move |_, to, at| {
            let mut ended = session.clone();
            ended.status = to;
            ended.ended_at = Some(at);
            Ok(Transition {
                session: ended,
                changed: true,
            })
        });
    let mut rooms = MockRoomService::new();
    rooms.expect_delete_room().times(1).returning(|_| Ok(()));
    let mut st = state().build();
    st.sessions = sessions_over(store, MockHistoryStore::new(), rooms);

    // Act
    let (status, body, _) = call(
        st,
        TestRequest::delete().uri(&format!("/api/sessions/{id}")),
    )
    .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "deleted");
}

fn sessions_over(
    store: MockSessionStore,
    history: MockHistoryStore,
    rooms: MockRoomService,
) -> SessionService {
    state_over(DomainPorts {
        sessions: Arc::new(store),
        history: Arc::new(history),
        rooms: Arc::new(rooms),
        ..DomainPorts::with_store(
            Arc::new(june_domain::memory::InMemoryStore::default()),
            Arc::new(MockRoomService::new()),
            Arc::new(tokens()),
            Arc::new(MockWebhookVerifier::new()),
        )
    })
    .sessions
}

/// A shared limit backend that never answers: Redis away, as the HTTP layer sees it.
struct Unreachable;

#[async_trait::async_trait]
impl june_http_api::limits::LimitBackend for Unreachable {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn acquire(
        &self,
        _: june_http_api::limits::LimitKey<'_>,
    ) -> Result<june_http_api::limits::Verdict, june_http_api::limits::BackendError> {
        Err(june_http_api::limits::BackendError(
            "connection refused".into(),
        ))
    }

    async fn ping(&self) -> Result<(), june_http_api::limits::BackendError> {
        Err(june_http_api::limits::BackendError(
            "connection refused".into(),
        ))
    }
}

fn one_per_second() -> june_http_api::limits::Rate {
    june_http_api::limits::Rate {
        per_second: 1,
        burst: 1,
    }
}

#[actix_web::test]
async fn readyz_reports_the_rate_limit_backend_and_redis_away_is_degraded_not_unready() {
    let mut rooms = MockRoomService::new();
    rooms.expect_list_rooms().returning(|_| Ok(vec![]));
    let (status, body, _) = call(
        state().rooms(rooms).build(),
        TestRequest::get().uri("/readyz"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["checks"]["rate_limit"],
        json!({"status": "ok", "backend": "local"})
    );

    let mut rooms = MockRoomService::new();
    rooms.expect_list_rooms().returning(|_| Ok(vec![]));
    let rates = june_http_api::limits::Rates {
        principal: one_per_second(),
        address: one_per_second(),
    };
    let limits = june_http_api::limits::RateLimits::shared(
        rates,
        Arc::new(Unreachable),
        june_http_api::limits::SharedOptions {
            timeout: std::time::Duration::from_millis(50),
            retry_every: std::time::Duration::from_secs(60),
        },
    );
    let (status, body, _) = call(
        state().rooms(rooms).rate_limits(limits).build(),
        TestRequest::get().uri("/readyz"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let check = &body["checks"]["rate_limit"];
    assert_eq!(check["status"], "degraded", "{body}");
    assert_eq!(check["backend"], "local", "{body}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("redis: connection refused"),
        "{body}"
    );
}

/// The per-address budget follows the client behind a trusted proxy, and only there. The
/// budget is one request: the second from the same client is refused.
#[actix_web::test]
async fn the_per_address_budget_follows_forwarded_clients_only_from_trusted_proxies() {
    let st = state()
        .proxies("127.0.0.1".parse().unwrap())
        .rate_limits(june_http_api::limits::RateLimits::new(
            june_http_api::limits::Rate::OFF,
            one_per_second(),
        ))
        .build();
    let svc = test::init_service(app(st)).await;
    let send = |peer: &str, xff: &str| {
        let mut req = TestRequest::get()
            .uri("/")
            .peer_addr(format!("{peer}:40000").parse().unwrap());
        if !xff.is_empty() {
            req = req.insert_header(("x-forwarded-for", xff.to_owned()));
        }
        req.to_request()
    };
    macro_rules! status {
        ($req:expr) => {
            test::call_service(&svc, $req).await.status().as_u16()
        };
    }

    // Behind the trusted proxy: one budget per forwarded client.
    assert_eq!(status!(send("127.0.0.1", "203.0.113.1")), 200);
    let refused = test::call_service(&svc, send("127.0.0.1", "203.0.113.1")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers().get("retry-after").unwrap(), "1");
    assert_eq!(status!(send("127.0.0.1", "203.0.113.2")), 200);
    // An untrusted peer's header is ignored: its second request is refused whatever it says.
    assert_eq!(status!(send("198.51.100.7", "203.0.113.3")), 200);
    assert_eq!(status!(send("198.51.100.7", "203.0.113.4")), 429);
    // Probes are never budgeted.
    let probe = TestRequest::get()
        .uri("/healthz")
        .peer_addr("198.51.100.7:40000".parse().unwrap())
        .to_request();
    assert_eq!(test::call_service(&svc, probe).await.status(), 200);
}

fn spec() -> Value {
    serde_json::from_str(&june_http_api::openapi::json()).unwrap()
}

/// JSON Schema counts `3600.0` as an integer, so a client generated from the spec may send it.
#[actix_web::test]
async fn an_integral_float_is_read_as_the_integer_and_a_fraction_is_422() {
    let ttl = &spec()["components"]["schemas"]["CreateSessionRequest"]["properties"]["ttl_seconds"];
    assert!(ttl["type"].to_string().contains("integer"), "{ttl}");

    let (status, body, _) = call(
        state().sessions(happy_store()).rooms(happy_rooms()).build(),
        TestRequest::post()
            .uri("/api/sessions")
            .set_json(json!({"user_id": "alice", "ttl_seconds": 3600.0})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let at = |key: &str| chrono::DateTime::parse_from_rfc3339(body[key].as_str().unwrap()).unwrap();
    assert_eq!((at("expires_at") - at("created_at")).num_seconds(), 3600);

    for fraction in [json!(3600.5), json!("3600")] {
        let (status, body, _) = call(
            state().build(),
            TestRequest::post()
                .uri("/api/sessions")
                .set_json(json!({"user_id": "alice", "ttl_seconds": fraction})),
        )
        .await;
        assert_eq!(status, 422, "{fraction}: {body}");
        assert_eq!(body["field"], "ttl_seconds");
    }
}

/// What the spec says of `text` (at least one character that is not whitespace) is what the
/// server refuses, with the status the spec documents.
#[actix_web::test]
async fn blank_text_is_the_documented_422_and_the_spec_says_min_length() {
    let spec = spec();
    for (schema, path) in [
        ("ChatRequestDto", "/api/ai/chat"),
        ("TtsPublishRequest", "/api/tts/publish"),
    ] {
        let text = &spec["components"]["schemas"][schema]["properties"]["text"];
        assert_eq!(text["minLength"], 1, "{schema}");
        assert_eq!(text["pattern"], "\\S", "{schema}");
        assert!(
            spec["paths"][path]["post"]["responses"]["422"].is_object(),
            "{path}"
        );
    }

    let session = live_session("hana");
    let id = session.id;
    let mut store = MockSessionStore::new();
    store.expect_get().returning(move |_| Ok(session.clone()));
    let st = state().sessions(store).build();
    for blank in ["", " \n\t"] {
        let (status, body, _) = call(
            st.clone(),
            TestRequest::post()
                .uri("/api/ai/chat")
                .set_json(json!({"session_id": id, "text": blank})),
        )
        .await;
        assert_eq!(
            (status.as_u16(), &body["field"]),
            (422, &json!("text")),
            "{blank:?}: {body}"
        );
        let (status, body, _) = call(
            st.clone(),
            TestRequest::post()
                .uri("/api/tts/publish")
                .set_json(json!({"room_name": "room-hana", "text": blank})),
        )
        .await;
        assert_eq!(
            (status.as_u16(), &body["field"]),
            (422, &json!("text")),
            "{blank:?}: {body}"
        );
    }
}

/// RFC 9110: a 405 names the methods the resource supports, here from the route table.
#[actix_web::test]
async fn a_method_a_path_does_not_serve_is_405_with_allow_naming_those_it_does() {
    let svc = test::init_service(app(state().build())).await;
    let aliases = june_http_api::ALIASES
        .iter()
        .map(|(alias, path)| (*alias, *path));
    let paths = june_http_api::ROUTES
        .iter()
        .map(|r| (r.path, r.path))
        .chain(aliases);
    for (served, path) in paths {
        let route = june_http_api::ROUTES
            .iter()
            .find(|r| r.path == path)
            .unwrap();
        let mut allowed: Vec<String> = route.methods.iter().map(|m| m.to_uppercase()).collect();
        allowed.sort();
        let unserved = ["PUT", "PATCH", "DELETE", "POST", "GET"]
            .into_iter()
            .find(|m| !allowed.iter().any(|a| a == m))
            .unwrap();
        // Both slash forms.
        for uri in [served.to_owned(), format!("{served}/")] {
            let uri = uri
                .replace("{id}", "0b9f3c2e-6a57-4f4e-9d7c-1f0a3c5e7b21")
                .replace("{identity}", "zoe");
            let req = TestRequest::default()
                .method(unserved.parse().unwrap())
                .uri(&uri)
                .to_request();
            let resp = test::call_service(&svc, req).await;
            assert_eq!(resp.status(), 405, "{unserved} {uri}");
            let allow = resp.headers().get("allow").expect("Allow is sent");
            let mut listed: Vec<String> = allow
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            listed.sort();
            assert_eq!(listed, allowed, "{unserved} {uri}");
            let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
            assert_eq!(body["code"], "method_not_allowed", "{unserved} {uri}");
        }
    }
}

/// The spec's `maxLength` counts characters, and so does the server (not UTF-8 bytes).
#[actix_web::test]
async fn an_owner_of_256_characters_is_accepted_whatever_their_bytes_and_257_are_422() {
    let owner = "é".repeat(june_domain::MAX_IDENTITY_LEN);
    let (status, body, _) = call(
        state().sessions(happy_store()).rooms(happy_rooms()).build(),
        TestRequest::post()
            .uri("/api/sessions")
            .set_json(json!({ "user_id": owner })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = call(
        state().build(),
        TestRequest::post()
            .uri("/api/sessions")
            .set_json(json!({ "user_id": format!("{owner}é") })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "user_id");
}
