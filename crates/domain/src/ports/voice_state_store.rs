use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::turns::InterruptedBy;

/// A turn started by a final transcript: its generation (barge-in) and its number in the
/// session (the turn record's `turn`), allocated by one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnStart {
    /// The new turn generation.
    pub generation: u64,
    /// The turn's number, from 1, shared with chat turns.
    pub turn: u64,
}

/// The session's current turn generation and what set it last, read by a running turn
/// before each send (and, once cancelled, to say what stopped it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnGeneration {
    /// 0 before the first turn.
    pub generation: u64,
    /// What bumped it last: a voice onset or a final transcript.
    pub bumped_by: InterruptedBy,
}

/// The voice loop's per-session state that replicas share: the one-time bot dispatch, the
/// turn generation (for cross-replica barge-in) and the last final transcript (dedupe).
///
/// Every method may also fail with [`StoreError::Unavailable`] (and, for a text the
/// database refuses, [`StoreError::Invalid`]); the docs below name the other errors.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VoiceStateStore: Send + Sync {
    /// Claims the one-time dispatch of the voice bots for the session: true for exactly one
    /// caller, whichever replica it runs on; false once claimed, or if there is no such
    /// session. No other errors.
    async fn claim_dispatch(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Gives a claim back after a failed dispatch, so a later event can try again. Releasing
    /// an unclaimed dispatch, or one of an unknown session, changes nothing. No other errors.
    async fn release_dispatch(&self, id: Uuid) -> Result<(), StoreError>;

    /// A voice onset: increments the session's turn generation atomically and returns it,
    /// remembering it was an onset. Any turn running with an older generation is thereby
    /// cancelled.
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn next_turn(&self, id: Uuid) -> Result<u64, StoreError>;

    /// A final transcript starts a turn: in one atomic write, increments the turn
    /// generation (cancelling a running turn, remembered as by a newer final) and the
    /// session's turn count (shared with chat turns, see
    /// [`TurnStore::allocate_turn`](super::TurnStore::allocate_turn)).
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn start_turn(&self, id: Uuid) -> Result<TurnStart, StoreError>;

    /// The session's current turn generation (a running turn checks it before each send)
    /// and what set it.
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn current_turn(&self, id: Uuid) -> Result<TurnGeneration, StoreError>;

    /// Records a final transcript unless the same text was recorded within `window` before
    /// `at` (STT bots resend finals). Returns whether it is new; false also if there is no
    /// such session. No other errors.
    async fn note_final(
        &self,
        id: Uuid,
        text: &str,
        at: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<bool, StoreError>;
}
