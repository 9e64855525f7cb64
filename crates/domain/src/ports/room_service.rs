use async_trait::async_trait;

use super::BoxError;
use crate::model::{Participant, Room, RoomSpec};

/// What the media server can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The room or participant does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The server refused our credentials (wrong API key or secret, or a missing grant).
    #[error("LiveKit rejected our API key/secret: {0}")]
    Unauthorized(String),
    /// The server rejected the request itself (bad name, too much metadata…).
    #[error("LiveKit refused the request: {0}")]
    Rejected(String),
    /// Unreachable, timed out, or answered 5xx.
    #[error("LiveKit unavailable: {message}")]
    Unavailable {
        /// What happened, for logs and the error body (never a credential).
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

/// The media server's room management (LiveKit's RoomService).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RoomService: Send + Sync {
    /// Creates the room, or returns it unchanged if it is already live (LiveKit's rule).
    async fn create_room(&self, spec: &RoomSpec) -> Result<Room, RoomError>;

    /// Deletes the room. A room that is already gone is success: deletes are idempotent.
    async fn delete_room(&self, name: &str) -> Result<(), RoomError>;

    /// Every live room (`names` empty) or just the named ones.
    async fn list_rooms(&self, names: &[String]) -> Result<Vec<Room>, RoomError>;

    /// Who is in the room; an unknown room has nobody (empty list, not an error).
    async fn list_participants(&self, room: &str) -> Result<Vec<Participant>, RoomError>;

    /// Disconnects a participant. `RoomError::NotFound` if it is not in the room.
    async fn remove_participant(&self, room: &str, identity: &str) -> Result<(), RoomError>;

    /// Sends a data message to everyone in the room on `topic` (LiveKit's `SendData`): the
    /// live captions. `reliable` asks for ordered, retransmitted delivery (LiveKit's
    /// `RELIABLE` kind); otherwise it may be dropped (`LOSSY`).
    ///
    /// Errors: `NotFound` if the room is not live, `Unauthorized`, `Rejected` (e.g. a payload
    /// over LiveKit's size limit), `Unavailable`.
    async fn send_data(
        &self,
        room: &str,
        payload: Vec<u8>,
        topic: &str,
        reliable: bool,
    ) -> Result<(), RoomError>;
}

/// Sends agents (the STT and TTS bots) into rooms: LiveKit's AgentDispatchService.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AgentDispatcher: Send + Sync {
    /// Dispatches `agent_name` into `room` with `metadata`; returns the dispatch id. Not
    /// idempotent on LiveKit's side: callers make sure it happens once.
    async fn dispatch(
        &self,
        room: &str,
        agent_name: &str,
        metadata: &str,
    ) -> Result<String, RoomError>;
}
