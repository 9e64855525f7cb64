use std::time::Instant;

use june_domain::ChatOutcome;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /api/ai/chat` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatRequestDto {
    pub session_id: String,
    #[schema(example = "What can you do?")]
    pub text: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    #[schema(example = false)]
    pub speak: Option<bool>,
}

/// `POST /api/ai/chat` answer (and the SSE `done` event).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatResponse {
    pub session_id: String,
    #[schema(example = "I can answer questions and talk with you.")]
    pub text: String,
    /// Always `null`: speech goes into the room through TTS, not back as a file.
    pub audio_url: Option<String>,
    pub processing_time_ms: u64,
}

impl ChatResponse {
    /// The answer for a finished turn that started at `started`.
    pub fn new(session_id: Uuid, out: ChatOutcome, started: Instant) -> Self {
        ChatResponse {
            session_id: session_id.to_string(),
            text: out.text,
            audio_url: None,
            processing_time_ms: started.elapsed().as_millis() as u64,
        }
    }
}

/// `POST /api/tts/publish` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TtsPublishRequest {
    pub room_name: String,
    pub text: String,
    #[serde(default)]
    pub language: Option<String>,
    /// Voice id.
    #[serde(default)]
    pub speaker: Option<String>,
    #[serde(default)]
    pub speed: Option<f32>,
}
