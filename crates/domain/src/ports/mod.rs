//! The ports: what the domain needs from the outside world, one trait per capability.
//! Adapters (LiveKit, SQLite/PostgreSQL, Gemini…) implement them; the domain never names
//! a technology.

mod clock;
mod room_service;
mod session_store;
mod token_issuer;

pub use clock::*;
pub use room_service::*;
pub use session_store::*;
pub use token_issuer::*;

/// An opaque cause carried inside a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
