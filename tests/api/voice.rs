//! §4 the voice loop end to end: dispatch, transcripts, streamed sentences, barge-in.

use std::time::{Duration, Instant};

use june_testkit::drip::{Chunk, DripServer};
use june_testkit::recorder::Recorder;
use june_testkit::webhook::track_event;
use livekit_protocol as proto;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

pub(crate) const TTS: &str = "/api/tts/synthesize";

/// One streamed Gemini chunk carrying `text` (the last one says STOP).
pub(crate) fn delta(text: &str, last: bool) -> String {
    let mut c = json!({"content": {"role": "model", "parts": [{"text": text}]}});
    if last {
        c["finishReason"] = json!("STOP");
    }
    format!("data: {}\r\n\r\n", json!({"candidates": [c]}))
}

/// A Gemini that streams `parts`, each after `gap`, to every request.
pub(crate) fn gemini(parts: &[&str], gap: Duration) -> DripServer {
    let n = parts.len();
    DripServer::start(
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Chunk::after(
                    if i == 0 { Duration::ZERO } else { gap },
                    delta(p, i + 1 == n),
                )
            })
            .collect(),
    )
}

/// The server with Gemini and TTS faked, the STT token set, and `extra` settings.
pub(crate) async fn voice_app(llm: &DripServer, tts: &Recorder, extra: &[(&str, &str)]) -> TestApp {
    voice_app_at(&llm.url(), &tts.url(), extra).await
}

