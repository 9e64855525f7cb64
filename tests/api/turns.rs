//! Issue #19 parts 1–3 end to end: turn records of voice and chat turns through
//! `GET /api/sessions/{id}/turns` and `/turns/{n}`, the session's turn summary, ownership,
//! pagination, and the token and stage metrics. Gemini is wiremock streaming with
//! `usageMetadata`; TTS is the recorder.

use std::time::{Duration, Instant};

use june_testkit::FakeIdp;
use june_testkit::recorder::Recorder;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, call};

const STREAM: &str = "/v1beta/models/test-model:streamGenerateContent";
const TTS: &str = "/api/tts/synthesize";

/// A streamed reply of `deltas` whose chunks report growing usage (the last one wins:
/// 21 prompt, 8 output, 29 total) and the model version.
fn sse_with_usage(deltas: &[&str]) -> String {
    let n = deltas.len();
    deltas
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut c = json!({"content": {"role": "model", "parts": [{"text": d}]}});
            if i + 1 == n {
                c["finishReason"] = json!("STOP");
            }
            let out = if i + 1 == n { 8 } else { i as u64 + 1 };
            let chunk = json!({
                "candidates": [c],
                "usageMetadata": {"promptTokenCount": 21, "candidatesTokenCount": out, "totalTokenCount": 21 + out},
                "modelVersion": "test-model-007",
            });
            format!("data: {chunk}\r\n\r\n")
        })
        .collect()
}

pub(crate) async fn gemini(deltas: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(query_param("alt", "sse"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse_with_usage(deltas)),
        )
        .mount(&server)
        .await;
    server
}

pub(crate) async fn app(llm: &MockServer, tts: &Recorder, extra: &[(&str, &str)]) -> TestApp {
    crate::voice::voice_app_at(&llm.uri(), &tts.url(), extra).await
}

