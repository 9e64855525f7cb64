use june_domain::ports::PageCursor;
use june_domain::{
    GuestToken, HistoryEntry, Participant, ParticipantState, Session, SessionKind,
    SessionWithToken, TrackKind,
};
use serde::{Deserialize, Serialize};

use super::rfc3339;

/// `POST /api/sessions` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateSessionRequest {
    /// The owner: 1–256 characters once trimmed, no control characters, not starting with
    /// `service:` (the server's own principals). Required with `AUTH_MODE=none` (422 naming
    /// it when absent); with credentials it defaults to the caller and must equal the
    /// caller's identity unless the caller is an admin or a service (422 otherwise).
    #[serde(default)]
    #[schema(
        example = "alice",
        min_length = 1,
        max_length = 256,
        pattern = r"^(?!\s*service:)[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub user_id: Option<String>,
    /// A room name of the client's choosing: 1–128 of `A-Z a-z 0-9 _ - .`. One a live
    /// session or LiveKit already has is 409 `room_name_taken`.
    #[serde(default)]
    #[schema(
        example = "team-standup",
        min_length = 1,
        max_length = 128,
        pattern = r"^[A-Za-z0-9_.-]{1,128}$"
    )]
    pub room_name: Option<String>,
    /// Free-form metadata object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Conversation language (`en` by default; empty means the default): letters, digits,
    /// `-` and `_`, at most 35.
    #[serde(default)]
    #[schema(example = "en", max_length = 35, pattern = r"^[A-Za-z0-9_-]{0,35}$")]
    pub language: Option<String>,
    /// Dispatch the voice bots.
    #[serde(default)]
    #[schema(example = true)]
    pub voice: Option<bool>,
    /// Session lifetime in seconds, 1 to 315 360 000 (ten years); the policy caps it further
    /// (7 days by default). An integral float (`3600.0`) is read as the integer.
    #[serde(default, deserialize_with = "super::lenient::whole_number")]
    #[schema(example = 3600, minimum = 1, maximum = 315360000)]
    pub ttl_seconds: Option<i64>,
}

/// What kind of session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionKindDto {
    /// Created by `POST /api/sessions`: it created its LiveKit room and has an owner.
    Owned,
    /// A *room session*, adopted for a room LiveKit already had and no session owned
    /// (`voice.adopt_rooms`, e.g. June's `ozzu-main`). Owned by the service principal
    /// `service:rooms` (only admins see it), never an `access_token`, and ending it
    /// (`DELETE`, `room_finished`, expiry) never deletes the room.
    Room,
}

impl From<SessionKind> for SessionKindDto {
    fn from(k: SessionKind) -> Self {
        match k {
            SessionKind::Owned => SessionKindDto::Owned,
            SessionKind::Room => SessionKindDto::Room,
        }
    }
}

/// A session as returned by create and get (with a fresh token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionResponse {
    #[schema(example = "0b9f3c2e-6a57-4f4e-9d7c-1f0a3c5e7b21")]
    pub session_id: String,
    pub user_id: String,
    #[schema(example = "room-alice-1a2b3c4d")]
    pub room_name: String,
    #[schema(example = "RM_tKvx7PqzL2m9")]
    pub livekit_room_sid: String,
    /// `null` once the session is over (nothing left to join), and always for a room
    /// session (`kind: "room"`: nobody owns the room).
    #[schema(example = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…")]
    pub access_token: Option<String>,
    #[schema(example = "wss://livekit.example.com")]
    pub livekit_url: String,
    #[schema(example = "2026-11-25T20:06:45Z")]
    pub created_at: String,
    pub expires_at: String,
    pub token_expires_at: Option<String>,
    #[schema(example = "created")]
    pub status: &'static str,
    pub language: String,
    pub voice: bool,
    /// `owned`, or `room` for a room session (`voice.adopt_rooms`).
    pub kind: SessionKindDto,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// People in the room by LiveKit's webhooks (bots not counted).
    pub participant_count: u32,
    /// When someone last joined or left.
    pub last_activity_at: Option<String>,
    /// The session's turns in figures: in `GET /api/sessions/{id}` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<super::TurnSummaryDto>,
}

