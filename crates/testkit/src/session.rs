//! A [`Session`] for tests: sensible defaults, and a setter for each thing a test cares about.

use chrono::{DateTime, Duration, DurationRound, Utc};
use june_domain::{Session, SessionKind, SessionStatus};
use uuid::Uuid;

/// A fresh session: a new id, owner `alice`, a room name unique to the id, `created`, English,
/// no metadata, text only, created now (to the microsecond, what the stores keep) and
/// expiring an hour later, nobody in the room.
pub fn session() -> SessionBuilder {
    let id = Uuid::new_v4();
    let now = Utc::now()
        .duration_trunc(Duration::microseconds(1))
        .expect("now is representable");
    SessionBuilder(Session {
        id,
        user_id: "alice".into(),
        room_name: format!("room-alice-{}", &id.simple().to_string()[..8]),
        livekit_room_sid: "RM_test".into(),
        status: SessionStatus::Created,
        language: "en".into(),
        metadata: Default::default(),
        voice: false,
        kind: SessionKind::Owned,
        created_at: now,
        expires_at: now + Duration::hours(1),
        updated_at: now,
        ended_at: None,
        participant_count: 0,
        last_activity_at: None,
    })
}

/// Builds a [`Session`]; see [`session`] for the defaults. For a field without a setter,
/// use struct update syntax: `Session { ended_at: Some(t), ..session().build() }`.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionBuilder(Session);

impl SessionBuilder {
    /// The owner.
    pub fn user(mut self, user_id: &str) -> Self {
        self.0.user_id = user_id.into();
        self
    }

    /// The room name.
    pub fn room(mut self, room_name: &str) -> Self {
        self.0.room_name = room_name.into();
        self
    }

    /// The room's LiveKit sid.
    pub fn sid(mut self, room_sid: &str) -> Self {
        self.0.livekit_room_sid = room_sid.into();
        self
    }

    /// The status (the session stays unended: set `ended_at` yourself if it matters).
    pub fn status(mut self, status: SessionStatus) -> Self {
        self.0.status = status;
        self
    }

    /// The conversation language.
    pub fn language(mut self, language: &str) -> Self {
        self.0.language = language.into();
        self
    }

    /// A voice session (the bots are dispatched into it).
    pub fn voice(mut self, voice: bool) -> Self {
        self.0.voice = voice;
        self
    }

    /// The client metadata; `metadata` must be a JSON object.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        let serde_json::Value::Object(map) = metadata else {
            panic!("session metadata is a JSON object, not {metadata}");
        };
        self.0.metadata = map;
        self
    }

    /// Created (and last updated) at `at`, expiring an hour later.
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.0.created_at = at;
        self.0.updated_at = at;
        self.0.expires_at = at + Duration::hours(1);
        self
    }

    /// Expiring at `at`.
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.0.expires_at = at;
        self
    }

    /// Owned by a user, or a room session (an adopted LiveKit room).
    pub fn kind(mut self, kind: SessionKind) -> Self {
        self.0.kind = kind;
        self
    }

    /// People in the room.
    pub fn participants(mut self, count: u32) -> Self {
        self.0.participant_count = count;
        self
    }

    /// The session.
    pub fn build(self) -> Session {
        self.0
    }
}