pub(crate) async fn stt(app: &TestApp, body: Value) {
    let (status, reply) = call(
        app,
        "POST",
        "/api/webhooks/stt",
        Some("stt-secret"),
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

/// The session's turns once `n` are stored (a voice turn runs after the webhook's answer).
async fn turns_when(app: &TestApp, id: &str, n: usize) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.get(&format!("/api/sessions/{id}/turns")).await;
        assert_eq!(status, 200, "{body}");
        if body["turns"].as_array().unwrap().len() >= n || Instant::now() > until {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_voice_turn_is_recorded_and_served_with_its_summary_and_metrics() {
    // Arrange
    let llm = gemini(&["Hello there. How can I ", "help you today?"]).await;
    let tts = Recorder::start();
    let app = app(&llm, &tts, &[]).await;
    let (status, s) = app
        .post("/api/sessions", json!({"user_id": "alice", "voice": true}))
        .await;
    assert_eq!(status, 200, "{s}");
    let (id, room) = (
        s["session_id"].as_str().unwrap(),
        s["room_name"].as_str().unwrap(),
    );

    // Act: a partial, then the final.
    stt(
        &app,
        json!({"event": "partial", "room_name": room, "text": "Hi"}),
    )
    .await;
    stt(
        &app,
        json!({"event": "final", "room_name": room, "text": "Hi June", "confidence": 0.93, "language": "en"}),
    )
    .await;
    let list = turns_when(&app, id, 1).await;

    // Assert: the record as §8.3 shapes it.
    let turns = list["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 1, "{list}");
    assert!(list["next_cursor"].is_null());
    let t = &turns[0];
    assert_eq!(t["turn"], 1);
    assert_eq!(t["source"], "voice");
    assert_eq!(t["heard"]["text"], "Hi June");
    assert!((t["heard"]["confidence"].as_f64().unwrap() - 0.93).abs() < 1e-6);
    assert_eq!(t["heard"]["language"], "en");
    assert_eq!(t["heard"]["partials"]["count"], 1);
    assert_eq!(
        t["reply"],
        json!({"sentences": ["Hello there.", "How can I help you today?"], "text": "Hello there. How can I help you today?"})
    );
    assert_eq!(t["outcome"], "completed");
    assert!(t.get("interrupted").is_none() && t.get("error").is_none());
    assert_eq!(t["model"], "test-model-007");
    assert_eq!(
        t["usage"],
        json!({"prompt_tokens": 21, "output_tokens": 8, "total_tokens": 29})
    );
    let ms = |stage: &str| {
        t["timings_ms"][stage]
            .as_u64()
            .unwrap_or_else(|| panic!("{stage}: {t}"))
    };
    let stages = [
        "first_token",
        "first_sentence",
        "first_tts_request",
        "first_tts_done",
        "last_tts_done",
        "end",
    ];
    let order: Vec<u64> = stages.iter().map(|s| ms(s)).collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "stages in order: {order:?}"
    );
    assert!(t["started_at"].as_str().unwrap().ends_with('Z'));
    let sent: Vec<Value> = tts
        .hits(TTS)
        .iter()
        .map(|h| h.body["text"].clone())
        .collect();
    assert_eq!(
        sent,
        [json!("Hello there."), json!("How can I help you today?")]
    );

    let (status, one) = app.get(&format!("/api/sessions/{id}/turns/1")).await;
    assert_eq!((status, &one), (200, t));
    let (status, missing) = app.get(&format!("/api/sessions/{id}/turns/2")).await;
    assert_eq!(
        (status, missing["code"].as_str()),
        (404, Some("turn_not_found"))
    );
    let (status, _) = app.get(&format!("/api/sessions/{id}/turns/first")).await;
    assert_eq!(status, 404);

    let (status, session) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(session["summary"]["turns"], 1);
    assert_eq!(session["summary"]["total_tokens"], 29);
    assert_eq!(
        session["summary"]["first_tts_p50_ms"],
        t["timings_ms"]["first_tts_request"]
    );

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("june_llm_tokens_total{kind=\"prompt\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("june_llm_tokens_total{kind=\"output\"}"));
    for stage in stages {
        let stage_label = format!("stage=\"{stage}\"");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("june_turn_stage_seconds_count{")
                    && l.contains(&stage_label)
                    && l.contains("source=\"voice\"")),
            "stage {stage} in {metrics}"
        );
    }
}

#[tokio::test]
async fn chat_turns_are_recorded_and_paged_newest_first() {
    let llm = gemini(&["Fine, ", "thanks."]).await;
    let tts = Recorder::start();
    let app = app(&llm, &tts, &[]).await;
    let s = app.create_session("carol").await;
    let id = s["session_id"].as_str().unwrap();
    for text in ["one", "two", "three"] {
        let (status, body) = app
            .post("/api/ai/chat", json!({"session_id": id, "text": text}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let (status, page) = app.get(&format!("/api/sessions/{id}/turns?limit=2")).await;
    assert_eq!(status, 200, "{page}");
    let numbers = |p: &Value| -> Vec<u64> {
        p["turns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["turn"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(numbers(&page), [3, 2]);
    assert_eq!(page["next_cursor"], "2");
    let first = &page["turns"][0];
    assert_eq!(first["source"], "chat");
    assert_eq!(first["heard"]["text"], "three");
    assert_eq!(first["heard"]["confidence"], Value::Null);
    assert_eq!(first["reply"]["sentences"], json!(["Fine, thanks."]));
    assert_eq!(first["outcome"], "completed");
    assert_eq!(first["usage"]["total_tokens"], 29);
    assert!(
        first["timings_ms"]["first_tts_request"].is_null(),
        "chat without speak sends nothing to TTS"
    );

    let (_, rest) = app
        .get(&format!("/api/sessions/{id}/turns?limit=2&cursor=2"))
        .await;
    assert_eq!(numbers(&rest), [1]);
    assert!(rest["next_cursor"].is_null());

    for bad in ["limit=0", "limit=101", "cursor=abc", "cursor=-1"] {
        let (status, body) = app.get(&format!("/api/sessions/{id}/turns?{bad}")).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (_, session) = app.get(&format!("/api/sessions/{id}")).await;
    assert_eq!(session["summary"]["turns"], 3);
    assert_eq!(session["summary"]["total_tokens"], 87);
    assert!(session["summary"]["first_tts_p50_ms"].is_null());
}

#[tokio::test]
async fn another_users_turns_are_not_found_as_their_other_session_routes_are() {
    let idp = FakeIdp::start().await;
    let issuer = idp.issuer();
    let llm = gemini(&["Yes."]).await;
    let tts = Recorder::start();
    let app = app(
        &llm,
        &tts,
        &[
            ("AUTH_MODE", "oidc"),
            ("OIDC_ISSUER", issuer.as_str()),
            ("OIDC_AUDIENCE", "june-orchestrator"),
        ],
    )
    .await;
    let (alice, bob) = (idp.token("alice", &["user"]), idp.token("bob", &["user"]));
    let (status, s) = call(&app, "POST", "/api/sessions", Some(&alice), Some(json!({}))).await;
    assert_eq!(status, 200, "{s}");
    let id = s["session_id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        "POST",
        "/api/ai/chat",
        Some(&alice),
        Some(json!({"session_id": id, "text": "Hi"})),
    )
    .await;
    assert_eq!(status, 200);

    let (status, mine) = call(
        &app,
        "GET",
        &format!("/api/sessions/{id}/turns"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(mine["turns"].as_array().unwrap().len(), 1);
    let (_, history) = call(
        &app,
        "GET",
        &format!("/api/sessions/{id}/history"),
        Some(&bob),
        None,
    )
    .await;
    for p in [
        format!("/api/sessions/{id}/turns"),
        format!("/api/sessions/{id}/turns/1"),
    ] {
        let (status, body) = call(&app, "GET", &p, Some(&bob), None).await;
        assert_eq!(status, 404, "bob GET {p}: {body}");
        assert_eq!(body, history, "the same answer as bob's GET of the history");
    }
    let (status, _) = call(
        &app,
        "GET",
        &format!("/api/sessions/{id}/turns"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
}
