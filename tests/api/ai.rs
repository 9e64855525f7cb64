//! §2.3 AI end to end: the real server against wiremock Gemini and TTS.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const STREAM: &str = "/v1beta/models/test-model:streamGenerateContent";

fn sse_reply(deltas: &[&str]) -> String {
    deltas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut c = json!({"content": {"role": "model", "parts": [{"text": d}]}});
            if i + 1 == deltas.len() {
                c["finishReason"] = json!("STOP");
            }
            format!("data: {}\r\n\r\n", json!({"candidates": [c]}))
        })
        .collect()
}

async fn gemini_saying(deltas: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(query_param("alt", "sse"))
        .and(header("x-goog-api-key", "test-gemini-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse_reply(deltas)),
        )
        .mount(&server)
        .await;
    server
}

async fn tts_accepting() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/tts/synthesize"))
        .and(header("authorization", "Bearer tts-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "queued"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/healthz"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

async fn app_with(
    gemini: &MockServer,
    tts: Option<&MockServer>,
    extra: &[(&str, &str)],
) -> TestApp {
    let gemini_url = gemini.uri();
    let tts_url = tts.map(|t| t.uri()).unwrap_or_default();
    let mut env = vec![
        ("GEMINI_API_KEY", "test-gemini-key"),
        ("GEMINI_BASE_URL", gemini_url.as_str()),
        ("AI_MODEL", "test-model"),
        ("JUNE__AI__BACKOFF_MS", "1"),
        ("JUNE__AI__MAX_RETRIES", "1"),
        ("TTS_SERVICE_URL", tts_url.as_str()),
        ("SERVICE_AUTH_TOKEN", "tts-token"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

#[tokio::test]
async fn chat_answers_json_on_both_routes_and_keeps_the_history() {
    let gemini = gemini_saying(&["Hello", " Alice."]).await;
    let app = app_with(&gemini, None, &[]).await;
    let s = app.create_session("alice").await;
    let id = s["session_id"].as_str().unwrap();

    let (status, body) = app
        .post(
            "/api/ai/chat",
            json!({"session_id": id, "text": "Hi there"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session_id"], id);
    assert_eq!(body["text"], "Hello Alice.");
    assert!(body["audio_url"].is_null());
    assert!(body["processing_time_ms"].as_u64().is_some());

    let (status, body) = app
        .post(
            "/api/ai/process",
            json!({"session_id": id, "text": "Again"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["text"], "Hello Alice.");

    assert_eq!(
        app.history(id).await,
        [
            ("user".to_owned(), "Hi there".to_owned()),
            ("assistant".to_owned(), "Hello Alice.".to_owned()),
            ("user".to_owned(), "Again".to_owned()),
            ("assistant".to_owned(), "Hello Alice.".to_owned()),
        ]
    );
    // The second request carried the first turn as history.
    let requests = gemini.received_requests().await.unwrap();
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(second["contents"].as_array().unwrap().len(), 3);
    assert_eq!(second["contents"][1]["role"], "model");
}

#[tokio::test]
async fn chat_streams_sse_deltas_before_done() {
    let gemini = gemini_saying(&["One.", " Two.", " Three."]).await;
    let app = app_with(&gemini, None, &[]).await;
    let s = app.create_session("bob").await;
    let id = s["session_id"].as_str().unwrap();

    let resp = app
        .client
        .post(app.url("/api/ai/chat"))
        .header("accept", "text/event-stream")
        .json(&json!({"session_id": id, "text": "Count"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = resp.text().await.unwrap();
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = "";
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (name, data)
        })
        .collect();
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(n, _)| *n == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["One.", " Two.", " Three."]);
    let (last, done) = events.last().unwrap();
    assert_eq!(*last, "done");
    assert_eq!(done["text"], "One. Two. Three.");
    assert_eq!(events.len(), 4, "three deltas, then done");
}

#[tokio::test]
async fn speak_sends_the_sentences_to_tts_in_order() {
    let gemini = gemini_saying(&["Sure! The ", "weather is fine", ". Bring a hat."]).await;
    let tts = tts_accepting().await;
    let app = app_with(&gemini, Some(&tts), &[]).await;
    let s = app.create_session("carol").await;
    let id = s["session_id"].as_str().unwrap();

    let (status, body) = app
        .post(
            "/api/ai/chat",
            json!({"session_id": id, "text": "Weather?", "speak": true, "language": "en"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent: Vec<Value> = tts
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/api/tts/synthesize")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let texts: Vec<&str> = sent.iter().map(|b| b["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Sure!", "The weather is fine.", "Bring a hat."]);
    assert!(
        sent.iter()
            .all(|b| b["room_name"] == s["room_name"] && b["language"] == "en")
    );
}

#[tokio::test]
async fn without_a_gemini_key_chat_is_503_and_the_user_turn_is_kept_with_a_note() {
    let app = spawn_app().await;
    let s = app.create_session("dan").await;
    let id = s["session_id"].as_str().unwrap();
    let (status, body) = app
        .post("/api/ai/chat", json!({"session_id": id, "text": "Anyone?"}))
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "llm_not_configured");
    let h = app.history(id).await;
    assert_eq!(h[0], ("user".to_owned(), "Anyone?".to_owned()));
    assert_eq!(h[1].0, "system");
}

#[tokio::test]
async fn gemini_failing_after_retries_is_a_502_with_detail_and_a_system_note() {
    let gemini = MockServer::start().await;
    Mock::given(path(STREAM))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"code": 503, "message": "overloaded"}})),
        )
        .expect(2)
        .mount(&gemini)
        .await;
    let app = app_with(&gemini, None, &[]).await;
    let s = app.create_session("eve").await;
    let id = s["session_id"].as_str().unwrap();
    let (status, body) = app
        .post("/api/ai/chat", json!({"session_id": id, "text": "Hello?"}))
        .await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "llm_upstream_error");
    assert!(body["detail"].as_str().unwrap().contains("overloaded"));
    let h = app.history(id).await;
    assert_eq!(h.len(), 2);
    assert!(h[1].1.contains("overloaded"));
}

#[tokio::test]
async fn bad_chat_requests_are_404_or_422() {
    let gemini = gemini_saying(&["x"]).await;
    let app = app_with(&gemini, None, &[]).await;
    let (status, _) = app
        .post(
            "/api/ai/chat",
            json!({"session_id": uuid::Uuid::new_v4(), "text": "hi"}),
        )
        .await;
    assert_eq!(status, 404);
    let s = app.create_session("fred").await;
    let (status, body) = app
        .post(
            "/api/ai/chat",
            json!({"session_id": s["session_id"], "text": "  "}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "text");
    let (status, body) = app
        .post("/api/ai/chat", json!({"session_id": s["session_id"]}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "text");
}

#[tokio::test]
async fn tts_publish_reports_what_tts_really_did() {
    let gemini = gemini_saying(&["x"]).await;
    let tts = tts_accepting().await;
    let app = app_with(&gemini, Some(&tts), &[]).await;
    let (status, body) = app
        .post(
            "/api/tts/publish",
            json!({"room_name": "room-1", "text": "Hello", "speaker": "nova", "speed": 1.1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "published");
    assert_eq!(body["tts"]["status"], "queued");
    let sent: Value =
        serde_json::from_slice(&tts.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["voice_id"], "nova");

    let broken = MockServer::start().await;
    Mock::given(path("/api/tts/synthesize"))
        .respond_with(ResponseTemplate::new(500).set_body_string("no voice"))
        .mount(&broken)
        .await;
    let app = app_with(&gemini, Some(&broken), &[]).await;
    let (status, body) = app
        .post(
            "/api/tts/publish",
            json!({"room_name": "r", "text": "Hello"}),
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(body["code"], "tts_failed");

    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/api/tts/publish",
            json!({"room_name": "r", "text": "Hello"}),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "tts_not_configured");
}

#[tokio::test]
async fn readyz_reports_the_model_configured_and_a_missing_tts_as_degraded_only() {
    let gemini = gemini_saying(&["x"]).await;
    let app = app_with(
        &gemini,
        None,
        &[
            ("TTS_SERVICE_URL", "http://127.0.0.1:9"),
            ("JUNE__TTS__TIMEOUT_MS", "200"),
        ],
    )
    .await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["llm"]["status"], "configured");
    assert_eq!(body["checks"]["tts"]["status"], "degraded");
    assert_eq!(body["checks"]["stt"]["status"], "not_configured");
    // No call was made to Gemini for readiness.
    assert!(gemini.received_requests().await.unwrap().is_empty());
}
