//! One module per resource; handlers are named for what they do.

pub mod ai;
pub mod health;
pub mod meta;
pub mod participants;
pub mod sessions;
pub mod stream;
pub mod tokens;
pub mod turns;
pub mod voice;
pub mod webhooks;

use uuid::Uuid;

use crate::error::ApiError;
use june_domain::SessionError;

/// The id of a session `caller` may act on: not a UUID, unknown, or someone else's → 404.
pub(crate) async fn owned_session(
    state: &crate::AppState,
    caller: &june_domain::Principal,
    raw: &str,
) -> Result<Uuid, ApiError> {
    let id = session_id(raw)?;
    state.sessions.authorize(caller, id).await?;
    Ok(id)
}

/// A session id from the path; anything that is not a UUID names no session (404).
pub(crate) fn session_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::Session(SessionError::NotFound))
}
