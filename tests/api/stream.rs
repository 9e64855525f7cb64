//! `GET /api/sessions/{id}/stream` through the real wiring (issue #19 part 5): SSE frames,
//! session status events from webhooks and DELETE, ownership like the other session routes,
//! `Last-Event-ID`, and the drain ending open streams.
//!
//! A voice turn run through the real wiring shows its transcript, reply and turn events on the
//! stream and its captions in the LiveKit double, and a late client resumes it from the stored
//! record (`a_voice_turn_streams…`).

use june_testkit::webhook::participant_event;
use serde_json::{Value, json};

use crate::helpers::{TestApp, call, spawn_app, spawn_app_with};

/// An SSE client over reqwest: frames split on the blank line, pings skipped.
pub struct Sse {
    resp: reqwest::Response,
    buffer: String,
}

/// One SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub event: String,
    pub data: Value,
}

impl Sse {
    /// Opens the stream (`bearer` and `Last-Event-ID` optional); panics on a non-200.
    pub async fn open(app_url: &str, id: &str, bearer: Option<&str>, last: Option<&str>) -> Sse {
        let mut req =
            june_testkit::http_client().get(format!("{app_url}/api/sessions/{id}/stream"));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(last) = last {
            req = req.header("last-event-id", last);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse {
            resp,
            buffer: String::new(),
        }
    }

    /// The next frame as sent (a `: ping` comment included); `None` when the stream ended.
    pub async fn frame(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame = self.buffer[..end + 2].to_owned();
                self.buffer.drain(..end + 2);
                return Some(frame);
            }
            let chunk = self.resp.chunk().await.ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event (pings skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let frame = self.frame().await?;
            if frame.starts_with(':') {
                continue;
            }
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            return Some(Event {
                id: field("id"),
                event: field("event"),
                data: serde_json::from_str(&field("data")).unwrap(),
            });
        }
    }

    /// Waits for the first frame (the ping sent on opening): the stream is subscribed.
    pub async fn ready(&mut self) {
        assert_eq!(self.frame().await.as_deref(), Some(": ping\n\n"));
    }
}

async fn join(app: &TestApp, room_name: &str) {
    let room = app.lk.room(room_name).unwrap();
    let alice = app.lk.join(room_name, "alice", true);
    let (status, body) = app
        .send_event(&participant_event("participant_joined", &room, &alice))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_sse_client_sees_the_session_go_active_and_end_and_the_stream_then_ends() {
    // Arrange
    let app = spawn_app().await;
    let created = app.create_session("alice").await;
    let id = created["session_id"].as_str().unwrap();
    let mut sse = Sse::open(&app.address, id, None, None).await;
    sse.ready().await;

    // Act: someone joins (webhook), then the owner ends the session.
    join(&app, created["room_name"].as_str().unwrap()).await;
    let (status, _) = app.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);

    // Assert
    let active = sse.next().await.unwrap();
    assert_eq!(
        (active.event.as_str(), active.data.clone()),
        ("status", json!({"status": "active"}))
    );
    assert_eq!(active.id, "0.end", "no turn yet: resume from the start");
    let ended = sse.next().await.unwrap();
    assert_eq!(ended.data, json!({"status": "ended"}));
    assert_eq!(sse.next().await, None, "the stream ends with the session");
}

