//! Turn records: what happened in one voice or chat turn (what was heard, what was spoken,
//! how it ended, the model's token usage and where the time went), stored with the session
//! and served by `GET /api/sessions/{id}/turns`. The wire shape is fixed by design.md §8.3.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a turn came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnSource {
    /// A final transcript from the STT bot.
    Voice,
    /// `POST /api/sessions/{id}/chat` (or the v3.0 chat routes).
    Chat,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordOutcome {
    /// Everything the model said was spoken (or answered, for chat).
    Completed,
    /// A newer turn stopped it (see [`Interruption`]).
    Interrupted,
    /// The model, TTS or the store failed (see [`TurnFailure`]).
    Failed,
}

/// What stopped an interrupted turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterruptedBy {
    /// The user started speaking (`voice_onset`).
    VoiceOnset,
    /// A newer final transcript started another turn.
    NewerFinal,
}

/// Where an interrupted turn stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interruption {
    /// How many sentences had been spoken when it stopped (0: none).
    pub after_sentence: u32,
    /// What stopped it.
    pub by: InterruptedBy,
}

/// Why a failed turn failed: a stable code (the HTTP API's error codes where one applies,
/// e.g. `llm_unavailable`, `tts_failed`, `store_unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnFailure {
    /// The error code.
    pub code: String,
}

/// What was heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heard {
    /// The final transcript (or the chat message).
    pub text: String,
    /// The STT's confidence, when it sent one.
    pub confidence: Option<f64>,
    /// The language the STT reported (or the session's).
    pub language: Option<String>,
    /// Partial transcripts received before the final, when the STT sent them.
    pub partials: Option<Partials>,
}

/// The partial transcripts that preceded a final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partials {
    /// How many.
    pub count: u32,
    /// When the first came, in ms *before* the final.
    pub first_ms_before_final: u64,
}

/// The reply as spoken.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The sentences TTS accepted, in order (for chat: the reply's sentences).
    pub sentences: Vec<String>,
    /// The sentences joined by a space.
    pub text: String,
}

/// Gemini's `usageMetadata` for the turn (0 when the model did not report it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// `promptTokenCount`.
    pub prompt_tokens: u64,
    /// `candidatesTokenCount`.
    pub output_tokens: u64,
    /// `totalTokenCount`.
    pub total_tokens: u64,
}

/// Milliseconds from the STT final (or the chat request) to each stage; `None` when the
/// turn never got there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnTimings {
    /// The model's first token.
    pub first_token: Option<u64>,
    /// The first complete sentence.
    pub first_sentence: Option<u64>,
    /// The first TTS request sent.
    pub first_tts_request: Option<u64>,
    /// The first TTS answer.
    pub first_tts_done: Option<u64>,
    /// The last TTS answer.
    pub last_tts_done: Option<u64>,
    /// The turn's end.
    pub end: u64,
}

/// One turn, as stored and served (design.md §8.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// The session.
    #[serde(skip)]
    pub session_id: Uuid,
    /// The turn's number in its session, from 1.
    pub turn: u64,
    /// Voice or chat.
    pub source: TurnSource,
    /// When the final transcript (or the chat request) arrived.
    pub started_at: DateTime<Utc>,
    /// What was heard.
    pub heard: Heard,
    /// What was spoken.
    pub reply: Reply,
    /// How it ended.
    pub outcome: RecordOutcome,
    /// Set when `outcome` is `interrupted`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interrupted: Option<Interruption>,
    /// Set when `outcome` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<TurnFailure>,
    /// The model that answered.
    pub model: String,
    /// Token usage.
    pub usage: TokenUsage,
    /// Where the time went.
    pub timings_ms: TurnTimings,
}
