//! The session and its parts, as the domain sees them (no wire or storage format here).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a session is in its life. Ordered: a session only ever moves to a later state.
///
/// `Ended` and `Expired` are both final; neither leads to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// The room exists; nobody has joined yet.
    Created,
    /// LiveKit reported the room started or a participant joined.
    Active,
    /// The room finished, or the session was deleted.
    Ended,
    /// The session outlived its `expires_at` before it ended.
    Expired,
}

impl SessionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [SessionStatus; 4] = [
        SessionStatus::Created,
        SessionStatus::Active,
        SessionStatus::Ended,
        SessionStatus::Expired,
    ];

    /// The wire and storage name (`created`, `active`, `ended`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Created => "created",
            SessionStatus::Active => "active",
            SessionStatus::Ended => "ended",
            SessionStatus::Expired => "expired",
        }
    }

    /// Parses the wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// True while the room may still be joined (`created` or `active`).
    pub fn is_live(self) -> bool {
        matches!(self, SessionStatus::Created | SessionStatus::Active)
    }

    /// Whether moving from `self` to `next` is a step forward.
    ///
    /// Webhooks arrive late, twice, or out of order; this rule is what keeps a late
    /// `room_started` from reopening a finished session. Staying in place is not a step.
    pub fn can_become(self, next: SessionStatus) -> bool {
        use SessionStatus::*;
        matches!(
            (self, next),
            (Created, Active)
                | (Created, Ended)
                | (Created, Expired)
                | (Active, Ended)
                | (Active, Expired)
        )
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a session belongs to, and so who owns its LiveKit room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// Created by `POST /api/sessions`: the session created the room, has an owner who gets
    /// tokens, and deletes the room when it ends.
    #[default]
    Owned,
    /// A *room session*: adopted for a room LiveKit already had and no session owned
    /// (`voice.adopt_rooms`). Its owner is the service principal
    /// [`ROOM_SESSION_OWNER`](crate::ROOM_SESSION_OWNER), it mints no owner token, and ending
    /// it never deletes the room, which is LiveKit's (and its participants').
    Room,
}

impl SessionKind {
    /// The wire and storage name (`owned`, `room`).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Owned => "owned",
            SessionKind::Room => "room",
        }
    }

    /// Parses the wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        [SessionKind::Owned, SessionKind::Room]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One conversation: one LiveKit room, one owner, its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Stable id given to clients.
    pub id: Uuid,
    /// The owner's identity; also the identity in the owner's token.
    pub user_id: String,
    /// The LiveKit room name; unique among live sessions.
    pub room_name: String,
    /// The room's sid as LiveKit reported it at creation (`RM_…`).
    pub livekit_room_sid: String,
    /// Lifecycle state.
    pub status: SessionStatus,
    /// Conversation language (BCP-47-ish, e.g. `en`).
    pub language: String,
    /// Free-form client metadata, stored as given.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Whether the STT/TTS bots are to be dispatched for this session.
    pub voice: bool,
    /// An owned session, or a room session adopted for a room LiveKit had.
    pub kind: SessionKind,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When the session stops being joinable.
    pub expires_at: DateTime<Utc>,
    /// When the status last changed.
    pub updated_at: DateTime<Utc>,
    /// When the session reached `ended` or `expired`.
    pub ended_at: Option<DateTime<Utc>>,
    /// People in the room now, as LiveKit's webhooks told us (bots not counted).
    pub participant_count: u32,
    /// When someone last joined or left, by LiveKit's clock.
    pub last_activity_at: Option<DateTime<Utc>>,
}

impl Session {
    /// The status as of `now`: a live session past `expires_at` is `expired` even if the
    /// store has not caught up yet.
    pub fn effective_status(&self, now: DateTime<Utc>) -> SessionStatus {
        if self.status.is_live() && now >= self.expires_at {
            SessionStatus::Expired
        } else {
            self.status
        }
    }
}

/// Who said a line of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The human.
    User,
    /// The model.
    Assistant,
    /// Instructions, not spoken.
    System,
}

impl Role {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" => Some(Role::System),
            _ => None,
        }
    }
}

/// One turn of the conversation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Who spoke.
    pub role: Role,
    /// What was said.
    pub content: String,
    /// When it was recorded.
    pub timestamp: DateTime<Utc>,
}

impl HistoryEntry {
    /// An entry whose content has no NUL characters: PostgreSQL's text refuses them and
    /// SQLite would keep them, so they are dropped here for both stores alike.
    pub fn new(role: Role, content: &str, timestamp: DateTime<Utc>) -> Self {
        HistoryEntry {
            role,
            content: without_nul(content),
            timestamp,
        }
    }
}

/// `text` without NUL characters (the one character no store keeps alike).
pub fn without_nul(text: &str) -> String {
    if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text.to_owned()
    }
}

/// What to ask the room service for when a session starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomSpec {
    /// Room name (already validated).
    pub name: String,
    /// Seconds LiveKit keeps a room nobody joined.
    pub empty_timeout_secs: u32,
    /// Seconds LiveKit keeps a room after the last participant left.
    pub departure_timeout_secs: u32,
    /// 0 means unlimited.
    pub max_participants: u32,
    /// Room metadata (JSON naming the session).
    pub metadata: String,
}

/// A room as the room service reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Room {
    /// LiveKit sid (`RM_…`).
    pub sid: String,
    /// Room name.
    pub name: String,
    /// Participants now in the room.
    pub num_participants: u32,
    /// 0 means unlimited.
    pub max_participants: u32,
    /// Unix seconds.
    pub creation_time: i64,
    /// Room metadata as stored by LiveKit.
    pub metadata: String,
}

/// A participant's connection state, as LiveKit names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParticipantState {
    /// Signalling, not yet connected.
    Joining,
    /// Connected, media not yet flowing.
    Joined,
    /// Media flowing.
    Active,
    /// Gone.
    Disconnected,
}

/// The kind of media a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    /// Microphone or other audio.
    Audio,
    /// Camera or screen.
    Video,
    /// Data track.
    Data,
}

/// A published track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// LiveKit sid (`TR_…`).
    pub sid: String,
    /// Audio, video or data.
    pub kind: TrackKind,
    /// e.g. `microphone`, `camera`, `screen_share`, `unknown`.
    pub source: String,
    /// Whether the publisher muted it.
    pub muted: bool,
}

/// Someone in a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// Identity from the token.
    pub identity: String,
    /// Display name.
    pub name: String,
    /// LiveKit sid (`PA_…`).
    pub sid: String,
    /// Connection state.
    pub state: ParticipantState,
    /// Unix seconds.
    pub joined_at: i64,
    /// Participant metadata.
    pub metadata: String,
    /// Whether it publishes any track.
    pub is_publisher: bool,
    /// Its tracks.
    pub tracks: Vec<Track>,
}
