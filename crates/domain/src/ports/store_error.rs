use super::BoxError;

/// What a store port can fail with. Adapters map their driver's errors onto these; each
/// method of a store port says which of them it answers, and when.
///
/// Every store call may fail with `Unavailable`, and any call that carries text may fail
/// with `Invalid`; the method docs name only the errors beyond those two.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that key.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (e.g. a live session already uses the room name).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database refused a value of this call (e.g. a NUL character in a text on
    /// PostgreSQL, SQLSTATE class 22). Retrying the same call fails the same way, so callers
    /// answer it as the client's fault, never as an outage. The message is safe to show: it
    /// says what is wrong with the value and holds no SQL.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The database could not be reached, failed, or did not answer in time (after a
    /// timeout the call may still have taken effect).
    #[error("store unavailable")]
    Unavailable(#[source] BoxError),
}
