//! The Gemini client against wiremock (request shape, retries, errors) and the drip server
//! (SSE split at awkward places, errors mid-stream).

use std::time::Duration;

use async_trait::async_trait;
use june_ai_adapters::{GeminiChat, GeminiConfig, http_client};
use june_domain::TokenUsage;
use june_domain::ports::{
    ChatMessage, ChatModel, ChatRequest, ChatRole, DeltaSink, FinishReason, Flow, LlmError,
};
use june_testkit::drip::{Chunk, DripServer};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MODEL: &str = "gemini-test-lite";
const GENERATE: &str = "/v1beta/models/gemini-test-lite:generateContent";
const STREAM: &str = "/v1beta/models/gemini-test-lite:streamGenerateContent";

fn gemini(base: &str) -> GeminiChat {
    GeminiChat::new(
        http_client(Duration::from_secs(1)).unwrap(),
        GeminiConfig {
            base_url: base.to_owned(),
            api_key: SecretString::from("test-key-123"),
            model: MODEL.into(),
            temperature: Some(0.5),
            max_output_tokens: Some(256),
            timeout: Duration::from_millis(500),
            max_retries: 2,
            backoff: Duration::from_millis(1),
        },
    )
}

fn request() -> ChatRequest {
    ChatRequest {
        system_instruction: "Be brief.".into(),
        messages: vec![
            ChatMessage {
                role: ChatRole::User,
                text: "Hi".into(),
            },
            ChatMessage {
                role: ChatRole::Model,
                text: "Hello!".into(),
            },
            ChatMessage {
                role: ChatRole::User,
                text: "Weather?".into(),
            },
        ],
    }
}

fn reply(text: &str, finish: Option<&str>) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": [{"text": text}]}});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    json!({"candidates": [candidate]})
}

#[derive(Default)]
struct Deltas(Vec<String>, Vec<TokenUsage>);

#[async_trait]
impl DeltaSink for Deltas {
    async fn push(&mut self, delta: &str) -> Flow {
        self.0.push(delta.to_owned());
        Flow::Continue
    }

    fn usage(&mut self, usage: TokenUsage) {
        self.1.push(usage);
    }
}

#[tokio::test]
async fn generate_sends_the_documented_request_shape() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GENERATE))
        .and(header("x-goog-api-key", "test-key-123"))
        .and(body_partial_json(json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello!"}]},
                {"role": "user", "parts": [{"text": "Weather?"}]},
            ],
            "generationConfig": {"temperature": 0.5, "maxOutputTokens": 256},
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(reply("Sunny.", Some("STOP"))))
        .expect(1)
        .mount(&server)
        .await;

    let out = gemini(&server.uri()).generate(&request()).await.unwrap();
    assert_eq!(out.text, "Sunny.");
    assert_eq!(out.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn a_429_is_retried_honouring_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"error": {"code": 429, "message": "slow down"}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(GENERATE))
        .respond_with(ResponseTemplate::new(200).set_body_json(reply("Fine.", Some("STOP"))))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        gemini(&server.uri())
            .generate(&request())
            .await
            .unwrap()
            .text,
        "Fine."
    );
}

#[tokio::test]
async fn persistent_503s_give_up_after_the_retries() {
    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"code": 503, "message": "overloaded"}})),
        )
        .expect(3) // the first attempt and two retries
        .mount(&server)
        .await;
    let err = gemini(&server.uri())
        .generate(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Upstream(m) if m.contains("overloaded")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_400_is_not_retried_and_a_404_is_a_missing_model() {
    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"code": 400, "message": "bad contents"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = gemini(&server.uri())
        .generate(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Rejected(m) if m.contains("bad contents")),
        "{err:?}"
    );

    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        gemini(&server.uri())
            .generate(&request())
            .await
            .unwrap_err(),
        LlmError::ModelNotFound(MODEL.into())
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(Duration::from_secs(3))
                .set_body_json(reply("late", Some("STOP"))),
        )
        .mount(&server)
        .await;
    assert_eq!(
        gemini(&server.uri())
            .generate(&request())
            .await
            .unwrap_err(),
        LlmError::Timeout
    );
}

#[tokio::test]
async fn safety_blocks_and_empty_stops_are_typed_errors_not_empty_replies() {
    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"promptFeedback": {"blockReason": "SAFETY"}})),
        )
        .mount(&server)
        .await;
    assert_eq!(
        gemini(&server.uri())
            .generate(&request())
            .await
            .unwrap_err(),
        LlmError::Blocked("SAFETY".into())
    );

    // STOP with no text is retried, and reported as empty once the retries are spent.
    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(ResponseTemplate::new(200).set_body_json(reply("", Some("STOP"))))
        .expect(3)
        .mount(&server)
        .await;
    assert_eq!(
        gemini(&server.uri())
            .generate(&request())
            .await
            .unwrap_err(),
        LlmError::Empty
    );
}