impl SessionResponse {
    /// The response for `s`, telling clients to connect to `livekit_url`.
    pub fn new(s: SessionWithToken, livekit_url: &str) -> Self {
        let SessionWithToken { session, token } = s;
        SessionResponse {
            session_id: session.id.to_string(),
            user_id: session.user_id,
            room_name: session.room_name,
            livekit_room_sid: session.livekit_room_sid,
            token_expires_at: token.as_ref().map(|t| rfc3339(t.expires_at)),
            access_token: token.map(|t| t.jwt),
            livekit_url: livekit_url.to_owned(),
            created_at: rfc3339(session.created_at),
            expires_at: rfc3339(session.expires_at),
            status: session.status.as_str(),
            language: session.language,
            voice: session.voice,
            kind: session.kind.into(),
            metadata: session.metadata,
            participant_count: session.participant_count,
            last_activity_at: session.last_activity_at.map(rfc3339),
            summary: None,
        }
    }
}

/// A session in a listing: no token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub session_id: String,
    pub user_id: String,
    pub room_name: String,
    pub livekit_room_sid: String,
    pub created_at: String,
    pub expires_at: String,
    pub ended_at: Option<String>,
    pub status: &'static str,
    pub language: String,
    pub voice: bool,
    /// `owned`, or `room` for a room session (`voice.adopt_rooms`).
    pub kind: SessionKindDto,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub participant_count: u32,
    pub last_activity_at: Option<String>,
}

impl From<Session> for SessionSummary {
    fn from(s: Session) -> Self {
        SessionSummary {
            session_id: s.id.to_string(),
            user_id: s.user_id,
            room_name: s.room_name,
            livekit_room_sid: s.livekit_room_sid,
            created_at: rfc3339(s.created_at),
            expires_at: rfc3339(s.expires_at),
            ended_at: s.ended_at.map(rfc3339),
            status: s.status.as_str(),
            language: s.language,
            voice: s.voice,
            kind: s.kind.into(),
            metadata: s.metadata,
            participant_count: s.participant_count,
            last_activity_at: s.last_activity_at.map(rfc3339),
        }
    }
}

/// The `{id}` of every session-scoped route, documented once.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionIdPath {
    /// The session id (a UUID; anything else names no session: 404)
    #[param(value_type = String, format = "uuid")]
    pub id: String,
}

/// `GET /api/sessions` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListSessionsQuery {
    /// Only this owner's sessions (admins and services; a user always sees their own).
    pub user_id: Option<String>,
    /// Only sessions in this state (empty: any).
    #[param(value_type = Option<SessionStatusFilter>, inline)]
    pub status: Option<String>,
    /// Page size, 1 to 200 (50 by default); a larger value is read as 200.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (empty: the first page).
    #[param(pattern = r"^([0-9]{1,16}_[0-9a-f]{32})?$")]
    pub cursor: Option<String>,
}

/// A session's state, as `GET /api/sessions?status=` filters by it.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SessionStatusFilter {
    /// Made, nobody has joined yet.
    Created,
    /// LiveKit reported the room started or someone joined.
    Active,
    /// Deleted, or LiveKit finished the room.
    Ended,
    /// Past `expires_at`.
    Expired,
}

/// `GET /api/sessions` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
    pub next_cursor: Option<String>,
}

/// `DELETE /api/sessions/{id}` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionDeleted {
    pub status: &'static str,
    pub session_id: String,
}

/// A track in a participant listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrackDto {
    pub sid: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub source: String,
    pub muted: bool,
}

/// A participant in `GET /api/sessions/{id}/participants`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParticipantDto {
    pub identity: String,
    pub name: String,
    pub sid: String,
    pub state: &'static str,
    pub joined_at: i64,
    pub metadata: String,
    pub is_publisher: bool,
    pub tracks: Vec<TrackDto>,
}

