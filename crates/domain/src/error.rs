//! The domain's one error type. Each variant has a stable machine code; the HTTP layer (or
//! any embedder) picks what it means for its callers.

use crate::model::SessionStatus;
use crate::ports::{LlmError, RoomError, SpeechError, StoreError, TokenError, WebhookError};

/// What a domain use case can fail with: sessions, webhooks, conversation and voice alike.
/// Each variant has a stable machine [`code`](Self::code); the HTTP layer picks the status.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// No such session (or it is already ended, for a delete).
    #[error("Session not found")]
    NotFound,
    /// The session has no such turn record.
    #[error("Turn {0} not found")]
    TurnNotFound(u64),
    /// The participant is not in the session's room.
    #[error("Participant {0} is not in the room")]
    ParticipantNotFound(String),
    /// A live session already uses the room name.
    #[error("Room name {0} is already used by a live session")]
    RoomNameTaken(String),
    /// The session is over; it cannot be joined.
    #[error("Session is {0}; it can no longer be joined")]
    NotLive(SessionStatus),
    /// A field of the request is wrong.
    #[error("{field}: {message}")]
    Validation {
        /// The request field at fault.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The media server failed.
    #[error(transparent)]
    Room(#[from] RoomError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// Token minting failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A webhook delivery was refused.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// The language model failed (after its retries).
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// A speech service failed.
    #[error(transparent)]
    Speech(#[from] SpeechError),
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => DomainError::NotFound,
            // The client's value, not an outage: a 4xx, so nobody retries it.
            StoreError::Invalid(message) => DomainError::Validation {
                field: "body",
                message,
            },
            other => DomainError::Store(other),
        }
    }
}

impl DomainError {
    /// Stable machine-readable code, used as `code` in error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::NotFound => "session_not_found",
            DomainError::ParticipantNotFound(_) => "participant_not_found",
            DomainError::TurnNotFound(_) => "turn_not_found",
            DomainError::RoomNameTaken(_) => "room_name_taken",
            DomainError::NotLive(_) => "session_not_live",
            DomainError::Validation { .. } => "validation_error",
            DomainError::Room(RoomError::NotFound(_)) => "livekit_not_found",
            DomainError::Room(RoomError::Unauthorized(_)) => "livekit_unauthorized",
            DomainError::Room(RoomError::Rejected(_)) => "livekit_rejected",
            DomainError::Room(RoomError::Unavailable { .. }) => "livekit_unavailable",
            DomainError::Store(_) => "store_unavailable",
            DomainError::Token(_) => "token_error",
            DomainError::Webhook(WebhookError::Unauthorized(_)) => "invalid_signature",
            DomainError::Webhook(WebhookError::Malformed(_)) => "malformed_webhook",
            DomainError::Llm(e) => match e {
                LlmError::NotConfigured => "llm_not_configured",
                LlmError::ModelNotFound(_) => "llm_model_not_found",
                LlmError::RateLimited { .. } => "llm_rate_limited",
                LlmError::Upstream(_) => "llm_upstream_error",
                LlmError::Rejected(_) => "llm_rejected",
                LlmError::Timeout => "llm_timeout",
                LlmError::Blocked(_) => "llm_blocked",
                LlmError::Empty => "llm_empty_reply",
                LlmError::Cancelled => "llm_cancelled",
            },
            DomainError::Speech(e) => match e {
                SpeechError::NotConfigured => "tts_not_configured",
                SpeechError::Unreachable(_) => "tts_unreachable",
                SpeechError::Failed { .. } => "tts_failed",
            },
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field,
            message: message.into(),
        }
    }
}

/// The old name of [`DomainError`], kept while code still names it.
pub type SessionError = DomainError;