#[tokio::test]
async fn the_stream_request_asks_for_sse_and_deltas_arrive_in_order() {
    let server = MockServer::start().await;
    let body = [
        format!("data: {}\r\n\r\n", reply("Hello", None)),
        format!("data: {}\r\n\r\n", reply(" there", None)),
        format!("data: {}\r\n\r\n", reply(".", Some("STOP"))),
    ]
    .concat();
    Mock::given(method("POST"))
        .and(path(STREAM))
        .and(query_param("alt", "sse"))
        .and(header("x-goog-api-key", "test-key-123"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(body),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut deltas = Deltas::default();
    let out = gemini(&server.uri())
        .stream(&request(), &mut deltas)
        .await
        .unwrap();
    assert_eq!(deltas.0, ["Hello", " there", "."]);
    assert_eq!(out.text, "Hello there.");
}

/// `usageMetadata` comes on several chunks, growing: the last one wins, the sink hears each,
/// and the reply names the model version Gemini reported.
#[tokio::test]
async fn stream_usage_is_the_last_reported_and_the_model_is_named() {
    let server = MockServer::start().await;
    let with = |mut v: Value, prompt: u64, out: u64| {
        v["usageMetadata"] = json!({"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out});
        v["modelVersion"] = json!("gemini-test-lite-001");
        v
    };
    let body = [
        format!("data: {}\r\n\r\n", with(reply("Hi", None), 12, 1)),
        format!("data: {}\r\n\r\n", reply(" you", None)),
        format!("data: {}\r\n\r\n", with(reply(".", Some("STOP")), 12, 3)),
    ]
    .concat();
    Mock::given(path(STREAM))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(body),
        )
        .mount(&server)
        .await;
    let mut deltas = Deltas::default();
    let out = gemini(&server.uri())
        .stream(&request(), &mut deltas)
        .await
        .unwrap();
    let usage = |prompt, output| TokenUsage {
        prompt_tokens: prompt,
        output_tokens: output,
        total_tokens: prompt + output,
    };
    assert_eq!(out.usage, usage(12, 3));
    assert_eq!(deltas.1, [usage(12, 1), usage(12, 3)]);
    assert_eq!(out.model, "gemini-test-lite-001");

    // generateContent: the same fields; without them, zero usage and the configured model.
    let server = MockServer::start().await;
    Mock::given(path(GENERATE))
        .respond_with(ResponseTemplate::new(200).set_body_json(reply("Sunny.", Some("STOP"))))
        .mount(&server)
        .await;
    let out = gemini(&server.uri()).generate(&request()).await.unwrap();
    assert_eq!(
        (out.usage, out.model.as_str()),
        (TokenUsage::default(), MODEL)
    );
}

/// CRLF-terminated events split mid-line and mid-JSON across network chunks.
#[tokio::test]
async fn sse_events_split_across_chunk_boundaries_are_reassembled() {
    let full = [
        format!("data: {}\r\n\r\n", reply("Bonjour", None)),
        format!("data: {}\r\n\r\n", reply(" à tous", None)),
        format!("data: {}\r\n\r\n", reply(" !", Some("STOP"))),
    ]
    .concat()
    .into_bytes();
    // Cut at every 7 bytes (splitting UTF-8 "à" too, somewhere) and once between \r and \n.
    let crlf = full.windows(2).position(|w| w == b"\r\n").unwrap() + 1;
    let mut chunks = vec![Chunk::now(full[..crlf].to_vec())];
    chunks.extend(
        full[crlf..]
            .chunks(7)
            .map(|c| Chunk::after(Duration::from_millis(1), c.to_vec())),
    );
    let drip = DripServer::start(chunks);

    let mut deltas = Deltas::default();
    let out = gemini(&drip.url())
        .stream(&request(), &mut deltas)
        .await
        .unwrap();
    assert_eq!(deltas.0, ["Bonjour", " à tous", " !"]);
    assert_eq!(out.text, "Bonjour à tous !");
    let req = &drip.received()[0];
    assert!(
        req.request_line.contains(":streamGenerateContent?alt=sse"),
        "{}",
        req.request_line
    );
}

#[tokio::test]
async fn an_error_after_200_without_data_prefix_is_an_error_not_a_short_answer() {
    let drip = DripServer::start(vec![
        Chunk::now(format!("data: {}\r\n\r\n", reply("Half an", None))),
        Chunk::now(
            "{\"error\":{\"code\":503,\"message\":\"model overloaded\",\"status\":\"UNAVAILABLE\"}}\n",
        ),
    ]);
    let mut deltas = Deltas::default();
    let err = gemini(&drip.url())
        .stream(&request(), &mut deltas)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Upstream(m) if m.contains("model overloaded")),
        "{err:?}"
    );
    // Text already went out, so it was not retried (that would repeat it).
    assert_eq!(drip.received().len(), 1);
}

#[tokio::test]
async fn a_stream_without_finish_reason_is_retried_before_any_text_then_reported() {
    let drip = DripServer::start(vec![Chunk::now("data: {\"candidates\":[]}\r\n\r\n")]);
    let mut deltas = Deltas::default();
    let err = gemini(&drip.url())
        .stream(&request(), &mut deltas)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LlmError::Upstream(m) if m.contains("finishReason")),
        "{err:?}"
    );
    assert_eq!(
        drip.received().len(),
        3,
        "nothing was emitted, so it was retried"
    );
    assert!(deltas.0.is_empty());
}