impl From<Participant> for ParticipantDto {
    fn from(p: Participant) -> Self {
        ParticipantDto {
            identity: p.identity,
            name: p.name,
            sid: p.sid,
            state: match p.state {
                ParticipantState::Joining => "JOINING",
                ParticipantState::Joined => "JOINED",
                ParticipantState::Active => "ACTIVE",
                ParticipantState::Disconnected => "DISCONNECTED",
            },
            joined_at: p.joined_at,
            metadata: p.metadata,
            is_publisher: p.is_publisher,
            tracks: p
                .tracks
                .into_iter()
                .map(|t| TrackDto {
                    sid: t.sid,
                    kind: match t.kind {
                        TrackKind::Audio => "audio",
                        TrackKind::Video => "video",
                        TrackKind::Data => "data",
                    },
                    source: t.source,
                    muted: t.muted,
                })
                .collect(),
        }
    }
}

/// `DELETE /api/sessions/{id}/participants/{identity}` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParticipantRemoved {
    pub status: &'static str,
    pub session_id: String,
    pub participant: String,
}

/// `POST /api/sessions/{id}/guest-token` body. v3.0 clients may also send `session_id`; when
/// they do it must equal the id in the path (422 naming it). It is left out of this schema:
/// no rule of JSON Schema can say "equal to the path", and the path already names the session.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GuestTokenRequest {
    /// The guest's display name: 1–256 characters once trimmed, no control characters.
    #[schema(
        example = "Sam",
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub guest_name: String,
    #[serde(default)]
    #[schema(ignore)]
    pub session_id: Option<String>,
    /// Token lifetime in seconds, 1 to 315 360 000; never past the session's expiry. An
    /// integral float (`600.0`) is read as the integer.
    #[serde(default, deserialize_with = "super::lenient::whole_number")]
    #[schema(minimum = 1, maximum = 315360000)]
    pub ttl_seconds: Option<i64>,
    /// May publish audio and video (`true` by default); guests never publish data.
    #[serde(default)]
    pub can_publish: Option<bool>,
}

/// `POST /api/sessions/{id}/guest-token` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GuestTokenResponse {
    pub access_token: String,
    pub room_name: String,
    pub livekit_ws_url: String,
    pub guest_name: String,
    #[schema(example = "guest-sam-3f9a")]
    pub identity: String,
    pub expires_at: String,
}

impl GuestTokenResponse {
    /// The response for a minted guest token.
    pub fn new(g: GuestToken, livekit_url: &str) -> Self {
        GuestTokenResponse {
            expires_at: rfc3339(g.token.expires_at),
            access_token: g.token.jwt,
            room_name: g.room_name,
            livekit_ws_url: livekit_url.to_owned(),
            guest_name: g.guest_name,
            identity: g.identity,
        }
    }
}

/// One history line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntryDto {
    pub role: &'static str,
    pub content: String,
    pub timestamp: String,
}

impl From<HistoryEntry> for HistoryEntryDto {
    fn from(e: HistoryEntry) -> Self {
        HistoryEntryDto {
            role: e.role.as_str(),
            content: e.content,
            timestamp: rfc3339(e.timestamp),
        }
    }
}

/// `GET /api/sessions/{id}/history` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryResponse {
    pub session_id: String,
    pub history: Vec<HistoryEntryDto>,
}

/// `DELETE /api/sessions/{id}/history` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryCleared {
    pub status: &'static str,
    pub session_id: String,
}

/// The opaque `next_cursor`: `{created_at µs}_{id}` of the last row of a page.
pub fn encode_cursor(c: PageCursor) -> String {
    format!("{}_{}", c.created_at.timestamp_micros(), c.id.simple())
}

/// Reads a cursor made by [`encode_cursor`]; `None` if it is not one.
pub fn decode_cursor(s: &str) -> Option<PageCursor> {
    let (micros, id) = s.split_once('_')?;
    Some(PageCursor {
        created_at: chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: uuid::Uuid::parse_str(id).ok()?,
    })
}
