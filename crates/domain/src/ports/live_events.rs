use uuid::Uuid;

use crate::model::SessionStatus;
use crate::turns::TurnRecord;

/// Something that just happened in a session, for live captions in the room and the
/// `GET /api/sessions/{id}/stream` event stream (design.md §8.3).
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A final transcript that started turn `turn`.
    Transcript {
        /// The turn it starts.
        turn: u64,
        /// What was heard.
        text: String,
    },
    /// A reply sentence TTS accepted (voice) or the model completed (chat).
    Reply {
        /// The turn.
        turn: u64,
        /// Its position in the reply, from 0.
        index: u32,
        /// The sentence.
        text: String,
    },
    /// A turn ended; its record (already stored).
    TurnEnded(Box<TurnRecord>),
    /// The session's status changed.
    Status(SessionStatus),
}

/// An event and the session it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEvent {
    /// The session.
    pub session_id: Uuid,
    /// Its LiveKit room (captions go there).
    pub room_name: String,
    /// What happened.
    pub event: LiveEvent,
}

/// Where live events go. `publish` must not block and never fails a turn: an
/// implementation queues (bounded) and drops what it cannot deliver.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait LiveEvents: Send + Sync {
    /// Hands one event over.
    fn publish(&self, event: SessionEvent);
}

/// Publishes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLiveEvents;

impl LiveEvents for NoLiveEvents {
    fn publish(&self, _event: SessionEvent) {}
}
