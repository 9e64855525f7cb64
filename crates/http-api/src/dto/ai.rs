use std::time::Instant;

use june_domain::ChatOutcome;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /api/ai/chat` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatRequestDto {
    /// The session the turn belongs to (one that is not yours, or not a UUID: 404).
    #[schema(format = "uuid")]
    pub session_id: String,
    /// What the user says: 1–8000 characters once trimmed, not only whitespace.
    #[schema(
        example = "What can you do?",
        min_length = 1,
        max_length = 8000,
        pattern = r"\S"
    )]
    pub text: String,
    /// The reply's language for speech; the session's when absent.
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
    /// The room to speak into (trimmed; not only whitespace).
    #[schema(min_length = 1, pattern = r"\S")]
    pub room_name: String,
    /// What to say (trimmed; not only whitespace).
    #[schema(min_length = 1, pattern = r"\S")]
    pub text: String,
    #[serde(default)]
    pub language: Option<String>,
    /// Voice id.
    #[serde(default)]
    pub speaker: Option<String>,
    #[serde(default)]
    pub speed: Option<f32>,
}
