//! Turn records on the wire (design.md §8.3): `GET /api/sessions/{id}/turns` and
//! `/turns/{n}`, and the turn summary of `GET /api/sessions/{id}`. Mirrors of the domain's
//! `TurnRecord`, with the spec's schemas and examples.

use june_domain::ports::TurnSummary;
use june_domain::{InterruptedBy, RecordOutcome, TokenUsage, TurnRecord, TurnSource, TurnTimings};
use serde::{Deserialize, Serialize};

use super::rfc3339;

/// `GET /api/sessions/{id}/turns` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTurnsQuery {
    /// Page size, 1 to 100 (20 by default).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (empty: the newest turns).
    #[param(pattern = r"^[0-9]{0,19}$")]
    pub cursor: Option<String>,
}

/// `/api/sessions/{id}/turns/{n}` path.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TurnPath {
    /// The session id (a UUID; anything else names no session: 404)
    #[param(value_type = String, format = "uuid")]
    pub id: String,
    /// The turn number, from 1
    #[param(value_type = String, pattern = r"^[0-9]{1,19}$")]
    pub n: String,
}

/// A page of turn records, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TurnList {
    pub turns: Vec<TurnResponse>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[schema(example = "41")]
    pub next_cursor: Option<String>,
}

/// Where a turn came from.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TurnSourceDto {
    /// A final transcript from the STT bot.
    Voice,
    /// `POST /api/ai/chat`.
    Chat,
}

/// How a turn ended.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TurnOutcomeDto {
    Completed,
    Interrupted,
    Failed,
}

/// What stopped an interrupted turn.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterruptedByDto {
    VoiceOnset,
    NewerFinal,
}

/// Partial transcripts before the final (when the STT sent them to this replica).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PartialsDto {
    #[schema(example = 4)]
    pub count: u32,
    /// When the first came, in ms before the final.
    #[schema(example = 1320)]
    pub first_ms_before_final: u64,
}

/// What was heard.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeardDto {
    #[schema(example = "What's the weather like in Lisbon?")]
    pub text: String,
    #[schema(example = 0.93)]
    pub confidence: Option<f64>,
    #[schema(example = "en")]
    pub language: Option<String>,
    pub partials: Option<PartialsDto>,
}

/// The reply as spoken: the sentences TTS accepted (chat: the reply's sentences).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplyDto {
    #[schema(example = json!(["It's sunny in Lisbon.", "Around 24 degrees."]))]
    pub sentences: Vec<String>,
    #[schema(example = "It's sunny in Lisbon. Around 24 degrees.")]
    pub text: String,
}

/// Where an interrupted turn stopped.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InterruptionDto {
    /// Sentences spoken before it stopped (0: none).
    #[schema(example = 1)]
    pub after_sentence: u32,
    pub by: InterruptedByDto,
}

/// Why a failed turn failed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TurnErrorDto {
    /// An error code of the API (`llm_upstream_error`, `tts_failed`, …).
    #[schema(example = "tts_failed")]
    pub code: String,
}

/// Gemini's `usageMetadata` (0 when it did not report it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageDto {
    #[schema(example = 812)]
    pub prompt_tokens: u64,
    #[schema(example = 19)]
    pub output_tokens: u64,
    #[schema(example = 831)]
    pub total_tokens: u64,
}

/// Milliseconds from the STT final (or the chat request) to each stage; `null` when the
/// turn never got there.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimingsDto {
    #[schema(example = 310)]
    pub first_token: Option<u64>,
    #[schema(example = 402)]
    pub first_sentence: Option<u64>,
    #[schema(example = 403)]
    pub first_tts_request: Option<u64>,
    #[schema(example = 655)]
    pub first_tts_done: Option<u64>,
    #[schema(example = 1180)]
    pub last_tts_done: Option<u64>,
    #[schema(example = 1181)]
    pub end: u64,
}

/// One turn: what was heard, what was spoken, how it ended, what it cost, where the time
/// went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TurnResponse {
    #[schema(example = 42)]
    pub turn: u64,
    pub source: TurnSourceDto,
    #[schema(example = "2026-11-25T20:06:45Z")]
    pub started_at: String,
    pub heard: HeardDto,
    pub reply: ReplyDto,
    pub outcome: TurnOutcomeDto,
    /// Present when `outcome` is `interrupted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<InterruptionDto>,
    /// Present when `outcome` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TurnErrorDto>,
    #[schema(example = "gemini-3.5-flash-lite")]
    pub model: String,
    pub usage: UsageDto,
    pub timings_ms: TimingsDto,
}

impl From<TokenUsage> for UsageDto {
    fn from(u: TokenUsage) -> Self {
        UsageDto {
            prompt_tokens: u.prompt_tokens,
            output_tokens: u.output_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

impl From<TurnTimings> for TimingsDto {
    fn from(t: TurnTimings) -> Self {
        TimingsDto {
            first_token: t.first_token,
            first_sentence: t.first_sentence,
            first_tts_request: t.first_tts_request,
            first_tts_done: t.first_tts_done,
            last_tts_done: t.last_tts_done,
            end: t.end,
        }
    }
}

impl From<TurnRecord> for TurnResponse {
    fn from(r: TurnRecord) -> Self {
        TurnResponse {
            turn: r.turn,
            source: match r.source {
                TurnSource::Voice => TurnSourceDto::Voice,
                TurnSource::Chat => TurnSourceDto::Chat,
            },
            started_at: rfc3339(r.started_at),
            heard: HeardDto {
                text: r.heard.text,
                confidence: r.heard.confidence,
                language: r.heard.language,
                partials: r.heard.partials.map(|p| PartialsDto {
                    count: p.count,
                    first_ms_before_final: p.first_ms_before_final,
                }),
            },
            reply: ReplyDto {
                sentences: r.reply.sentences,
                text: r.reply.text,
            },
            outcome: match r.outcome {
                RecordOutcome::Completed => TurnOutcomeDto::Completed,
                RecordOutcome::Interrupted => TurnOutcomeDto::Interrupted,
                RecordOutcome::Failed => TurnOutcomeDto::Failed,
            },
            interrupted: r.interrupted.map(|i| InterruptionDto {
                after_sentence: i.after_sentence,
                by: match i.by {
                    InterruptedBy::VoiceOnset => InterruptedByDto::VoiceOnset,
                    InterruptedBy::NewerFinal => InterruptedByDto::NewerFinal,
                },
            }),
            error: r.error.map(|e| TurnErrorDto { code: e.code }),
            model: r.model,
            usage: r.usage.into(),
            timings_ms: r.timings_ms.into(),
        }
    }
}

/// A session's turns in figures (in `GET /api/sessions/{id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TurnSummaryDto {
    /// Turn records stored.
    #[schema(example = 12)]
    pub turns: u64,
    /// Median ms from the final (or chat request) to the first TTS request.
    #[schema(example = 410)]
    pub first_tts_p50_ms: Option<u64>,
    /// 95th percentile of the same.
    #[schema(example = 780)]
    pub first_tts_p95_ms: Option<u64>,
    /// Tokens over every turn.
    #[schema(example = 9934)]
    pub total_tokens: u64,
}

impl From<TurnSummary> for TurnSummaryDto {
    fn from(s: TurnSummary) -> Self {
        TurnSummaryDto {
            turns: s.turns,
            first_tts_p50_ms: s.first_tts_p50_ms,
            first_tts_p95_ms: s.first_tts_p95_ms,
            total_tokens: s.total_tokens,
        }
    }
}