/// The server with Gemini at `llm_url` and TTS at `tts_url`, the STT token set, and `extra`.
pub(crate) async fn voice_app_at(llm_url: &str, tts_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("GEMINI_API_KEY", "k"),
        ("GEMINI_BASE_URL", llm_url),
        ("AI_MODEL", "test-model"),
        ("TTS_SERVICE_URL", tts_url),
        ("SERVICE_AUTH_TOKEN", "tts-token"),
        ("STT_SERVICE_TOKEN", "stt-secret"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

/// A transcript from the STT bot, with `token` as its bearer.
pub(crate) async fn stt(app: &TestApp, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut req = app.client.post(app.url("/api/webhooks/stt")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    crate::helpers::read(req.send().await.unwrap()).await
}

async fn onset(app: &TestApp, room: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url("/api/webhooks/voice_onset"))
        .bearer_auth("stt-secret")
        .json(&json!({"room_name": room, "participant": "alice"}))
        .send()
        .await
        .unwrap();
    crate::helpers::read(resp).await
}

async fn wait_for(mut done: impl FnMut() -> bool, limit: Duration) {
    let until = Instant::now() + limit;
    while !done() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn voice_session(app: &TestApp, user: &str) -> (String, String) {
    let (status, s) = app
        .post("/api/sessions", json!({"user_id": user, "voice": true}))
        .await;
    assert_eq!(status, 200);
    (
        s["session_id"].as_str().unwrap().to_owned(),
        s["room_name"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn the_first_sentence_reaches_tts_before_the_model_has_finished() {
    let llm = gemini(
        &[
            "Hello there. How can I ",
            "help you today? I am ",
            "listening.",
        ],
        Duration::from_millis(400),
    );
    let tts = Recorder::start();
    let app = voice_app(&llm, &tts, &[]).await;
    let (id, room) = voice_session(&app, "alice").await;

    let (status, body) = stt(&app, json!({"event": "final", "roomName": room, "participant": "alice", "transcript": "Hi June", "confidence": 0.93}), Some("stt-secret")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");

    wait_for(|| tts.hits(TTS).len() >= 3, Duration::from_secs(5)).await;
    let hits = tts.hits(TTS);
    let texts: Vec<&str> = hits
        .iter()
        .map(|h| h.body["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Hello there.",
            "How can I help you today?",
            "I am listening."
        ]
    );
    // The model's last chunk is parsed (and spoken) before the fake model notes its end.
    wait_for(|| llm.finished_at().is_some(), Duration::from_secs(5)).await;
    let finished = llm.finished_at().expect("the stream ended");
    assert!(
        hits[0].at < finished,
        "the first sentence went out while the model was still streaming"
    );
    assert!(hits.iter().all(|h| h.body["room_name"] == room.as_str()));
    assert_eq!(hits[0].authorization.as_deref(), Some("Bearer tts-token"));

    // The turn writes its reply to the history after the last TTS answer.
    let until = Instant::now() + Duration::from_secs(5);
    let mut h = app.history(&id).await;
    while h.len() < 2 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        h = app.history(&id).await;
    }
    assert_eq!(h[0], ("user".to_owned(), "Hi June".to_owned()));
    assert_eq!(
        h[1],
        (
            "assistant".to_owned(),
            "Hello there. How can I help you today? I am listening.".to_owned()
        )
    );

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("june_turns_total"), "{text}");
    assert!(text.contains("june_turn_first_tts_seconds"));
}

#[tokio::test]
async fn a_voice_onset_mid_turn_stops_the_rest_and_keeps_what_was_spoken() {
    let llm = gemini(
        &["First sentence. ", "Second sentence. ", "Third one."],
        Duration::from_millis(1200),
    );
    let tts = Recorder::start();
    let app = voice_app(&llm, &tts, &[]).await;
    let (id, room) = voice_session(&app, "bob").await;

    stt(
        &app,
        json!({"event": "final", "room_name": room, "text": "Tell me three things"}),
        Some("stt-secret"),
    )
    .await;
    wait_for(|| !tts.hits(TTS).is_empty(), Duration::from_secs(5)).await;
    let (status, body) = onset(&app, &room).await;
    assert_eq!(status, 200, "{body}");

    // Long enough for the whole stream to have come and gone.
    wait_for(|| llm.finished_at().is_some(), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let texts: Vec<String> = tts
        .hits(TTS)
        .iter()
        .map(|h| h.body["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["First sentence."]);
    let h = app.history(&id).await;
    assert_eq!(
        h.last().unwrap(),
        &("assistant".to_owned(), "First sentence.".to_owned())
    );
}

#[tokio::test]
async fn a_cancel_sent_to_another_replica_stops_the_turn() {
    let llm = gemini(&["One. ", "Two. ", "Three."], Duration::from_millis(1200));
    let tts = Recorder::start();
    let a = voice_app(&llm, &tts, &[]).await;
    let b = a.replica().await;
    let (_, room) = voice_session(&a, "cy").await;

    stt(
        &a,
        json!({"event": "final", "room_name": room, "text": "Count"}),
        Some("stt-secret"),
    )
    .await;
    wait_for(|| !tts.hits(TTS).is_empty(), Duration::from_secs(5)).await;
    let (status, _) = onset(&b, &room).await;
    assert_eq!(status, 200);
    wait_for(|| llm.finished_at().is_some(), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(tts.hits(TTS).len(), 1, "replica A saw the cancel made on B");
}

#[tokio::test]
async fn transcripts_need_the_stt_token_and_are_skipped_for_good_reasons() {
    let llm = gemini(&["Ok."], Duration::ZERO);
    let tts = Recorder::start();
    let app = voice_app(&llm, &tts, &[("JUNE__VOICE__MIN_CONFIDENCE", "0.5")]).await;
    let (_, room) = voice_session(&app, "dee").await;

    let final_ = |text: &str, confidence: f64| json!({"event": "final", "room_name": room, "text": text, "confidence": confidence});
    assert_eq!(stt(&app, final_("hi", 0.9), None).await.0, 401);
    assert_eq!(stt(&app, final_("hi", 0.9), Some("wrong")).await.0, 401);

    let (_, partial) = stt(
        &app,
        json!({"event": "partial", "roomName": room, "transcript": "h"}),
        Some("stt-secret"),
    )
    .await;
    assert_eq!(partial, json!({"status": "accepted", "event": "partial"}));
    let (_, empty) = stt(&app, final_("   ", 0.9), Some("stt-secret")).await;
    assert_eq!(empty, json!({"status": "skipped", "reason": "empty"}));
    let (_, low) = stt(&app, final_("mumble", 0.2), Some("stt-secret")).await;
    assert_eq!(
        low,
        json!({"status": "skipped", "reason": "low_confidence"})
    );
    let (_, first) = stt(&app, final_("hello there", 0.9), Some("stt-secret")).await;
    assert_eq!(first["status"], "accepted");
    let (_, resent) = stt(&app, final_("hello there", 0.9), Some("stt-secret")).await;
    assert_eq!(resent, json!({"status": "skipped", "reason": "duplicate"}));

    let (status, _) = stt(
        &app,
        json!({"event": "final", "room_name": "nobody-here", "text": "x"}),
        Some("stt-secret"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = stt(
        &app,
        json!({"event": "final", "text": "x"}),
        Some("stt-secret"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "room_name");

    // Without a configured token, transcripts are refused outright.
    let closed = crate::helpers::spawn_app().await;
    assert_eq!(stt(&closed, final_("hi", 0.9), Some("")).await.0, 503);
}

#[tokio::test]
async fn the_bots_are_dispatched_once_even_if_track_published_comes_twice_or_to_two_replicas() {
    let llm = gemini(&["Ok."], Duration::ZERO);
    let tts = Recorder::start();
    let a = voice_app(
        &llm,
        &tts,
        &[("ORCHESTRATOR_PUBLIC_URL", "http://june.test:8080")],
    )
    .await;
    let b = a.replica().await;
    let (id, room_name) = voice_session(&a, "eve").await;
    let room = a.lk.room(&room_name).unwrap();
    let person = a.lk.join(&room_name, "eve", true);
    let mic = person.tracks[0].clone();

    // Video first: no dispatch. Then the microphone, three times, to both replicas.
    let video = proto::TrackInfo {
        sid: "TR_cam".into(),
        r#type: proto::TrackType::Video as i32,
        ..Default::default()
    };
    a.send_event(&track_event("track_published", &room, &person, &video))
        .await;
    assert!(a.lk.dispatches().is_empty());
    let deliveries = (0..3).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let event = track_event("track_published", &room, &person, &mic);
        async move { app.send_event(&event).await }
    });
    for (status, _) in futures_util::future::join_all(deliveries).await {
        assert_eq!(status, 200);
    }
    // The claim was settled before the answers; the dispatch itself runs after them.
    for _ in 0..200 {
        if a.lk.dispatches().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dispatches = a.lk.dispatches();
    let agents: Vec<&str> = dispatches.iter().map(|d| d.agent_name.as_str()).collect();
    assert_eq!(agents, ["june-stt", "june-tts"]);
    let meta: Value = serde_json::from_str(&dispatches[0].metadata).unwrap();
    assert_eq!(meta["session_id"], id.as_str());
    assert_eq!(meta["orchestrator_url"], "http://june.test:8080");
    assert_eq!(dispatches[0].room, room_name);

    // A bot's own audio never triggers a dispatch in a non-voice session either.
    let (status, plain) = a.post("/api/sessions", json!({"user_id": "frank"})).await;
    assert_eq!(status, 200);
    let plain_room = a.lk.room(plain["room_name"].as_str().unwrap()).unwrap();
    let p = a.lk.join(&plain_room.name, "frank", true);
    a.send_event(&track_event(
        "track_published",
        &plain_room,
        &p,
        &p.tracks[0],
    ))
    .await;
    assert_eq!(a.lk.dispatches().len(), 2);
}

#[tokio::test]
async fn a_failing_model_ends_the_turn_with_a_note_and_the_next_transcript_still_works() {
    // A stream that never says it finished: a failure, after text already went out.
    let broken = DripServer::start(vec![Chunk::now(delta("Half a ", false))]);
    let tts = Recorder::start();
    let app = voice_app(&broken, &tts, &[("JUNE__AI__MAX_RETRIES", "0")]).await;
    let (id, room) = voice_session(&app, "gil").await;
    stt(
        &app,
        json!({"event": "final", "room_name": room, "text": "first"}),
        Some("stt-secret"),
    )
    .await;
    let mut h = Vec::new();
    for _ in 0..100 {
        h = app.history(&id).await;
        if h.iter().any(|(role, _)| role == "system") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        h.iter()
            .any(|(role, text)| role == "system" && text.contains("failed")),
        "{h:?}"
    );
    let (status, body) = stt(
        &app,
        json!({"event": "final", "room_name": room, "text": "second"}),
        Some("stt-secret"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "accepted");
}
