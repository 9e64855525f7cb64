use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

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

    /// Starts a new turn: increments the session's turn generation atomically and returns
    /// it. Any turn running with an older generation is thereby cancelled.
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn next_turn(&self, id: Uuid) -> Result<u64, StoreError>;

    /// The session's current turn generation (a running turn checks it before each send);
    /// 0 before the first turn.
    ///
    /// Errors: `NotFound` if there is no such session.
    async fn current_turn(&self, id: Uuid) -> Result<u64, StoreError>;

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
