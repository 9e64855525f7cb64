//! OpenTelemetry end to end (design §8.4): the real server exports its spans over OTLP/HTTP to
//! a fake collector; a caller's `traceparent` is continued; a voice turn is one trace from
//! the STT request through Gemini to TTS, and those services see our `traceparent`.
//!
//! Its own test binary: the tracer provider and the subscriber are process-global, so this
//! one is installed once here, pointing at the collector, and no other suite shares it.

mod collector;
// The api suite's `spawn_app` and friends; this suite uses a few of them.
#[allow(dead_code, unused_imports)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::collections::HashMap;
use std::sync::LazyLock;

use collector::{Collector, SeenSpan};
use helpers::{spawn_app, spawn_app_with};
use june_orchestrator::telemetry::{OtelSettings, Telemetry, init_with};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// The collector, and tracing exporting to it (installed once for the process).
static TRACED: LazyLock<(Collector, Telemetry)> = LazyLock::new(|| {
    let collector = Collector::start();
    let env: HashMap<String, String> = [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.endpoint()),
        ("OTEL_SERVICE_NAME", "june-otel-test".to_owned()),
        // Export soon after a span ends, so the tests wait little.
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let otel = OtelSettings::from_env(&env)
        .expect("valid settings")
        .expect("export on");
    let telemetry = if std::env::var("TEST_LOG").is_ok() {
        init_with("info", false, std::io::stdout, Some(&otel))
    } else {
        init_with("info", false, std::io::sink, Some(&otel))
    }
    .expect("tracing starts");
    assert!(telemetry.exporting(), "no other subscriber came first");
    (collector, telemetry)
});

fn collector() -> &'static Collector {
    &TRACED.0
}

/// 32 and 16 random hex digits: a trace id and a span id of a caller.
fn caller_ids() -> (String, String) {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (trace, span)
}

/// The server span of the request sent with `x-request-id: id`.
fn server_span(spans: &[SeenSpan], request_id: &str) -> Option<SeenSpan> {
    spans
        .iter()
        .find(|s| s.kind == SERVER && s.attribute("request_id") == Some(request_id))
        .cloned()
}

