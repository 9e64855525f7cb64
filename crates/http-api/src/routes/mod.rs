//! One module per resource; handlers are named for what they do.

pub mod ai;
pub mod health;
pub mod participants;
pub mod sessions;
pub mod tokens;
pub mod voice;
pub mod webhooks;

use uuid::Uuid;

use crate::error::ApiError;
use june_domain::SessionError;

/// A session id from the path; anything that is not a UUID names no session (404).
pub(crate) fn session_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::Session(SessionError::NotFound))
}
