//! Row types shared by both backends, and their conversion to domain types.

use june_domain::ports::StoreError;
use june_domain::{HistoryEntry, RecordedEvent, Role, Session, SessionKind, SessionStatus};
use sqlx::FromRow;
use uuid::Uuid;

use crate::time::from_micros;

/// The columns every session query selects, in [`SessionRow`] order.
pub(crate) const SESSION_COLUMNS: &str = "id, user_id, room_name, livekit_room_sid, status, \
     language, metadata, voice, created_at, expires_at, updated_at, ended_at, \
     participant_count, last_activity_at, kind";

/// The columns every event query selects, in [`EventRow`] order.
pub(crate) const EVENT_COLUMNS: &str =
    "id, event, session_id, room_name, participant, track_sid, created_at, received_at, payload";

pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Unavailable(format!("stored {what} {value:?} is not valid").into())
}

#[derive(FromRow)]
pub(crate) struct SessionRow {
    id: String,
    user_id: String,
    room_name: String,
    livekit_room_sid: String,
    status: String,
    language: String,
    metadata: String,
    voice: bool,
    created_at: i64,
    expires_at: i64,
    updated_at: i64,
    ended_at: Option<i64>,
    participant_count: i64,
    last_activity_at: Option<i64>,
    kind: String,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id: Uuid::parse_str(&r.id).map_err(|_| corrupt("session id", &r.id))?,
            status: SessionStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            metadata: serde_json::from_str(&r.metadata)
                .map_err(|_| corrupt("metadata", &r.metadata))?,
            user_id: r.user_id,
            room_name: r.room_name,
            livekit_room_sid: r.livekit_room_sid,
            language: r.language,
            voice: r.voice,
            kind: SessionKind::parse(&r.kind).ok_or_else(|| corrupt("kind", &r.kind))?,
            created_at: from_micros(r.created_at)?,
            expires_at: from_micros(r.expires_at)?,
            updated_at: from_micros(r.updated_at)?,
            ended_at: r.ended_at.map(from_micros).transpose()?,
            participant_count: u32::try_from(r.participant_count).unwrap_or_default(),
            last_activity_at: r.last_activity_at.map(from_micros).transpose()?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct HistoryRow {
    role: String,
    content: String,
    created_at: i64,
}

impl TryFrom<HistoryRow> for HistoryEntry {
    type Error = StoreError;

    fn try_from(r: HistoryRow) -> Result<Self, StoreError> {
        Ok(HistoryEntry {
            role: Role::parse(&r.role).ok_or_else(|| corrupt("role", &r.role))?,
            content: r.content,
            timestamp: from_micros(r.created_at)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct EventRow {
    id: String,
    event: String,
    session_id: Option<String>,
    room_name: Option<String>,
    participant: Option<String>,
    track_sid: Option<String>,
    created_at: i64,
    received_at: i64,
    payload: String,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(RecordedEvent {
            session_id: r
                .session_id
                .map(|s| Uuid::parse_str(&s).map_err(|_| corrupt("session id", &s)))
                .transpose()?,
            payload: serde_json::from_str(&r.payload).map_err(|_| corrupt("payload", &r.id))?,
            id: r.id,
            event: r.event,
            room_name: r.room_name,
            participant: r.participant,
            track_sid: r.track_sid,
            created_at: from_micros(r.created_at)?,
            received_at: from_micros(r.received_at)?,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct IdempotencyRow {
    pub(crate) fingerprint: String,
    pub(crate) response: Option<String>,
}
