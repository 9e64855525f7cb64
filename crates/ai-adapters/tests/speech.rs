//! The TTS and STT clients against wiremock.

use std::time::Duration;

use june_ai_adapters::{HttpSttClient, HttpTtsClient, http_client};
use june_domain::ports::{SpeechError, SpeechRequest, SpeechToText, TextToSpeech};
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn tts(base: &str, timeout: Duration) -> HttpTtsClient {
    HttpTtsClient::new(
        http_client(Duration::from_secs(1)).unwrap(),
        base,
        Some(SecretString::from("svc-token")),
        timeout,
    )
}

fn speech() -> SpeechRequest {
    SpeechRequest {
        text: "Hello there.".into(),
        room_name: "room-a".into(),
        voice_id: "nova".into(),
        language: "en".into(),
        speed: 1.25,
    }
}

#[tokio::test]
async fn synthesize_posts_the_june_tts_contract_with_the_service_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/tts/synthesize"))
        .and(header("authorization", "Bearer svc-token"))
        .and(body_json(json!({
            "text": "Hello there.", "room_name": "room-a", "voice_id": "nova",
            "language": "en", "speed": 1.25,
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "published", "duration_ms": 900})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = tts(&format!("{}/", server.uri()), Duration::from_secs(1))
        .synthesize(&speech())
        .await
        .unwrap();
    assert_eq!(out["status"], "published");
}

#[tokio::test]
async fn a_tts_failure_reports_its_status_and_a_hang_is_unreachable() {
    let server = MockServer::start().await;
    Mock::given(path("/api/tts/synthesize"))
        .respond_with(ResponseTemplate::new(500).set_body_string("voice model crashed"))
        .mount(&server)
        .await;
    let err = tts(&server.uri(), Duration::from_secs(1))
        .synthesize(&speech())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SpeechError::Failed {
            status: 500,
            detail: "voice model crashed".into()
        }
    );

    let slow = MockServer::start().await;
    Mock::given(path("/api/tts/synthesize"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&slow)
        .await;
    let err = tts(&slow.uri(), Duration::from_millis(200))
        .synthesize(&speech())
        .await
        .unwrap_err();
    assert!(matches!(err, SpeechError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn health_checks_call_healthz() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/healthz"))
        .respond_with(ResponseTemplate::new(200))
        .expect(2)
        .mount(&server)
        .await;
    tts(&server.uri(), Duration::from_secs(1))
        .health()
        .await
        .unwrap();
    HttpSttClient::new(http_client(Duration::from_secs(1)).unwrap(), &server.uri())
        .health()
        .await
        .unwrap();

    let down = HttpSttClient::new(
        http_client(Duration::from_millis(200)).unwrap(),
        "http://127.0.0.1:9",
    );
    assert!(matches!(
        down.health().await,
        Err(SpeechError::Unreachable(_))
    ));
}

#[tokio::test]
async fn a_service_that_serves_only_health_is_healthy() {
    // The Chatterbox and XTTS revisions of june-tts serve `/health`, not `/healthz`.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "healthy"})))
        .expect(2)
        .mount(&server)
        .await;
    tts(&server.uri(), Duration::from_secs(1))
        .health()
        .await
        .unwrap();
    HttpSttClient::new(http_client(Duration::from_secs(1)).unwrap(), &server.uri())
        .health()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_200_that_says_status_error_is_a_failure() {
    // june-tts "FIXED" (CosyVoice) answers a failed synthesis with 200 {"status":"error"}.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/tts/synthesize"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "error", "message": "model not loaded"})),
        )
        .mount(&server)
        .await;
    match tts(&server.uri(), Duration::from_secs(1))
        .synthesize(&speech())
        .await
    {
        Err(SpeechError::Failed { status, detail }) => {
            assert_eq!(status, 200);
            assert_eq!(detail, "model not loaded");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn text_over_1000_characters_goes_as_several_requests_in_order() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/tts/synthesize"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(3)
        .mount(&server)
        .await;
    let mut long = speech();
    long.text = "word ".repeat(500);
    tts(&server.uri(), Duration::from_secs(1))
        .synthesize(&long)
        .await
        .unwrap();
    let sent: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(sent.iter().all(|t| t.chars().count() <= 1000));
    assert_eq!(sent.join(" "), long.text.trim());
}
