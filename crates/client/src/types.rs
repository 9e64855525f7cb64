//! The wire types of the operations this client calls, written against openapi/openapi.json
//! (tests/spec.rs checks each one against its schema there). They are the client's own rather
//! than the server's DTOs: those derive utoipa schemas and read old clients' bodies leniently,
//! neither of which a caller needs. Answers ignore fields they do not know, so a newer server
//! does not break an older client.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/sessions` body (`CreateSessionRequest`). Every field is optional; with
/// `AUTH_MODE=none` the server needs `user_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateSession {
    /// The owner; with credentials it defaults to the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A room name of the caller's choosing (1–128 of `A-Z a-z 0-9 _ - .`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
    /// Conversation language (`en` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Session lifetime in seconds; the server's policy caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// Dispatch the voice bots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// Free-form metadata object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// What kind of session it is (`SessionKindDto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// Created through the API, owned by a user.
    Owned,
    /// Adopted from a room LiveKit already had (`voice.adopt_rooms`); nobody owns it.
    Room,
    /// A kind this client does not know yet (a newer server).
    #[serde(other)]
    Unknown,
}

/// A session as create and get return it (`SessionResponse`), with a fresh token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub session_id: String,
    pub user_id: String,
    pub room_name: String,
    pub livekit_room_sid: String,
    /// The LiveKit server to join with `access_token`.
    pub livekit_url: String,
    pub created_at: String,
    pub expires_at: String,
    /// `created`, `active`, `ended` or `expired`.
    pub status: String,
    pub language: String,
    pub voice: bool,
    pub kind: SessionKind,
    pub metadata: Value,
    /// People in the room by LiveKit's webhooks (bots not counted).
    pub participant_count: u32,
    /// `None` once the session is over, and always for a room session.
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub token_expires_at: Option<String>,
    #[serde(default)]
    pub last_activity_at: Option<String>,
    /// The session's turns in figures (`GET /api/sessions/{id}` only).
    #[serde(default)]
    pub summary: Option<TurnSummary>,
}

/// A session's turns in figures (`TurnSummaryDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnSummary {
    /// Turn records stored.
    pub turns: u64,
    /// Median ms from the final (or chat request) to the first TTS request.
    #[serde(default)]
    pub first_tts_p50_ms: Option<u64>,
    /// 95th percentile of the same.
    #[serde(default)]
    pub first_tts_p95_ms: Option<u64>,
    /// Tokens over every turn.
    pub total_tokens: u64,
}

/// A session in a listing (`SessionSummary`): no token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: String,
    pub user_id: String,
    pub room_name: String,
    pub livekit_room_sid: String,
    pub created_at: String,
    pub expires_at: String,
    pub status: String,
    pub language: String,
    pub voice: bool,
    pub kind: SessionKind,
    pub metadata: Value,
    pub participant_count: u32,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub last_activity_at: Option<String>,
}

/// `GET /api/sessions` answer (`SessionList`): one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
    /// Pass it as [`ListSessions::cursor`] for the next page; `None` on the last one.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// A session's state, as `GET /api/sessions?status=` filters by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Created,
    Active,
    Ended,
    Expired,
}

/// The query of `GET /api/sessions`; all optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ListSessions {
    /// Only this owner's sessions (admins and services; a user always sees their own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SessionState>,
    /// Page size, 1 to 200 (50 by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// `DELETE /api/sessions/{id}` answer (`SessionDeleted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDeleted {
    pub status: String,
    pub session_id: String,
}

/// `POST /api/sessions/{id}/guest-token` body (`GuestTokenRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestTokenRequest {
    /// The guest's display name (1–256 characters, no control characters).
    pub guest_name: String,
    /// May publish audio and video (`true` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    /// Token lifetime in seconds; never past the session's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl GuestTokenRequest {
    /// A guest with the server's defaults.
    pub fn named(guest_name: impl Into<String>) -> Self {
        Self {
            guest_name: guest_name.into(),
            can_publish: None,
            ttl_seconds: None,
        }
    }
}

/// `POST /api/sessions/{id}/guest-token` answer (`GuestTokenResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestToken {
    pub access_token: String,
    pub room_name: String,
    pub livekit_ws_url: String,
    pub guest_name: String,
    /// `guest-<slug>-<suffix>`.
    pub identity: String,
    pub expires_at: String,
}

/// A track in a participant listing (`TrackDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub sid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub muted: bool,
}

/// A participant in `GET /api/sessions/{id}/participants` (`ParticipantDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub identity: String,
    pub name: String,
    pub sid: String,
    pub state: String,
    pub joined_at: i64,
    pub metadata: String,
    pub is_publisher: bool,
    pub tracks: Vec<Track>,
}

/// One history line (`HistoryEntryDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    pub timestamp: String,
}

/// `GET /api/sessions/{id}/history` answer (`HistoryResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub session_id: String,
    pub history: Vec<HistoryEntry>,
}

/// `POST /api/ai/chat` body (`ChatRequestDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub session_id: String,
    /// What the user says: 1–8000 characters once trimmed.
    pub text: String,
    /// The reply's language for speech; the session's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Also speak the reply into the room through TTS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speak: Option<bool>,
}

impl ChatRequest {
    /// A text turn in `session_id`, not spoken.
    pub fn new(session_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            session_id: session_id.into(),
            text: text.into(),
            language: None,
            speak: None,
        }
    }
}

/// `POST /api/ai/chat` answer (`ChatResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatReply {
    pub session_id: String,
    pub text: String,
    pub processing_time_ms: u64,
    /// Always `None`: speech goes into the room, not back as a file.
    #[serde(default)]
    pub audio_url: Option<String>,
}

/// The body of every error answer (`ErrorBody`): `detail` for people, `code` for programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `session_not_found`, `validation_error`.
    pub code: String,
    /// Human-readable message.
    pub detail: String,
    /// The request field at fault, for validation errors.
    #[serde(default)]
    pub field: Option<String>,
}
