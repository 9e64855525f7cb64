//! Room adoption (`voice.adopt_rooms`, design §8.1, issue #16): June's bots talk in a room
//! (`ozzu-main`) that no `POST /api/sessions` created. Under `JUNE_COMPAT=v3` a final for it
//! (or a signed `room_started`) makes it a *room session* with the same voice loop as any.

use std::time::{Duration, Instant};

use june_testkit::drip::DripServer;
use june_testkit::recorder::Recorder;
use june_testkit::webhook::room_event;
use serde_json::{Value, json};

use crate::helpers::{TestApp, read, spawn_app_with};
use crate::voice::{TTS, gemini, voice_app};

/// The server as June's stack runs it (`JUNE_COMPAT=v3`), with Gemini and TTS faked.
async fn v3_voice_app(llm: &DripServer, tts: &Recorder) -> TestApp {
    voice_app(llm, tts, &[("JUNE_COMPAT", "v3")]).await
}

/// What june-stt `livekit_worker.py` @ 83132ad posts: no Authorization, only
/// `Content-Type: application/json`.
fn june_stt(is_partial: bool, text: &str) -> Value {
    json!({
        "event": if is_partial { "partial" } else { "final" },
        "room_name": "ozzu-main",
        "participant": "ozzu-app",
        "text": text,
        "language": "en",
        "confidence": 1.0,
        "timestamp": "2026-12-02T03:04:05.123456",
        "partial": is_partial,
        "segments": [],
    })
}

async fn post_without_auth(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    read(resp).await
}

async fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) {
    let until = Instant::now() + limit;
    while !done() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn tts_texts(tts: &Recorder) -> Vec<String> {
    tts.hits(TTS)
        .iter()
        .map(|h| h.body["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The room sessions (owner `service:rooms`) of `room`, as an admin lists them.
async fn room_sessions(app: &TestApp) -> Vec<Value> {
    let (status, body) = app.get("/api/sessions?user_id=service:rooms").await;
    assert_eq!(status, 200, "{body}");
    body["sessions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_june_stt_final_for_ozzu_main_is_answered_in_a_room_session_that_keeps_its_history() {
    let llm = gemini(&["Hi there. ", "I am June."], Duration::from_millis(50));
    let tts = Recorder::start();
    let app = v3_voice_app(&llm, &tts).await;
    app.lk.create_room("ozzu-main");

    let (status, body) =
        post_without_auth(&app, "/api/webhooks/stt", &june_stt(false, "hello june")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "accepted", "event": "final", "turn": 1})
    );
    wait_for(|| tts.hits(TTS).len() >= 2, Duration::from_secs(5)).await;
    assert_eq!(tts_texts(&tts), ["Hi there.", "I am June."]);
    assert!(
        tts.hits(TTS)
            .iter()
            .all(|h| h.body["room_name"] == "ozzu-main")
    );
    assert_eq!(llm.received().len(), 1, "one Gemini call");

    let sessions = room_sessions(&app).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    assert_eq!(
        (&s["room_name"], &s["kind"], &s["user_id"], &s["voice"]),
        (
            &json!("ozzu-main"),
            &json!("room"),
            &json!("service:rooms"),
            &json!(false)
        )
    );
    let id = s["session_id"].as_str().unwrap().to_owned();
    let (status, read) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["access_token"], Value::Null, "nobody owns the room");
    assert_eq!(read["kind"], "room");

    // The second final continues the same session and history.
    let (status, body) = post_without_auth(
        &app,
        "/api/webhooks/stt",
        &june_stt(false, "what time is it"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["turn"], 2);
    wait_for(|| tts.hits(TTS).len() >= 4, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(room_sessions(&app).await.len(), 1, "no second adoption");
    let users: Vec<String> = app
        .history(&id)
        .await
        .into_iter()
        .filter(|(role, _)| role == "user")
        .map(|(_, text)| text)
        .collect();
    assert_eq!(users, ["hello june", "what time is it"]);
    // The model saw the first exchange with the second question.
    let second_call = String::from_utf8_lossy(&llm.received()[1].body).into_owned();
    assert!(second_call.contains("hello june"), "{second_call}");

    // Partials for it are now accepted.
    let (status, body) = post_without_auth(&app, "/api/webhooks/stt", &june_stt(true, "and")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "accepted", "event": "partial"}));

    // Ending it leaves LiveKit's room alone.
    let (status, _) = app.delete(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert!(app.lk.room("ozzu-main").is_some(), "the room is LiveKit's");
    assert!(app.lk.calls().iter().all(|c| c.method != "DeleteRoom"));
    // A later final adopts the room again.
    let (status, body) =
        post_without_auth(&app, "/api/webhooks/stt", &june_stt(false, "still there?")).await;
    assert_eq!(status, 200, "{body}");
    let sessions = room_sessions(&app).await;
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions
            .iter()
            .filter(|s| s["status"] == "created" || s["status"] == "active")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_voice_onset_interrupts_a_turn_of_a_room_session() {
    let llm = gemini(
        &["First sentence. ", "Second sentence. ", "Third one."],
        Duration::from_millis(1200),
    );
    let tts = Recorder::start();
    let app = v3_voice_app(&llm, &tts).await;
    app.lk.create_room("ozzu-main");

    let (status, body) = post_without_auth(
        &app,
        "/api/webhooks/stt",
        &june_stt(false, "tell me three things"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_for(|| !tts.hits(TTS).is_empty(), Duration::from_secs(5)).await;
    let (status, body) = post_without_auth(
        &app,
        "/api/webhooks/voice_onset",
        &json!({"room_name": "ozzu-main", "participant": "ozzu-app"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "interrupted");

    wait_for(|| llm.finished_at().is_some(), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tts_texts(&tts), ["First sentence."]);
    let id = room_sessions(&app).await[0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let h = app.history(&id).await;
    assert_eq!(
        h.last().unwrap(),
        &("assistant".to_owned(), "First sentence.".to_owned())
    );
}

#[tokio::test]
async fn with_adoption_on_a_room_livekit_does_not_have_is_404_and_its_partials_are_skipped() {
    let app = spawn_app_with(&[("JUNE_COMPAT", "v3")]).await;

    let (status, body) =
        post_without_auth(&app, "/api/webhooks/stt", &june_stt(false, "hello")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "session_not_found");
    let (status, body) = post_without_auth(&app, "/api/webhooks/stt", &june_stt(true, "hel")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "skipped", "reason": "unknown_room"}));
    assert!(room_sessions(&app).await.is_empty());
}

#[tokio::test]
async fn by_default_the_same_post_is_401_and_with_the_token_still_404() {
    let app = spawn_app_with(&[("STT_SERVICE_TOKEN", "stt-secret")]).await;
    app.lk.create_room("ozzu-main");

    let (status, body) =
        post_without_auth(&app, "/api/webhooks/stt", &june_stt(false, "hello")).await;
    assert_eq!(status, 401, "{body}");

    // Adoption is off by default: with the bot's token the room is still no session's.
    let resp = app
        .client
        .post(app.url("/api/webhooks/stt"))
        .bearer_auth("stt-secret")
        .json(&june_stt(false, "hello"))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 404, "{body}");
    assert!(room_sessions(&app).await.is_empty());
}

#[tokio::test]
async fn a_signed_room_started_for_a_room_no_session_owns_adopts_it_under_v3() {
    let app = spawn_app_with(&[("JUNE_COMPAT", "v3")]).await;
    let room = app.lk.create_room("ozzu-main");

    let (status, body) = app.send_event(&room_event("room_started", &room)).await;
    assert_eq!(status, 200, "{body}");

    let sessions = room_sessions(&app).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["kind"], "room");
    assert_eq!(sessions[0]["status"], "active");
    assert_eq!(sessions[0]["livekit_room_sid"], room.sid.as_str());
    assert_eq!(body["status"], "received");

    // room_finished ends it; LiveKit's room is not deleted by us.
    let (status, _) = app.send_event(&room_event("room_finished", &room)).await;
    assert_eq!(status, 200);
    let sessions = room_sessions(&app).await;
    assert_eq!(sessions[0]["status"], "ended");
    assert!(app.lk.calls().iter().all(|c| c.method != "DeleteRoom"));
}

#[tokio::test]
async fn a_room_started_adopts_nothing_by_default() {
    let app = spawn_app_with(&[]).await;
    let room = app.lk.create_room("ozzu-main");

    let (status, _) = app.send_event(&room_event("room_started", &room)).await;
    assert_eq!(status, 200);
    assert!(room_sessions(&app).await.is_empty());
}
