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