/// Whether `span` descends from the span with id `ancestor` (within `spans`).
fn descends_from(spans: &[SeenSpan], span: &SeenSpan, ancestor: &str) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..32 {
        if parent == ancestor {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test]
async fn a_session_create_is_exported_in_the_callers_trace() {
    // Arrange
    LazyLock::force(&TRACED);
    let app = spawn_app().await;
    let (trace, caller) = caller_ids();

    // Act
    let resp = app
        .client
        .post(app.url("/api/sessions"))
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .header("tracestate", "vendor=opaque")
        .json(&json!({"user_id": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Assert: the request span continues the caller's trace, under the caller's span, and
    // the LiveKit call made for it is in the same trace, under it.
    let spans = collector()
        .wait_for(|all| {
            let ours = || all.iter().filter(|s| s.trace_id == trace);
            ours().any(|s| s.kind == SERVER) && ours().count() >= 2
        })
        .await;
    let ours: Vec<SeenSpan> = spans.into_iter().filter(|s| s.trace_id == trace).collect();
    let server = ours
        .iter()
        .find(|s| s.kind == SERVER)
        .unwrap_or_else(|| panic!("no server span in the caller's trace: {ours:#?}"));
    assert_eq!(server.name, "POST /api/sessions");
    assert_eq!(server.parent_span_id, caller);
    assert_eq!(server.attribute("http.response.status_code"), Some("200"));
    assert_eq!(server.attribute("trace_id"), Some(trace.as_str()));
    assert_eq!(server.service_name, "june-otel-test");
    assert!(
        ours.iter()
            .any(|s| s.span_id != server.span_id && descends_from(&ours, s, &server.span_id)),
        "the session's own work is in the trace: {ours:#?}"
    );
}

#[tokio::test]
async fn a_voice_turn_is_one_trace_from_the_stt_request_through_gemini_to_tts() {
    // Arrange: Gemini streams a two-sentence reply; TTS accepts every sentence.
    LazyLock::force(&TRACED);
    let gemini = MockServer::start().await;
    let sse: String = [("Hello there. ", false), ("How are you?", true)]
        .iter()
        .map(|(text, last)| {
            let mut c = json!({"content": {"role": "model", "parts": [{"text": text}]}});
            if *last {
                c["finishReason"] = json!("STOP");
            }
            format!("data: {}\r\n\r\n", json!({"candidates": [c]}))
        })
        .collect();
    Mock::given(method("POST"))
        .and(path("/v1beta/models/test-model:streamGenerateContent"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse),
        )
        .mount(&gemini)
        .await;
    let tts = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/tts/synthesize"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .mount(&tts)
        .await;
    let (gemini_url, tts_url) = (gemini.uri(), tts.uri());
    let app = spawn_app_with(&[
        ("GEMINI_API_KEY", "k"),
        ("GEMINI_BASE_URL", gemini_url.as_str()),
        ("AI_MODEL", "test-model"),
        ("TTS_SERVICE_URL", tts_url.as_str()),
        ("SERVICE_AUTH_TOKEN", "tts-token"),
        ("STT_SERVICE_TOKEN", "stt-secret"),
    ])
    .await;
    let create_id = uuid::Uuid::new_v4().to_string();
    let resp = app
        .client
        .post(app.url("/api/sessions"))
        .header("x-request-id", &create_id)
        .json(&json!({"user_id": "alice", "voice": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let session: serde_json::Value = resp.json().await.unwrap();
    let room = session["room_name"].as_str().unwrap().to_owned();

    // Act: the STT bot posts a final transcript (no traceparent: the trace starts here).
    let stt_id = uuid::Uuid::new_v4().to_string();
    let resp = app
        .client
        .post(app.url("/api/webhooks/stt"))
        .header("x-request-id", &stt_id)
        .bearer_auth("stt-secret")
        .json(
            &json!({"event": "final", "roomName": room, "participant": "alice",
                      "transcript": "Hi June", "confidence": 0.93}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Assert: the STT request's trace holds the Gemini call and both TTS calls, each below
    // the STT request's span.
    let ready = |all: &[SeenSpan]| {
        server_span(all, &create_id).is_some()
            && server_span(all, &stt_id).is_some_and(|stt| {
                all.iter()
                    .filter(|s| s.trace_id == stt.trace_id && s.kind == CLIENT)
                    .filter(|s| s.name == "POST /api/tts/synthesize")
                    .count()
                    >= 2
            })
    };
    let spans = collector().wait_for(ready).await;
    let create = server_span(&spans, &create_id).expect("the session create's span");
    assert_eq!(create.name, "POST /api/sessions");
    let stt = server_span(&spans, &stt_id).expect("the STT request's span");
    assert_eq!(stt.name, "POST /api/webhooks/stt");
    assert_eq!(
        stt.parent_span_id, "",
        "no caller: the trace starts at our request"
    );
    assert_ne!(stt.trace_id, create.trace_id, "one trace per request");
    let turn: Vec<SeenSpan> = spans
        .iter()
        .filter(|s| s.trace_id == stt.trace_id)
        .cloned()
        .collect();
    let gemini_span = turn
        .iter()
        .find(|s| s.kind == CLIENT && s.name == "POST gemini")
        .unwrap_or_else(|| panic!("no Gemini client span in the turn's trace: {turn:#?}"));
    let tts_spans: Vec<&SeenSpan> = turn
        .iter()
        .filter(|s| s.kind == CLIENT && s.name == "POST /api/tts/synthesize")
        .collect();
    assert_eq!(tts_spans.len(), 2, "{turn:#?}");
    for span in std::iter::once(gemini_span).chain(tts_spans.iter().copied()) {
        assert!(
            descends_from(&turn, span, &stt.span_id),
            "{span:#?} is not below the STT request in {turn:#?}"
        );
        assert_eq!(span.attribute("http.response.status_code"), Some("200"));
    }

    // Gemini and TTS were called with that trace's traceparent, each naming its client span.
    let carried = |requests: Vec<wiremock::Request>| -> Vec<String> {
        requests
            .iter()
            .filter_map(|r| r.headers.get("traceparent"))
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let to_gemini = carried(gemini.received_requests().await.unwrap());
    assert_eq!(
        to_gemini,
        [format!("00-{}-{}-01", stt.trace_id, gemini_span.span_id)]
    );
    let to_tts = carried(tts.received_requests().await.unwrap());
    let expected: Vec<String> = tts_spans
        .iter()
        .map(|s| format!("00-{}-{}-01", stt.trace_id, s.span_id))
        .collect();
    assert_eq!(to_tts.len(), 2, "{to_tts:?}");
    for header in &to_tts {
        assert!(expected.contains(header), "{header} not in {expected:?}");
    }
}
