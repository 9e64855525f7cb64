//! What LiveKit tells us through its webhooks, as the domain sees it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::TrackKind;

/// The webhook event names the lifecycle acts on; anything else is kept as `Other`
/// (LiveKit adds events over time, and a signed event is never refused for its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The room came to life.
    RoomStarted,
    /// The room closed.
    RoomFinished,
    /// A participant became active.
    ParticipantJoined,
    /// A participant left.
    ParticipantLeft,
    /// A participant left without ever connecting.
    ParticipantConnectionAborted,
    /// A track was published.
    TrackPublished,
    /// A track was unpublished.
    TrackUnpublished,
    /// Any other event (egress, ingress, newer ones).
    Other(String),
}

impl EventKind {
    /// From LiveKit's event name.
    pub fn parse(name: &str) -> Self {
        match name {
            "room_started" => EventKind::RoomStarted,
            "room_finished" => EventKind::RoomFinished,
            "participant_joined" => EventKind::ParticipantJoined,
            "participant_left" => EventKind::ParticipantLeft,
            "participant_connection_aborted" => EventKind::ParticipantConnectionAborted,
            "track_published" => EventKind::TrackPublished,
            "track_unpublished" => EventKind::TrackUnpublished,
            other => EventKind::Other(other.to_owned()),
        }
    }

    /// LiveKit's event name.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::RoomStarted => "room_started",
            EventKind::RoomFinished => "room_finished",
            EventKind::ParticipantJoined => "participant_joined",
            EventKind::ParticipantLeft => "participant_left",
            EventKind::ParticipantConnectionAborted => "participant_connection_aborted",
            EventKind::TrackPublished => "track_published",
            EventKind::TrackUnpublished => "track_unpublished",
            EventKind::Other(name) => name,
        }
    }
}

/// The participant an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventParticipant {
    /// Identity from its token.
    pub identity: String,
    /// LiveKit sid (`PA_…`), may be empty.
    pub sid: String,
    /// LiveKit's participant kind (`STANDARD`, `AGENT`, `EGRESS`…), upper case.
    pub kind: String,
}

impl EventParticipant {
    /// Agents and recorders do not keep a room alive in LiveKit, and we do not count them.
    pub fn is_dependent(&self) -> bool {
        matches!(self.kind.as_str(), "AGENT" | "EGRESS")
    }
}

/// The track an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTrack {
    /// LiveKit sid (`TR_…`).
    pub sid: String,
    /// Audio, video or data (an omitted type is audio: protojson drops the zero value).
    pub kind: TrackKind,
    /// e.g. `microphone`.
    pub source: String,
}

/// A verified LiveKit webhook event.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveKitEvent {
    /// LiveKit's event id (`EV_…`), or a digest of the body when LiveKit sent none.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// When it happened by LiveKit's clock (seconds precision); `None` if not sent.
    pub created_at: Option<DateTime<Utc>>,
    /// The room's name, if the event names one.
    pub room_name: Option<String>,
    /// The room's sid, if the event names one.
    pub room_sid: Option<String>,
    /// The participant, for participant and track events.
    pub participant: Option<EventParticipant>,
    /// The track, for track events.
    pub track: Option<EventTrack>,
    /// The body as LiveKit sent it, for the event log.
    pub payload: serde_json::Value,
}

impl LiveKitEvent {
    /// The event with NUL characters dropped from every name and id it carries. A signed
    /// event is LiveKit's word, so it is kept rather than refused; but a NUL in an identity
    /// would make PostgreSQL refuse the row on every retry LiveKit makes.
    pub fn without_nul(mut self) -> Self {
        use crate::model::without_nul as clean;
        self.id = clean(&self.id);
        if let EventKind::Other(name) = &self.kind {
            self.kind = EventKind::Other(clean(name));
        }
        self.room_name = self.room_name.as_deref().map(clean);
        self.room_sid = self.room_sid.as_deref().map(clean);
        if let Some(p) = &mut self.participant {
            p.identity = clean(&p.identity);
            p.sid = clean(&p.sid);
            p.kind = clean(&p.kind);
        }
        if let Some(t) = &mut self.track {
            t.sid = clean(&t.sid);
            t.source = clean(&t.source);
        }
        self
    }
}

/// An event as kept in a session's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// LiveKit's event id (the dedupe key).
    pub id: String,
    /// Event name.
    pub event: String,
    /// The session it belongs to, if any matched.
    pub session_id: Option<Uuid>,
    /// Room name from the event.
    pub room_name: Option<String>,
    /// Participant identity from the event.
    pub participant: Option<String>,
    /// Track sid from the event.
    pub track_sid: Option<String>,
    /// LiveKit's time of the event (receipt time if LiveKit sent none).
    pub created_at: DateTime<Utc>,
    /// When we received it.
    pub received_at: DateTime<Utc>,
    /// The body as LiveKit sent it.
    pub payload: serde_json::Value,
}

/// What a webhook delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// New event, applied and recorded.
    Received {
        /// The event name.
        event: String,
        /// The session it touched, if any.
        session_id: Option<Uuid>,
    },
    /// Seen before: nothing changed.
    Duplicate,
}

/// What one reaper pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReapReport {
    /// Sessions moved to `expired` (their rooms deleted).
    pub expired: u32,
    /// Sessions moved to `ended` because LiveKit no longer has their room.
    pub ended: u32,
    /// Why reconciliation with LiveKit was skipped this pass, if it was.
    pub skipped: Option<String>,
}
