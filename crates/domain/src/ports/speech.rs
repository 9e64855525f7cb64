use async_trait::async_trait;

/// What to say into a room.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    /// The text, usually one sentence.
    pub text: String,
    /// The LiveKit room the TTS bot speaks into.
    pub room_name: String,
    /// Which voice.
    pub voice_id: String,
    /// Language of the text.
    pub language: String,
    /// Speaking rate (1.0 = normal).
    pub speed: f32,
}

/// What a speech service can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechError {
    /// No URL configured for the service.
    #[error("the speech service is not configured")]
    NotConfigured,
    /// Unreachable or timed out.
    #[error("the speech service is unreachable: {0}")]
    Unreachable(String),
    /// It answered with an error.
    #[error("the speech service failed with {status}: {detail}")]
    Failed {
        /// Its HTTP status.
        status: u16,
        /// What it said (truncated).
        detail: String,
    },
}

/// The TTS service: speaks text into a LiveKit room as its bot.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    /// Speaks `request.text` into the room; returns the service's JSON answer.
    async fn synthesize(&self, request: &SpeechRequest) -> Result<serde_json::Value, SpeechError>;

    /// Whether the service answers its health check.
    async fn health(&self) -> Result<(), SpeechError>;
}

/// The STT service (it posts transcripts to us; we only check it is up).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// Whether the service answers its health check.
    async fn health(&self) -> Result<(), SpeechError>;
}