#[tokio::test]
async fn the_stream_is_owned_like_the_other_session_routes() {
    const KEY_1: &str = "usr-one-0123456789abcdef";
    const KEY_2: &str = "usr-two-0123456789abcdef";
    let keys = format!("{KEY_1}:user,{KEY_2}:user");
    let app = spawn_app_with(&[("AUTH_MODE", "api_key"), ("API_KEYS", keys.as_str())]).await;
    let (status, created) = call(&app, "POST", "/api/sessions", Some(KEY_1), Some(json!({}))).await;
    assert_eq!(status, 200, "{created}");
    let path = format!(
        "/api/sessions/{}/stream",
        created["session_id"].as_str().unwrap()
    );

    let (status, body) = call(&app, "GET", &path, None, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = call(&app, "GET", &path, Some(KEY_2), None).await;
    assert_eq!(
        (status, &body["code"]),
        (404, &json!("session_not_found")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        "GET",
        "/api/sessions/not-a-uuid/stream",
        Some(KEY_1),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");

    let mut sse = Sse::open(
        &app.address,
        created["session_id"].as_str().unwrap(),
        Some(KEY_1),
        None,
    )
    .await;
    sse.ready().await;
}

#[tokio::test]
async fn a_client_resumes_with_last_event_id_and_a_foreign_id_is_422() {
    let app = spawn_app().await;
    let created = app.create_session("alice").await;
    let id = created["session_id"].as_str().unwrap();

    // The id a status event carried: the client resumes from it and goes live.
    let mut sse = Sse::open(&app.address, id, None, Some("0.end")).await;
    sse.ready().await;
    join(&app, created["room_name"].as_str().unwrap()).await;
    assert_eq!(sse.next().await.unwrap().data, json!({"status": "active"}));

    let resp = june_testkit::http_client()
        .get(app.url(&format!("/api/sessions/{id}/stream")))
        .header("last-event-id", "not-ours")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "Last-Event-ID");
}

/// SIGTERM's drain ends open streams at once (their clients reconnect to a replica that
/// stays), so the shutdown is not held for a stream's whole life. The drain here lasts far
/// longer than the test's guard: only the drain's start can end the stream in time.
#[tokio::test]
async fn the_drain_ends_open_streams() {
    // Arrange: a server whose shutdown signal the test holds.
    let lk = june_testkit::LiveKitDouble::start();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}/june.db", dir.path().display());
    let extra = [("JUNE__SERVER__DRAIN_SECONDS".to_owned(), "300".to_owned())];
    let settings = june_orchestrator::config::Settings::load(
        &crate::helpers::env_for(&lk, &db_url, &extra),
        None,
    )
    .unwrap();
    let app = june_orchestrator::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let signal = app.shutdown_signal();
    let run = tokio::spawn(app.run_until_stopped());
    let (status, created) = crate::helpers::read(
        june_testkit::http_client()
            .post(format!("{address}/api/sessions"))
            .json(&json!({"user_id": "alice"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let mut sse = Sse::open(
        &address,
        created["session_id"].as_str().unwrap(),
        None,
        None,
    )
    .await;
    sse.ready().await;

    // Act
    signal.send();

    // Assert: the stream ends while the drain goes on (a guard, not a timing assertion).
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), sse.next()).await;
    assert_eq!(ended.expect("the drain ended the stream"), None);
    signal.send();
    run.await.unwrap().unwrap();
}

/// The captions path as the binary wires it — `LiveHub` over the LiveKit adapter, to the
/// LiveKit double — driven with the events a voice turn publishes: the double receives them
/// as reliable data messages on `june.transcript`, in order, in the documented shape.
#[tokio::test]
async fn captions_reach_the_room_as_reliable_data_messages_in_order() {
    use std::sync::Arc;
    use std::time::Duration;

    use june_domain::ports::{LiveEvent, LiveEvents, LocalFeed, SessionEvent};
    use june_http_api::live::{LiveConfig, LiveHub};

    // Arrange
    june_auth::install_crypto_provider();
    let lk = june_testkit::LiveKitDouble::start();
    lk.create_room("talk");
    let rooms = june_livekit_adapter::LiveKitRoomService::new(
        &lk.url(),
        lk.api_key(),
        &secrecy::SecretString::from(lk.api_secret()),
        Duration::from_secs(2),
    );
    let hub = LiveHub::start(
        Arc::new(rooms),
        Arc::new(LocalFeed::default()),
        LiveConfig::default(),
    );
    let event = |event| SessionEvent {
        session_id: uuid::Uuid::new_v4(),
        room_name: "talk".into(),
        event,
    };

    // Act
    hub.publish(event(LiveEvent::Transcript {
        turn: 1,
        text: "What time is it?".into(),
    }));
    for (index, text) in ["It is noon.", "Anything else?"].into_iter().enumerate() {
        hub.publish(event(LiveEvent::Reply {
            turn: 1,
            index: index as u32,
            text: text.into(),
        }));
    }

    // Assert (waiting for the deliveries, with a guard so a broken build fails, not hangs)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lk.data_messages().len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            lk.data_messages()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = lk.data_messages();
    assert!(
        sent.iter().all(|m| m.room == "talk"
            && m.topic.as_deref() == Some("june.transcript")
            && m.reliable)
    );
    assert_eq!(
        sent.iter().map(|m| m.json()).collect::<Vec<Value>>(),
        vec![
            json!({"type": "user", "turn": 1, "text": "What time is it?", "final": true}),
            json!({"type": "assistant", "turn": 1, "text": "It is noon.", "final": false}),
            json!({"type": "assistant", "turn": 1, "text": "Anything else?", "final": false}),
        ]
    );
}

/// A voice turn end to end (wiremock Gemini with usage, the TTS recorder): a connected client
/// sees the transcript, each spoken sentence and the turn's record, in order, with resumable
/// ids; the LiveKit double received the same turn as captions, in order; a client that
/// connects later with `Last-Event-ID: 1.1` (turn 1 incomplete for it) gets turn 1's stored
/// record replayed, which holds every sentence.
#[tokio::test]
async fn a_voice_turn_streams_its_events_and_captions_and_a_late_client_resumes_it() {
    use std::time::Duration;

    // Arrange
    let llm = crate::turns::gemini(&["Hello there. How can I ", "help you today?"]).await;
    let tts = june_testkit::recorder::Recorder::start();
    let app = crate::turns::app(&llm, &tts, &[]).await;
    let (status, s) = app
        .post("/api/sessions", json!({"user_id": "alice", "voice": true}))
        .await;
    assert_eq!(status, 200, "{s}");
    let (id, room) = (
        s["session_id"].as_str().unwrap(),
        s["room_name"].as_str().unwrap(),
    );
    let mut sse = Sse::open(&app.address, id, None, None).await;
    sse.ready().await;

    // Act
    crate::turns::stt(
        &app,
        json!({"event": "final", "room_name": room, "text": "Hi June"}),
    )
    .await;

    // Assert: the live events (a guard so a broken build fails rather than hangs).
    let guard = Duration::from_secs(10);
    let mut events = Vec::new();
    loop {
        let e = tokio::time::timeout(guard, sse.next())
            .await
            .expect("the turn's events")
            .expect("the stream stays open");
        let done = e.event == "turn";
        events.push(e);
        if done {
            break;
        }
    }
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.id.as_str(), e.event.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("1.0", "transcript"),
            ("1.1", "reply"),
            ("1.2", "reply"),
            ("1.end", "turn")
        ]
    );
    assert_eq!(events[0].data, json!({"turn": 1, "text": "Hi June"}));
    assert_eq!(
        events[1].data,
        json!({"turn": 1, "index": 0, "text": "Hello there."})
    );
    assert_eq!(
        events[2].data,
        json!({"turn": 1, "index": 1, "text": "How can I help you today?"})
    );
    let record = &events[3].data;
    assert_eq!(record["outcome"], "completed");
    assert_eq!(record["usage"]["total_tokens"], 29);
    let (status, stored) = app.get(&format!("/api/sessions/{id}/turns/1")).await;
    assert_eq!(
        (status, &stored),
        (200, record),
        "the event carries the stored record"
    );

    // The captions, in order, closed by the turn's final caption.
    let deadline = tokio::time::Instant::now() + guard;
    while app.lk.data_messages().len() < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            app.lk.data_messages()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let captions = app.lk.data_messages();
    assert!(
        captions
            .iter()
            .all(|m| m.room == room && m.topic.as_deref() == Some("june.transcript") && m.reliable)
    );
    assert_eq!(
        captions.iter().map(|m| m.json()).collect::<Vec<Value>>(),
        vec![
            json!({"type": "user", "turn": 1, "text": "Hi June", "final": true}),
            json!({"type": "assistant", "turn": 1, "text": "Hello there.", "final": false}),
            json!({"type": "assistant", "turn": 1, "text": "How can I help you today?", "final": false}),
            json!({"type": "assistant", "turn": 1, "text": "", "final": true}),
        ]
    );

    // A client that had seen up to the first sentence resumes with the turn's record.
    let mut late = Sse::open(&app.address, id, None, Some("1.1")).await;
    let mut replayed = Vec::new();
    while replayed.last().is_none_or(|e: &Event| e.event != "turn") {
        let e = tokio::time::timeout(guard, late.next())
            .await
            .expect("the replay")
            .expect("the stream stays open");
        if !e.id.is_empty() {
            replayed.push(e);
        }
    }
    assert_eq!(
        replayed
            .iter()
            .map(|e| (e.id.as_str(), e.event.as_str()))
            .collect::<Vec<_>>(),
        [("1.end", "turn")]
    );
    assert_eq!(&replayed[0].data, record);
}
